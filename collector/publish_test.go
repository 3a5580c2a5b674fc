package collector

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/umeeting/umeeting_exporter/exposition"
	"github.com/umeeting/umeeting_exporter/exposition/expositiontest"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// testStore is the store behind testSnapshot.
func testStore(t *testing.T) *store.Store {
	s, _ := store.Open(t.TempDir(), "acme")
	b := s.NewBatch(s.Window(t0, 48*time.Hour, 30*24*time.Hour))
	for _, m := range []umeeting.Meeting{
		{UUID: "u1", Host: "Ann", Email: "ann@x.com", UserType: "Corp", Start: t0.Add(-2 * time.Hour), End: t0.Add(-time.Hour), Participants: 3, Features: umeeting.FeatureVideo},
		{UUID: "u3", Host: "Bob", Email: "bob@x.com", UserType: "Pro", Start: t0.Add(-50 * time.Hour), End: t0.Add(-49 * time.Hour), Participants: 5},
	} {
		b.Meeting(&m)
	}
	b.CommitPage()
	s.Apply(b)
	return s
}

// addMeeting counts one more meeting of host at now.
func addMeeting(s *store.Store, now time.Time, uuid, email string) {
	b := s.NewBatch(s.Window(now, 48*time.Hour, 30*24*time.Hour))
	b.Meeting(&umeeting.Meeting{UUID: uuid, Host: email, Email: email, UserType: "Corp", Start: now.Add(-time.Hour), End: now.Add(-time.Minute), Participants: 2})
	b.CommitPage()
	s.Apply(b)
}

// usageOf returns the usage metric objects of an account.
func usageOf(c *Collector, name string) []prometheus.Metric {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.accounts[name].usage
}

// checkServedEqualsFresh compares what the handler serves from the cache
// with what promhttp serves from a collector built afresh from snaps with
// the same status metrics, in plain text and gzipped OpenMetrics (the
// exposition package tests every combination; OpenMetrics decoding is slow).
func checkServedEqualsFresh(t *testing.T, c *Collector, snaps map[string]*store.Snapshot, opts Options) {
	t.Helper()
	live := prometheus.NewRegistry()
	live.MustRegister(c.Status())
	fresh := New()
	c.mu.RLock()
	for name, a := range c.accounts {
		fresh.get(name).status = a.status
	}
	c.mu.RUnlock()
	for name, snap := range snaps {
		fresh.accounts[name].usage = BuildUsage(name, snap, opts)
	}
	ref := prometheus.NewRegistry()
	ref.MustRegister(fresh)
	h := exposition.NewHandler(c.Cache(), live, exposition.HandlerOpts{})
	refH := promhttp.HandlerFor(ref, promhttp.HandlerOpts{EnableOpenMetrics: true})
	for _, req := range [][2]string{{"", ""}, {"application/openmetrics-text;version=1.0.0", "gzip"}} {
		got, want := decoded(t, h, req[0], req[1]), decoded(t, refH, req[0], req[1])
		for _, d := range expositiontest.Diff(got, want, nil) {
			t.Errorf("Accept %q, Accept-Encoding %q: %s", req[0], req[1], d)
		}
	}
}

func decoded(t *testing.T, h http.Handler, accept, enc string) map[string]*dto.MetricFamily {
	t.Helper()
	a, err := expositiontest.Scrape(h, accept, enc)
	if err != nil || a.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %v %s", a.Code, err, a.Body)
	}
	mfs, err := a.Families()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// sameObjects says whether two lists hold the same metric objects.
func sameObjects(a, b []prometheus.Metric) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// TestOnlyWhatChangedIsRebuilt follows an account through polls that
// count nothing (nothing rebuilt, nothing encoded), that only move the
// time-dependent gauges (only they are rebuilt), that count a meeting and
// that change the options (everything rebuilt); the cache always serves
// what a fresh build would.
func TestOnlyWhatChangedIsRebuilt(t *testing.T) {
	s := testStore(t)
	c := New()
	opts := Options{PerHost: true}
	c.SetStatus("acme", Status{Up: true})
	c.SetUsage("acme", s.Snapshot(t0), opts)
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": s.Snapshot(t0)}, opts)

	// Nothing counted, a minute later: no metric object, no encoding.
	usage, publishes := usageOf(c, "acme"), c.Cache().Publishes()
	snap := s.Snapshot(t0.Add(time.Minute))
	c.SetUsage("acme", snap, opts)
	if !sameObjects(usageOf(c, "acme"), usage) || c.Cache().Publishes() != publishes {
		t.Error("an unchanged snapshot rebuilt or re-encoded metrics")
	}
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": snap}, opts)

	// Nothing counted, a day later: Ann's meeting leaves the 1d window and
	// the peaks fall to 0; every other metric object is kept.
	snap = s.Snapshot(t0.Add(25 * time.Hour))
	c.SetUsage("acme", snap, opts)
	kept := map[prometheus.Metric]bool{}
	for _, m := range usage {
		kept[m] = true
	}
	rebuilt := 0
	for _, m := range usageOf(c, "acme") {
		if !kept[m] {
			rebuilt++
			if !timeDependent[m.Desc()] {
				t.Errorf("rebuilt %s", m.Desc())
			}
		}
	}
	if rebuilt == 0 || c.Cache().Publishes() != publishes+1 {
		t.Errorf("moved gauges: %d metrics rebuilt, %d publishes", rebuilt, c.Cache().Publishes()-publishes)
	}
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": snap}, opts)

	// A meeting counted: rebuilt and served.
	now := t0.Add(26 * time.Hour)
	addMeeting(s, now, "u9", "cy@x.com")
	snap = s.Snapshot(now)
	c.SetUsage("acme", snap, opts)
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": snap}, opts)

	// Other options, same numbers: rebuilt.
	opts = Options{PerHost: true, MaxHosts: 1}
	c.SetUsage("acme", snap, opts)
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": snap}, opts)

	// A second account, then the first removed.
	other := testStore(t)
	c.SetUsage("beta", other.Snapshot(now), opts)
	c.SetStatus("beta", Status{})
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": snap, "beta": other.Snapshot(now)}, opts)
	c.Delete("acme")
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"beta": other.Snapshot(now)}, opts)
}
