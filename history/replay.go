package history

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/internal/timex"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// skipFamilies are families of the collector's usage output that are not
// history: they describe the exporter, not the meetings.
var skipFamilies = map[string]bool{
	"umeeting_remembered_meetings":             true,
	"umeeting_records_invalid_total":           true,
	"umeeting_meetings_user_type_folded_total": true,
}

// replayInput is one account to replay.
type replayInput struct {
	name     string
	live     collector.Options // the live exporter's label options
	hist     collector.Options // the options of the history's series
	start    time.Time         // first end time replayed
	base     time.Time         // backfill's start: the live starting values count from here
	seam     time.Time         // the live series begin here
	baseline *store.Snapshot   // the live counters' starting values at the seam
	months   []month
	cache    cache
}

// admitted are the hosts the first start admitted (see
// store.KeepAdmission).
func (in replayInput) admitted() map[string]bool {
	adm := make(map[string]bool, len(in.baseline.Hosts))
	for _, h := range in.baseline.Hosts {
		if h.Admitted {
			adm[h.Email] = true
		}
	}
	return adm
}

// replayStats says what a replay wrote and how it compared with the live
// starting values.
type replayStats struct {
	Meetings int // meetings replayed
	Steps    int
	// Late is how many replayed meetings the live starting values do not
	// hold (listed after the first start, so counted live), Missing how
	// many they hold that the API no longer serves.
	Late, Missing float64
}

// replay counts the account's history through a store and the collector,
// as the live exporter would have at each step, and writes every step's
// usage families with its timestamp (see replayer).
func replay(w *seriesWriter, in replayInput, step time.Duration) (replayStats, error) {
	r, err := newReplayer(w, in, step)
	if err != nil {
		return replayStats{}, err
	}
	stats := replayStats{}
	stats.Meetings, stats.Steps, err = in.walk(step, in.seam, false, r.step)
	stats.Late, stats.Missing = r.late, r.missing
	return stats, err
}

// walk counts the account's meetings through a fresh store step by step,
// as the live exporter would have, from the first step after in.start up to
// end (the last step, at end itself, counts the meetings that ended before
// end when exclusive, up to end otherwise), and calls f after each step
// with the store, the step's time, the one before, and whether the step
// gave the store a meeting: without one, only the gauges that move with
// time alone change in its Snapshot (every window is a baseline, and there
// are no invalid records and no directory). It returns how many meetings it
// counted and steps it made.
func (in replayInput) walk(step time.Duration, end time.Time, exclusive bool, f func(st *store.Store, t, prev time.Time, final, changed bool) error) (meetings, steps int, err error) {
	dir, err := os.MkdirTemp("", "umeeting-history-")
	if err != nil {
		return 0, 0, fmt.Errorf("account %s: %w", in.name, err)
	}
	defer os.RemoveAll(dir)
	st, _ := store.Open(dir, in.name) // an empty folder: a fresh, in-memory state
	st.SetPolicy(in.hist, in.start)
	st.KeepAdmission(in.admitted())

	first := in.start.Truncate(step).Add(step)
	var pending []umeeting.Meeting
	next := 0 // index into pending
	mi := 0   // next month
	prev := first.Add(-step)
	for t := first; ; t = t.Add(step) {
		final := !t.Before(end)
		if final {
			t = end
		}
		// Every step counts its meetings at once, as the baseline poll
		// does: the writer shows a new series at zero one step before
		// (see writeStep), so no increment needs holding back.
		win := store.Window{Now: t, From: in.start, CountFrom: in.start, KeepFrom: t.Add(-store.PeakWindow), Baseline: true}
		b := st.NewBatch(win)
		before := meetings
		for {
			if next == len(pending) {
				if mi == len(in.months) {
					break
				}
				mf, ok := in.cache.load(in.months[mi])
				if !ok {
					return meetings, steps, fmt.Errorf("account %s: month %s is missing from %s", in.name, span(in.months[mi]), in.cache.dir)
				}
				mi++
				pending, next = mf.Meetings, 0
				slices.SortFunc(pending, func(a, b umeeting.Meeting) int { return cmp.Compare(a.End.UnixNano(), b.End.UnixNano()) })
				continue
			}
			m := &pending[next]
			if m.End.After(t) || (final && exclusive && !m.End.Before(t)) {
				break
			}
			next++
			if m.End.Before(in.start) {
				continue
			}
			b.Meeting(m)
			meetings++
		}
		b.CommitPage()
		st.Apply(b)
		steps++
		if err := f(st, t, prev, final, meetings > before); err != nil {
			return meetings, steps, err
		}
		if final {
			return meetings, steps, nil
		}
		prev = t
	}
}

