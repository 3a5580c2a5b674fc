package poller

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/internal/testproc"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// request is the date range of one API request.
type request struct{ from, to time.Time }

// gate is a real HTTP server on 127.0.0.1 in front of the simulator that
// records every request's dates and, like APIs that keep a short history,
// can reject requests that start before a date.
type gate struct {
	sim *simulator.Simulator
	url string

	mu       sync.Mutex
	requests []request
	before   time.Time // reject requests whose from is before this
}

func newGate(t *testing.T, history time.Duration) *gate {
	now := time.Now()
	g := &gate{sim: simulator.New(simulator.Options{Seed: 5, Hosts: 30, APIKey: "k", APISecret: "s",
		HistoryStart: now.Add(-history), HistoryEnd: now.Add(-10 * time.Minute)})}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		from, _ := time.ParseInLocation(time.DateOnly, r.Form.Get("from"), shanghai)
		to, _ := time.ParseInLocation(time.DateOnly, r.Form.Get("to"), shanghai)
		g.mu.Lock()
		g.requests = append(g.requests, request{from, to})
		reject := from.Before(g.before)
		g.mu.Unlock()
		if reject {
			fmt.Fprintln(w, `{"status":400,"message":"from may be at most 7 days ago"}`)
			return
		}
		g.sim.ServeHTTP(w, r)
	}))
	g.url = srv.URL + simulator.APIPath
	t.Cleanup(srv.Close)
	return g
}

func (g *gate) reject(before time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.before = before
}

func (g *gate) log() []request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]request(nil), g.requests...)
}

// newGatedFixture is a Manager polling a gate, with its logs kept.
func newGatedFixture(t *testing.T, history time.Duration) (*fixture, *gate, *testproc.Buffer) {
	g := newGate(t, history)
	coll := collector.New()
	inst, reg := serve(coll)
	logs := &testproc.Buffer{}
	m := NewManager(t.TempDir(), coll, inst, log.NewLogfmtLogger(logs))
	t.Cleanup(func() { m.Stop(); g.sim.Close() })
	return &fixture{t: t, sim: g.sim, url: g.url, reg: reg, m: m}, g, logs
}

func (f *fixture) apply(yaml string) {
	f.t.Helper()
	cfg, err := config.Decode([]byte(yaml), ".")
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.m.Apply(cfg); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) must(name, account string) float64 {
	f.t.Helper()
	v, found := f.value(name, account)
	if !found {
		f.t.Fatalf("%s{account=%q} not exposed", name, account)
	}
	return v
}

func (f *fixture) waitValue(name, account string, ok func(float64) bool, what string) float64 {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if v, found := f.value(name, account); found && ok(v) {
			return v
		}
		time.Sleep(20 * time.Millisecond)
	}
	v, _ := f.value(name, account)
	f.t.Fatalf("%s{account=%q} = %v: timed out waiting for %s", name, account, v, what)
	return 0
}

func gatedConfig(g *gate, global, extra string) string {
	return fmt.Sprintf("%saccounts:\n  - {name: a, api_url: %q, api_key: k, api_secret: s, max_retries: 0%s}\n", global, g.url, extra)
}

