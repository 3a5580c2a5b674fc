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
		fresh.accounts[name].snap, fresh.accounts[name].opts = snap, opts
	}
	ref := prometheus.NewRegistry()
	ref.MustRegister(fresh)
	h := exposition.NewHandler(c.Cache(), live, exposition.HandlerOpts{})
	refH := promhttp.HandlerFor(ref, promhttp.HandlerOpts{EnableOpenMetrics: true, EnableOpenMetricsTextCreatedSamples: true})
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

// TestOnlyWhatChangedIsRebuilt follows an account through polls that
// count nothing (nothing built, nothing encoded), that only move the
// time-dependent gauges (only they are built), that count a meeting and
// that change the options (everything built); the cache always serves
// what a fresh build would.
func TestOnlyWhatChangedIsRebuilt(t *testing.T) {
	s := testStore(t)
	c := New()
	opts := Options{PerHost: true}
	c.SetStatus("acme", Status{Up: true})
	c.SetUsage("acme", s.Snapshot(t0), opts)
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": s.Snapshot(t0)}, opts)
	full := int64(len(BuildUsage("acme", s.Snapshot(t0), opts)))
	if n := c.usageBuilt.Load(); n != full {
		t.Errorf("first snapshot: %d metrics built, want %d", n, full)
	}

	// Nothing counted, a minute later: nothing built, nothing encoded.
	built, publishes := c.usageBuilt.Load(), c.Cache().Publishes()
	snap := s.Snapshot(t0.Add(time.Minute))
	c.SetUsage("acme", snap, opts)
	if n, p := c.usageBuilt.Load()-built, c.Cache().Publishes()-publishes; n != 0 || p != 0 {
		t.Errorf("an unchanged snapshot built %d metrics and published %d views", n, p)
	}
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": snap}, opts)

	// Nothing counted, a day later: Ann's meeting leaves the 1d window and
	// the peaks fall to 0; only those gauges are built.
	snap = s.Snapshot(t0.Add(25 * time.Hour))
	c.SetUsage("acme", snap, opts)
	gaugeCount := 0
	for _, m := range BuildUsage("acme", snap, opts) {
		if timeDependent[m.Desc()] {
			gaugeCount++
		}
	}
	if n, p := c.usageBuilt.Load()-built, c.Cache().Publishes()-publishes; n != int64(gaugeCount) || p != 1 {
		t.Errorf("moved gauges: %d metrics built, %d views published; want %d and 1", n, p, gaugeCount)
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
