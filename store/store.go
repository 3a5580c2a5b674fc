// Package store remembers, for one account, what was already counted: the
// meetings still able to reappear in an answer (for dedup), the counter
// values, the histograms and every host's latest meeting. It survives
// restarts and crashes through a state file written atomically after each
// poll.
//
// Counting rules (README "How counting works"):
//   - A persisted horizon that never moves back: a meeting that ended before
//     it is never counted, whatever the lookback, the backfill or the clock
//     say later; such records only update hosts. Every counted meeting that
//     ended at or after the horizon is remembered, so it is never counted
//     twice.
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
//     undoes the poll when the save fails, so what is served is durable.
package store

import (
	"bytes"
	"cmp"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
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
	// for baseline series and those of older releases.
	Created int64
	// Exposed says the series was in the last published snapshot, since
	// Since (unix seconds).
	Exposed bool
	Since   int64
	// Held, when set, is what is shown instead of Counters until the
	// series was exposed for one poll.
	Held *Counters
}

func (x *series) clone() *series {
	c := *x
	if x.Held != nil {
		h := *x.Held
		c.Held = &h
	}
	return &c
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
	Since int64 // unix seconds; 0 in states of format 4: the next poll
}

func (h *Histograms) clone() *Histograms {
	return &Histograms{Duration: h.Duration.clone(), Participants: h.Participants.clone(), New: h.New, Since: h.Since}
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
	// Seam is the time of the first poll (the baseline); 0 for states of
	// older releases.
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
	// Requests are the times (unix nanoseconds, oldest first) of the API
	// requests inside the daily budget's window, so a restart cannot
	// hand out a fresh allowance.
	Requests []int64
	Groups   groups // counters by department and cost centre (groups.go)

	// migrate says the state comes from a file of a release before format 4, whose series were
	// per host whatever the policy: see migrateOlder.
	migrate bool
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
		Groups:      newGroups(),
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
	undo   *undoLog // what the last Apply changed, until Commit or Rollback
	// saveMu serialises Save, which reuses buf outside mu.
	saveMu sync.Mutex
	buf    bytes.Buffer

	// saveBlocked, when set, is why Save must not write the state file.
	saveBlocked error

	// attributor joins counted meetings with the directory (groups.go).
	attributor Attributor
	maxGroups  int

	// gen changes whenever what a Snapshot shows may have changed, but for
	// the gauges that move with time alone (see Generation).
	gen uint64
	// shown is the last Snapshot's series and hosts and what changed since.
	shown shown
	// changes counts the changes of what the state file holds, but for
	// the time of the last poll alone; saved is its value, and
	// savedThrough the time of the last poll, at the last successful Save
	// (see Commit).
	changes, saved uint64
	savedThrough   int64
	// timeline and hostEnds answer the gauges that move with time (peaks.go).
	timeline *timeline
	hostEnds *hostEnds
	// adm is the last admission, valid while admOK: until a host or the
	// policy changes.
	adm   map[string]bool
	admOK bool
	// admitOnly, when set, are the only hosts admission may admit
	// (KeepAdmission).
	admitOnly map[string]bool
	// admSynced: every host's Admitted and every series' Exposed follow
	// adm, so an Apply that moved no host and counted nothing need not
	// visit them.
	admSynced bool
	// minEnd is the earliest end of a remembered meeting, known while
	// minEndOK: prune need not visit them before one ends too early.
	minEnd   int64
	minEndOK bool
	// servingSince is the time of the first SetPolicy, when this process
	// began serving the state: holds count time from then at the
	// earliest (see shownFor). 0: no SetPolicy yet.
	servingSince int64
	// noneHeld: no series is held (Held nil), so Apply need not look for
	// series to release. Set by the Apply that finds none; cleared where
	// Held is set and on Rollback.
	noneHeld bool
	// lastApplied is the batch of the last Apply not rolled back (0: none)
	// and lastKeepFrom its KeepFrom; prunedBefore is the latest time
	// before which prune forgot meetings. Batch.Vouches reads them.
	lastApplied  uint64
	lastKeepFrom time.Time
	prunedBefore int64
}