// TestReloadAppliesEverySetting changes each setting by reload and checks
// it takes effect without a restart.
func TestReloadAppliesEverySetting(t *testing.T) {
	f, g, _ := newGatedFixture(t, 10*time.Hour)
	const global = "poll_interval: 1s\nbackfill: 48h\n"
	f.apply(gatedConfig(g, global, ", daily_request_budget: 1000"))
	f.waitValue("umeeting_up", "a", func(v float64) bool { return v == 1 }, "a poll")
	r := f.m.runners["a"]

	// daily_request_budget: the budget left follows the new cap at once.
	f.apply(gatedConfig(g, global, ", daily_request_budget: 3"))
	if v := f.must("umeeting_api_request_budget_remaining", "a"); v < 0 || v > 2 {
		t.Errorf("budget remaining %v after lowering the budget to 3", v)
	}
	f.waitValue("umeeting_up", "a", func(v float64) bool { return v == 0 }, "polls failing once the lowered budget is spent")

	// min_request_interval: 1h between requests makes the next poll fail at once.
	f.apply(gatedConfig(g, global, ", daily_request_budget: 0"))
	f.waitValue("umeeting_up", "a", func(v float64) bool { return v == 1 }, "polls recovering without a budget")
	f.apply(gatedConfig(g, global, ", daily_request_budget: 0, min_request_interval: 1h"))
	f.waitValue("umeeting_up", "a", func(v float64) bool { return v == 0 }, "a poll refused by min_request_interval 1h")

	// max_retries: 0 means one request per failed poll, no retries.
	f.apply(gatedConfig(g, global, ", daily_request_budget: 0"))
	f.waitValue("umeeting_up", "a", func(v float64) bool { return v == 1 }, "polls recovering")
	f.sim.SetFault(simulator.Fault{Kind: simulator.FaultHTTP500})
	failed0 := f.failedPolls("a")
	requests0 := len(g.log())
	f.waitValue("umeeting_polls_total", "a", func(float64) bool { return f.failedPolls("a") >= failed0+3 }, "three failed polls")
	requests, failed := len(g.log())-requests0, f.failedPolls("a")-failed0
	if float64(requests) > failed+1 { // +1: a poll may be in flight
		t.Errorf("max_retries 0: %d requests for %v failed polls", requests, failed)
	}
	f.sim.SetFault(simulator.Fault{Kind: simulator.FaultNone})

	// poll_interval and concurrent_meetings_limit.
	f.apply(gatedConfig(g, "poll_interval: 2s\nbackfill: 48h\n", ", daily_request_budget: 0, concurrent_meetings_limit: 7"))
	if v := f.must("umeeting_poll_interval_seconds", "a"); v != 2 {
		t.Errorf("poll interval %v after reload, want 2", v)
	}
	if v := f.must("umeeting_concurrent_meetings_limit", "a"); v != 7 {
		t.Errorf("licence limit %v after reload, want 7", v)
	}
	if f.m.runners["a"] != r {
		t.Error("a reload restarted the account's runner")
	}
}

