package history

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/umeeting/umeeting_exporter/budget"
	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/internal/account"
	"github.com/umeeting/umeeting_exporter/internal/timex"
	"github.com/umeeting/umeeting_exporter/poller"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/store"
)

// TestEmptyMonthAskedAgain: one transient {"status":200,"data":null} for a
// month was saved as an empty month for good, so every later run showed
// that month's meetings as one jump before the seam. The month is asked
// again by the next run, whose days all equal the truth.
func TestEmptyMonthAskedAgain(t *testing.T) {
	const backfill = 40 * 24 * time.Hour
	f := newFixture(t, 10, backfill)
	f.sim.SetFault(simulator.Fault{Kind: simulator.FaultNoData, Count: 1}) // the first month's first page
	_, progress := f.export(t, Options{PerHost: true})
	if !strings.Contains(progress, "month 1/2 ") || !strings.Contains(progress, ": 0 meetings, 0 invalid records") {
		t.Fatalf("the faulted month did not come back empty:\n%s", progress)
	}
	before := f.sim.Requests()
	out, progress := f.export(t, Options{PerHost: true})
	if f.sim.Requests() == before || strings.Count(progress, "already fetched") != 1 {
		t.Errorf("the second run did not ask for the empty month again (and only for it):\n%s", progress)
	}
	if days := f.checkDays(t, readSamples(t, out), seamAt.Add(-backfill), true); days < 38 {
		t.Errorf("only %d whole days checked", days)
	}
}

// TestOneRequestAMonth: the client reaches back max_meeting_length before
// a period, so periods cut without that reach took two requests each; a
// month now takes one (the API answers in one page here).
func TestOneRequestAMonth(t *testing.T) {
	f := newFixtureWith(t, 10, 60*24*time.Hour, simulator.Options{DisablePaging: true})
	before := f.sim.Requests()
	_, progress := f.export(t, Options{PerHost: true})
	n, fetched := f.sim.Requests()-before, strings.Count(progress, " meetings, ")
	if n != fetched || fetched < 3 {
		t.Errorf("%d requests for %d months:\n%s", n, fetched, progress)
	}
}

// requestTimes serves h, noting when each request arrives.
type requestTimes struct {
	h     http.Handler
	mu    sync.Mutex
	times []time.Time
}

func (r *requestTimes) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
	r.h.ServeHTTP(w, req)
}

func (r *requestTimes) list() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.times)
}

// closest is the shortest time between two of times, in time order.
func closest(times []time.Time) time.Duration {
	d := time.Duration(math.MaxInt64)
	for i := 1; i < len(times); i++ {
		d = min(d, times[i].Sub(times[i-1]))
	}
	return d
}

