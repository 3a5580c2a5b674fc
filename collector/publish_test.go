package collector

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
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
	checkServedIn(t, c, snaps, opts, [][2]string{{"", ""}, {"application/openmetrics-text;version=1.0.0", "gzip"}})
}

// checkServedIn is checkServedEqualsFresh with the given Accept and
// Accept-Encoding headers.
func checkServedIn(t *testing.T, c *Collector, snaps map[string]*store.Snapshot, opts Options, reqs [][2]string) {
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
	for _, req := range reqs {
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
	gaugeCount := len(buildGauges(nil, "acme", snap))
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

// TestFewMeetingsRebuildTheirBlocks follows an account of 140 hosts (three
// blocks) through polls that count a few meetings: of existing hosts, of
// a renamed host, of a host whose latest meeting only the backfill read,
// of new hosts (held at 0, then shown), of a host with another licence
// type, of a licence type folded into "other", and of enough new hosts to
// overflow a block. After each, only the account-wide
// parts and the touched blocks were built (but for the overflow, which
// builds everything), and the cache serves what a fresh build does: the
// same families as promhttp serves them (in text: decoding OpenMetrics
// takes seconds a poll here), the same bytes as a collector that built
// everything from the same snapshot, in text and OpenMetrics, and its
// gzip answers decompress to exactly its plain ones; promlint finds
// nothing.
func TestFewMeetingsRebuildTheirBlocks(t *testing.T) {
	const hosts = 140
	opts := Options{PerHost: true, HoldFor: time.Minute, MaxUserTypes: 3}
	s, _ := store.Open(t.TempDir(), "acme")
	s.SetPolicy(opts, t0)
	meeting := func(uuid string, host int, name, userType string, now time.Time) umeeting.Meeting {
		return umeeting.Meeting{UUID: uuid, Host: name, Email: fmt.Sprintf("host%03d@x.com", host), UserType: userType,
			Start: now.Add(-time.Hour), End: now.Add(-time.Minute), Participants: 1 + host%7, Features: umeeting.Feature(host % 64)}
	}
	c := New()
	var snap *store.Snapshot
	read := func(w store.Window, ms ...umeeting.Meeting) {
		b := s.NewBatch(w)
		for i := range ms {
			b.Meeting(&ms[i])
		}
		b.CommitPage()
		s.Apply(b)
		snap = s.Snapshot(w.Now)
		c.SetUsage("acme", snap, opts)
	}
	poll := func(now time.Time, ms ...umeeting.Meeting) { read(s.Window(now, 48*time.Hour, 30*24*time.Hour), ms...) }
	// check compares what is served with fresh builds; maxBuilt bounds
	// the metrics the last poll built, full says it built everything.
	check := func(what string, built int64, maxBuilt int, full bool) {
		t.Helper()
		all := len(BuildUsage("acme", snap, opts))
		if full && built != int64(all) || !full && (built == 0 || built > int64(maxBuilt)) {
			t.Errorf("%s: %d metrics built of %d (want %s %d)", what, built, all, map[bool]string{true: "all", false: "at most"}[full], maxBuilt)
		}
		checkServedIn(t, c, map[string]*store.Snapshot{"acme": snap}, opts, [][2]string{{"", ""}})
		fresh := New()
		fresh.SetUsage("acme", snap, opts)
		for _, accept := range []string{"", "application/openmetrics-text;version=1.0.0"} {
			got := servedBody(t, c, accept, "")
			if want := servedBody(t, fresh, accept, ""); !bytes.Equal(got, want) {
				t.Errorf("%s, Accept %q: served %d bytes, a fresh build %d bytes:\n%s", what, accept, len(got), len(want), firstDiff(got, want))
			}
			if z := servedBody(t, c, accept, "gzip"); !bytes.Equal(z, got) {
				t.Errorf("%s, Accept %q: the gzip answer decompresses to %d bytes, not the %d of the plain one", what, accept, len(z), len(got))
			}
		}
	}
	// A block's hosts' series and gauges, with room for a few more series
	// and the account-wide parts.
	perBlock := blockHosts*(4+len(umeeting.AllFeatures)+2) + 100
	built := func(f func()) int64 {
		before := c.usageBuilt.Load()
		f()
		return c.usageBuilt.Load() - before
	}

	var ms []umeeting.Meeting
	for h := range hosts {
		ms = append(ms, meeting(fmt.Sprint("base", h), h, fmt.Sprint("Host ", h), []string{"Corp", "Pro"}[h%2], t0))
	}
	n := built(func() { poll(t0, ms...) })
	check("the baseline", n, 0, true)
	if c.accounts["acme"].layout.blocks() != 3 {
		t.Fatalf("%d blocks for %d hosts, want 3", c.accounts["acme"].layout.blocks(), hosts)
	}

	now := t0.Add(time.Minute)
	n = built(func() {
		poll(now, meeting("a", 1, "Host 1", "Pro", now), meeting("b", 100, "Host 100", "Corp", now), meeting("c", 101, "Host 101", "Pro", now))
	})
	check("meetings of three hosts in two blocks", n, 2*perBlock, false)

	now = now.Add(time.Minute)
	n = built(func() { poll(now, meeting("d", 139, "Renamed", "Pro", now)) })
	check("a renamed host", n, perBlock, false)

	now = now.Add(time.Minute)
	n = built(func() {
		read(s.Window(now, 48*time.Hour, 30*24*time.Hour).HostsOnly(), meeting("backfilled", 42, "Host 42 again", "Pro", now))
	})
	check("a host's latest meeting read by the backfill, no series changed", n, perBlock, false)

	now = now.Add(time.Minute)
	n = built(func() {
		poll(now, umeeting.Meeting{UUID: "e", Host: "New", Email: "host100a@x.com", UserType: "Corp", Start: now.Add(-time.Hour), End: now.Add(-time.Minute), Participants: 2},
			umeeting.Meeting{UUID: "f", Host: "First", Email: "a@x.com", UserType: "Pro", Start: now.Add(-time.Hour), End: now.Add(-time.Minute), Participants: 2})
	})
	check("two new hosts, held at 0", n, 2*perBlock, false)

	now = now.Add(time.Minute)
	n = built(func() { poll(now) })
	check("their first meetings shown", n, 2*perBlock, false)

	now = now.Add(time.Minute)
	n = built(func() { poll(now, meeting("g", 7, "Host 7", "Edu", now)) })
	check("a host with another licence type", n, perBlock, false)

	now = now.Add(time.Minute)
	n = built(func() { poll(now, meeting("h", 8, "Host 8", "Basic", now)) })
	check("a licence type folded into other", n, perBlock, false)
	// What `promtool check metrics` checks, once (before the
	// overflow doubles the series): its duplicate check
	// compares every pair of series.
	problems, err := promlint.New(bytes.NewReader(servedBody(t, c, "", ""))).Lint()
	if err != nil {
		t.Error(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	now = now.Add(time.Minute)
	ms = nil
	for i := range 2 * blockHosts {
		ms = append(ms, umeeting.Meeting{UUID: fmt.Sprint("many", i), Host: "Many", Email: fmt.Sprintf("host200-%03d@x.com", i),
			UserType: "Corp", Start: now.Add(-time.Hour), End: now.Add(-time.Minute), Participants: 1})
	}
	n = built(func() { poll(now, ms...) })
	check("a block overflowing", n, 0, true)
	if b := c.accounts["acme"].layout.blocks(); b != (hosts+2+2*blockHosts+blockHosts-1)/blockHosts {
		t.Errorf("%d blocks after the overflow", b)
	}

	now = now.Add(time.Minute)
	n = built(func() { poll(now) })
	check("the new hosts shown", n, 3*perBlock, false)

	n = built(func() { poll(now) })
	if n != 0 {
		t.Errorf("a poll that counted nothing built %d metrics", n)
	}
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