func (f *fixture) failedPolls(account string) float64 {
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "umeeting_polls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["account"] == account && labels["result"] == "failure" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestMetricsOnlyReloadRepublishesWithoutPolling: a reload that changes
// only metrics.* makes no request and shows the new options at once.
func TestMetricsOnlyReloadRepublishesWithoutPolling(t *testing.T) {
	f, g, _ := newGatedFixture(t, 10*time.Hour)
	// The generated 10 h may be a quiet night: five hosts meet in them
	// whatever the time of week, so that max_hosts 3 cuts.
	end := time.Now().Add(-time.Hour)
	for i := range 5 {
		g.sim.Add(umeeting.Meeting{UUID: fmt.Sprintf("reload-%d", i), Host: "H", Email: fmt.Sprintf("h%d@reload.example", i),
			UserType: "Corp", Start: end.Add(-30 * time.Minute), End: end, Participants: 2})
	}
	const global = "poll_interval: 1h\nbackfill: 48h\n"
	f.apply(gatedConfig(g, global, ", daily_request_budget: 0"))
	f.waitValue("umeeting_up", "a", func(v float64) bool { return v == 1 }, "the first poll")
	hosts := f.count("umeeting_host_last_meeting_timestamp_seconds")
	if hosts < 5 {
		t.Fatalf("only %d hosts", hosts)
	}
	requests := len(g.log())
	f.apply(gatedConfig(g, global+"metrics:\n  max_hosts: 3\n", ", daily_request_budget: 0"))
	if n := f.count("umeeting_host_last_meeting_timestamp_seconds"); n != 3 {
		t.Errorf("max_hosts 3 after reload: %d host series", n)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(g.log()); n != requests {
		t.Errorf("a metrics-only reload made %d requests", n-requests)
	}
}

func (f *fixture) count(name string) int {
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// TestStatusKeptAcrossReload: a reload that changes an account's
// connection settings keeps umeeting_up, the last poll, the last save and
// the poll duration, rather than showing zeros until the next poll ends.
func TestStatusKeptAcrossReload(t *testing.T) {
	f, g, _ := newGatedFixture(t, 10*time.Hour)
	const global = "poll_interval: 1h\nbackfill: 48h\n"
	f.apply(gatedConfig(g, global, ", daily_request_budget: 0"))
	f.waitValue("umeeting_state_last_save_timestamp_seconds", "a", func(v float64) bool { return v > 0 }, "the first poll")
	names := []string{"umeeting_up", "umeeting_last_successful_poll_timestamp_seconds",
		"umeeting_state_last_save_timestamp_seconds", "umeeting_poll_duration_seconds"}
	before := map[string]float64{}
	for _, n := range names {
		before[n] = f.must(n, "a")
	}
	// A slow API: the poll the new settings start takes a while, and the
	// status must not drop in the meantime.
	f.sim.SetFault(simulator.Fault{Kind: simulator.FaultSlow, Delay: 500 * time.Millisecond, Count: 1})
	f.apply(gatedConfig(g, global, ", daily_request_budget: 0, method: GET, timeout: 10s"))
	for _, n := range names {
		if v := f.must(n, "a"); v != before[n] {
			t.Errorf("%s = %v right after the reload, was %v", n, v, before[n])
		}
	}
}

// TestBackfillHasItsOwnStatus: after a reload raises backfill, an API that
// rejects dates older than 7 days fails the read of older history (for
// hosts' latest meetings), but not the regular polls: umeeting_up stays 1,
// umeeting_backfill_up is 0, the read backs off, and once the API allows it
// the read resumes where it stopped. (A fresh state reads its backfill in
// its first poll, the baseline of the counters.)
func TestBackfillHasItsOwnStatus(t *testing.T) {
	f, g, logs := newGatedFixture(t, 60*24*time.Hour)
	g.reject(time.Now().Add(-7 * 24 * time.Hour))
	f.apply(gatedConfig(g, "poll_interval: 1s\nbackfill: 48h\n", ", daily_request_budget: 0"))
	f.waitValue("umeeting_up", "a", func(v float64) bool { return v == 1 }, "the first poll")
	f.apply(gatedConfig(g, "poll_interval: 1s\nbackfill: 50d\n", ", daily_request_budget: 0"))
	f.waitValue("umeeting_backfill_up", "a", func(v float64) bool { return v == 0 }, "the backfill failing")
	start := time.Now()
	time.Sleep(3500 * time.Millisecond)
	if up := f.must("umeeting_up", "a"); up != 1 {
		t.Errorf("umeeting_up %v while only the backfill fails", up)
	}
	if n := f.failedPolls("a"); n != 0 {
		t.Errorf("%v failed polls while only the backfill fails", n)
	}
	if p := f.must("umeeting_backfill_progress_ratio", "a"); p != 0 {
		t.Errorf("backfill progress %v, want 0", p)
	}
	// Backoff: attempts 1s, 2s, 4s apart, not one a poll.
	old := 0
	for _, r := range g.log() {
		if r.from.Before(start.Add(-7 * 24 * time.Hour)) {
			old++
		}
	}
	if old > 3 {
		t.Errorf("%d backfill attempts in about 3.5s of 1s polls: no backoff", old)
	}
	if !strings.Contains(logs.String(), "Reading older history failed; it resumes there later") {
		t.Errorf("backfill failure not logged:\n%s", logs)
	}

	// Let the first month through only: the read stops at the second.
	g.reject(time.Now().Add(-38 * 24 * time.Hour)) // a month and the requests' reach before it
	p := f.waitValue("umeeting_backfill_progress_ratio", "a", func(v float64) bool { return v > 0 }, "the first month read")
	if p >= 1 {
		t.Fatalf("backfill done through a rejecting API: %v", p)
	}
	stopped := g.log()
	resumeTo := stopped[len(stopped)-1].to
	g.reject(time.Time{})
	f.waitValue("umeeting_backfill_progress_ratio", "a", func(v float64) bool { return v == 1 }, "the backfill done")
	if v := f.must("umeeting_backfill_up", "a"); v != 1 {
		t.Errorf("umeeting_backfill_up %v when done", v)
	}
	// It resumed where it stopped: after the failure, no request for the
	// month already read, and the retry asked for the period that failed.
	for _, r := range g.log()[len(stopped):] {
		if r.to.After(resumeTo) && r.from.Before(time.Now().Add(-8*24*time.Hour)) { // not a regular poll (7 padded days)
			t.Errorf("backfill re-read %s..%s after it had read it", r.from.Format(time.DateOnly), r.to.Format(time.DateOnly))
		}
	}
	// Hosts whose latest meeting is weeks old are known.
	f.waitValue("umeeting_active_hosts", "a", func(v float64) bool { return v > 0 }, "active hosts")
}

// TestPollWindowCoversSevenDays: with the default 48h lookback and 48h
// max_meeting_length a poll's request covers seven calendar days (README
// "How far back a poll asks").
func TestPollWindowCoversSevenDays(t *testing.T) {
	f, g, _ := newGatedFixture(t, 10*time.Hour)
	f.apply(gatedConfig(g, "poll_interval: 1h\nlookback: 48h\nbackfill: 48h\n", ", daily_request_budget: 0"))
	f.waitValue("umeeting_up", "a", func(v float64) bool { return v == 1 }, "the first poll")
	reqs := g.log()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	if days := int(reqs[0].to.Sub(reqs[0].from).Hours()/24) + 1; days != 7 || days != config.PaddedDays(96*time.Hour) {
		t.Errorf("the 48h poll asked for %s..%s: %d days, want 7", reqs[0].from.Format(time.DateOnly), reqs[0].to.Format(time.DateOnly), days)
	}
}

// TestPollLogs: the first failure says there are no numbers yet, recovery
// gets a line, and later failures say the last good numbers are served.
func TestPollLogs(t *testing.T) {
	f, g, logs := newGatedFixture(t, 10*time.Hour)
	f.sim.SetFault(simulator.Fault{Kind: simulator.FaultHTTP500})
	f.apply(gatedConfig(g, "poll_interval: 1s\nbackfill: 48h\n", ", daily_request_budget: 0"))
	f.waitValue("umeeting_polls_total", "a", func(float64) bool { return f.failedPolls("a") >= 2 }, "two failed polls")
	f.sim.SetFault(simulator.Fault{Kind: simulator.FaultNone})
	f.waitValue("umeeting_up", "a", func(v float64) bool { return v == 1 }, "recovery")
	f.sim.SetFault(simulator.Fault{Kind: simulator.FaultHTTP500})
	failed := f.failedPolls("a")
	f.waitValue("umeeting_polls_total", "a", func(float64) bool { return f.failedPolls("a") > failed }, "a failure after recovery")
	text := logs.String()
	first := strings.Index(text, `msg="Poll failed; no numbers to serve yet"`)
	recovered := strings.Index(text, `msg="Polls recovered" failed_polls=`)
	later := strings.Index(text, `msg="Poll failed; serving the last good numbers"`)
	if first < 0 || recovered < first || later < recovered {
		t.Errorf("log lines missing or out of order (%d, %d, %d):\n%s", first, recovered, later, text)
	}
}

// TestFirstPollCountsWhatTheAPIServes: on a fresh state the first poll
// reads the backfill for the counters' starting values. An API that
// rejects dates older than 7 days does not fail it: it counts the regular
// window, umeeting_up is 1, umeeting_backfill_up is 0, and the older
// history is read later, with backoff, for hosts only (nothing more is
// counted) once the API allows it.
func TestFirstPollCountsWhatTheAPIServes(t *testing.T) {
	f, g, logs := newGatedFixture(t, 40*24*time.Hour)
	g.reject(time.Now().Add(-7 * 24 * time.Hour))
	f.apply(gatedConfig(g, "poll_interval: 1s\nlookback: 48h\nbackfill: 30d\n", ", daily_request_budget: 0"))
	f.waitValue("umeeting_up", "a", func(v float64) bool { return v == 1 }, "the first poll")
	if v := f.must("umeeting_backfill_up", "a"); v != 0 {
		t.Errorf("umeeting_backfill_up %v after a first poll that could not read the backfill", v)
	}
	// The counters hold the regular window (the first poll's own request
	// reaches back 48h), nothing older.
	now := time.Now()
	inWindow := float64(len(f.sim.Truth(now.Add(-48*time.Hour-time.Minute), now)))
	counted := f.must("umeeting_meetings_total", "a")
	if counted < float64(len(f.sim.Truth(now.Add(-47*time.Hour), now))) || counted > inWindow {
		t.Errorf("first poll counted %v meetings, want those of the last 48h (%v)", counted, inWindow)
	}
	time.Sleep(2500 * time.Millisecond)
	if n := f.failedPolls("a"); n != 0 {
		t.Errorf("%v failed polls while only the older history fails", n)
	}
	if !strings.Contains(logs.String(), "The first poll read history back to here only") {
		t.Errorf("partial first poll not logged:\n%s", logs)
	}
	g.reject(time.Time{})
	f.waitValue("umeeting_backfill_progress_ratio", "a", func(v float64) bool { return v == 1 }, "the older history read")
	if v := f.must("umeeting_backfill_up", "a"); v != 1 {
		t.Errorf("umeeting_backfill_up %v when done", v)
	}
	if v := f.must("umeeting_meetings_total", "a"); v != counted {
		t.Errorf("reading older history for hosts changed the counters: %v, was %v", v, counted)
	}
	// Hosts seen only in the older history are known now.
	oldest := f.sim.Truth(now.Add(-30*24*time.Hour), now.Add(-8*24*time.Hour))
	if len(oldest) == 0 {
		t.Fatal("no older meetings in the simulator")
	}
	if n := f.count("umeeting_host_last_meeting_timestamp_seconds"); n == 0 {
		t.Error("no host series after the older history was read")
	}
}

// TestBackfillLeavesTheRegularPollsTheirBudget: the read of older history
// never takes the requests the regular polls need: with a daily budget of
// 6 (3 kept for the regular polls, whose polls take 2 pages), the older
// history waits after the first poll and sends nothing, even once the API
// would serve it.
func TestBackfillLeavesTheRegularPollsTheirBudget(t *testing.T) {
	f, g, logs := newGatedFixture(t, 40*24*time.Hour)
	g.reject(time.Now().Add(-7 * 24 * time.Hour))
	f.apply(gatedConfig(g, "poll_interval: 1s\nlookback: 48h\nbackfill: 30d\n", ", daily_request_budget: 6"))
	f.waitValue("umeeting_up", "a", func(v float64) bool { return v == 1 }, "the first poll")
	first := len(g.log()) // the regular window, then the refused month
	g.reject(time.Time{})
	f.waitValue("umeeting_api_request_budget_remaining", "a", func(v float64) bool { return v == 0 }, "the regular polls spending the budget")
	time.Sleep(1500 * time.Millisecond)
	old := time.Now().Add(-8 * 24 * time.Hour) // before any regular poll's reach
	for _, r := range g.log()[first:] {
		if r.from.Before(old) {
			t.Errorf("the older history took a request from the regular polls' share: %s..%s",
				r.from.Format(time.DateOnly), r.to.Format(time.DateOnly))
		}
	}
	if !strings.Contains(logs.String(), "Older history waits for request budget") {
		t.Errorf("waiting for budget not logged:\n%s", logs)
	}
	if v := f.must("umeeting_backfill_progress_ratio", "a"); v >= 1 {
		t.Errorf("backfill progress %v", v)
	}
}
