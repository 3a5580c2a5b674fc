// Package collector knows every metric name, label and help text of the exporter, and builds the metrics of each account from the store's snapshots and the directory.
package collector

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/umeeting/umeeting_exporter/directory"
	"github.com/umeeting/umeeting_exporter/exposition"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

const namespace = "umeeting"

const fromLastPoll = " Values come from the last successful poll."

// metric is what a usage metric is: the Writer writes it from this, and
// desc builds it as a const metric.
type metric struct {
	name, help string
	typ        dto.MetricType
	labels     []string
	desc       *prometheus.Desc
}

func newMetric(name, help string, typ dto.MetricType, labels ...string) *metric {
	fq := prometheus.BuildFQName(namespace, "", name)
	return &metric{name: fq, help: help, typ: typ, labels: labels, desc: prometheus.NewDesc(fq, help, labels, nil)}
}

// family is one usage counter family, with and without host labels.
type family struct {
	withHost, withoutHost *metric
}

func newFamily(name, help string, extra ...string) family {
	help += fromLastPoll
	return family{
		withHost:    newMetric(name, help, dto.MetricType_COUNTER, append([]string{"account", "email", "user_type"}, extra...)...),
		withoutHost: newMetric(name, help, dto.MetricType_COUNTER, append([]string{"account", "user_type"}, extra...)...),
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

	durationHistDesc = newMetric("meeting_duration_seconds",
		"Distribution of the lengths of finished meetings, in seconds."+fromLastPoll, dto.MetricType_HISTOGRAM, "account", "user_type")
	participantsHistDesc = newMetric("meeting_participants",
		"Distribution of the participants of finished meetings."+fromLastPoll, dto.MetricType_HISTOGRAM, "account", "user_type")

	hostInfoGauge = newMetric("host_info",
		"Always 1: the latest display name and licence type of each host with series of its own, for joins like `* on(account, email) group_left(host) umeeting_host_info`."+fromLastPoll, dto.MetricType_GAUGE,
		"account", "email", "host", "user_type")
	foldedDesc = newMetric("meetings_user_type_folded_total",
		"Meetings counted with user_type \"other\" because the account already had metrics.max_user_types distinct licence types.", dto.MetricType_COUNTER, "account")
	hostLastDesc = newMetric("host_last_meeting_timestamp_seconds",
		"Unix time at which the host's latest meeting ended, one series per host e-mail with its latest name and user_type."+fromLastPoll, dto.MetricType_GAUGE,
		"account", "host", "email", "user_type")
	activeHostsDesc = newMetric("active_hosts",
		"Distinct hosts (by e-mail) whose latest meeting ended within the window, by the user_type of that meeting."+fromLastPoll, dto.MetricType_GAUGE,
		"account", "user_type", "window")
	peakMeetingsDesc = newMetric("concurrent_meetings_peak",
		"Most meetings in progress at the same moment during the trailing 24 hours."+fromLastPoll, dto.MetricType_GAUGE, "account")
	peakParticipantsDesc = newMetric("concurrent_participants_peak",
		"Most participants in meetings in progress at the same moment during the trailing 24 hours."+fromLastPoll, dto.MetricType_GAUGE, "account")
	invalidDesc = newMetric("records_invalid_total",
		"Records of the API skipped as invalid, each counted once, by reason.", dto.MetricType_COUNTER, "account", "reason")
	rememberedDesc = newMetric("remembered_meetings",
		"Meetings remembered to count each once; grows with the lookback, not with uptime.", dto.MetricType_GAUGE, "account")

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
// gathered per scrape. Hosts without series of their own are counted in a
// series of the same family without the email label.
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
	s := &sink{ms: make([]prometheus.Metric, 0, len(snap.Series)*(4+len(umeeting.AllFeatures))+2*len(snap.Hosts)+32)}
	s.counted(name, snap)
	s.gauges(name, snap)
	return s.ms
}

// sink receives an account's metrics: as const metrics (ms: the live
// gauges, history) or, with w set (newSink), written into the bytes the
// cache publishes.
type sink struct {
	ms   []prometheus.Metric
	w    *exposition.Writer
	fams map[*metric]exposition.FamilyWriter
}

func newSink() *sink {
	return &sink{w: exposition.NewWriter(), fams: map[*metric]exposition.FamilyWriter{}}
}

func (s *sink) sample(m *metric, v float64, created time.Time, lv ...string) {
	switch {
	case s.w != nil:
		s.family(m).Sample(v, created, lv...)
	case m.typ == dto.MetricType_GAUGE:
		s.ms = append(s.ms, prometheus.MustNewConstMetric(m.desc, prometheus.GaugeValue, v, lv...))
	case created.IsZero():
		s.ms = append(s.ms, prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, v, lv...))
	default:
		// OpenMetrics _created, for Prometheus versions that ingest it.
		s.ms = append(s.ms, prometheus.MustNewConstMetricWithCreatedTimestamp(m.desc, prometheus.CounterValue, v, created, lv...))
	}
}