// replayer writes the steps of one account. Counter samples are shaped so
// that the last point, at the seam, is exactly the live series' starting
// value (see adjuster); a series is first written at that starting level
// one step before its first increment, so increase() sees it.
//
// Most steps change few series or none (nights, weekends): a step builds
// the collector's metrics of the series and hosts that changed since the
// step before only (none when it gave the store no meeting), and writes the
// others again at the values it keeps; the gauges that move with time alone
// it builds at every step. That makes the replay several times faster than
// building every series at every step, as a scrape would; the samples are
// the same.
type replayer struct {
	in    replayInput
	every time.Duration // the step
	w     *seriesWriter
	g     *gatherer
	adj   adjuster
	// target are the history's series at the seam; below the series that
	// start below zero (per-account series ending at a lower live level,
	// series lowered by --since), at zero.
	target, below, belowOff []*dto.MetricFamily
	built                   bool // a step was built: held is set
	// held are the latest points of every metric written but the hosts'
	// (see buildHosts) and timeGauges, known by seriesKey (the index of a
	// metric's first point).
	held          []point
	known         map[string]int
	series        map[store.SeriesKey]store.Series // the series as last built
	hosts         []builtHost                      // the hosts as last built
	hostAt        map[string]int                   // index in hosts by e-mail
	late, missing float64
}

// builtHost is a host and the points of its gauges.
type builtHost struct {
	store.Host
	pts []point
}

// timeGauges are the families of store.Store.Gauges, which move with
// time alone.
var timeGauges = map[string]bool{
	"umeeting_active_hosts":                 true,
	"umeeting_concurrent_meetings_peak":     true,
	"umeeting_concurrent_participants_peak": true,
}

