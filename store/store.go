// Package store holds what one account counted: the counting model
// (Batch, Apply, Snapshot), the state file that keeps it across restarts
// (Open, Save) and the request log of the daily budget (RequestLog).
//
// Counting rules (docs/counting.md):
//   - A persisted horizon that never moves back: a meeting that ended before
//     it is never counted, whatever the lookback, the backfill or the clock
//     say later; such records only update hosts. Every counted meeting that
//     ended at or after the horizon is remembered, until the horizon passes
//     the latest end it was listed with, so it is never counted twice.
//   - The first poll of a fresh state reads the backfill and counts all of
//     it into the counters' starting values (the baseline), published at
//     once; Seam is the time of that poll.
//   - Where a meeting is counted is decided when it is counted: in its
//     host's own series when the host is admitted by the Policy, else in
//     the series without host labels of its user_type. History never moves
//     between series, so hosts entering or leaving the per-host set move
//     only new increments.
//   - A series that was not in the last published snapshot shows its old
//     values (0 for a new series) for one poll before it shows a new
//     increment, so Prometheus has seen it before it moves; the histograms
//     of a new user_type are shown empty as long, and then together.
//   - A poll is applied as a whole or not at all: Commit saves the state and
//     restores the state before the poll when the save fails, so what is
//     served is durable.
package store