func (s *sink) histogram(m *metric, h *store.Histogram, bounds []float64, lv ...string) {
	cum := make([]uint64, len(bounds))
	var n uint64
	for i := range bounds {
		n += h.Buckets[i]
		cum[i] = n
	}
	if s.w != nil {
		s.family(m).Histogram(bounds, cum, h.Count, float64(h.Sum), lv...)
		return
	}
	buckets := make(map[float64]uint64, len(bounds))
	for i, b := range bounds {
		buckets[b] = cum[i]
	}
	s.ms = append(s.ms, prometheus.MustNewConstHistogram(m.desc, h.Count, float64(h.Sum), buckets, lv...))
}

func (s *sink) family(m *metric) exposition.FamilyWriter {
	f, ok := s.fams[m]
	if !ok {
		f = s.w.Family(m.name, m.help, m.typ, m.labels...)
		s.fams[m] = f
	}
	return f
}

// counted sends the usage metrics of snap but for the gauges that move
// with time alone: the counters of every series, the gauges of the
// admitted hosts, the histograms and the other numbers by account.
func (s *sink) counted(name string, snap *store.Snapshot) {
	for i := range snap.Series {
		sr := &snap.Series[i]
		// Hosts without a series of their own have no email label at all:
		// an empty one would make the same series to Prometheus.
		counter := func(fam family, v uint64, extra ...string) {
			if sr.Email == "" {
				s.sample(fam.withoutHost, float64(v), sr.Created, append([]string{name, sr.UserType}, extra...)...)
				return
			}
			s.sample(fam.withHost, float64(v), sr.Created, append([]string{name, sr.Email, sr.UserType}, extra...)...)
		}
		counter(meetingsDesc, sr.Meetings)
		counter(secondsDesc, sr.Seconds)
		counter(participantsDesc, sr.Participants)
		counter(participantSecondsDesc, sr.ParticipantSeconds)
		for i, feat := range umeeting.FeatureNames {
			counter(featureDesc, sr.Features[i], feat)
		}
	}
	for _, h := range snap.Hosts {
		if h.Admitted {
			s.sample(hostInfoGauge, 1, time.Time{}, name, h.Email, h.Host.Host, h.UserType)
			s.sample(hostLastDesc, float64(h.LastEnd), time.Time{}, name, h.Host.Host, h.Email, h.UserType)
		}
	}
	for _, ut := range slices.Sorted(maps.Keys(snap.Histograms)) {
		h := snap.Histograms[ut]
		s.histogram(durationHistDesc, h.Duration, store.DurationBuckets, name, ut)
		s.histogram(participantsHistDesc, h.Participants, store.ParticipantBuckets, name, ut)
	}
	s.sample(rememberedDesc, float64(snap.Remembered), time.Time{}, name)
	s.sample(foldedDesc, float64(snap.Folded), time.Time{}, name)
	for _, r := range slices.Sorted(maps.Keys(snap.Invalid)) {
		s.sample(invalidDesc, float64(snap.Invalid[r]), time.Time{}, name, r)
	}
}

// gauges sends the usage gauges of snap that move with time alone (see
// store.Store.Gauges).
func (s *sink) gauges(name string, snap *store.Snapshot) {
	for _, w := range store.ActiveWindows {
		counts := snap.ActiveHosts[w.Name]
		for _, ut := range slices.Sorted(maps.Keys(counts)) {
			s.sample(activeHostsDesc, float64(counts[ut]), time.Time{}, name, ut, w.Name)
		}
	}
	s.sample(peakMeetingsDesc, float64(snap.PeakMeetings), time.Time{}, name)
	s.sample(peakParticipantsDesc, float64(snap.PeakParticipants), time.Time{}, name)
}
