// Package collector turns what the poller learnt into Prometheus metrics:
// it knows every metric name, label and help text of the exporter.
//
// Usage metrics are built once per poll from an immutable store.Snapshot
// into const metrics, so a scrape only copies prebuilt values: it never
// races a poll, and a label set that disappeared is not exported forever.
package collector

import (
	"cmp"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/umeeting/umeeting_exporter/directory"
	"github.com/umeeting/umeeting_exporter/exposition"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

const namespace = "umeeting"

const fromLastPoll = " Values come from the last successful poll."

// family is one usage counter family, with and without host labels.
type family struct {
	withHost, withoutHost *prometheus.Desc
}

func newFamily(name, help string, extra ...string) family {
	fq := prometheus.BuildFQName(namespace, "", name)
	help += fromLastPoll
	return family{
		withHost:    prometheus.NewDesc(fq, help, append([]string{"account", "host", "email", "user_type"}, extra...), nil),
		withoutHost: prometheus.NewDesc(fq, help, append([]string{"account", "user_type"}, extra...), nil),
	}
}

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

var (
	meetingsDesc = newFamily("meetings_total",
		"Finished meetings, each counted once when first seen.")
	secondsDesc = newFamily("meeting_seconds_total",
		"Sum of the lengths of finished meetings, in seconds.")
	participantsDesc = newFamily("participants_total",
		"Sum of participants over finished meetings.")
	participantSecondsDesc = newFamily("participant_seconds_total",
		"Sum of meeting length times participants (participant-seconds) over finished meetings.")
	featureDesc = newFamily("meetings_by_feature_total",
		"Finished meetings that used a feature (video, screen_share, voip, pstn dial-in, third_party_audio, recording).", "feature")

	durationHistDesc = newDesc("meeting_duration_seconds",
		"Distribution of the lengths of finished meetings, in seconds."+fromLastPoll, "account", "user_type")
	participantsHistDesc = newDesc("meeting_participants",
		"Distribution of the participants of finished meetings."+fromLastPoll, "account", "user_type")

	hostLastDesc = newDesc("host_last_meeting_timestamp_seconds",
		"Unix time at which the host's latest meeting ended, one series per host e-mail with its latest name and user_type."+fromLastPoll,
		"account", "host", "email", "user_type")
	activeHostsDesc = newDesc("active_hosts",
		"Distinct hosts (by e-mail) whose latest meeting ended within the window, by the user_type of that meeting."+fromLastPoll,
		"account", "user_type", "window")
	peakMeetingsDesc = newDesc("concurrent_meetings_peak",
		"Most meetings in progress at the same moment during the trailing 24 hours."+fromLastPoll, "account")
	peakParticipantsDesc = newDesc("concurrent_participants_peak",
		"Most participants in meetings in progress at the same moment during the trailing 24 hours."+fromLastPoll, "account")
	invalidDesc = newDesc("records_invalid_total",
		"Records of the API skipped as invalid, each counted once, by reason.", "account", "reason")
	rememberedDesc = newDesc("remembered_meetings",
		"Meetings remembered to count each once; grows with the lookback, not with uptime.", "account")

	upDesc = newDesc("up",
		"1 when the last poll of the account's API succeeded, 0 when it failed; usage metrics then keep the values of the last successful poll.", "account")
	lastSuccessDesc = newDesc("last_successful_poll_timestamp_seconds",
		"Unix time of the last successful poll of the account; 0 before the first.", "account")
	pollDurationDesc = newDesc("poll_duration_seconds",
		"How long the last poll of the account took, in seconds.", "account")
	pollIntervalDesc = newDesc("poll_interval_seconds",
		"Configured time between two polls of the account, in seconds.", "account")
	budgetDesc = newDesc("api_request_budget_remaining",
		"API requests the account may still make in the rolling 24 hours; -1 when no budget is set.", "account")
	lastSaveDesc = newDesc("state_last_save_timestamp_seconds",
		"Unix time at which the account's state was last saved to disk; 0 before the first save.", "account")
	backfillUpDesc = newDesc("backfill_up",
		"1 when the last attempt of the one-time read of older history (backfill) succeeded, or that read is done; 0 after a failed attempt, retried with backoff. umeeting_up does not depend on it.", "account")
	backfillProgressDesc = newDesc("backfill_progress_ratio",
		"Share of the one-time read of older history (backfill) done, from 0 to 1; 1 when done.", "account")
	limitDesc = newDesc("concurrent_meetings_limit",
		"Licence limit of meetings at the same moment, from the config (concurrent_meetings_limit).", "account")
)

// Options choose the labels of the usage metrics.
type Options struct {
	PerHost  bool
	Include  *regexp.Regexp // nil: every host
	Exclude  *regexp.Regexp // nil: none
	MaxHosts int            // 0: no cap
}

// Status is the poll health of one account.
type Status struct {
	Up              bool
	LastSuccess     time.Time // zero before the first success
	PollDuration    time.Duration
	PollInterval    time.Duration
	BudgetRemaining int // -1: no budget
	LastSave        time.Time
	ConcurrentLimit int // 0: not set
	// BackfillFailing says the last attempt of the one-time read of older
	// history failed; BackfillProgress is the share of it done (1: done).
	BackfillFailing  bool
	BackfillProgress float64
}

type account struct {
	status []prometheus.Metric
	// The directory join (directory.go): rebuilt after each poll from
	// the last snapshot, and when the directory changes.
	dir []prometheus.Metric
	// snap and opts built usage and dir; a poll that changes neither
	// changes no usage metric (publish.go).
	snap *store.Snapshot
	opts Options
}

// Collector exposes the prebuilt metrics of every account. It is an
// unchecked collector: hosts left out of per-host series are counted in a
// series of the same family without host/email labels.
type Collector struct {
	mu        sync.RWMutex
	accounts  map[string]*account
	directory *directory.Snapshot // nil: no directory
	cache     *exposition.Cache   // usage and directory metrics, encoded once per change
	dirMu     sync.Mutex          // serialises publishDirectory
	// usageBuilt counts the usage metrics built for the cache, for tests.
	usageBuilt atomic.Int64
}

// New returns an empty Collector.
func New() *Collector {
	return &Collector{accounts: map[string]*account{}, cache: exposition.NewCache()}
}

func (c *Collector) get(name string) *account {
	a := c.accounts[name]
	if a == nil {
		a = &account{}
		c.accounts[name] = a
	}
	return a
}

// Describe sends nothing: the collector is unchecked (see Collector).
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends the metrics of every account. /metrics serves the usage
// metrics from Cache and the rest through Status; Collect serves them all
// (for tests and tools), building usage again from the last snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for name, a := range c.accounts {
		if a.snap != nil { // usage is kept encoded only (publish.go): build it again
			for _, m := range BuildUsage(name, a.snap, a.opts) {
				ch <- m
			}
		}
		for _, m := range a.status {
			ch <- m
		}
		for _, m := range a.dir {
			ch <- m
		}
	}
}