import (
	"math"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/timex"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// DurationBuckets are the upper bounds, in seconds, of
// umeeting_meeting_duration_seconds.
var DurationBuckets = []float64{60, 300, 600, 900, 1800, 2700, 3600, 5400, 7200, 10800, 14400, 28800}

// ParticipantBuckets are the upper bounds of umeeting_meeting_participants.
var ParticipantBuckets = []float64{1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000}

// PeakWindow is the trailing window of the concurrency peaks.
const PeakWindow = 24 * time.Hour

// invalidKeep is how long the hash of an invalid record is kept after it
// was last listed: it may lack an end_time, and a request is padded by a
// day on each side.
const invalidKeep = 49 * time.Hour

// OtherUserType is the user_type that values beyond Policy.MaxUserTypes
// are folded into.
const OtherUserType = "other"

// Policy says which hosts get series of their own and bounds the distinct
// user_type values. It takes effect at the next Apply.
type Policy struct {
	PerHost bool
	Include *regexp.Regexp // nil: every host
	Exclude *regexp.Regexp // nil: none
	// MaxHosts caps the admitted hosts, first seen first; 0: no cap.
	MaxHosts int
	// MaxUserTypes caps the distinct user_type values, first seen first;
	// later ones are counted as OtherUserType. 0: no cap.
	MaxUserTypes int
	// HoldFor is how long a series must have been exposed before it shows
	// a held increment: the poll interval, so that a scrape saw it. 0: the
	// next poll.
	HoldFor time.Duration
}

// DefaultPolicy is the policy of a Store until SetPolicy.
var DefaultPolicy = Policy{PerHost: true}

// SeriesKey identifies one counter series: a host's identity (its e-mail)
// and its licence type at the time of the meeting. An empty Email is the
// series of the hosts without a series of their own.
type SeriesKey struct {
	Email    string
	UserType string
}

// Counters are the usage counters of one series. Lengths are whole seconds,
// so sums are exact.
type Counters struct {
	Meetings           uint64
	Seconds            uint64
	Participants       uint64
	ParticipantSeconds uint64
	Features           [6]uint64 // indexed like umeeting.AllFeatures
}

// series is one counter series and how it is published.
type series struct {
	Counters
	// Created is the unix time the series was first published at zero; 0
	// for baseline series.
	Created int64
	// Exposed says the series was in the last published snapshot, since
	// Since (unix seconds).
	Exposed bool
	Since   int64
	// Held, when set, is what is shown instead of Counters until the
	// series was exposed for one poll.
	Held *Counters
}

// Histogram is a cumulative-free histogram: Buckets[i] counts observations
// in (bound[i-1], bound[i]]; the last element counts those above every bound.
type Histogram struct {
	Buckets []uint64
	Sum     uint64
	Count   uint64
}

func newHistogram(bounds []float64) *Histogram {
	return &Histogram{Buckets: make([]uint64, len(bounds)+1)}
}

func (h *Histogram) observe(bounds []float64, v uint64) {
	i, _ := slices.BinarySearch(bounds, float64(v))
	h.Buckets[i]++
	h.Sum = satAdd(h.Sum, v)
	h.Count++
}

// add counts one meeting of secs seconds.
func (c *Counters) add(m *umeeting.Meeting, secs uint64) {
	p := uint64(m.Participants)
	c.Meetings++
	c.Seconds = satAdd(c.Seconds, secs)
	c.Participants = satAdd(c.Participants, p)
	c.ParticipantSeconds = satAdd(c.ParticipantSeconds, p*secs) // p×secs < 2^38: both are bounded by the client
	for i, f := range umeeting.AllFeatures {
		if m.Features&f != 0 {
			c.Features[i]++
		}
	}
}

// satAdd adds without wrapping: a counter that reached the top of uint64
// stays there instead of going down (read as a reset by increase()).
func satAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

// Histograms are the two histograms of one user_type.
type Histograms struct {
	Duration     *Histogram
	Participants *Histogram
	// New says the histograms were created after the baseline: they are
	// shown empty until exposed for HoldFor since Since, like the series
	// created with them, so that their first observations show together
	// with those series' first increments.
	New   bool
	Since int64 // unix seconds
}

// Host is what is known of one host (by e-mail): its latest meeting.
type Host struct {
	Host     string // display name at its latest meeting
	UserType string // licence type at its latest meeting
	LastEnd  int64  // unix seconds
	Order    uint64 // first-seen order, for a stable cap on per-host series
	Admitted bool   // has series of its own since the last poll
}

// meeting is what is remembered of a counted meeting: enough to dedup and
// to compute concurrency peaks.
type meeting struct {
	Start        int64
	End          int64
	Participants uint32
}

// header holds the scalar fields of the state.
type header struct {
	Backfilled bool
	// CountedThrough is the time of the last successful poll.
	CountedThrough int64
	NextOrder      uint64
	// Horizon never decreases: nothing that ended before it is counted.
	Horizon int64
	// Seam is the time of the first poll (the baseline); 0 before it.
	Seam int64
	// MaxEnd is the latest end of a listed meeting, at most the poll time:
	// the horizon follows the data, so a clock stepped forward cannot push
	// it past meetings still to come.
	MaxEnd int64
	// Folded counts meetings whose user_type was folded into OtherUserType.
	Folded uint64
}

// state is everything the state file holds.
type state struct {
	header
	Meetings    map[string]meeting
	Series      map[SeriesKey]*series
	Hists       map[string]*Histograms
	Hosts       map[string]*Host
	Invalid     map[string]uint64
	InvalidSeen map[uint64]int64 // hash of the raw record → last listed, unix
	Groups      groups           // counters by department and cost centre (groups.go)

	// userTypes are the distinct user_type values in use (not saved).
	userTypes map[string]struct{}
}

func newState() *state {
	return &state{
		Meetings:    map[string]meeting{},
		Series:      map[SeriesKey]*series{},
		Hists:       map[string]*Histograms{},
		Hosts:       map[string]*Host{},
		Invalid:     map[string]uint64{},
		InvalidSeen: map[uint64]int64{},
		Groups:      groups{Departments: map[string]*group{}, CostCenters: map[string]*group{}},
		userTypes:   map[string]struct{}{},
	}
}

// indexUserTypes rebuilds the set of user_type values in use.
func (st *state) indexUserTypes() {
	st.userTypes = map[string]struct{}{}
	for ut := range st.Hists {
		st.userTypes[ut] = struct{}{}
	}
	for _, h := range st.Hosts {
		st.userTypes[h.UserType] = struct{}{}
	}
	for k := range st.Series {
		st.userTypes[k.UserType] = struct{}{}
	}
}

// Store is the state of one account. Its methods are safe for concurrent
// use; the poller is its only writer.
type Store struct {
	mu     sync.Mutex
	path   string
	st     *state
	policy Policy
	// restorePoint is the state before the Apply of a Commit, encoded, for
	// rollback; while the state is not dirty, the bytes of the last save.
	restorePoint []byte
	saveMu       sync.Mutex // serialises Save, which writes outside mu

	// saveBlocked, when set, is why Save must not write the state file.
	saveBlocked error

	// attributor joins counted meetings with the directory (groups.go).
	attributor Attributor
	maxGroups  int

	// dirty says the state differs from the state file in more than the
	// time of the last poll; savedThrough is that time in the file.
	dirty        bool
	savedThrough int64
	// admitOnly, when set, are the only hosts admission may admit
	// (KeepAdmission).
	admitOnly map[string]bool
	// servingSince is the time of the first SetPolicy, when this process
	// began serving the state: holds count time from then at the
	// earliest (see shownFor). 0: no SetPolicy yet.
	servingSince int64
}

// SetPolicy sets the policy, at now. Which hosts have series of their own
// changes at once; a series it exposes (again) shows the value it has now
// until it was exposed for HoldFor, so its next increments are seen. The
// first call starts the holds of the state again: held series, histograms
// and groups are released after HoldFor from it at the earliest, so that
// after a restart, however long the exporter was down, the value held is
// served long enough to be scraped.
func (s *Store) SetPolicy(p Policy, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.servingSince == 0 {
		s.servingSince = now.Unix()
	}
	s.dirty = true
	s.policy = p
	s.expose(s.admission(), now.Unix(), true)
}

// expose admits the hosts of adm and exposes their series and those
// without host labels, at now, and says whether any of that changed. With
// hold, a series exposed again shows the value it has now until it was
// exposed for HoldFor (Apply holds the increments it counts itself).
func (s *Store) expose(adm map[string]bool, now int64, hold bool) (changed bool) {
	for email, h := range s.st.Hosts {
		if h.Admitted != adm[email] {
			h.Admitted, changed = adm[email], true
		}
	}
	for k, x := range s.st.Series {
		exposed := k.Email == "" || adm[k.Email]
		if x.Exposed == exposed {
			continue
		}
		x.Exposed, x.Since, changed = exposed, 0, true
		if exposed {
			x.Since = now
			if hold && x.Held == nil {
				held := x.Counters
				x.Held = &held
			}
		}
	}
	return changed
}

// exposedFor says whether x was exposed for the policy's HoldFor at now
// (a clock step counts as time passed).
func (s *Store) exposedFor(x *series, now int64) bool {
	return x.Exposed && s.shownFor(x.Since, now)
}

// shownFor says whether what was first shown at since was shown for the
// policy's HoldFor at now (a clock step counts as time passed), counting
// only the time this process served it: downtime is not time shown.
func (s *Store) shownFor(since, now int64) bool {
	d := now - max(since, s.servingSince)
	return d != 0 && time.Duration(max(d, -d))*time.Second >= s.policy.HoldFor
}

// merge adds the counts of o.
func (c *Counters) merge(o *Counters) {
	c.Meetings = satAdd(c.Meetings, o.Meetings)
	c.Seconds = satAdd(c.Seconds, o.Seconds)
	c.Participants = satAdd(c.Participants, o.Participants)
	c.ParticipantSeconds = satAdd(c.ParticipantSeconds, o.ParticipantSeconds)
	for i := range c.Features {
		c.Features[i] = satAdd(c.Features[i], o.Features[i])
	}
}

// Window says which meetings a poll asks for and counts.
type Window struct {
	Now time.Time
	// From is where the request starts.
	From time.Time
	// CountFrom is the horizon: meetings that ended before it are not
	// counted.
	CountFrom time.Time
	// KeepFrom: meetings that ended before it are not remembered.
	KeepFrom time.Time
	// Lookback is how late a meeting may be listed after it ended.
	Lookback time.Duration
	// Baseline: the first poll of a fresh state, counted into the
	// starting values.
	Baseline bool
	// hostsOnly: see HostsOnly.
	hostsOnly bool
}

// HostsOnly returns w for a read of older history that only updates hosts:
// it counts nothing and is no poll for the series held until one passed.
func (w Window) HostsOnly() Window {
	w.hostsOnly, w.Baseline = true, false
	w.CountFrom, w.KeepFrom = w.Now, timex.Earlier(w.KeepFrom, w.Now)
	return w
}

// Window returns the window of a poll at now. The first poll of a fresh
// state reaches back max(maxGap, lookback) and is the baseline. Later polls
// ask for at least lookback, and back to the horizon (at most maxGap) so
// that meetings that ended while the exporter was down are counted too.
func (s *Store) Window(now time.Time, lookback, maxGap time.Duration) Window {
	s.mu.Lock()
	defer s.mu.Unlock()
	reach := now.Add(-max(maxGap, lookback))
	w := Window{Now: now, Lookback: lookback}
	if s.st.CountedThrough == 0 {
		w.Baseline = true
		w.CountFrom = reach
	} else {
		w.CountFrom = time.Unix(s.st.Horizon, 0)
		reach = timex.Earlier(now.Add(-lookback), timex.Later(w.CountFrom, reach))
	}
	w.From = timex.Earlier(reach, now.Add(-PeakWindow))
	w.KeepFrom = timex.Earlier(w.CountFrom, now.Add(-PeakWindow))
	return w
}

// Backfilled says whether the one-time read of older history was done.
func (s *Store) Backfilled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Backfilled
}

// SetBackfilled records that the one-time read of older history was done.
func (s *Store) SetBackfilled() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Backfilled = true
	s.dirty = true
}

// ReadHistoryAgain marks the read of older history as not done, so that a
// raised backfill reads it for hosts' latest meetings; it counts nothing,
// since all of it is before the horizon.
func (s *Store) ReadHistoryAgain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Backfilled = false
	s.dirty = true
}

// CountedThrough is the time of the last successful poll; zero before it.
func (s *Store) CountedThrough() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return unixTime(s.st.CountedThrough)
}

// Seam is the time of the first poll, whose backfill is in the counters'
// starting values; zero before it.
func (s *Store) Seam() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return unixTime(s.st.Seam)
}

func unixTime(t int64) time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(t, 0)
}

// Remembered is how many meetings are remembered for dedup.
func (s *Store) Remembered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.st.Meetings)
}