// Generation is a number that changes whenever what a Snapshot shows may
// have changed, except the gauges that move with time alone (Gauges). A
// publisher that read it before its last Snapshot, and reads the same
// again, needs only Gauges.
func (s *Store) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// SetPolicy sets the policy, at now. Which hosts have series of their own
// changes at once; a series it exposes (again) shows the value it has now
// until it was exposed for HoldFor, so its next increments are seen. The
// first call starts the holds of the state again: held series, histograms
// and groups are released after HoldFor from it at the earliest, so that
// after a restart, however long the exporter was down, the value held is
// served long enough to be scraped. A state of an older release is
// converted with it (see migrateOlder).
func (s *Store) SetPolicy(p Policy, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.servingSince == 0 {
		s.servingSince = now.Unix()
	}
	s.gen++
	s.shown.reset()
	s.changes++
	s.policy = p
	s.admOK, s.admSynced = false, false
	s.migrateOlder()
	adm := s.admission()
	for email, h := range s.st.Hosts {
		h.Admitted = adm[email]
	}
	t := now.Unix()
	for k, x := range s.st.Series {
		exposed := k.Email == "" || adm[k.Email]
		switch {
		case exposed && !x.Exposed:
			x.Exposed, x.Since = true, t
			if x.Held == nil {
				held := x.Counters
				x.Held, s.noneHeld = &held, false
			}
		case !exposed && x.Exposed:
			x.Exposed, x.Since = false, 0
		}
	}
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

// migrateOlder turns the per-host series of a state of a release before format 4 into series of
// the admitted hosts and, for the others, the series without host labels,
// which is what that release served: the numbers go on from there.
func (s *Store) migrateOlder() {
	if !s.st.migrate {
		return
	}
	s.st.migrate = false
	s.gen++
	s.admSynced = false
	s.shown.reset()
	s.changes++
	adm := s.admission()
	for email, h := range s.st.Hosts {
		h.Admitted = adm[email]
	}
	for k, x := range s.st.Series {
		x.Exposed = true
		if k.Email == "" || adm[k.Email] {
			continue
		}
		delete(s.st.Series, k)
		o := s.st.Series[SeriesKey{UserType: k.UserType}]
		if o == nil {
			o = &series{Exposed: true}
			s.st.Series[SeriesKey{UserType: k.UserType}] = o
		}
		o.merge(&x.Counters)
	}
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
	s.changes++
}

// ReadHistoryAgain marks the read of older history as not done, so that a
// raised backfill reads it for hosts' latest meetings; it counts nothing,
// since all of it is before the horizon.
func (s *Store) ReadHistoryAgain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Backfilled = false
	s.changes++
}

// CountedThrough is the time of the last successful poll; zero before it.
func (s *Store) CountedThrough() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return unixTime(s.st.CountedThrough)
}

// Seam is the time of the first poll, whose backfill is in the counters'
// starting values; zero for states of releases before it was kept.
func (s *Store) Seam() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return unixTime(s.st.Seam)
}

// Horizon is the time before which no meeting is counted any more.
func (s *Store) Horizon() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return unixTime(s.st.Horizon)
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

// Batch collects the records of one poll. It implements umeeting.Sink and
// keeps only what is new, so its size grows with new meetings, not with
// the size of an answer. Nothing reaches the Store before Apply.
type Batch struct {
	s   *Store
	win Window
	id  uint64 // its stamp (see Vouches)

	newMeetings []newMeeting // see newmeeting.go
	names       []hostNames
	namesIndex  map[hostNames]uint32
	pageMark    int

	// hostOnly are meetings too old to remember that may still move a
	// host's latest meeting forward (backfill).
	hostOnly     []umeeting.Meeting
	hostBest     map[string]int64
	hostOnlyMark int

	invalid     []invalidRecord
	invalidSet  map[uint64]struct{}
	invalidMark int
}

type invalidRecord struct {
	reason string
	hash   uint64
	known  bool // already counted: only its last-listed time moves
}