// Delete stops exposing an account.
func (c *Collector) Delete(name string) {
	c.mu.Lock()
	delete(c.accounts, name)
	c.mu.Unlock()
	c.cache.Delete(usagePart(name))
	c.dirMu.Lock() // after a publishDirectory of the account, if one is running
	c.cache.Delete(directoryPart(name))
	c.dirMu.Unlock()
}

// SetUsage replaces the usage metrics of an account with those of snap
// (see setUsage: only what changed is rebuilt).
func (c *Collector) SetUsage(name string, snap *store.Snapshot, opts Options) {
	c.setUsage(name, snap, opts)
	c.setDirectoryUsage(name, snap, opts)
	c.publishDirectory(name)
}

// SetStatus replaces the health metrics of an account.
func (c *Collector) SetStatus(name string, st Status) {
	ms := buildStatus(name, st)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.get(name).status = ms
}

func unixOrZero(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func buildStatus(name string, st Status) []prometheus.Metric {
	ms := []prometheus.Metric{
		prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, boolValue(st.Up), name),
		prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue, unixOrZero(st.LastSuccess), name),
		prometheus.MustNewConstMetric(pollDurationDesc, prometheus.GaugeValue, st.PollDuration.Seconds(), name),
		prometheus.MustNewConstMetric(pollIntervalDesc, prometheus.GaugeValue, st.PollInterval.Seconds(), name),
		prometheus.MustNewConstMetric(budgetDesc, prometheus.GaugeValue, float64(st.BudgetRemaining), name),
		prometheus.MustNewConstMetric(lastSaveDesc, prometheus.GaugeValue, unixOrZero(st.LastSave), name),
		prometheus.MustNewConstMetric(backfillUpDesc, prometheus.GaugeValue, boolValue(!st.BackfillFailing), name),
		prometheus.MustNewConstMetric(backfillProgressDesc, prometheus.GaugeValue, st.BackfillProgress, name),
	}
	if st.ConcurrentLimit > 0 {
		ms = append(ms, prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, float64(st.ConcurrentLimit), name))
	}
	return ms
}

