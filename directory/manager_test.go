package directory

import (
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/internal/slapdtest"
	"github.com/umeeting/umeeting_exporter/internal/testproc"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func metricValue(t *testing.T, m *Manager, name, source string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, me := range mf.GetMetric() {
			if me.GetLabel()[0].GetValue() == source {
				if me.Counter != nil {
					return me.Counter.GetValue()
				}
				return me.Gauge.GetValue()
			}
		}
	}
	return -1
}

func TestManagerKeepsLastGoodCopy(t *testing.T) {
	path := writeCSV(t, 1000)
	logs := &testproc.Buffer{}
	changes := 0
	var mu sync.Mutex
	m := NewManager(log.NewLogfmtLogger(logs), func(*Snapshot) { mu.Lock(); changes++; mu.Unlock() })
	defer m.Stop()
	cfg := &config.Config{Directory: &config.Directory{File: path, RefreshInterval: config.NewDuration(50 * time.Millisecond), MaxDepartments: 10}}
	m.Apply(cfg)
	// The first read is done by Apply itself, before the first poll.
	if n := m.Current().Dir.Len(); n != 1000 {
		t.Fatalf("after Apply: %d entries", n)
	}
	if up := metricValue(t, m, "umeeting_directory_up", SourceFile); up != 1 {
		t.Fatalf("up = %v", up)
	}
	a, ok := m.Attribute(&umeeting.Meeting{Email: "person000005@example.com"}, 60)
	if !ok || a.Department != "Department 5" || a.CostCenter != "CC-5" {
		t.Errorf("attribution = %+v %v", a, ok)
	}
	if a, _ := m.Attribute(&umeeting.Meeting{Email: "nobody@example.com"}, 60); a.Department != Unknown || a.CostCenter != Unknown {
		t.Errorf("unknown host = %+v", a)
	}

	// The file goes away: the last copy stays, up turns 0, one log line.
	if err := os.Rename(path, path+".gone"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "up 0", func() bool { return metricValue(t, m, "umeeting_directory_up", SourceFile) == 0 })
	waitUntil(t, "several failed reads", func() bool { return metricValue(t, m, "umeeting_directory_read_failures_total", SourceFile) >= 3 })
	if n := m.Current().Dir.Len(); n != 1000 {
		t.Fatalf("last good copy lost: %d entries", n)
	}
	if a, _ := m.Attribute(&umeeting.Meeting{Email: "person000005@example.com"}, 60); a.Department != "Department 5" {
		t.Errorf("attribution while failing = %+v", a)
	}
	if c := strings.Count(logs.String(), "Reading the directory failed"); c != 1 {
		t.Errorf("failure logged %d times, want once per episode:\n%s", c, logs.String())
	}
	if !strings.Contains(logs.String(), "no such file") {
		t.Errorf("reason not logged:\n%s", logs.String())
	}

	// A broken file (missing column) also keeps the copy.
	if err := os.WriteFile(path, []byte("email,department\na@example.com,X\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := m.Current().Dir.Len(); n != 1000 || metricValue(t, m, "umeeting_directory_up", SourceFile) != 0 {
		t.Fatalf("broken file replaced the copy: %d entries", n)
	}

	// Fixed: up again, new content, recovery logged.
	if err := os.WriteFile(path, []byte("email,department,cost_center,site,licence\na@example.com,X,C,S,Pro\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "up 1", func() bool { return metricValue(t, m, "umeeting_directory_up", SourceFile) == 1 })
	if n := m.Current().Dir.Len(); n != 1 {
		t.Fatalf("%d entries after recovery", n)
	}
	if !strings.Contains(logs.String(), "readable again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}

	// No directory section: no join.
	m.Apply(&config.Config{})
	if _, ok := m.Attribute(&umeeting.Meeting{Email: "a@example.com"}, 1); ok {
		t.Error("attribution without a directory")
	}
	if testutil.CollectAndCount(m) != 0 {
		t.Error("source metrics without a directory")
	}
}

func TestManagerLDAPFailureLogsNoPassword(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{People: people(10), ServicePassword: servicePassword})
	c := openLDAPConfig(s, s.URL)
	c.StartTLS = true
	c.Password = "Wr0ng-" + servicePassword
	logs := &testproc.Buffer{}
	m := NewManager(log.NewLogfmtLogger(logs), nil)
	defer m.Stop()
	m.Apply(&config.Config{Directory: &config.Directory{LDAP: c, RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 10}})
	if up := metricValue(t, m, "umeeting_directory_up", SourceLDAP); up != 0 {
		t.Fatalf("up = %v with a wrong password", up)
	}
	if !strings.Contains(logs.String(), "Invalid Credentials") {
		t.Errorf("reason not logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), c.Password) || strings.Contains(logs.String(), servicePassword) {
		t.Fatalf("password in the log:\n%s", logs.String())
	}
	// Right password on reload: read at once, since the settings changed.
	good := openLDAPConfig(s, s.URL)
	good.StartTLS = true
	m.Apply(&config.Config{Directory: &config.Directory{LDAP: good, RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 10}})
	waitUntil(t, "ldap up", func() bool { return metricValue(t, m, "umeeting_directory_up", SourceLDAP) == 1 })
	if n := m.Current().Dir.Len(); n != 10 {
		t.Fatalf("%d entries", n)
	}
	// slapd goes down: the copy stays.
	s.Stop()
	m.Apply(&config.Config{Directory: &config.Directory{LDAP: good, RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 10}})
	waitUntil(t, "ldap down", func() bool { return metricValue(t, m, "umeeting_directory_up", SourceLDAP) == 0 })
	if n := m.Current().Dir.Len(); n != 10 {
		t.Fatalf("copy lost when slapd went down: %d entries", n)
	}
}

// TestReloadDoesNotWaitForASlowServer: an LDAP server that accepts and
// never answers holds up only the background read, never a reload or a
// scrape.
func TestReloadDoesNotWaitForASlowServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold the connection, answer nothing
		}
	}()
	c := config.DefaultLDAP
	c.URL, c.BaseDN, c.Timeout = "ldap://"+ln.Addr().String(), "dc=example,dc=com", config.NewDuration(3*time.Second)
	cfg := &config.Config{Directory: &config.Directory{LDAP: &c, RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 10}}
	m := NewManager(log.NewNopLogger(), nil)
	defer m.Stop()
	m.Apply(cfg) // the first read waits for the timeout, then fails
	if up := metricValue(t, m, "umeeting_directory_up", SourceLDAP); up != 0 {
		t.Fatalf("up = %v", up)
	}
	m.Apply(cfg) // starts a background read that hangs
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	m.Apply(cfg)
	metricValue(t, m, "umeeting_directory_up", SourceLDAP)
	if d := time.Since(start); d > time.Second {
		t.Errorf("a reload and a scrape waited %v for the hanging read", d)
	}
}