// NewBatch starts collecting the records of a poll with window w.
func (s *Store) NewBatch(w Window) *Batch {
	return &Batch{
		s:          s,
		win:        w,
		id:         batchIDs.Add(1),
		hostBest:   map[string]int64{},
		invalidSet: map[uint64]struct{}{},
		namesIndex: map[hostNames]uint32{},
	}
}

// batchIDs numbers the batches of every Store, so that a stamp names one
// batch of one Store.
var batchIDs atomic.Uint64

// Stamp implements umeeting.Voucher.
func (b *Batch) Stamp() uint64 { return b.id }

// Vouches implements umeeting.Voucher. Once a batch is applied, every
// meeting handed to it is remembered, or ended before its KeepFrom with its
// host's latest meeting at least as late; a meeting is forgotten only by
// prune or Rollback. So handing over again a meeting handed to the last
// batch applied changes nothing in this batch, unless that batch was rolled
// back, or this one's KeepFrom moved back (a clock stepped back), below
// that batch's or below meetings forgotten, so that Meeting would keep what
// ended in between.
func (b *Batch) Vouches(stamp uint64) bool {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return stamp != 0 && stamp == s.lastApplied && !b.win.KeepFrom.Before(s.lastKeepFrom) &&
		b.win.KeepFrom.Unix() >= s.prunedBefore
}

// ReadFrom says the batch's requests reached back to t only (a first poll
// that could not read all of its backfill): nothing that ended before t is
// counted, and the horizon is not set below t, so the part not read is
// never counted by a later poll either.
func (b *Batch) ReadFrom(t time.Time) {
	if t.After(b.win.CountFrom) {
		b.win.CountFrom = t
	}
}

// Meeting implements umeeting.Sink. A meeting listed twice in one answer
// is kept twice here and dropped by Apply, which saves a second map.
func (b *Batch) Meeting(m *umeeting.Meeting) {
	if m.End.Before(b.win.KeepFrom) {
		b.hostCandidate(m)
		return
	}
	b.s.mu.Lock()
	old, known := b.s.st.Meetings[m.UUID]
	b.s.mu.Unlock()
	if !known || m.End.Unix() > old.End {
		b.keep(m) // new, or listed with a later end (see Apply)
	}
}

func (b *Batch) hostCandidate(m *umeeting.Meeting) {
	end := m.End.Unix()
	best, ok := b.hostBest[m.Email]
	if !ok {
		b.s.mu.Lock()
		if h := b.s.st.Hosts[m.Email]; h != nil {
			best, ok = h.LastEnd, true
		}
		b.s.mu.Unlock()
	}
	if ok && end <= best {
		return
	}
	b.hostBest[m.Email] = end
	b.hostOnly = append(b.hostOnly, *m)
}

// Invalid implements umeeting.Sink: an invalid record is counted once for
// as long as the API keeps listing it.
func (b *Batch) Invalid(reason string, raw []byte) {
	h := hashBytes(raw)
	if _, dup := b.invalidSet[h]; dup {
		return
	}
	b.s.mu.Lock()
	_, known := b.s.st.InvalidSeen[h]
	b.s.mu.Unlock()
	b.invalidSet[h] = struct{}{}
	b.invalid = append(b.invalid, invalidRecord{reason: reason, hash: h, known: known})
}

// CommitPage implements umeeting.Sink.
func (b *Batch) CommitPage() {
	b.pageMark, b.hostOnlyMark, b.invalidMark = len(b.newMeetings), len(b.hostOnly), len(b.invalid)
}

// DiscardPage implements umeeting.Sink: it forgets the records handed over
// since the last CommitPage.
func (b *Batch) DiscardPage() {
	b.newMeetings = b.newMeetings[:b.pageMark]
	for _, r := range b.invalid[b.invalidMark:] {
		delete(b.invalidSet, r.hash)
	}
	b.invalid = b.invalid[:b.invalidMark]
	if len(b.hostOnly) > b.hostOnlyMark {
		b.hostOnly = b.hostOnly[:b.hostOnlyMark]
		clear(b.hostBest)
		for _, m := range b.hostOnly {
			b.hostBest[m.Email] = max(b.hostBest[m.Email], m.End.Unix())
		}
	}
}

