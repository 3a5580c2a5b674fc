// Package collector knows every metric name, label and help text of the exporter, and builds the metrics of each account from the store's snapshots and the directory.
package collector

import (
	"slices"
	"sync"
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
		withHost:    prometheus.NewDesc(fq, help, append([]string{"account", "email", "user_type"}, extra...), nil),
		withoutHost: prometheus.NewDesc(fq, help, append([]string{"account", "user_type"}, extra...), nil),
	}
}

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

// Usage counters have a stable identity, {account, email, user_type}: a
// host's display name is not a label of theirs (a rename would move its
// history to a new series) but of umeeting_host_info, joined in PromQL.
// Which series a meeting is counted in is decided by the store.
var (
	meetingsDesc = newFamily("meetings_total",
		"Finished meetings, each counted once when first seen, by host e-mail and the host's licence type at the meeting (hosts without a series of their own have no email label); join umeeting_host_info for display names.")
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

	hostInfoGauge = newDesc("host_info",
		"Always 1: the latest display name and licence type of each host with series of its own, for joins like `* on(account, email) group_left(host) umeeting_host_info`."+fromLastPoll,
		"account", "email", "host", "user_type")
	foldedDesc = newDesc("meetings_user_type_folded_total",
		"Meetings counted with user_type \"other\" because the account already had metrics.max_user_types distinct licence types.", "account")
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

// Options choose which hosts get series of their own and cap the
// user_type values; the store applies them when it counts.
type Options = store.Policy

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
	status []prometheus.Metric // poll health, served live
	gauges []prometheus.Metric // usage gauges that move with time, served live
	// snap and opts built the account's usage and directory metrics in
	// the cache (snap nil: none yet); the directory metrics change with
	// time alone at dirUntil (zero: never).
	snap     *store.Snapshot
	opts     Options
	dirUntil time.Time
}

// Collector exposes the metrics of every account: usage and directory
// metrics through Cache, encoded once per change, the rest through Status,
// gathered per scrape. It is an unchecked collector: hosts without series
// of their own are counted in a series of the same family without the
// email label.
type Collector struct {
	mu        sync.RWMutex
	accounts  map[string]*account
	directory *directory.Snapshot // nil: no directory
	cache     *exposition.Cache
	pubMu     sync.Mutex // orders publications: the last built is the last published
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
// and directory metrics from Cache and the rest through Status; Collect
// serves them all (for tests and tools), building them again from the
// last snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	charge := newLicenceCharge(c.directory, c.snapshots())
	for name, a := range c.accounts {
		ms := a.status
		if a.snap != nil {
			dir, _ := buildDirectory(name, a.snap, c.directory, charge, a.opts)
			ms = append(append(BuildUsage(name, a.snap, a.opts), dir...), ms...)
		}
		for _, m := range ms {
			ch <- m
		}
	}
}

