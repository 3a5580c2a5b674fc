package poller

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	dto "github.com/prometheus/client_model/go"

	"github.com/umeeting/umeeting_exporter/collector"
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
	c.inst, f.reg = serve(c.coll)
	c.handler = f.reg.(scraper).h
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