func newReplayer(w *seriesWriter, in replayInput, step time.Duration) (*replayer, error) {
	g := newGatherer()
	live, err := g.values(collector.BuildUsage(in.name, in.baseline, in.live))
	if err != nil {
		return nil, err
	}
	target, err := g.gather(collector.BuildUsage(in.name, in.baseline, in.hist))
	if err != nil {
		return nil, err
	}
	r := &replayer{in: in, every: step, w: w, g: g, target: target, known: map[string]int{},
		series: map[store.SeriesKey]store.Series{}, hostAt: map[string]int{},
		adj: adjuster{live: live, target: familyValues(target), off: map[string]float64{}}}

	// With --since, what the replay counts before backfill's start is not in
	// the live starting values: every series is lowered by its count there,
	// so that from then on it is what it would be without --since, and ends
	// at the seam exactly as the live series begins.
	var off []*dto.MetricFamily
	if in.start.Before(in.base) {
		_, _, err := in.walk(step, in.base, true, func(st *store.Store, t, _ time.Time, final, _ bool) error {
			if !final {
				return nil
			}
			fams, err := g.gather(collector.BuildUsage(in.name, st.Snapshot(t), in.hist))
			off, r.adj.off = fams, familyValues(fams)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	below := func(key string) bool { return r.adj.live[key] != r.adj.target[key] || r.adj.off[key] != 0 }
	r.below, r.belowOff = addMissing(nil, target, below), addMissing(nil, off, below)
	return r, nil
}

// step writes the samples of the step at t from the store (see walk); prev
// is the step before, where a series that appears now is first written at
// its starting level. No later step writes a sample before t: the blocks
// that end by then are written out.
func (r *replayer) step(st *store.Store, t, prev time.Time, final, changed bool) error {
	next := t // the seam: no sample after it
	if !final {
		next = timex.Earlier(t.Add(r.every), r.in.seam)
	}
	var snap *store.Snapshot
	// Histograms begin at backfill's start: the step that reaches it builds.
	if r.built && !changed && !final && t.Before(r.in.base) == prev.Before(r.in.base) {
		snap = &store.Snapshot{At: t}
		snap.ActiveHosts, snap.PeakMeetings, snap.PeakParticipants = st.Gauges(t)
	} else {
		snap = st.Snapshot(t)
		if r.in.hist.PerHost { // per-account series are few: built whole
			if err := r.buildHosts(snap.Hosts); err != nil {
				return err
			}
			part := r.changes(snap)
			if !r.built || final {
				part.Series = snap.Series
			}
			snap = part
		}
	}
	fams, err := r.g.gather(collector.BuildUsage(r.in.name, snap, r.in.hist))
	if err != nil {
		return err
	}
	switch {
	case final:
		r.late, r.missing = r.adj.compare(fams)
		fams = addMissing(fams, r.target, func(string) bool { return true })
		r.adj.reachTargets(fams)
	case !r.built:
		// Series that start below zero exist from the first point and at
		// every step, at their starting level until the replay counts
		// something for them: increase() then never extrapolates their
		// birth, as it would for a series first seen mid-range at a value
		// other than 0.
		fams = addMissing(fams, r.below, func(string) bool { return true })
		fams = addMissing(fams, r.belowOff, func(string) bool { return true })
	}
	r.built = true
	ts := t.UnixMilli()
	born, moved, err := r.build(fams, t)
	if err == nil {
		err = r.write(born, prev.UnixMilli(), ts)
	}
	for _, pts := range [][]point{r.held, moved} {
		if err == nil {
			err = r.write(pts, ts, next.UnixMilli())
		}
	}
	for i := 0; i < len(r.hosts) && err == nil; i++ {
		err = r.write(r.hosts[i].pts, ts, next.UnixMilli())
	}
	if err != nil {
		return err
	}
	return r.w.w.writeBefore(ts)
}

// changes returns snap with only the series that differ from those of the
// step last built, and keeps snap's; without hosts (see buildHosts).
func (r *replayer) changes(snap *store.Snapshot) *store.Snapshot {
	part := *snap
	part.Series, part.Hosts = nil, nil
	for _, s := range snap.Series {
		if old, ok := r.series[s.SeriesKey]; !ok || old != s {
			r.series[s.SeriesKey] = s
			part.Series = append(part.Series, s)
		}
	}
	return &part
}

// buildHosts builds the gauges of the hosts that differ from those of the
// step last built: each host's are replaced whole, as its labels may change.
func (r *replayer) buildHosts(hosts []store.HostSnapshot) error {
	for _, h := range hosts {
		i, ok := r.hostAt[h.Email]
		if ok && r.hosts[i].Host == h.Host {
			continue
		}
		fams, err := r.g.gather(collector.BuildUsage(r.in.name, &store.Snapshot{Hosts: []store.HostSnapshot{h}}, r.in.hist))
		if err != nil {
			return err
		}
		b := builtHost{Host: h.Host}
		for _, mf := range fams {
			for _, m := range mf.Metric {
				if mf.GetType() == dto.MetricType_GAUGE && !timeGauges[mf.GetName()] {
					if b.pts, err = r.w.points(b.pts, mf, seriesKey(mf.GetName(), m), m); err != nil {
						return err
					}
				}
			}
		}
		if !ok {
			i = len(r.hosts)
			r.hostAt[h.Email] = i
			r.hosts = append(r.hosts, b)
		}
		r.hosts[i] = b
	}
	return nil
}

// build puts the values of fams at t into held; it returns the points of
// the time gauges, and those of the series fams shows for the first time at
// their starting level (for the step before).
func (r *replayer) build(fams []*dto.MetricFamily, t time.Time) (born, moved []point, err error) {
	for _, mf := range fams {
		if mf.GetType() == dto.MetricType_HISTOGRAM && t.Before(r.in.base) {
			continue
		}
		counterLike := mf.GetType() == dto.MetricType_COUNTER || mf.GetType() == dto.MetricType_HISTOGRAM
		for _, m := range mf.Metric {
			key := seriesKey(mf.GetName(), m)
			if timeGauges[mf.GetName()] {
				if moved, err = r.w.points(moved, mf, key, m); err != nil {
					return nil, nil, err
				}
				continue
			}
			at, ok := r.known[key]
			if !ok && counterLike {
				z := proto.Clone(m).(*dto.Metric)
				zeroValues(z)
				r.adj.apply(key, z)
				if born, err = r.w.points(born, mf, key, z); err != nil {
					return nil, nil, err
				}
			}
			if counterLike {
				r.adj.apply(key, m)
			}
			end := len(r.held)
			if r.held, err = r.w.points(r.held, mf, key, m); err != nil {
				return nil, nil, err
			}
			if !ok {
				r.known[key] = end
				continue
			}
			for i, p := range r.held[end:] {
				r.held[at+i].v = p.v
			}
			r.held = r.held[:end]
		}
	}
	return born, moved, nil
}

// write appends pts at ts, and again 1 ms later at midnight.
func (r *replayer) write(pts []point, ts, next int64) error {
	twin, ok := midnightTwin(ts, next)
	for _, p := range pts {
		if err := r.w.w.add(p.s, ts, p.v); err != nil {
			return err
		}
		if ok {
			if err := r.w.w.add(p.s, twin, p.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// midnightTwin says whether a point at ts (ms) is written again 1 ms later,
// before next (ms), the following point: every UTC midnight is, as
// Prometheus 3 reads a range (t-1d, t] without its left end, and the second
// sample makes increase() over whole days exact there too.
func midnightTwin(ts, next int64) (int64, bool) {
	return ts + 1, ts%(24*3600*1000) == 0 && ts+1 < next
}