// TestBudgetSharedWithExporter: history's requests were not recorded in the
// account's request log, so with daily_request_budget: 12 the exporter and
// three history runs sent 36 requests, and min_request_interval held only
// within each. The history now spends the exporter's budget through that
// log: a run before the exporter starts, and one beside it, together with
// the exporter send at most the budget, never closer than the interval.
func TestBudgetSharedWithExporter(t *testing.T) {
	const perDay, interval = 8, 300 * time.Millisecond
	f := newFixture(t, 10, 60*24*time.Hour) // 3 months: 3 requests or more
	seen := &requestTimes{h: f.sim}
	srv := httptest.NewServer(seen)
	t.Cleanup(srv.Close)
	a := &f.cfg.Accounts[0]
	a.APIURL, a.DailyRequestBudget, a.MinRequestInterval = srv.URL+simulator.APIPath, perDay, config.NewDuration(interval)
	before := f.sim.Requests()
	opts := Options{StorageDir: f.dir, Output: filepath.Join(t.TempDir(), "blocks"),
		Labels: map[string]string{"job": "j", "instance": "i"}, MaxRequests: 3}
	err := Run(context.Background(), f.cfg, opts)
	if n := f.sim.Requests() - before; n == 0 || (err != nil && !errors.Is(err, budget.ErrExhausted)) {
		t.Fatalf("the first run made %d requests: %v", n, err)
	}

	// The exporter starts, and a second history run goes beside it.
	coll := collector.New()
	m := poller.NewManager(f.dir, coll, collector.NewInstruments(prometheus.NewRegistry()), log.NewNopLogger())
	defer m.Stop()
	if err := m.Apply(f.cfg); err != nil {
		t.Fatal(err)
	}
	opts.MaxRequests = 0
	opts.Output = filepath.Join(t.TempDir(), "blocks")
	if err := Run(context.Background(), f.cfg, opts); err != nil && !errors.Is(err, budget.ErrExhausted) {
		t.Fatal(err)
	}
	// The exporter's polls and retries run until the budget is spent.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && f.sim.Requests()-before < perDay; {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * interval) // a request beyond the budget would arrive by now
	if n := f.sim.Requests() - before; n > perDay {
		t.Errorf("the exporter and two history runs sent %d requests with daily_request_budget: %d", n, perDay)
	}
	// Each request is spaced when it is recorded, before it is sent: at
	// the API, the network's jitter may bring two a little closer.
	var logged []time.Time
	// Read as the history export reads it beside a running exporter.
	err = store.ShareRequestLog(f.dir, f.account).Spend(func(recorded []time.Time) ([]time.Time, bool) {
		logged = recorded
		return nil, false
	})
	if err != nil || len(logged) != f.sim.Requests()-before {
		t.Errorf("the request log holds %d requests (%v), the API saw %d", len(logged), err, f.sim.Requests()-before)
	}
	if d := closest(logged); d < interval {
		t.Errorf("two requests recorded %s apart, min_request_interval is %s", d, interval)
	}
	if d := closest(seen.list()); d < interval*3/4 {
		t.Errorf("two requests arrived %s apart, min_request_interval is %s", d, interval)
	}
}

// TestSinceHistograms: with --since, every histogram's first point had a
// negative _sum (lowered by what the months before backfill count, which
// histograms do not hold), so strict parsers refused the file and a day's
// meeting seconds rose from it 5.6 times too high. Histograms begin at 0 at
// backfill's start and never go below it; over every day since, their
// increase is the truth.
func TestSinceHistograms(t *testing.T) {
	const backfill = 10 * 24 * time.Hour
	f := newFixture(t, 12, backfill)
	out, _ := f.export(t, Options{PerHost: true, Since: Since{Before: 30 * 24 * time.Hour}})
	samples := readSamples(t, out)
	const hist = "umeeting_meeting_duration_seconds"
	for _, s := range samples {
		if strings.HasPrefix(s.name, "umeeting_meeting_") && (strings.HasSuffix(s.name, "_sum") || strings.HasSuffix(s.name, "_count") || strings.HasSuffix(s.name, "_bucket")) && s.v < 0 {
			t.Fatalf("a histogram sample below zero: %+v", s)
		}
	}
	base := seamAt.Add(-backfill)
	days := 0
	for day := base.Truncate(24 * time.Hour); day.Before(seamAt.Truncate(24 * time.Hour)); day = day.Add(24 * time.Hour) {
		from := timex.Later(day, base)
		truth := simulator.Summarize(f.sim.Truth(from.Add(time.Second), day.Add(24*time.Hour)))
		for _, c := range []struct {
			name string
			want int64
		}{{hist + "_count", truth.Meetings}, {hist + "_sum", truth.MeetingSeconds}} {
			got := valueAt(samples, c.name, day.Add(24*time.Hour).UnixMilli()) - valueAt(samples, c.name, day.UnixMilli())
			if got != float64(c.want) {
				t.Errorf("%s over %s: %v, truth %d", c.name, day.Format(time.DateOnly), got, c.want)
			}
		}
		days++
	}
	if days < 10 {
		t.Errorf("only %d days checked", days)
	}
}

