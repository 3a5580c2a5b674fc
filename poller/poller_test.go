package poller

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/exposition"
	"github.com/umeeting/umeeting_exporter/exposition/expositiontest"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

type fixture struct {
	t   *testing.T
	sim *simulator.Simulator
	url string
	reg prometheus.Gatherer // what /metrics serves
	m   *Manager
}

func newFixture(t *testing.T) *fixture {
	now := time.Now()
	sim := simulator.New(simulator.Options{Seed: 3, Hosts: 40, APIKey: "k", APISecret: "s",
		HistoryStart: now.Add(-10 * time.Hour), HistoryEnd: now.Add(-10 * time.Minute)})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	coll := collector.New()
	inst, reg := serve(coll)
	m := NewManager(t.TempDir(), coll, inst, log.NewNopLogger())
	t.Cleanup(func() { m.Stop(); sim.Close() })
	return &fixture{t: t, sim: sim, url: url, reg: reg, m: m}
}

// serve wires /metrics as main does: coll's cache, then its poll health
// and the instruments returned gathered live. The Gatherer returned reads
// what /metrics serves.
func serve(coll *collector.Collector) (*collector.Instruments, prometheus.Gatherer) {
	live := prometheus.NewPedanticRegistry()
	live.MustRegister(coll.Status())
	return collector.NewInstruments(live), scraper{exposition.NewHandler(coll.Cache(), live, exposition.HandlerOpts{})}
}

// scraper gathers by scraping a /metrics handler in plain text.
type scraper struct{ h http.Handler }

func (s scraper) Gather() ([]*dto.MetricFamily, error) {
	a, err := expositiontest.Scrape(s.h, "", "")
	if err == nil && a.Code != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %s", a.Code, a.Body)
	}
	if err != nil {
		return nil, err
	}
	mfs, err := a.Families()
	return slices.Collect(maps.Values(mfs)), err
}

func (f *fixture) config(accounts string) *config.Config {
	f.t.Helper()
	cfg, err := config.Decode([]byte("poll_interval: 1s\naccounts:\n"+accounts), ".")
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return cfg
}

func (f *fixture) account(name, extra string) string {
	return fmt.Sprintf("  - {name: %s, api_url: %q, api_key: k, api_secret: s, daily_request_budget: 0%s}\n", name, f.url, extra)
}

// value sums the samples of a family for an account.
func (f *fixture) value(name, account string) (float64, bool) {
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	sum, found := 0.0, false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "account" && l.GetValue() == account {
					sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
					found = true
				}
			}
		}
	}
	return sum, found
}

func (f *fixture) waitMeetings(account string) float64 {
	f.t.Helper()
	want := float64(len(f.sim.Truth(time.Time{}, time.Now())))
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if v, _ := f.value("umeeting_meetings_total", account); v == want {
			return v
		}
		time.Sleep(50 * time.Millisecond)
	}
	v, _ := f.value("umeeting_meetings_total", account)
	f.t.Fatalf("account %s: %v meetings, want %v", account, v, want)
	return 0
}

func TestApplyStartsKeepsAndStops(t *testing.T) {
	f := newFixture(t)
	if f.m.Ready() {
		t.Fatal("ready before a config")
	}
	if err := f.m.Apply(f.config(f.account("a", ""))); err != nil {
		t.Fatal(err)
	}
	f.waitMeetings("a")
	r := f.m.runners["a"]

	// The same config again: the runner is untouched.
	if err := f.m.Apply(f.config(f.account("a", ""))); err != nil {
		t.Fatal(err)
	}
	if f.m.runners["a"] != r {
		t.Error("unchanged account restarted")
	}
	// A changed account takes its settings in place, with its counts; a new one starts.
	if err := f.m.Apply(f.config(f.account("a", ", method: GET") + f.account("b", ""))); err != nil {
		t.Fatal(err)
	}
	if f.m.runners["a"] != r || f.m.stores["a"] != r.store || r.settings().account.Method != "GET" {
		t.Error("changed account not updated in place with its store")
	}
	f.waitMeetings("a")
	f.waitMeetings("b")

	// A config that cannot build a client changes nothing.
	bad := f.config(f.account("a", ", http_client_config: {tls_config: {ca_file: /nonexistent/ca.pem}}"))
	if err := f.m.Apply(bad); err == nil {
		t.Error("bad http_client_config accepted")
	}
	if len(f.m.runners) != 2 {
		t.Errorf("runners after a failed apply: %d", len(f.m.runners))
	}
	// Removing b stops it and its metrics go.
	if err := f.m.Apply(f.config(f.account("a", ", method: GET"))); err != nil {
		t.Fatal(err)
	}
	if _, found := f.value("umeeting_up", "b"); found {
		t.Error("removed account still exposed")
	}
}

func TestFailedPollKeepsNumbers(t *testing.T) {
	f := newFixture(t)
	if err := f.m.Apply(f.config(f.account("a", ", max_retries: 0"))); err != nil {
		t.Fatal(err)
	}
	n := f.waitMeetings("a")
	// The counts are published just before the poll's status: wait for
	// it, or umeeting_up would still be the 0 it starts at.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if up, _ := f.value("umeeting_up", "a"); up == 1 {
			break
		}
	}
	f.sim.SetFault(simulator.Fault{Kind: simulator.FaultEnvelope})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if up, _ := f.value("umeeting_up", "a"); up == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if up, _ := f.value("umeeting_up", "a"); up != 0 {
		t.Fatal("umeeting_up stayed 1 under an envelope error")
	}
	if v, _ := f.value("umeeting_meetings_total", "a"); v != n {
		t.Errorf("meetings %v after failed poll, want %v", v, n)
	}
	// umeeting_up is set before the poll counters move: wait for them.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if v, _ := f.value("umeeting_polls_total", "a"); v >= 2 {
			return
		}
	}
	v, _ := f.value("umeeting_polls_total", "a")
	t.Errorf("polls_total %v, want a success and a failure", v)
}

// oneDepartment puts every host in department D.
type oneDepartment struct{}

func (oneDepartment) Attribute(*umeeting.Meeting, uint64) (store.Attribution, bool) {
	return store.Attribution{Department: "D", CostCenter: "C"}, true
}

// TestFirstPollCountsByDepartment: the join is set on a new account's
// store before its runner starts, so the baseline is attributed too.
func TestFirstPollCountsByDepartment(t *testing.T) {
	f := newFixture(t)
	f.m.SetAttributor(oneDepartment{})
	if err := f.m.Apply(f.config(f.account("a", ""))); err != nil {
		t.Fatal(err)
	}
	total := f.waitMeetings("a")
	if d, _ := f.value("umeeting_department_meetings_total", "a"); d != total {
		t.Fatalf("department D has %v meetings, the account %v", d, total)
	}
}