// admitted returns the e-mails of the hosts that get series of their own:
// those the filters keep, the first MaxHosts of them in first-seen order.
func admitted(hosts []store.HostSnapshot, opts Options) map[string]bool {
	if !opts.PerHost {
		return nil
	}
	kept := make([]store.HostSnapshot, 0, len(hosts))
	for _, h := range hosts {
		match := func(re *regexp.Regexp) bool { return re.MatchString(h.Email) || re.MatchString(h.Host.Host) }
		if (opts.Include == nil || match(opts.Include)) && (opts.Exclude == nil || !match(opts.Exclude)) {
			kept = append(kept, h)
		}
	}
	if opts.MaxHosts > 0 && len(kept) > opts.MaxHosts {
		slices.SortFunc(kept, func(a, b store.HostSnapshot) int { return cmp.Compare(a.Order, b.Order) })
		kept = kept[:opts.MaxHosts]
	}
	set := make(map[string]bool, len(kept))
	for _, h := range kept {
		set[h.Email] = true
	}
	return set
}

// BuildUsage builds the usage metrics of one account from snap.
func BuildUsage(name string, snap *store.Snapshot, opts Options) []prometheus.Metric {
	adm := admitted(snap.Hosts, opts)
	ms := make([]prometheus.Metric, 0, len(snap.Series)*(4+len(umeeting.AllFeatures))+len(snap.Hosts)+32)
	counter := func(f family, v uint64, withHost bool, labels []string, extra ...string) {
		d := f.withoutHost
		if withHost {
			d = f.withHost
		}
		ms = append(ms, prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append(labels, extra...)...))
	}
	emit := func(c *store.Counters, withHost bool, labels []string) {
		counter(meetingsDesc, c.Meetings, withHost, labels)
		counter(secondsDesc, c.Seconds, withHost, labels)
		counter(participantsDesc, c.Participants, withHost, labels)
		counter(participantSecondsDesc, c.ParticipantSeconds, withHost, labels)
		for i, f := range umeeting.FeatureNames {
			counter(featureDesc, c.Features[i], withHost, labels, f)
		}
	}
	// Hosts left out are summed per user_type into one series without
	// host/email labels, so account totals stay exact.
	others := map[string]*store.Counters{}
	for i := range snap.Series {
		s := &snap.Series[i]
		if adm[s.Email] {
			emit(&s.Counters, true, []string{name, s.Host, s.Email, s.UserType})
			continue
		}
		o := others[s.UserType]
		if o == nil {
			o = &store.Counters{}
			others[s.UserType] = o
		}
		o.Meetings += s.Meetings
		o.Seconds += s.Seconds
		o.Participants += s.Participants
		o.ParticipantSeconds += s.ParticipantSeconds
		for j := range o.Features {
			o.Features[j] += s.Features[j]
		}
	}
	for _, ut := range sortedKeys(others) {
		emit(others[ut], false, []string{name, ut})
	}

	for _, ut := range sortedKeys(snap.Histograms) {
		h := snap.Histograms[ut]
		ms = append(ms,
			constHistogram(durationHistDesc, h.Duration, store.DurationBuckets, name, ut),
			constHistogram(participantsHistDesc, h.Participants, store.ParticipantBuckets, name, ut))
	}
	for _, h := range snap.Hosts {
		if adm[h.Email] {
			ms = append(ms, prometheus.MustNewConstMetric(hostLastDesc, prometheus.GaugeValue, float64(h.LastEnd), name, h.Host.Host, h.Email, h.UserType))
		}
	}
	for _, w := range store.ActiveWindows {
		counts := snap.ActiveHosts[w.Name]
		for _, ut := range sortedKeys(counts) {
			ms = append(ms, prometheus.MustNewConstMetric(activeHostsDesc, prometheus.GaugeValue, float64(counts[ut]), name, ut, w.Name))
		}
	}
	ms = append(ms,
		prometheus.MustNewConstMetric(peakMeetingsDesc, prometheus.GaugeValue, float64(snap.PeakMeetings), name),
		prometheus.MustNewConstMetric(peakParticipantsDesc, prometheus.GaugeValue, float64(snap.PeakParticipants), name),
		prometheus.MustNewConstMetric(rememberedDesc, prometheus.GaugeValue, float64(snap.Remembered), name))
	for _, r := range sortedKeys(snap.Invalid) {
		ms = append(ms, prometheus.MustNewConstMetric(invalidDesc, prometheus.CounterValue, float64(snap.Invalid[r]), name, r))
	}
	return ms
}

func constHistogram(d *prometheus.Desc, h *store.Histogram, bounds []float64, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, b := range bounds {
		cum += h.Buckets[i]
		buckets[b] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count, float64(h.Sum), buckets, labels...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
