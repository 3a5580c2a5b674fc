package collector

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

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

// checkServedEqualsFresh compares what the handler serves from c with
// what it serves from a collector built afresh from snaps with the same
// status metrics, in plain text and gzipped OpenMetrics (the exposition
// package tests every combination; OpenMetrics decoding is slow).
func checkServedEqualsFresh(t *testing.T, c *Collector, snaps map[string]*store.Snapshot, opts Options) {
	t.Helper()
	fresh := New()
	c.mu.RLock()
	fresh.directory = c.directory
	for name, a := range c.accounts {
		fresh.get(name).status = a.status
	}
	c.mu.RUnlock()
	for _, name := range slices.Sorted(maps.Keys(snaps)) {
		fresh.SetUsage(name, snaps[name], opts)
	}
	for _, req := range [][2]string{{"", ""}, {"application/openmetrics-text;version=1.0.0", "gzip"}} {
		got, want := decoded(t, handler(c), req[0], req[1]), decoded(t, handler(fresh), req[0], req[1])
		for _, d := range expositiontest.Diff(got, want, nil) {
			t.Errorf("Accept %q, Accept-Encoding %q: %s", req[0], req[1], d)
		}
	}
}

// handler serves /metrics from c as main does: the cache, then c.Status()
// gathered live.
func handler(c *Collector) http.Handler {
	live := prometheus.NewPedanticRegistry()
	live.MustRegister(c.Status())
	return exposition.NewHandler(c.Cache(), live, exposition.HandlerOpts{})
}

// served is what /metrics serves of c, in plain text, by family; a series
// served twice fails the test.
func served(t *testing.T, c *Collector) map[string]*dto.MetricFamily {
	t.Helper()
	mfs := decoded(t, handler(c), "", "")
	for name, mf := range mfs {
		seen := map[string]bool{}
		for _, m := range mf.GetMetric() {
			if k := fmt.Sprint(m.GetLabel()); seen[k] {
				t.Fatalf("%s%s served twice", name, k)
			} else {
				seen[k] = true
			}
		}
	}
	return mfs
}

// compareServed compares the families names served of c with want, in
// the text format.
func compareServed(t *testing.T, c *Collector, want string, names ...string) {
	t.Helper()
	w, err := expositiontest.Decode(string(expfmt.NewFormat(expfmt.TypeTextPlain)), []byte(want))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range expositiontest.Diff(served(t, c), w, func(n string) bool { return !slices.Contains(names, n) }) {
		t.Error(d)
	}
}

// lint lints what /metrics serves of c.
func lint(t *testing.T, c *Collector) {
	t.Helper()
	a, err := expositiontest.Scrape(handler(c), "", "")
	if err != nil || a.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %v %s", a.Code, err, a.Body)
	}
	problems, err := promlint.New(bytes.NewReader(a.Body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
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

// TestServedFollowsPublications follows an account through a poll, polls
// that only move the gauges that depend on time (served live: a day later
// the 1d window and the peaks moved), a counted meeting, other options, a
// second account and the first one's removal (its label sets are gone):
// /metrics always serves what a fresh build from the latest snapshot would.
func TestServedFollowsPublications(t *testing.T) {
	s := testStore(t)
	c := New()
	opts := Options{PerHost: true}
	c.SetStatus("acme", Status{Up: true})
	c.SetUsage("acme", s.Snapshot(t0), opts)
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": s.Snapshot(t0)}, opts)

	gauges := func(now time.Time) {
		active, peakMeetings, peakParticipants := s.Gauges(now)
		c.SetGauges("acme", now, active, peakMeetings, peakParticipants)
	}
	later := t0.Add(25 * time.Hour)
	gauges(later)
	snap := s.Snapshot(later)
	if fmt.Sprint(snap.ActiveHosts) == fmt.Sprint(s.Snapshot(t0).ActiveHosts) {
		t.Fatal("the gauges did not move in a day: the test shows nothing")
	}
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": snap}, opts)

	now := t0.Add(26 * time.Hour)
	addMeeting(s, now, "u9", "cy@x.com")
	snap = s.Snapshot(now)
	c.SetUsage("acme", snap, opts)
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": snap}, opts)

	opts = Options{PerHost: true, MaxHosts: 1}
	c.SetUsage("acme", snap, opts)
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": snap}, opts)

	other := testStore(t)
	c.SetUsage("beta", other.Snapshot(now), opts)
	c.SetStatus("beta", Status{})
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"acme": snap, "beta": other.Snapshot(now)}, opts)
	c.Delete("acme")
	checkServedEqualsFresh(t, c, map[string]*store.Snapshot{"beta": other.Snapshot(now)}, opts)
}

// servedBody is what the handler serves from c's cache (with no live
// families) in a format, decompressed when gzip is asked for.
func servedBody(t *testing.T, c *Collector, accept, enc string) []byte {
	t.Helper()
	a, err := expositiontest.Scrape(exposition.NewHandler(c.Cache(), prometheus.NewRegistry(), exposition.HandlerOpts{}), accept, enc)
	if err != nil || a.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %v %s", a.Code, err, a.Body)
	}
	return a.Body
}

// firstDiff shows where two texts first differ.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-200)
	return fmt.Sprintf("at byte %d:\n got …%s…\nwant …%s…", i, a[from:min(len(a), i+200)], b[from:min(len(b), i+200)])
}