// TestMaxHostsAdmissionOrder: with max_hosts reached, the replay admitted
// hosts in the order it met them, oldest meetings first, while the first
// start admitted them in the API's order, newest first: the admitted hosts'
// days were low and their series jumped before the seam. The replay keeps
// the first start's order: every day of every admitted host is its truth,
// the account's days too, and the last step holds only its own meetings.
func TestMaxHostsAdmissionOrder(t *testing.T) {
	const backfill = 20 * 24 * time.Hour
	f := newFixture(t, 30, backfill)
	f.cfg.Metrics.MaxHosts = 8
	f.dir = t.TempDir()
	f.firstStartNewestFirst(t)
	seam, err := store.ReadSeam(f.dir, f.account)
	if err != nil {
		t.Fatal(err)
	}
	var admitted []string
	for _, h := range seam.Snapshot(seamAt).Hosts {
		if h.Admitted {
			admitted = append(admitted, h.Email)
		}
	}
	if len(admitted) != 8 {
		t.Fatalf("%d hosts admitted at the first start, want max_hosts 8", len(admitted))
	}
	out, _ := f.export(t, Options{PerHost: true})
	samples := readSamples(t, out)
	const name = "umeeting_meetings_total"
	byHost := map[string][]sample{}
	for _, s := range samples {
		for _, email := range admitted {
			if s.name == name && strings.Contains(s.labels, `email="`+email+`"`) {
				byHost[email] = append(byHost[email], s)
			}
		}
	}
	last := seamAt.Add(-time.Nanosecond).Truncate(Step)
	for _, email := range admitted {
		got := func(from, to time.Time) float64 {
			return valueAt(byHost[email], name, to.UnixMilli()) - valueAt(byHost[email], name, from.UnixMilli())
		}
		truth := func(from, to time.Time) float64 {
			n := 0
			for _, m := range f.sim.Truth(from.Add(time.Second), to) {
				if m.Email == email {
					n++
				}
			}
			return float64(n)
		}
		for day := seamAt.Add(-backfill).Truncate(24 * time.Hour).Add(24 * time.Hour); !day.Add(24 * time.Hour).After(seamAt); day = day.Add(24 * time.Hour) {
			if g, w := got(day, day.Add(24*time.Hour)), truth(day, day.Add(24*time.Hour)); g != w {
				t.Errorf("%s on %s: %v meetings, truth %v", email, day.Format(time.DateOnly), g, w)
			}
		}
		if g, w := got(last, seamAt), truth(last, seamAt); g != w {
			t.Errorf("%s: the last step before the seam shows %v meetings, truth %v", email, g, w)
		}
	}
	if days := f.checkDays(t, samples, seamAt.Add(-backfill), true); days < 18 {
		t.Errorf("only %d whole days checked", days)
	}
}

// firstStartNewestFirst is the first start as the poller's baseline makes
// it (poller.fetchBaseline): the recent day first, then the older history a
// month at a time, newest first, all in one batch; hosts are met, and
// admitted under max_hosts, in that order.
func (f *fixture) firstStartNewestFirst(t *testing.T) {
	t.Helper()
	a := f.cfg.Accounts[0]
	st, _ := store.Open(f.dir, a.Name)
	st.SetPolicy(account.MetricsOptions(f.cfg.Metrics), seamAt)
	win := st.Window(seamAt, f.cfg.Lookback.D(), f.cfg.Backfill.D())
	b := st.NewBatch(win)
	client, err := account.NewClient(a, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	to := seamAt
	for from := seamAt.Add(-24 * time.Hour); to.After(win.From); from = timex.Later(win.From, to.Add(-30*24*time.Hour)) {
		if err := client.Fetch(context.Background(), from, to, b); err != nil {
			t.Fatal(err)
		}
		to = from
	}
	if _, err := st.Commit(b); err != nil {
		t.Fatal(err)
	}
}