// ApplyResult says what Apply changed.
type ApplyResult struct {
	Counted    int // meetings added to the counters
	Remembered int // meetings remembered but not counted (ended before the horizon)
	Invalid    int // invalid records counted
	Pruned     int // remembered meetings forgotten
	Folded     int // counted meetings whose user_type was folded into OtherUserType
	// Saved: Commit wrote the state (it does not when the poll changed
	// nothing but its own time, see Commit).
	Saved bool
}

// undoLog is what one Apply changed, to put back on Rollback.
type undoLog struct {
	header      header
	series      map[SeriesKey]*series // prior values; nil: absent
	hists       map[string]*Histograms
	hosts       map[string]*Host
	added       []string           // remembered meetings added
	prior       map[string]meeting // remembered meetings changed or forgotten, as they were before
	invalid     map[string]uint64  // prior copy (few reasons)
	invalidSeen map[uint64]int64   // prior values; -1: absent
	userTypes   []string           // added to the set in use
	groups      groups             // prior copy (few departments)
}

func (u *undoLog) touchSeries(st *state, k SeriesKey) {
	remember(u.series, st.Series, k, (*series).clone)
}

func (u *undoLog) touchHist(st *state, ut string) {
	remember(u.hists, st.Hists, ut, (*Histograms).clone)
}

func (u *undoLog) touchHost(st *state, email string) {
	remember(u.hosts, st.Hosts, email, func(h *Host) *Host { c := *h; return &c })
}

// keepPrior keeps m, the remembered meeting id before the poll first
// changed it, for Rollback to put back.
func (u *undoLog) keepPrior(id string, m meeting) {
	if _, done := u.prior[id]; !done {
		u.prior[id] = m
	}
}

// remember keeps in prior a copy of cur[k] as it was before the poll first
// changed it (nil: absent), once per key, for Rollback to put back.
func remember[K comparable, V any](prior, cur map[K]*V, k K, clone func(*V) *V) {
	if _, done := prior[k]; done {
		return
	}
	var p *V
	if v := cur[k]; v != nil {
		p = clone(v)
	}
	prior[k] = p
}

// Commit applies the batch of a successful poll and saves the state. When
// the save fails the poll is undone, so the counters served never run
// ahead of what a restart would load; its meetings are counted by a later
// poll whose save succeeds. A poll that changed nothing the state file
// holds but the time of the last poll is not saved, unless that time was
// last saved maxUnsaved ago: a restart then loads the same counts,
// horizon, remembered meetings and invalid records, and polls at once.
func (s *Store) Commit(b *Batch) (ApplyResult, error) {
	res := s.Apply(b)
	if !s.needsSave() {
		return res, nil
	}
	if err := s.Save(); err != nil {
		s.Rollback()
		return ApplyResult{}, err
	}
	res.Saved = true
	return res, nil
}

// maxUnsaved bounds how old the time of the last poll in the state file
// gets while polls change nothing else.
const maxUnsaved = time.Hour

// needsSave says whether the state differs from the one last saved in more
// than the time of the last poll, or that time was saved maxUnsaved ago.
func (s *Store) needsSave() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveBlocked != nil || s.changes != s.saved ||
		s.st.CountedThrough-s.savedThrough >= int64(maxUnsaved/time.Second)
}

// Rollback undoes the last Apply.
func (s *Store) Rollback() {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.undo
	if u == nil {
		return
	}
	s.undo = nil
	s.minEndOK, s.noneHeld = false, false
	s.lastApplied = 0
	s.gen++
	s.shown.touched(u)
	s.changes++
	s.admOK, s.admSynced = false, false
	st := s.st
	st.header = u.header
	restore(st.Series, u.series)
	restore(st.Hists, u.hists)
	restore(st.Hosts, u.hosts)
	// Put back what changed, then drop what was added: a meeting the poll
	// both added and forgot is gone, not back without its count.
	for id, m := range u.prior {
		st.Meetings[id] = m
	}
	for _, id := range u.added {
		delete(st.Meetings, id)
	}
	st.Invalid = u.invalid
	st.Groups = u.groups
	for h, t := range u.invalidSeen {
		if t == -1 {
			delete(st.InvalidSeen, h)
		} else {
			st.InvalidSeen[h] = t
		}
	}
	for _, ut := range u.userTypes {
		delete(st.userTypes, ut)
	}
}

