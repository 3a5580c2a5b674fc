package collector

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/umeeting/umeeting_exporter/exposition"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// setUsage makes the usage metrics of an account those of snap, building
// and encoding only the parts of them (see layout) that differ from the
// last call's: nothing when snap holds the same numbers as the last
// snapshot (a poll that counted nothing new), only the time-dependent
// gauges when nothing else moved, the account-wide metrics and the blocks
// of the hosts whose series or latest meeting changed after a poll that
// counted a few meetings; all of them on the first call, after other
// options or a failed encoding, and when a block outgrew its share. Its
// directory parts are rebuilt when what they are built from changed, and
// everything goes into the cache in one publication, so a scrape never sees
// half a poll, nor one poll's usage with another's directory metrics. The
// metrics are not kept (Collect builds them again from the snapshot).
// Encoding happens outside c.mu, so scrapes of the live metrics never wait
// for it; the poller is an account's only writer.
func (c *Collector) setUsage(name string, snap *store.Snapshot, opts Options) {
	shown := snap
	if !opts.PerHost {
		shown = snap.WithoutHosts()
	}
	c.mu.RLock()
	var prev *store.Snapshot
	var lay, old *layout
	if a := c.accounts[name]; a != nil {
		old = a.layout
		if a.shown != nil && a.opts == opts {
			prev, lay = a.shown, a.layout
		}
	}
	c.mu.RUnlock()
	var parts []part
	full := prev == nil
	if !full {
		parts, full = changedParts(name, prev, shown, lay)
	}
	if full {
		lay = newLayout(shown)
		parts = allParts(name, shown, lay)
	}
	c.setDirectoryUsage(name, snap, opts)

	c.dirMu.Lock()
	changes := c.dirChanges(name)
	for _, p := range parts {
		c.usageBuilt.Add(int64(len(p.ms)))
		changes = append(changes, c.change(p.name, p.ms))
	}
	if full && old != nil {
		for i := lay.blocks(); i < old.blocks(); i++ {
			changes = append(changes, exposition.Change{Part: blockPart(name, i), Delete: true})
		}
	}
	err := c.cache.Apply(changes...) // a failed part fails scrapes until rebuilt
	c.mu.Lock()
	a := c.get(name)
	a.snap, a.opts, a.shown, a.layout = snap, opts, shown, lay
	if err != nil {
		a.shown = nil // everything again next time
		a.dirDirty = allDirParts()
	}
	c.mu.Unlock()
	c.dirMu.Unlock()
	// In the background: the poller's status follows this publication at once.
	go tidy(full)
}

// blockHosts is how many hosts a block of an account's per-host series
// holds when the blocks are drawn (see layout): a poll that counted a
// meeting re-encodes the block of its host (about 11 series a host, 60 KB
// of text a block in each format); smaller blocks compress less well.
const blockHosts = 64

// layout is how an account's usage metrics are split into parts of the
// cache: the account-wide metrics (histograms, the series without host
// labels, ...; usagePart), the gauges that move with time (gaugesPart),
// and blocks of hosts by e-mail (blockPart), each holding the series with
// an email label and the host gauges of a range of e-mails. The ranges are
// drawn on a full build and kept until the next one, so that a host's
// series stay in one block; parts are served in the order of their names,
// so every family's series keep the order of a registry's gather.
type layout struct {
	// bounds are the first e-mail of every block but the first, sorted.
	bounds []string
}

// newLayout draws blocks of blockHosts hosts with series of their own.
func newLayout(snap *store.Snapshot) *layout {
	l := &layout{}
	n := 0
	for _, h := range snap.Hosts { // sorted by e-mail
		if h.Admitted && h.Email != "" {
			if n > 0 && n%blockHosts == 0 {
				l.bounds = append(l.bounds, h.Email)
			}
			n++
		}
	}
	return l
}

func (l *layout) blocks() int { return len(l.bounds) + 1 }

// block returns the block of an e-mail.
func (l *layout) block(email string) int {
	i, found := slices.BinarySearch(l.bounds, email)
	if found {
		return i + 1
	}
	return i
}

// span returns the entries [from, to) of a slice of n entries sorted by
// e-mail whose e-mail is in block i; an empty e-mail is in none.
func (l *layout) span(i, n int, email func(int) string) (from, to int) {
	from = sort.Search(n, func(j int) bool { e := email(j); return e != "" && (i == 0 || e >= l.bounds[i-1]) })
	to = n
	if i < len(l.bounds) {
		to = sort.Search(n, func(j int) bool { return email(j) >= l.bounds[i] })
	}
	return from, to
}

// part is the metrics of one part of the cache.
type part struct {
	name string
	ms   []prometheus.Metric
}

// usagePart, gaugesPart, blockPart and directoryPart name an account's
// parts of the cache. Account names hold no spaces, and sort after
// nothing but their own prefixes: an account's parts are consecutive.
func usagePart(account string) string        { return account }
func gaugesPart(account string) string       { return account + " gauges" }
func blockPart(account string, i int) string { return fmt.Sprintf("%s hosts %06d", account, i) }

// allParts builds every usage part of snap.
func allParts(name string, snap *store.Snapshot, l *layout) []part {
	parts := []part{accountPart(name, snap), {gaugesPart(name), buildGauges(nil, name, snap)}}
	for i := range l.blocks() {
		ms, _ := buildBlock(name, snap, l, i)
		parts = append(parts, part{blockPart(name, i), ms})
	}
	return parts
}

