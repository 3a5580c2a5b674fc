package poller

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/exposition"
	"github.com/umeeting/umeeting_exporter/exposition/expositiontest"
	"github.com/umeeting/umeeting_exporter/internal/fakeclock"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// cached is a manager whose clock stands still until moved, serving
// /metrics from the collector's cache as main does.
type cached struct {
	*fixture
	coll    *collector.Collector
	inst    *collector.Instruments
	handler http.Handler
	clock   *fakeclock.Clock
}

func newCached(t *testing.T) *cached {
	f := newFixture(t) // its simulator; its manager stays unused
	c := &cached{fixture: f, coll: collector.New(), clock: fakeclock.New(time.Now())}
	live := prometheus.NewRegistry()
	c.inst = collector.NewInstruments(live)
	live.MustRegister(c.coll.Status())
	c.handler = exposition.NewHandler(c.coll.Cache(), live, exposition.HandlerOpts{})
	c.m = NewManager(t.TempDir(), c.coll, c.inst, log.NewNopLogger())
	c.m.now = c.now
	t.Cleanup(c.m.Stop)
	return c
}

func (c *cached) now() time.Time { return c.clock.Now() }

func (c *cached) advance(d time.Duration) { c.clock.Advance(d) }

// polls is how many polls of an account ended with result.
func (c *cached) polls(account, result string) float64 {
	m := &dto.Metric{}
	c.inst.Polls.WithLabelValues(account, result).Write(m)
	return m.GetCounter().GetValue()
}

