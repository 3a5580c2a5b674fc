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
// account's metrics otherwise. The metrics are encoded into the cache and
// not kept (Collect builds them again from the snapshot). Encoding happens
// outside c.mu, so scrapes of the live metrics never wait for it; the
// poller is an account's only writer.
func (c *Collector) setUsage(name string, snap *store.Snapshot, opts Options) {
	c.mu.RLock()
	var prev *store.Snapshot
	if a := c.accounts[name]; a != nil && a.snap != nil && a.opts == opts {
		prev = a.snap
	}
	c.mu.RUnlock()
	switch {
	case prev != nil && sameSnapshot(prev, snap, false):
		tidy(false)
		return
	case prev != nil && sameSnapshot(prev, snap, true):
		if fresh, ok := gauges(name, snap, opts, prev); ok {
			c.publish(name, snap, opts, fresh, true)
			tidy(false)
			return
		}
	}
	c.publish(name, snap, opts, BuildUsage(name, snap, opts), false)
	tidy(true)
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

// publish encodes ms (all of the account's usage metrics, or with partial
// the families to replace) into the cache and records what built them.
func (c *Collector) publish(name string, snap *store.Snapshot, opts Options, ms []prometheus.Metric, partial bool) {
	c.usageBuilt.Add(int64(len(ms)))
	c.encode(usagePart(name), ms, partial)
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.get(name)
	a.snap, a.opts = snap, opts
}

// encode gathers ms and encodes them into a part of the cache; a failure
// fails scrapes until the next success, as a gathering error did before.
func (c *Collector) encode(part string, ms []prometheus.Metric, partial bool) {
	mfs, err := gather(ms)
	if err == nil {
		err = c.cache.Update(part, mfs, partial)
	}
	if err != nil {
		c.cache.Fail(part, err)
	}
}

// publishDirectory encodes an account's directory metrics as they are now.
// dirMu makes the last of concurrent calls (a poll, a directory reload)
// publish the latest metrics. The cache publishes nothing when they did
// not change.
func (c *Collector) publishDirectory(name string) {
	c.dirMu.Lock()
	defer c.dirMu.Unlock()
	c.mu.RLock()
	a := c.accounts[name]
	var ms []prometheus.Metric
	if a != nil {
		ms = a.dir
	}
	c.mu.RUnlock()
	if a == nil {
		return // deleted meanwhile
	}
	c.encode(directoryPart(name), ms, false)
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
