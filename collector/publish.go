package collector

import (
	"reflect"
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
// account's metrics otherwise. Encoding happens outside c.mu, so scrapes of
// the live metrics never wait for it; the poller is an account's only writer.
func (c *Collector) setUsage(name string, snap *store.Snapshot, opts Options) {
	c.mu.RLock()
	var prev *account
	if a := c.accounts[name]; a != nil && a.snap != nil && a.opts == opts {
		prev = &account{usage: a.usage, snap: a.snap}
	}
	c.mu.RUnlock()
	if prev != nil && sameSnapshot(prev.snap, snap, false) {
		return
	}
	if prev != nil && sameSnapshot(prev.snap, snap, true) {
		if ms, fresh, ok := replaceGauges(name, snap, opts, prev.usage); ok {
			c.publish(name, snap, opts, ms, fresh, true)
			return
		}
	}
	ms := BuildUsage(name, snap, opts)
	c.publish(name, snap, opts, ms, ms, false)
}

// usagePart and directoryPart name an account's parts of the cache.
func usagePart(account string) string     { return account }
func directoryPart(account string) string { return account + " directory" }

// publish encodes changed (all of ms, or with partial the families in
// changed) into the cache, then makes ms the account's usage metrics.
func (c *Collector) publish(name string, snap *store.Snapshot, opts Options, ms, changed []prometheus.Metric, partial bool) {
	c.encode(usagePart(name), changed, partial)
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.get(name)
	a.usage, a.snap, a.opts = ms, snap, opts
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

// replaceGauges builds only the time-dependent gauges of snap and returns
// usage with them replaced, and the fresh gauges. It fails when the set of
// gauge families changed, which needs a full build.
func replaceGauges(name string, snap *store.Snapshot, opts Options, usage []prometheus.Metric) (ms, fresh []prometheus.Metric, ok bool) {
	gauges := &store.Snapshot{At: snap.At, ActiveHosts: snap.ActiveHosts, PeakMeetings: snap.PeakMeetings, PeakParticipants: snap.PeakParticipants}
	before, after := map[*prometheus.Desc]bool{}, map[*prometheus.Desc]bool{}
	for _, m := range BuildUsage(name, gauges, opts) {
		if timeDependent[m.Desc()] {
			fresh = append(fresh, m)
			after[m.Desc()] = true
		}
	}
	ms = make([]prometheus.Metric, 0, len(usage))
	for _, m := range usage {
		if timeDependent[m.Desc()] {
			before[m.Desc()] = true
			continue
		}
		ms = append(ms, m)
	}
	if !reflect.DeepEqual(before, after) {
		return nil, nil, false
	}
	return append(ms, fresh...), fresh, true
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
