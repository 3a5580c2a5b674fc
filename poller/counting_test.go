package poller

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/store"
)

// countingRig drives the whole path (simulator → client → store →
// collector) on fake clocks, one poll at a time: the API's clock, and the
// exporter's, which may be stepped away from it.
type countingRig struct {
	t   *testing.T
	dir string
	sim *simulator.Simulator
	url string

	mu     sync.Mutex
	apiNow time.Time     // the API's clock: meetings end and are listed by it
	offset time.Duration // the exporter's clock minus the API's

	m    *Manager
	reg  prometheus.Gatherer // what /metrics serves
	r    *runner
	from time.Time // the first end time counted: the baseline's start
	last float64   // the last umeeting_meetings_total sum served
	// attr, when set, joins the counted meetings with departments.
	attr store.Attributor
}

const rigInterval = time.Hour

func newCountingRig(t *testing.T) *countingRig {
	g := &countingRig{t: t, dir: t.TempDir(), apiNow: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)}
	g.sim = simulator.New(simulator.Options{Seed: 11, Hosts: 12, APIKey: "k", APISecret: "s", Now: g.apiClock})
	url, err := g.sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.url = url
	t.Cleanup(func() { g.sim.Close() })
	return g
}

func (g *countingRig) apiClock() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.apiNow
}

func (g *countingRig) exporterClock() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.apiNow.Add(g.offset)
}

func (g *countingRig) config(global string) (*config.Config, settings) {
	g.t.Helper()
	cfg, err := config.Decode([]byte(fmt.Sprintf("poll_interval: 1h\n%saccounts:\n  - {name: a, api_url: %q, api_key: k, api_secret: s, daily_request_budget: 0, max_retries: 0}\n", global, g.url)), ".")
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		g.t.Fatal(err)
	}
	return cfg, newSettings(cfg, cfg.Accounts[0])
}

// start runs a new exporter process on the storage folder: what a restart
// serves before its first poll must not be less than what was served.
func (g *countingRig) start(global string) {
	g.t.Helper()
	_, s := g.config(global)
	coll := collector.New()
	inst, reg := serve(coll)
	g.reg = reg
	g.m = NewManager(g.dir, coll, inst, log.NewNopLogger())
	g.m.now = g.exporterClock
	c, err := g.m.newClient(s)
	if err != nil {
		g.t.Fatal(err)
	}
	st, err := g.m.openStore("a")
	if err != nil {
		g.t.Fatal(err)
	}
	g.r = newRunner("a", s, c, st, g.m.budgets["a"], coll, g.m.inst, g.exporterClock, log.NewNopLogger())
	if g.attr != nil {
		st.SetAttributor(g.attr, 0)
	}
	// What start does, without the loop: the test polls.
	st.SetPolicy(s.metrics, g.exporterClock())
	g.r.publish(g.exporterClock(), true)
	g.check("restart")
}

func (g *countingRig) reload(global string) {
	g.t.Helper()
	_, s := g.config(global)
	c, err := g.m.newClient(s)
	if err != nil {
		g.t.Fatal(err)
	}
	g.r.update(s, c)
	g.check("reload")
}

// poll advances both clocks by a poll interval n times, polling each time.
func (g *countingRig) poll(n int, what string) {
	g.t.Helper()
	for i := range n {
		g.mu.Lock()
		g.apiNow = g.apiNow.Add(rigInterval)
		g.mu.Unlock()
		if g.from.IsZero() {
			g.from = g.exporterClock().Add(-g.r.settings().backfill)
		}
		if err := g.r.poll(context.Background()); err != nil {
			g.t.Fatalf("%s: poll %d: %v", what, i, err)
		}
		g.check(fmt.Sprintf("%s, poll %d", what, i))
	}
}

// step moves the exporter's clock away from the API's.
func (g *countingRig) step(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.offset += d
}

func (g *countingRig) served() float64 {
	g.t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		g.t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "umeeting_meetings_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func (g *countingRig) truth() float64 {
	if g.from.IsZero() {
		return 0
	}
	return float64(len(g.sim.Truth(g.from, g.apiClock())))
}