// settle waits until every account finished two more successful polls
// (or, with failing, two failed ones): the last began after the change
// the test just made. With the clock standing still, later polls change
// nothing more.
func (c *cached) settle(failing bool, accounts ...string) {
	c.t.Helper()
	result := collector.PollSuccess
	if failing {
		result = collector.PollFailure
	}
	for _, a := range accounts {
		want := c.polls(a, result) + 2
		deadline := time.Now().Add(30 * time.Second)
		for c.polls(a, result) < want {
			if time.Now().After(deadline) {
				c.t.Fatalf("account %s: no two more polls with result %s in 30s", a, result)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// checkFresh compares the usage families served from the cache with those
// built afresh from each store at the clock's time, as the previous design
// built them for every scrape, in text and, with openMetrics, in gzipped
// OpenMetrics too (whose decoder takes seconds).
func (c *cached) checkFresh(what string, openMetrics bool) {
	c.t.Helper()

	fresh := prometheus.NewRegistry()
	c.m.mu.Lock()
	var ms metricList
	for name, r := range c.m.runners {
		ms = append(ms, collector.BuildUsage(name, c.m.stores[name].Snapshot(c.now()), r.set.metrics)...)
	}
	c.m.mu.Unlock()
	fresh.MustRegister(ms)
	freshHandler := promhttp.HandlerFor(fresh, promhttp.HandlerOpts{EnableOpenMetrics: true, EnableOpenMetricsTextCreatedSamples: true})
	reqs := [][2]string{{"", ""}}
	if openMetrics {
		reqs = append(reqs, [2]string{"application/openmetrics-text;version=1.0.0", "gzip"})
	}
	for _, req := range reqs {
		got, want := c.scrape(c.handler, req[0], req[1]), c.scrape(freshHandler, req[0], req[1])
		for _, d := range expositiontest.Diff(got, want, func(n string) bool { return want[n] == nil }) {
			c.t.Errorf("%s, Accept %q: %s", what, req[0], d)
		}
		if got["umeeting_up"] == nil {
			c.t.Errorf("%s: live families missing", what)
		}
	}
}

func (c *cached) scrape(h http.Handler, accept, enc string) map[string]*dto.MetricFamily {
	c.t.Helper()
	a, err := expositiontest.Scrape(h, accept, enc)
	if err != nil || a.Code != http.StatusOK {
		c.t.Fatalf("HTTP %d %v %s", a.Code, err, a.Body)
	}
	mfs, err := a.Families()
	if err != nil {
		c.t.Fatal(err)
	}
	return mfs
}

// existingHosts returns a meeting of each of n hosts of the simulator
// with an e-mail, counted by now.
func (c *cached) existingHosts(n int) []umeeting.Meeting {
	c.t.Helper()
	seen := map[string]bool{}
	var ms []umeeting.Meeting
	for _, m := range c.sim.Truth(time.Time{}, c.now()) {
		if m.Email != "" && !seen[m.Email] && len(ms) < n {
			seen[m.Email] = true
			ms = append(ms, m)
		}
	}
	if len(ms) < n {
		c.t.Fatalf("%d hosts with meetings in the simulator, want %d", len(ms), n)
	}
	return ms
}

// metricList is a collector of prebuilt metrics.
type metricList []prometheus.Metric

func (l metricList) Describe(chan<- *prometheus.Desc) {}
func (l metricList) Collect(ch chan<- prometheus.Metric) {
	for _, m := range l {
		ch <- m
	}
}

// TestCacheEqualsFreshAfterEveryPoll follows two accounts through every
// kind of poll and checks after each that /metrics serves what a fresh
// build from the stores would, and that polls counting nothing encode
// nothing.
func TestCacheEqualsFreshAfterEveryPoll(t *testing.T) {
	c := newCached(t)
	cfg := func(extra string) string { return c.account("a", "") + c.account("b", "") + extra }
	if err := c.m.Apply(c.config(cfg(""))); err != nil {
		t.Fatal(err)
	}
	c.settle(false, "a", "b")
	c.checkFresh("first polls and backfill", true)

	publishes := c.coll.Cache().Publishes()
	c.settle(false, "a", "b")
	c.checkFresh("overlapping polls", false)
	if n := c.coll.Cache().Publishes() - publishes; n != 0 {
		t.Errorf("polls that counted nothing published %d new views", n)
	}

	end := c.now().Add(-time.Minute)
	c.sim.Add(umeeting.Meeting{UUID: "new-1", Host: "New Host", Email: "new@example.com", UserType: "Pro",
		Start: end.Add(-time.Hour), End: end, Participants: 4, Features: umeeting.FeatureVideo})
	c.settle(false, "a", "b")
	c.checkFresh("polls that counted a meeting of a new host", false)

	// A few meetings of hosts with series: one as before, one under a new
	// display name, one with a new licence type (a new series and
	// histograms, held), and one more new host.
	few := c.existingHosts(3)
	end = c.now().Add(-2 * time.Minute)
	for i := range few {
		few[i].UUID = fmt.Sprint("few-", i)
		few[i].Start, few[i].End = end.Add(-30*time.Minute), end
	}
	few[1].Host = "Renamed Host"
	few[2].UserType = "Edu"
	few = append(few, umeeting.Meeting{UUID: "new-2", Host: "Another", Email: "another@example.com", UserType: "Pro",
		Start: end.Add(-time.Hour), End: end, Participants: 2})
	c.sim.Add(few...)
	c.settle(false, "a", "b")
	c.checkFresh("polls that counted a few meetings of existing hosts, a rename, a licence change, a new host", false)
	c.advance(2 * time.Second) // the poll interval: held series show
	c.settle(false, "a", "b")
	c.checkFresh("polls after the hold", false)

	c.advance(25 * time.Hour) // the 1d window and the peaks move
	c.settle(false, "a", "b")
	c.checkFresh("polls a day later", true)

	c.sim.SetFault(simulator.Fault{Kind: simulator.FaultHTTP500})
	c.settle(true, "a")
	c.checkFresh("failed polls", false)
	c.sim.SetFault(simulator.Fault{Kind: simulator.FaultNone})

	if err := c.m.Apply(c.config(cfg("metrics:\n  max_hosts: 5\n"))); err != nil {
		t.Fatal(err)
	}
	c.settle(false, "a", "b")
	c.checkFresh("reload with a cap on hosts", true)

	if err := c.m.Apply(c.config(c.account("b", "") + "metrics:\n  max_hosts: 5\n")); err != nil {
		t.Fatal(err)
	}
	c.checkFresh("account a removed", false)
	c.settle(false, "b")
	c.checkFresh("account a removed, b polled", false)
}

// TestScrapesNeverSeeHalfAPoll scrapes continuously while polls count
// batches of meetings: every scrape sees whole batches, with counters and
// histograms from the same poll, never going back. The first batch, after
// the baseline, is of new hosts of a new user_type: their counters and
// histograms are held together through polls before the hold ends (the
// clock stands still), and released together once the clock moved.
func TestScrapesNeverSeeHalfAPoll(t *testing.T) {
	const batch, batches = 7, 5
	sim := simulator.New(simulator.Options{APIKey: "k", APISecret: "s", NoGenerated: true, DisablePaging: true})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	c := newCached(t)
	c.url = url
	if err := c.m.Apply(c.config(c.account("a", ""))); err != nil {
		t.Fatal(err)
	}
	c.settle(false, "a") // the baseline, empty

	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0.0
			for {
				select {
				case <-done:
					return
				default:
				}
				enc := ""
				if i%2 == 1 {
					enc = "gzip"
				}
				a, err := expositiontest.Scrape(c.handler, "", enc)
				if err != nil || a.Code != http.StatusOK {
					t.Errorf("HTTP %d %v", a.Code, err)
					return
				}
				mfs, err := a.Families()
				if err != nil {
					t.Error(err)
					return
				}
				meetings, count := 0.0, 0.0
				for _, m := range mfs["umeeting_meetings_total"].GetMetric() {
					meetings += m.GetCounter().GetValue()
				}
				for _, m := range mfs["umeeting_meeting_duration_seconds"].GetMetric() {
					count += float64(m.GetHistogram().GetSampleCount())
				}
				if meetings != count || int(meetings)%batch != 0 || meetings < last {
					t.Errorf("scrape saw %v meetings and %v in the histograms after %v: half a poll", meetings, count, last)
					return
				}
				last = meetings
			}
		}()
	}
	for n := range batches {
		ms := make([]umeeting.Meeting, batch)
		end := c.now().Add(-time.Minute)
		for i := range ms {
			ms[i] = umeeting.Meeting{UUID: fmt.Sprintf("b%d-%d", n, i), Host: "H", Email: fmt.Sprintf("h%d@example.com", i),
				UserType: "Pro", Start: end.Add(-time.Hour), End: end, Participants: 2}
		}
		sim.Add(ms...)
		c.settle(false, "a")
		c.advance(time.Second) // the poll interval: held series and histograms show
		c.settle(false, "a")
	}
	close(done)
	wg.Wait()
	a, _ := expositiontest.Scrape(c.handler, "", "")
	mfs, _ := a.Families()
	total := 0.0
	for _, m := range mfs["umeeting_meetings_total"].GetMetric() {
		total += m.GetCounter().GetValue()
	}
	if total != batch*batches {
		t.Errorf("%v meetings counted, want %d", total, batch*batches)
	}
}