func restore[K comparable, V any](m map[K]*V, prior map[K]*V) {
	for k, v := range prior {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
}

// Apply adds the batch of a successful poll to the state: it counts the new
// meetings that ended at or after the horizon, remembers them, moves hosts'
// latest meetings forward, publishes held series, moves the horizon and
// forgets meetings that can no longer be counted. Rollback undoes it.
func (s *Store) Apply(b *Batch) ApplyResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.migrateOlder()
	st := s.st
	u := &undoLog{
		header:      st.header,
		series:      map[SeriesKey]*series{},
		hists:       map[string]*Histograms{},
		hosts:       map[string]*Host{},
		prior:       map[string]meeting{},
		invalid:     cloneMap(st.Invalid),
		invalidSeen: map[uint64]int64{},
		groups:      st.Groups.clone(),
	}
	s.undo = u
	var res ApplyResult
	win := b.win
	now := win.Now.Unix()
	if !win.hostsOnly {
		s.releaseGroups(now)
	}

	// Series and histograms exposed for a poll show what they hold from now on.
	if !s.noneHeld && !win.hostsOnly {
		s.noneHeld = true
		for k, x := range st.Series {
			switch {
			case x.Held == nil:
			case s.exposedFor(x, now):
				u.touchSeries(st, k)
				x.Held = nil
			default:
				s.noneHeld = false
			}
		}
	}
	for ut, h := range st.Hists {
		if h.New && !win.hostsOnly && s.shownFor(h.Since, now) {
			u.touchHist(st, ut)
			h.New = false
		}
	}

	if len(st.Meetings) == 0 {
		// The first poll or backfill: size the map once instead of growing it.
		st.Meetings = make(map[string]meeting, len(b.newMeetings))
	}
	countFrom := win.CountFrom.Unix()
	var counted []int // indexes in b.newMeetings
	var m umeeting.Meeting
	for i := range b.newMeetings {
		old, known := st.Meetings[b.newMeetings[i].uuid]
		if known && b.newMeetings[i].end <= old.End {
			continue
		}
		b.meeting(i, &m)
		start, end := m.Start.Unix(), m.End.Unix()
		if known {
			// Listed again with a later end: remembered until that end, as
			// the API keeps listing it until the horizon passes it.
			u.keepPrior(m.UUID, old)
			old.End = end
			st.Meetings[m.UUID] = old
		} else {
			st.Meetings[m.UUID] = meeting{Start: start, End: end, Participants: uint32(min(m.Participants, 1<<31))}
			s.minEnd = min(s.minEnd, end)
			u.added = append(u.added, m.UUID)
		}
		if end <= now {
			st.MaxEnd = max(st.MaxEnd, end)
		}
		s.updateHost(u, &m)
		switch {
		case known:
		case end < countFrom:
			res.Remembered++
		default:
			counted = append(counted, i)
		}
	}
	for i := range b.hostOnly {
		s.updateHost(u, &b.hostOnly[i])
	}
	adm := s.admission()
	hosts := st.Hosts
	if s.admSynced {
		hosts = nil // no host moved since they were set
	}
	for email, h := range hosts {
		if h.Admitted != adm[email] {
			u.touchHost(st, email)
			h.Admitted = adm[email]
		}
	}
	for _, i := range counted {
		b.meeting(i, &m)
		key := SeriesKey{UserType: s.fold(u, m.UserType)}
		if key.UserType != m.UserType {
			res.Folded++
			st.Folded++
		}
		if adm[m.Email] {
			key.Email = m.Email
		}
		s.count(u, key, &m, uint64(m.End.Unix()-m.Start.Unix()), win)
		res.Counted++
	}
	series := st.Series
	if s.admSynced && len(counted) == 0 {
		series = nil // none new, none whose host moved: all follow adm
	}
	for k, x := range series {
		exposed := k.Email == "" || adm[k.Email]
		if x.Exposed != exposed {
			u.touchSeries(st, k)
			x.Exposed, x.Since = exposed, 0
			if exposed {
				x.Since = now
			}
		}
	}
	s.admSynced = true

	for _, r := range b.invalid {
		prior, known := st.InvalidSeen[r.hash]
		if _, done := u.invalidSeen[r.hash]; !done {
			if !known {
				prior = -1
			}
			u.invalidSeen[r.hash] = prior
		}
		st.InvalidSeen[r.hash] = max(prior, now)
		if !known {
			st.Invalid[r.reason]++
			res.Invalid++
		}
	}
	if win.Baseline {
		// History before the backfill is never counted later either.
		st.Backfilled = true
		st.Seam = now
		st.Horizon = max(st.Horizon, countFrom)
	}
	st.CountedThrough = max(st.CountedThrough, now)
	st.Horizon = max(st.Horizon, min(now, st.MaxEnd)-int64(win.Lookback/time.Second))
	res.Pruned = s.prune(u, now)
	s.lastApplied, s.lastKeepFrom = b.id, win.KeepFrom
	changed := u.changed(st)
	if changed {
		s.gen++
	}
	s.shown.touched(u)
	h, prior := st.header, u.header
	h.CountedThrough, prior.CountedThrough = 0, 0
	if changed || h != prior || len(u.invalidSeen) > 0 {
		s.changes++
	}
	return res
}