// check fails on a double count (more served than ever listed) and on a
// served counter going down.
func (g *countingRig) check(what string) {
	g.t.Helper()
	got, truth := g.served(), g.truth()
	if got > truth {
		g.t.Fatalf("%s: %v meetings served, only %v listed: counted twice", what, got, truth)
	}
	if got < g.last {
		g.t.Fatalf("%s: served meetings went down from %v to %v", what, g.last, got)
	}
	g.last = got
}

// finish stops the API's clock (no new meetings) and polls twice on the
// exporter's, so held increments show: then the served total is exact.
func (g *countingRig) finish() {
	g.t.Helper()
	for i := range 2 {
		g.step(rigInterval)
		if err := g.r.poll(context.Background()); err != nil {
			g.t.Fatal(err)
		}
		g.check(fmt.Sprintf("final poll %d", i))
	}
	if got, truth := g.served(), g.truth(); got != truth || truth < 100 {
		g.t.Fatalf("served %v meetings, %v listed", got, truth)
	}
}

// TestCountingOnceUnderChanges drives lookback and backfill changes, by
// reload and by restart, and clock steps, through the whole path: no
// meeting is counted twice or lost, and no served counter goes down.
func TestCountingOnceUnderChanges(t *testing.T) {
	const base = "lookback: 48h\nbackfill: 30d\n"
	for name, run := range map[string]func(g *countingRig){
		"lookback raised by reload": func(g *countingRig) {
			g.poll(60, "48h")
			g.reload("lookback: 96h\nbackfill: 30d\n")
			g.poll(30, "96h")
		},
		"lookback raised by restart": func(g *countingRig) {
			g.poll(60, "48h")
			g.start("lookback: 96h\nbackfill: 30d\n")
			g.poll(30, "96h")
		},
		"lookback lowered then raised": func(g *countingRig) {
			g.poll(30, "48h")
			g.reload("lookback: 24h\nbackfill: 30d\n")
			g.poll(30, "24h")
			g.reload(base)
			g.poll(30, "48h again")
		},
		"backfill changed": func(g *countingRig) {
			g.poll(10, "30d")
			g.reload("lookback: 48h\nbackfill: 60d\n")
			g.poll(10, "60d")
			g.start("lookback: 48h\nbackfill: 10d\n")
			g.poll(10, "10d after a restart")
			g.start("lookback: 48h\nbackfill: 60d\n")
			g.poll(10, "60d after a restart")
		},
		"clock back 2h": func(g *countingRig) {
			g.poll(30, "before")
			g.step(-2 * time.Hour)
			g.poll(30, "after")
		},
		"clock forward for two polls then back": func(g *countingRig) {
			g.poll(30, "before")
			g.step(50 * time.Hour)
			g.poll(2, "forward")
			g.step(-50 * time.Hour)
			g.poll(30, "back")
		},
	} {
		t.Run(name, func(t *testing.T) {
			g := newCountingRig(t)
			g.start(base)
			run(g)
			g.finish()
		})
	}
}

func TestBaselinePollGetsTimeForTheBackfill(t *testing.T) {
	now := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	s := settings{pollTimeout: 10 * time.Minute, lookback: 48 * time.Hour}
	for _, c := range []struct {
		win  store.Window
		want time.Duration
	}{
		{store.Window{Now: now, From: now.Add(-48 * time.Hour)}, 10 * time.Minute},
		{store.Window{Now: now, From: now.Add(-30 * 24 * time.Hour)}, 10 * time.Minute}, // not the baseline
		{store.Window{Now: now, From: now.Add(-30 * 24 * time.Hour), Baseline: true}, 150 * time.Minute},
		{store.Window{Now: now, From: now.Add(-365 * 24 * time.Hour), Baseline: true}, maxBaselineTimeout},
		{store.Window{Now: now, From: now.Add(-24 * time.Hour), Baseline: true}, 10 * time.Minute},
	} {
		if got := pollTimeout(s, c.win); got != c.want {
			t.Errorf("window %v..%v baseline %v: timeout %v, want %v", c.win.From, c.win.Now, c.win.Baseline, got, c.want)
		}
	}
}