// accountPart builds the account-wide usage metrics of snap: the series
// without host labels and buildAccount's.
func accountPart(name string, snap *store.Snapshot) part {
	ms := buildSeries(nil, name, snap.Series[:withoutEmail(snap.Series)])
	return part{usagePart(name), buildAccount(ms, name, snap)}
}

// withoutEmail is the number of series without host labels, which sort
// first.
func withoutEmail(series []store.Series) int {
	return sort.Search(len(series), func(i int) bool { return series[i].Email != "" })
}

// buildBlock builds the metrics of block i of snap and counts its hosts.
func buildBlock(name string, snap *store.Snapshot, l *layout, i int) ([]prometheus.Metric, int) {
	sf, st := l.span(i, len(snap.Series), func(j int) string { return snap.Series[j].Email })
	hf, ht := l.span(i, len(snap.Hosts), func(j int) string { return snap.Hosts[j].Email })
	hosts := snap.Hosts[hf:ht]
	ms := make([]prometheus.Metric, 0, (st-sf)*(4+len(umeeting.AllFeatures))+2*len(hosts))
	ms = buildHosts(buildSeries(ms, name, snap.Series[sf:st]), name, hosts)
	admitted := 0
	for _, h := range hosts {
		if h.Admitted {
			admitted++
		}
	}
	return ms, admitted
}

// changedParts builds the usage parts in which snap differs from prev,
// both shown with the same options and drawn in l. It fails (asking for
// a full build) when a block grew to twice its share.
func changedParts(name string, prev, snap *store.Snapshot, l *layout) ([]part, bool) {
	var parts []part
	if !sameAccount(prev, snap) {
		parts = append(parts, accountPart(name, snap))
	}
	if !maps.EqualFunc(prev.ActiveHosts, snap.ActiveHosts, maps.Equal) ||
		prev.PeakMeetings != snap.PeakMeetings || prev.PeakParticipants != snap.PeakParticipants {
		parts = append(parts, part{gaugesPart(name), buildGauges(nil, name, snap)})
	}
	blocks := map[int]bool{}
	p, s := prev.Series, snap.Series
	diffSorted(p[withoutEmail(p):], s[withoutEmail(s):],
		func(a, b *store.Series) int {
			return cmp.Or(cmp.Compare(a.Email, b.Email), cmp.Compare(a.UserType, b.UserType))
		},
		func(a, b *store.Series) {
			blocks[l.block(cmp.Or(a, b).Email)] = true
		})
	diffSorted(prev.Hosts, snap.Hosts,
		func(a, b *store.HostSnapshot) int { return cmp.Compare(a.Email, b.Email) },
		func(a, b *store.HostSnapshot) {
			if a != nil && a.Admitted || b != nil && b.Admitted { // others have no metrics
				blocks[l.block(cmp.Or(a, b).Email)] = true
			}
		})
	for _, i := range slices.Sorted(maps.Keys(blocks)) {
		ms, hosts := buildBlock(name, snap, l, i)
		if hosts > 2*blockHosts {
			return nil, true
		}
		parts = append(parts, part{blockPart(name, i), ms})
	}
	return parts, false
}

// diffSorted calls changed for the entries of a and b, both sorted by
// compare, that differ: with both when their keys are equal, with nil in
// place of the one missing otherwise. It compares nothing when a and b
// are the same slice (a snapshot republished with new gauges only).
func diffSorted[T comparable](a, b []T, compare func(x, y *T) int, changed func(x, y *T)) {
	if len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0]) {
		return
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && compare(&a[i], &b[j]) < 0:
			changed(&a[i], nil)
			i++
		case i == len(a) || compare(&a[i], &b[j]) > 0:
			changed(nil, &b[j])
			j++
		default:
			if a[i] != b[j] {
				changed(&a[i], &b[j])
			}
			i++
			j++
		}
	}
}

// sameAccount says whether two snapshots hold the same account-wide
// numbers (accountPart): anything but their time, per-host series, hosts
// and time-dependent gauges.
func sameAccount(a, b *store.Snapshot) bool {
	only := func(s *store.Snapshot) store.Snapshot {
		c := *s
		c.At, c.Hosts = time.Time{}, nil
		c.ActiveHosts, c.PeakMeetings, c.PeakParticipants = nil, 0, 0
		if c.Series = s.Series[:withoutEmail(s.Series)]; len(c.Series) == 0 {
			c.Series = nil
		}
		return c
	}
	return reflect.DeepEqual(only(a), only(b))
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

// change gathers ms into a change of a part of the cache.
func (c *Collector) change(part string, ms []prometheus.Metric) exposition.Change {
	mfs, err := gather(ms)
	return exposition.Change{Part: part, Families: mfs, Err: err}
}

// publishDirectory encodes an account's directory parts rebuilt since
// they were last published, after the directory changed. dirMu makes the
// last of concurrent calls (a poll, a directory reload) publish the latest
// metrics. The cache publishes nothing when they did not change.
func (c *Collector) publishDirectory(name string) {
	c.dirMu.Lock()
	defer c.dirMu.Unlock()
	c.mu.RLock()
	_, exists := c.accounts[name]
	c.mu.RUnlock()
	if !exists {
		return // deleted meanwhile
	}
	if err := c.cache.Apply(c.dirChanges(name)...); err != nil {
		c.mu.Lock()
		if a := c.accounts[name]; a != nil {
			a.dirDirty = allDirParts() // gathered again next time
		}
		c.mu.Unlock()
	}
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
