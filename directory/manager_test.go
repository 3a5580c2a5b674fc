package directory

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// TestReloadWaitsForASlowServerAtMostItsTimeout: an LDAP server that
// accepts and never answers holds a reload up to the timeout, and says so;
// a scrape never waits.
func TestReloadWaitsForASlowServerAtMostItsTimeout(t *testing.T) {
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
	c.URL, c.BaseDN, c.Timeout = "ldap://"+ln.Addr().String(), "dc=example,dc=com", config.NewDuration(time.Second)
	cfg := &config.Config{Directory: &config.Directory{LDAP: &c, RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 10}}
	m := NewManager(log.NewNopLogger(), nil)
	defer m.Stop()
	testproc.Within(t, "the first Apply", func() { err = m.Apply(cfg) }) // the first read waits for the timeout, then fails
	if up := metricValue(t, m, "umeeting_directory_up", SourceLDAP); up != 0 || err == nil {
		t.Fatalf("up = %v, Apply: %v", up, err)
	}
	applied := make(chan error, 1)
	go func() { applied <- m.Apply(cfg) }() // a reload: reads again, and hangs
	time.Sleep(100 * time.Millisecond)
	testproc.Within(t, "a scrape during a read", func() { metricValue(t, m, "umeeting_directory_up", SourceLDAP) })
	select {
	case err := <-applied:
		if err == nil {
			t.Error("a reload whose read timed out succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a reload waited past the timeout")
	}
}

// blockingFile replaces path with a FIFO without a writer: opening it
// blocks, as a file of a hung network share does. The blocked reads end
// when the test does.
func blockingFile(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
			time.Sleep(50 * time.Millisecond) // let the readers open it
			f.Close()
		}
	})
}

// TestFileReadThatBlocksIsBounded: a directory file whose read blocks
// (a hung file share) holds neither the start, a reload, a scrape nor Stop
// past its timeout; the source is down, says why, and keeps its last good
// copy; reads do not pile up behind the blocked one.
func TestFileReadThatBlocksIsBounded(t *testing.T) {
	path := writeCSV(t, 10)
	logs := &testproc.Buffer{}
	m := NewManager(log.NewLogfmtLogger(logs), nil)
	t.Cleanup(func() { testproc.Within(t, "Stop", m.Stop) })
	cfg := &config.Config{Directory: &config.Directory{File: path, FileTimeout: config.NewDuration(200 * time.Millisecond),
		RefreshInterval: config.NewDuration(50 * time.Millisecond), MaxDepartments: 10}}
	var err error
	testproc.Within(t, "Apply", func() { err = m.Apply(cfg) })
	if err != nil || m.Current().Dir.Len() != 10 {
		t.Fatalf("Apply: %v, %d entries", err, m.Current().Dir.Len())
	}
	blockingFile(t, path)
	testproc.Within(t, "a reload", func() { err = m.Apply(cfg) })
	if err == nil || !strings.Contains(err.Error(), "timeout") || !strings.Contains(err.Error(), path) {
		t.Errorf("a reload whose read blocked: %v (want the timeout and the file's path)", err)
	}
	if up := metricValue(t, m, "umeeting_directory_up", SourceFile); up != 0 || m.Current().Dir.Len() != 10 {
		t.Errorf("up = %v, %d entries (want 0 and the last good copy)", up, m.Current().Dir.Len())
	}
	if !strings.Contains(logs.String(), "timeout") {
		t.Errorf("the log does not say why:\n%s", logs.String())
	}
	time.Sleep(300 * time.Millisecond) // refreshes while the read is blocked
	testproc.Within(t, "another reload", func() { err = m.Apply(cfg) })
	if err == nil || !strings.Contains(err.Error(), "still blocked") {
		t.Errorf("a reload while the earlier read is blocked: %v", err)
	}
	testproc.Within(t, "a scrape", func() { metricValue(t, m, "umeeting_directory_up", SourceFile) })
	if c := strings.Count(logs.String(), "Reading the directory failed"); c != 1 {
		t.Errorf("failure logged %d times, want once:\n%s", c, logs.String())
	}
}

// TestStartWithABlockingFile: at the first Apply (the start) a file whose
// read blocks fails after the timeout, without a directory.
func TestStartWithABlockingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory.csv")
	blockingFile(t, path)
	m := NewManager(log.NewNopLogger(), nil)
	t.Cleanup(func() { testproc.Within(t, "Stop", m.Stop) })
	var err error
	testproc.Within(t, "Apply", func() {
		err = m.Apply(&config.Config{Directory: &config.Directory{File: path, FileTimeout: config.NewDuration(200 * time.Millisecond),
			RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 10}})
	})
	if up := metricValue(t, m, "umeeting_directory_up", SourceFile); err == nil || up != 0 || m.Current().Dir.Len() != 0 {
		t.Errorf("Apply: %v, up %v", err, up)
	}
}