// Delete stops exposing an account.
func (c *Collector) Delete(name string) {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	d, snaps := c.directory, c.snapshots()
	delete(c.accounts, name)
	c.mu.Unlock()
	before := newLicenceCharge(d, snaps)
	delete(snaps, name)
	charge := newLicenceCharge(d, snaps)
	changes := []exposition.Change{{Part: usagePart(name), Delete: true}, {Part: directoryPart(name), Delete: true}}
	if !charge.equal(before) { // the licences it held move to the other accounts
		changes = append(changes, c.buildDirectories(d, charge, nil)...)
	}
	c.cache.Apply(changes...)
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

// BuildUsage builds the usage metrics of one account from snap. The store
// decided which series there are (it applies the policy when it counts);
// with opts.PerHost false the per-host series are folded into the series
// without host labels, as that policy shows them.
func BuildUsage(name string, snap *store.Snapshot, opts Options) []prometheus.Metric {
	if !opts.PerHost {
		snap = snap.WithoutHosts()
	}
	ms := make([]prometheus.Metric, 0, len(snap.Series)*(4+len(umeeting.AllFeatures))+2*len(snap.Hosts)+32)
	ms = buildSeries(ms, name, snap.Series)
	ms = buildHosts(ms, name, snap.Hosts)
	ms = buildAccount(ms, name, snap)
	return buildGauges(ms, name, snap)
}

// buildSeries appends the counters of series to ms.
func buildSeries(ms []prometheus.Metric, name string, series []store.Series) []prometheus.Metric {
	for i := range series {
		s := &series[i]
		// Hosts without a series of their own have no email label at all:
		// an empty one would make the same series to Prometheus.
		labels := []string{name, s.UserType}
		if s.Email != "" {
			labels = []string{name, s.Email, s.UserType}
		}
		counter := func(fam family, v uint64, extra ...string) {
			d := fam.withoutHost
			if s.Email != "" {
				d = fam.withHost
			}
			lv := append(labels[:len(labels):len(labels)], extra...)
			if s.Created.IsZero() {
				ms = append(ms, prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...))
				return
			}
			// OpenMetrics _created, for Prometheus versions that ingest it.
			ms = append(ms, prometheus.MustNewConstMetricWithCreatedTimestamp(d, prometheus.CounterValue, float64(v), s.Created, lv...))
		}
		counter(meetingsDesc, s.Meetings)
		counter(secondsDesc, s.Seconds)
		counter(participantsDesc, s.Participants)
		counter(participantSecondsDesc, s.ParticipantSeconds)
		for i, feat := range umeeting.FeatureNames {
			counter(featureDesc, s.Features[i], feat)
		}
	}
	return ms
}

// buildHosts appends the info and latest-meeting gauges of the admitted
// hosts to ms.
func buildHosts(ms []prometheus.Metric, name string, hosts []store.HostSnapshot) []prometheus.Metric {
	for _, h := range hosts {
		if h.Admitted {
			ms = append(ms,
				prometheus.MustNewConstMetric(hostInfoGauge, prometheus.GaugeValue, 1, name, h.Email, h.Host.Host, h.UserType),
				prometheus.MustNewConstMetric(hostLastDesc, prometheus.GaugeValue, float64(h.LastEnd), name, h.Host.Host, h.Email, h.UserType))
		}
	}
	return ms
}

// buildAccount appends the account-wide usage metrics of snap to ms, but
// for the gauges that move with time (buildGauges): histograms and other
// numbers by account or user_type.
func buildAccount(ms []prometheus.Metric, name string, snap *store.Snapshot) []prometheus.Metric {
	for _, ut := range sortedKeys(snap.Histograms) {
		h := snap.Histograms[ut]
		ms = append(ms,
			constHistogram(durationHistDesc, h.Duration, store.DurationBuckets, name, ut),
			constHistogram(participantsHistDesc, h.Participants, store.ParticipantBuckets, name, ut))
	}
	ms = append(ms,
		prometheus.MustNewConstMetric(rememberedDesc, prometheus.GaugeValue, float64(snap.Remembered), name),
		prometheus.MustNewConstMetric(foldedDesc, prometheus.CounterValue, float64(snap.Folded), name))
	for _, r := range sortedKeys(snap.Invalid) {
		ms = append(ms, prometheus.MustNewConstMetric(invalidDesc, prometheus.CounterValue, float64(snap.Invalid[r]), name, r))
	}
	return ms
}

// buildGauges appends the usage gauges of snap that move with time alone
// (see store.Store.Gauges) to ms.
func buildGauges(ms []prometheus.Metric, name string, snap *store.Snapshot) []prometheus.Metric {
	for _, w := range store.ActiveWindows {
		counts := snap.ActiveHosts[w.Name]
		for _, ut := range sortedKeys(counts) {
			ms = append(ms, prometheus.MustNewConstMetric(activeHostsDesc, prometheus.GaugeValue, float64(counts[ut]), name, ut, w.Name))
		}
	}
	return append(ms,
		prometheus.MustNewConstMetric(peakMeetingsDesc, prometheus.GaugeValue, float64(snap.PeakMeetings), name),
		prometheus.MustNewConstMetric(peakParticipantsDesc, prometheus.GaugeValue, float64(snap.PeakParticipants), name))
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