// changed says whether an Apply logged in u changed what a Snapshot shows:
// everything it changes there is logged, for Rollback.
func (u *undoLog) changed(st *state) bool {
	return len(u.series)+len(u.hists)+len(u.hosts)+len(u.added)+len(u.prior)+len(u.userTypes) > 0 ||
		u.header.Folded != st.Folded || u.header.Seam != st.Seam ||
		!maps.Equal(u.invalid, st.Invalid) || !reflect.DeepEqual(u.groups, st.Groups)
}

func (g groups) clone() groups {
	c := newGroups()
	for _, p := range [][2]map[string]*group{{g.Departments, c.Departments}, {g.CostCenters, c.CostCenters}} {
		for name, gr := range p[0] {
			cp := *gr
			p[1][name] = &cp
		}
	}
	return c
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// fold returns ut, or OtherUserType once MaxUserTypes values are in use.
func (s *Store) fold(u *undoLog, ut string) string {
	if _, ok := s.st.userTypes[ut]; ok {
		return ut
	}
	if s.policy.MaxUserTypes > 0 && len(s.st.userTypes) >= s.policy.MaxUserTypes {
		ut = OtherUserType
		if _, ok := s.st.userTypes[ut]; ok {
			return ut
		}
	}
	s.st.userTypes[ut] = struct{}{}
	u.userTypes = append(u.userTypes, ut)
	return ut
}

func (s *Store) count(u *undoLog, key SeriesKey, m *umeeting.Meeting, secs uint64, win Window) {
	st := s.st
	u.touchSeries(st, key)
	x := st.Series[key]
	switch {
	case x == nil:
		x = &series{}
		if !win.Baseline {
			x.Created = win.Now.Unix()
			x.Held, s.noneHeld = &Counters{}, false
		}
		st.Series[key] = x
	case !x.Exposed && x.Held == nil && !win.Baseline:
		// Coming back (its host admitted again): show the old values first.
		held := x.Counters
		x.Held, s.noneHeld = &held, false
	}
	x.Counters.add(m, secs)
	p := uint64(m.Participants)
	u.touchHist(st, key.UserType)
	h := st.Hists[key.UserType]
	if h == nil {
		h = &Histograms{Duration: newHistogram(DurationBuckets), Participants: newHistogram(ParticipantBuckets)}
		if !win.Baseline {
			h.New, h.Since = true, win.Now.Unix()
		}
		st.Hists[key.UserType] = h
	}
	h.Duration.observe(DurationBuckets, secs)
	h.Participants.observe(ParticipantBuckets, p)
	s.countGroups(m, secs, win.Now.Unix())
}

func (s *Store) updateHost(u *undoLog, m *umeeting.Meeting) {
	end := m.End.Unix()
	h := s.st.Hosts[m.Email]
	if h != nil && end <= h.LastEnd {
		return
	}
	u.touchHost(s.st, m.Email)
	s.admOK, s.admSynced = false, false
	ut := s.fold(u, m.UserType)
	if h == nil {
		s.st.Hosts[m.Email] = &Host{Host: m.Host, UserType: ut, LastEnd: end, Order: s.st.NextOrder}
		s.st.NextOrder++
		return
	}
	h.Host, h.UserType, h.LastEnd = m.Host, ut, end
}

// KeepAdmission lets only the hosts of admitted get series of their own:
// those the first start admitted, for a replay of its history (package
// history). The replay meets the hosts oldest first, while the first start
// met them newest first; under max_hosts it would admit others for a time,
// whose series the live ones do not continue, and the first start's hosts
// late. With it, the replay's series are the live ones from the start.
func (s *Store) KeepAdmission(admitted map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admitOnly = admitted
	s.admOK, s.admSynced = false, false
}

// admission returns the e-mails of the hosts that get series of their
// own: those with an e-mail that the filters keep (matched against the
// e-mail and the latest display name), the first MaxHosts of them in
// first-seen order.
func (s *Store) admission() map[string]bool {
	if s.admOK {
		return s.adm
	}
	s.adm, s.admOK = s.admit(), true
	return s.adm
}

// admit computes admission (which hosts get series of their own).
func (s *Store) admit() map[string]bool {
	p := s.policy
	if !p.PerHost {
		return nil
	}
	type cand struct {
		email string
		order uint64
	}
	kept := make([]cand, 0, len(s.st.Hosts))
	for email, h := range s.st.Hosts {
		if email == "" {
			continue // no identity: it would be the series without host labels
		}
		match := func(re *regexp.Regexp) bool { return re.MatchString(email) || re.MatchString(h.Host) }
		if (p.Include == nil || match(p.Include)) && (p.Exclude == nil || !match(p.Exclude)) && (s.admitOnly == nil || s.admitOnly[email]) {
			kept = append(kept, cand{email, h.Order})
		}
	}
	if p.MaxHosts > 0 && len(kept) > p.MaxHosts {
		slices.SortFunc(kept, func(a, b cand) int { return cmp.Compare(a.order, b.order) })
		kept = kept[:p.MaxHosts]
	}
	set := make(map[string]bool, len(kept))
	for _, c := range kept {
		set[c.email] = true
	}
	return set
}

// prune forgets meetings that ended before the horizon and outside the
// peak window, and invalid records no longer listed.
func (s *Store) prune(u *undoLog, now int64) int {
	before := min(s.st.Horizon, now-int64(PeakWindow/time.Second))
	n := 0
	if !s.minEndOK || s.minEnd < before {
		s.minEnd, s.minEndOK = math.MaxInt64, true
		for id, m := range s.st.Meetings {
			if m.End < before {
				u.keepPrior(id, m)
				delete(s.st.Meetings, id)
				n++
			} else {
				s.minEnd = min(s.minEnd, m.End)
			}
		}
		if n > 0 {
			s.prunedBefore = max(s.prunedBefore, before)
		}
	}
	invalidBefore := now - int64(invalidKeep/time.Second)
	for h, seen := range s.st.InvalidSeen {
		if seen < invalidBefore {
			if _, done := u.invalidSeen[h]; !done {
				u.invalidSeen[h] = seen
			}
			delete(s.st.InvalidSeen, h)
		}
	}
	return n
}

// Snapshot is an immutable copy of the numbers to expose, taken at At.
type Snapshot struct {
	At time.Time
	// Series are the exposed series, with the values to show.
	Series           []Series
	Histograms       map[string]Histograms
	Hosts            []HostSnapshot
	ActiveHosts      map[string]map[string]int // window → user_type → hosts
	PeakMeetings     int
	PeakParticipants int
	Invalid          map[string]uint64
	Remembered       int
	// Folded counts meetings whose user_type was folded into OtherUserType.
	Folded uint64
	// Seam is the time of the baseline poll; zero for older states.
	Seam time.Time
	// Departments and CostCenters are the counters by directory group,
	// sorted by name; empty without a directory.
	Departments, CostCenters []GroupSeries
}

// Series is one exposed counter series.
type Series struct {
	SeriesKey
	Counters
	// Created is when the series was first published at zero; zero for
	// series whose history starts in the baseline.
	Created time.Time
}

// HostSnapshot is one host's latest meeting.
type HostSnapshot struct {
	Email string
	Host
}

// ActiveWindows are the windows of umeeting_active_hosts.
var ActiveWindows = []struct {
	Name string
	D    time.Duration
}{{"1d", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

// Snapshot copies the state's numbers; gauges are computed at now.
func (s *Store) Snapshot(now time.Time) *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.migrateOlder()
	snap := &Snapshot{
		At:          now,
		Histograms:  make(map[string]Histograms, len(s.st.Hists)),
		ActiveHosts: map[string]map[string]int{},
		Invalid:     make(map[string]uint64, len(umeeting.InvalidReasons)),
		Remembered:  len(s.st.Meetings),
		Folded:      s.st.Folded,
		Seam:        unixTime(s.st.Seam),
	}
	snap.Series, snap.Hosts = s.snapshotSeries()
	for ut, h := range s.st.Hists {
		if h.New {
			snap.Histograms[ut] = Histograms{Duration: newHistogram(DurationBuckets), Participants: newHistogram(ParticipantBuckets)}
			continue
		}
		snap.Histograms[ut] = Histograms{Duration: h.Duration.clone(), Participants: h.Participants.clone()}
	}
	snap.ActiveHosts, snap.PeakMeetings, snap.PeakParticipants = s.gauges(now)
	for _, r := range umeeting.InvalidReasons {
		snap.Invalid[r] = s.st.Invalid[r]
	}
	for r, n := range s.st.Invalid {
		snap.Invalid[r] = n
	}
	s.snapshotGroups(snap)
	return snap
}

// Gauges computes the Snapshot's gauges that move with time alone, at now:
// ActiveHosts, PeakMeetings and PeakParticipants.
func (s *Store) Gauges(now time.Time) (activeHosts map[string]map[string]int, peakMeetings, peakParticipants int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.migrateOlder()
	return s.gauges(now)
}

func (s *Store) gauges(now time.Time) (activeHosts map[string]map[string]int, peakMeetings, peakParticipants int) {
	peakMeetings, peakParticipants = s.peaks(now)
	return s.activeHosts(now), peakMeetings, peakParticipants
}

func (h *Histogram) clone() *Histogram {
	c := *h
	c.Buckets = slices.Clone(h.Buckets)
	return &c
}

// peaks returns the most meetings and the most participants in progress
// at one moment of the trailing PeakWindow, each meeting an interval
// [start, end).
func (s *Store) peaks(now time.Time) (meetings, participants int) {
	from, to := now.Add(-PeakWindow).Unix(), now.Unix()
	return s.timelineFrom(from).peaks(from, to)
}

// WithoutHosts returns a copy of snap as a policy without per-host series
// would show it: every series merged into the series without host labels
// of its user_type, no host admitted.
func (snap *Snapshot) WithoutHosts() *Snapshot {
	c := *snap
	merged := map[string]*Series{}
	c.Series = nil
	for _, s := range snap.Series {
		m := merged[s.UserType]
		if m == nil {
			m = &Series{SeriesKey: SeriesKey{UserType: s.UserType}}
			merged[s.UserType] = m
		}
		m.merge(&s.Counters)
	}
	for _, m := range merged {
		c.Series = append(c.Series, *m)
	}
	slices.SortFunc(c.Series, func(a, b Series) int { return cmp.Compare(a.UserType, b.UserType) })
	c.Hosts = slices.Clone(snap.Hosts)
	for i := range c.Hosts {
		c.Hosts[i].Admitted = false
	}
	return &c
}
