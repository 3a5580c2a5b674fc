package collector

import (
	"maps"
	"reflect"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/umeeting/umeeting_exporter/exposition"
	"github.com/umeeting/umeeting_exporter/store"
)

// timeDependent are the usage gauges whose values depend on the time of
// the snapshot as well as on what was counted: they move between polls
// that count nothing.
var timeDependent = map[*prometheus.Desc]bool{activeHostsDesc: true, peakMeetingsDesc: true, peakParticipantsDesc: true}

// setUsage makes the usage metrics of an account those of snap, building
// and encoding only what differs from the last call: nothing when snap
// holds the same numbers as the last snapshot (a poll that counted nothing
// new), only the time-dependent gauges when nothing else moved, all of the
// account's metrics otherwise. Its directory metrics are rebuilt too, and
// both go into the cache in one publication, so a scrape never sees one
// poll's usage with another's directory metrics. The metrics are not kept
// (Collect builds them again from the snapshot). Encoding happens outside
// c.mu, so scrapes of the live metrics never wait for it; the poller is an
// account's only writer.
func (c *Collector) setUsage(name string, snap *store.Snapshot, opts Options) {
	c.mu.RLock()
	var prev *store.Snapshot
	if a := c.accounts[name]; a != nil && a.snap != nil && a.opts == opts {
		prev = a.snap
	}
	c.mu.RUnlock()
	var usage []prometheus.Metric
	build, partial := true, false
	switch {
	case prev != nil && sameSnapshot(prev, snap, false):
		build = false
	case prev != nil && sameSnapshot(prev, snap, true):
		usage, partial = gauges(name, snap, opts, prev)
	}
	if build && !partial {
		usage = BuildUsage(name, snap, opts)
	}
	c.setDirectoryUsage(name, snap, opts)

	c.dirMu.Lock()
	changes := []exposition.Change{c.change(directoryPart(name), c.directoryMetrics(name), false)}
	if build {
		c.usageBuilt.Add(int64(len(usage)))
		changes = append(changes, c.change(usagePart(name), usage, partial))
	}
	c.cache.Apply(changes...) // a failed part fails scrapes: nothing else to do
	c.mu.Lock()
	a := c.get(name)
	a.snap, a.opts = snap, opts
	c.mu.Unlock()
	c.dirMu.Unlock()
	// In the background: the poller's status follows this publication at once.
	go tidy(build && !partial)
}

// tidyHeap is the heap's size after the last tidy.
var tidyHeap atomic.Uint64

// tidy hands garbage back to the system after a poll: always after a full
// build, which leaves the account's metrics several times over as garbage
// (metric objects, gathered families, encoding buffers), otherwise when
// the heap grew by a quarter since the last time (the fetch and snapshot
// of polls that counted nothing). Polls are minutes apart: collecting now
// costs little, while the garbage collector's pacing would let the heap,
// and the resident set, grow to twice the live data.
func tidy(force bool) {
	sample := []runtimemetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	runtimemetrics.Read(sample)
	if last := tidyHeap.Load(); !force && sample[0].Value.Uint64() <= last+last/4 {
		return
	}
	debug.FreeOSMemory()
	runtimemetrics.Read(sample)
	tidyHeap.Store(sample[0].Value.Uint64())
}

// usagePart and directoryPart name an account's parts of the cache.
func usagePart(account string) string     { return account }
func directoryPart(account string) string { return account + " directory" }

// change gathers ms into a change of a part of the cache.
func (c *Collector) change(part string, ms []prometheus.Metric, partial bool) exposition.Change {
	mfs, err := gather(ms)
	return exposition.Change{Part: part, Families: mfs, Partial: partial, Err: err}
}

// directoryMetrics returns an account's directory metrics as they are now.
func (c *Collector) directoryMetrics(name string) []prometheus.Metric {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if a := c.accounts[name]; a != nil {
		return a.dir
	}
	return nil
}

// publishDirectory encodes an account's directory metrics as they are now,
// after the directory changed. dirMu makes the last of concurrent calls
// (a poll, a directory reload) publish the latest metrics. The cache
// publishes nothing when they did not change.
func (c *Collector) publishDirectory(name string) {
	c.dirMu.Lock()
	defer c.dirMu.Unlock()
	c.mu.RLock()
	_, exists := c.accounts[name]
	c.mu.RUnlock()
	if !exists {
		return // deleted meanwhile
	}
	c.cache.Apply(c.change(directoryPart(name), c.directoryMetrics(name), false))
}

// sameSnapshot says whether two snapshots hold the same numbers, ignoring
// their time and, with ignoreGauges, the time-dependent gauges. BuildUsage is
// a function of the snapshot, so equal snapshots build equal metrics.
func sameSnapshot(a, b *store.Snapshot, ignoreGauges bool) bool {
	x, y := *a, *b
	x.At, y.At = time.Time{}, time.Time{}
	if ignoreGauges {
		x.ActiveHosts, x.PeakMeetings, x.PeakParticipants = nil, 0, 0
		y.ActiveHosts, y.PeakMeetings, y.PeakParticipants = nil, 0, 0
	}
	return reflect.DeepEqual(x, y)
}

// gauges builds only the time-dependent gauges of snap. It fails when
// their families differ from those of prev, which needs a full build.
func gauges(name string, snap *store.Snapshot, opts Options, prev *store.Snapshot) ([]prometheus.Metric, bool) {
	build := func(s *store.Snapshot) ([]prometheus.Metric, map[*prometheus.Desc]bool) {
		only := &store.Snapshot{At: s.At, ActiveHosts: s.ActiveHosts, PeakMeetings: s.PeakMeetings, PeakParticipants: s.PeakParticipants}
		var ms []prometheus.Metric
		descs := map[*prometheus.Desc]bool{}
		for _, m := range BuildUsage(name, only, opts) {
			if timeDependent[m.Desc()] {
				ms = append(ms, m)
				descs[m.Desc()] = true
			}
		}
		return ms, descs
	}
	fresh, after := build(snap)
	_, before := build(prev)
	return fresh, maps.Equal(before, after)
}

// metrics is a collector of prebuilt metrics.
type metrics []prometheus.Metric

func (ms metrics) Describe(chan<- *prometheus.Desc) {}

func (ms metrics) Collect(ch chan<- prometheus.Metric) {
	for _, m := range ms {
		ch <- m
	}
}

// gather turns metrics into checked, sorted families, as a scrape of a
// registry holding them would.
func gather(ms []prometheus.Metric) ([]*dto.MetricFamily, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics(ms))
	return reg.Gather()
}

// Cache returns the encoded usage metrics of every account, for
// exposition.NewHandler.
func (c *Collector) Cache() *exposition.Cache { return c.cache }

// Status returns a collector of the accounts' poll health metrics only:
// the part of Collect that a scrape gathers live.
func (c *Collector) Status() prometheus.Collector { return statusCollector{c} }

type statusCollector struct{ c *Collector }

func (s statusCollector) Describe(chan<- *prometheus.Desc) {}

func (s statusCollector) Collect(ch chan<- prometheus.Metric) {
	s.c.mu.RLock()
	defer s.c.mu.RUnlock()
	for _, a := range s.c.accounts {
		for _, m := range a.status {
			ch <- m
		}
	}
}
