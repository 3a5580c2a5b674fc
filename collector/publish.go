package collector

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umeeting/umeeting_exporter/directory"
	"github.com/umeeting/umeeting_exporter/exposition"
	"github.com/umeeting/umeeting_exporter/store"
)

// An account's metrics in the cache: its usage and its directory join,
// each rebuilt in one piece. Account names hold no spaces, so an
// account's parts are consecutive.
func usagePart(account string) string     { return account }
func directoryPart(account string) string { return account + " directory" }

// SetUsage makes the usage and directory metrics of an account those of
// snap: the poller calls it after a poll whose store result says it
// changed what a snapshot shows, on start and with new metrics options.
// Both are built, encoded and published together, so a scrape never sees
// half a poll, nor one poll's usage with another's directory metrics.
// snap is kept to rebuild the directory metrics. When snap
// moves a licence listed without an account between accounts (see
// licenceCharge), every account's directory metrics are published with it.
func (c *Collector) SetUsage(name string, snap *store.Snapshot, opts Options) {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	shown := snap
	if !opts.PerHost {
		shown = snap.WithoutHosts()
	}
	usage := newSink()
	usage.counted(name, shown)
	c.mu.Lock()
	d, snaps := c.directory, c.snapshots()
	a := c.get(name)
	a.snap, a.opts = snap, opts
	a.gauges = gauges(name, shown)
	c.mu.Unlock()
	before := newLicenceCharge(d, snaps)
	snaps[name] = snap
	charge := newLicenceCharge(d, snaps)
	names := []string{name}
	if !charge.equal(before) {
		names = nil // a licence listed without an account moved: every account's
	}
	c.cache.Apply(append([]exposition.Change{{Part: usagePart(name), Families: usage.w.Families()}}, c.buildDirectories(d, charge, names)...)...)
}

// SetGauges sets the usage gauges that move with time alone (see
// store.Store.Gauges) of an account, at now: after a poll that changed
// nothing else. They are served live, so this publishes nothing, unless a
// licence holder's idle time crossed a bucket of the directory metrics
// since they were built: those are then built again.
func (c *Collector) SetGauges(name string, now time.Time, activeHosts map[string]map[string]int, peakMeetings, peakParticipants int) {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	a := c.accounts[name]
	if a == nil || a.snap == nil {
		c.mu.Unlock()
		return
	}
	snap := *a.snap
	snap.At, snap.ActiveHosts, snap.PeakMeetings, snap.PeakParticipants = now, activeHosts, peakMeetings, peakParticipants
	a.snap, a.gauges = &snap, gauges(name, &snap)
	stale := !a.dirUntil.IsZero() && !now.Before(a.dirUntil)
	d, snaps := c.directory, c.snapshots()
	c.mu.Unlock()
	if stale {
		c.cache.Apply(c.buildDirectories(d, newLicenceCharge(d, snaps), []string{name})...)
	}
}

// SetDirectory sets the directory the directory metrics of every account
// are built from, and rebuilds them.
func (c *Collector) SetDirectory(d *directory.Snapshot) {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	c.directory = d
	snaps := c.snapshots()
	c.mu.Unlock()
	c.cache.Apply(c.buildDirectories(d, newLicenceCharge(d, snaps), nil)...)
}

// gauges builds the usage gauges of snap that move with time alone.
func gauges(name string, snap *store.Snapshot) []prometheus.Metric {
	s := &sink{}
	s.gauges(name, snap)
	return s.ms
}

// Cache returns the encoded usage and directory metrics of every account,
// for exposition.NewHandler.
func (c *Collector) Cache() *exposition.Cache { return c.cache }

// Status returns a collector of the metrics a scrape gathers live: the
// accounts' poll health and the usage gauges that move with time.
func (c *Collector) Status() prometheus.Collector { return statusCollector{c} }

type statusCollector struct{ c *Collector }

func (s statusCollector) Describe(chan<- *prometheus.Desc) {}

func (s statusCollector) Collect(ch chan<- prometheus.Metric) {
	s.c.mu.RLock()
	defer s.c.mu.RUnlock()
	for _, a := range s.c.accounts {
		for _, ms := range [][]prometheus.Metric{a.status, a.gauges} {
			for _, m := range ms {
				ch <- m
			}
		}
	}
}
