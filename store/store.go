// Package store remembers, for one account, what was already counted: the
// meetings still able to reappear in an answer (for dedup), the counter
// values, the histograms and every host's latest meeting. It survives
// restarts and crashes through a state file written atomically after each
// poll.
package store

import (
	"bytes"
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// DurationBuckets are the upper bounds, in seconds, of
// umeeting_meeting_duration_seconds.
var DurationBuckets = []float64{60, 300, 600, 900, 1800, 2700, 3600, 5400, 7200, 10800, 14400, 28800}

// ParticipantBuckets are the upper bounds of umeeting_meeting_participants.
var ParticipantBuckets = []float64{1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000}

// PeakWindow is the trailing window of the concurrency peaks.
const PeakWindow = 24 * time.Hour

// pruneMargin keeps remembered meetings a little longer than strictly
// needed, so a small backwards step of the clock cannot count one twice.
const pruneMargin = time.Hour

// SeriesKey identifies one counter series: a host's identity, its display
// name and licence type at the time of the meeting.
type SeriesKey struct {
	Email    string
	Host     string
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
}

// Host is what is known of one host (by e-mail): its latest meeting.
type Host struct {
	Host     string // display name at its latest meeting
	UserType string // licence type at its latest meeting
	LastEnd  int64  // unix seconds
	Order    uint64 // first-seen order, for a stable cap on per-host series
}

// meeting is what is remembered of a counted meeting: enough to dedup and
// to compute concurrency peaks.
type meeting struct {
	Start        int64
	End          int64
	Participants uint32
}

// state is everything the state file holds.
type state struct {
	Backfilled bool
	// CountedThrough is the time of the last successful poll: meetings that
	// ended after CountedThrough-lookback and are not remembered were not
	// counted yet, even after a long downtime.
	CountedThrough int64
	NextOrder      uint64
	Meetings       map[string]meeting
	Series         map[SeriesKey]*Counters
	Hists          map[string]*Histograms
	Hosts          map[string]*Host
	Invalid        map[string]uint64
	InvalidSeen    map[uint64]int64 // hash of the raw record → first seen, unix
	// Requests are the times (unix nanoseconds, oldest first) of the API
	// requests inside the daily budget's window, so a restart cannot
	// hand out a fresh allowance.
	Requests []int64
	Groups   groups // counters by department and cost centre (groups.go)
}

func newState() *state {
	return &state{
		Meetings:    map[string]meeting{},
		Series:      map[SeriesKey]*Counters{},
		Hists:       map[string]*Histograms{},
		Hosts:       map[string]*Host{},
		Invalid:     map[string]uint64{},
		InvalidSeen: map[uint64]int64{},
		Groups:      newGroups(),
	}
}

// Store is the state of one account. Its methods are safe for concurrent
// use; the poller is its only writer.
type Store struct {
	mu   sync.Mutex
	path string
	st   *state
	// saveMu serialises Save, which reuses buf outside mu.
	saveMu sync.Mutex
	buf    bytes.Buffer

	// saveBlocked, when set, is why Save must not write the state file.
	saveBlocked error

	// attributor joins counted meetings with the directory (groups.go).
	attributor Attributor
	maxGroups  int
}

// Window says which meetings a poll counts.
type Window struct {
	Now       time.Time
	CountFrom time.Time // meetings that ended before this are not counted
	KeepFrom  time.Time // meetings that ended before this are not remembered
}

// Window returns the counting window of a poll at now. It reaches back to
// the last successful poll minus lookback, at most maxGap, so meetings that
// ended while the exporter was down are counted too.
func (s *Store) Window(now time.Time, lookback, maxGap time.Duration) Window {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := now.Add(-lookback)
	if s.st.CountedThrough != 0 {
		last := time.Unix(s.st.CountedThrough, 0).Add(-lookback)
		from = minTime(from, last)
	}
	from = maxTime(from, now.Add(-max(maxGap, lookback)))
	return Window{Now: now, CountFrom: from, KeepFrom: minTime(from, now.Add(-PeakWindow))}
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
}

// CountedThrough is the time of the last successful poll; zero before it.
func (s *Store) CountedThrough() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.CountedThrough == 0 {
		return time.Time{}
	}
	return time.Unix(s.st.CountedThrough, 0)
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

	newMeetings []umeeting.Meeting
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
}

// NewBatch starts collecting the records of a poll with window w.
func (s *Store) NewBatch(w Window) *Batch {
	return &Batch{
		s:          s,
		win:        w,
		hostBest:   map[string]int64{},
		invalidSet: map[uint64]struct{}{},
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
	_, known := b.s.st.Meetings[m.UUID]
	b.s.mu.Unlock()
	if !known {
		b.newMeetings = append(b.newMeetings, *m)
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

// Invalid implements umeeting.Sink: an invalid record is counted once,
// however often it is listed again.
func (b *Batch) Invalid(reason string, raw []byte) {
	h := hashBytes(raw)
	if _, dup := b.invalidSet[h]; dup {
		return
	}
	b.s.mu.Lock()
	_, known := b.s.st.InvalidSeen[h]
	b.s.mu.Unlock()
	if known {
		return
	}
	b.invalidSet[h] = struct{}{}
	b.invalid = append(b.invalid, invalidRecord{reason: reason, hash: h})
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
	Remembered int // meetings remembered but not counted (ended before the window)
	Invalid    int // invalid records counted
	Pruned     int // remembered meetings forgotten
}

// Apply adds the batch of a successful poll to the state: it counts the new
// meetings, remembers them, moves hosts' latest meetings forward, then
// forgets meetings that can no longer be counted.
func (s *Store) Apply(b *Batch) ApplyResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res ApplyResult
	s.releaseGroups()
	if len(s.st.Meetings) == 0 {
		// The first poll or backfill: size the map once instead of growing it.
		s.st.Meetings = make(map[string]meeting, len(b.newMeetings))
	}
	countFrom := b.win.CountFrom.Unix()
	for i := range b.newMeetings {
		m := &b.newMeetings[i]
		if _, known := s.st.Meetings[m.UUID]; known {
			continue
		}
		start, end := m.Start.Unix(), m.End.Unix()
		s.st.Meetings[m.UUID] = meeting{Start: start, End: end, Participants: uint32(min(m.Participants, 1<<31))}
		s.updateHost(m)
		if end < countFrom {
			res.Remembered++
			continue
		}
		s.count(m, uint64(end-start))
		res.Counted++
	}
	for i := range b.hostOnly {
		s.updateHost(&b.hostOnly[i])
	}
	now := b.win.Now.Unix()
	for _, r := range b.invalid {
		if _, known := s.st.InvalidSeen[r.hash]; !known {
			s.st.InvalidSeen[r.hash] = now
			s.st.Invalid[r.reason]++
			res.Invalid++
		}
	}
	s.st.CountedThrough = max(s.st.CountedThrough, now)
	res.Pruned = s.prune(b.win)
	return res
}

func (s *Store) count(m *umeeting.Meeting, secs uint64) {
	key := SeriesKey{Email: m.Email, Host: m.Host, UserType: m.UserType}
	c := s.st.Series[key]
	if c == nil {
		c = &Counters{}
		s.st.Series[key] = c
	}
	c.add(m, secs)
	h := s.st.Hists[m.UserType]
	if h == nil {
		h = &Histograms{Duration: newHistogram(DurationBuckets), Participants: newHistogram(ParticipantBuckets)}
		s.st.Hists[m.UserType] = h
	}
	h.Duration.observe(DurationBuckets, secs)
	h.Participants.observe(ParticipantBuckets, uint64(m.Participants))
	s.countGroups(m, secs)
}

func (s *Store) updateHost(m *umeeting.Meeting) {
	end := m.End.Unix()
	h := s.st.Hosts[m.Email]
	if h == nil {
		s.st.Hosts[m.Email] = &Host{Host: m.Host, UserType: m.UserType, LastEnd: end, Order: s.st.NextOrder}
		s.st.NextOrder++
		return
	}
	if end > h.LastEnd {
		h.Host, h.UserType, h.LastEnd = m.Host, m.UserType, end
	}
}

// prune forgets meetings that ended before any future poll's window (with
// a margin) and invalid-record hashes that can no longer be listed.
func (s *Store) prune(w Window) int {
	before := w.KeepFrom.Add(-pruneMargin).Unix()
	n := 0
	for id, m := range s.st.Meetings {
		if m.End < before {
			delete(s.st.Meetings, id)
			n++
		}
	}
	// Invalid records may lack an end_time: forget them once they can no
	// longer be inside a padded request (a day each side).
	invalidBefore := w.KeepFrom.Add(-pruneMargin - 48*time.Hour).Unix()
	for h, seen := range s.st.InvalidSeen {
		if seen < invalidBefore {
			delete(s.st.InvalidSeen, h)
		}
	}
	return n
}

// Snapshot is an immutable copy of the numbers to expose, taken at At.
type Snapshot struct {
	At               time.Time
	Series           []Series
	Histograms       map[string]Histograms
	Hosts            []HostSnapshot
	ActiveHosts      map[string]map[string]int // window → user_type → hosts
	PeakMeetings     int
	PeakParticipants int
	Invalid          map[string]uint64
	Remembered       int
	// Departments and CostCenters are the counters by directory group,
	// sorted by name; empty without a directory.
	Departments, CostCenters []GroupSeries
}

// Series is one counter series.
type Series struct {
	SeriesKey
	Counters
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
	snap := &Snapshot{
		At:          now,
		Series:      make([]Series, 0, len(s.st.Series)),
		Histograms:  make(map[string]Histograms, len(s.st.Hists)),
		Hosts:       make([]HostSnapshot, 0, len(s.st.Hosts)),
		ActiveHosts: map[string]map[string]int{},
		Invalid:     make(map[string]uint64, len(umeeting.InvalidReasons)),
		Remembered:  len(s.st.Meetings),
	}
	for k, c := range s.st.Series {
		snap.Series = append(snap.Series, Series{SeriesKey: k, Counters: *c})
	}
	slices.SortFunc(snap.Series, func(a, b Series) int {
		return cmp.Or(cmp.Compare(a.Email, b.Email), cmp.Compare(a.Host, b.Host), cmp.Compare(a.UserType, b.UserType))
	})
	for ut, h := range s.st.Hists {
		snap.Histograms[ut] = Histograms{Duration: h.Duration.clone(), Participants: h.Participants.clone()}
	}
	userTypes := map[string]struct{}{}
	for ut := range s.st.Hists {
		userTypes[ut] = struct{}{}
	}
	for email, h := range s.st.Hosts {
		snap.Hosts = append(snap.Hosts, HostSnapshot{Email: email, Host: *h})
		userTypes[h.UserType] = struct{}{}
	}
	slices.SortFunc(snap.Hosts, func(a, b HostSnapshot) int { return cmp.Compare(a.Email, b.Email) })
	for _, w := range ActiveWindows {
		counts := map[string]int{}
		for ut := range userTypes {
			counts[ut] = 0
		}
		since := now.Add(-w.D).Unix()
		for _, h := range s.st.Hosts {
			if h.LastEnd >= since {
				counts[h.UserType]++
			}
		}
		snap.ActiveHosts[w.Name] = counts
	}
	snap.PeakMeetings, snap.PeakParticipants = s.peaks(now)
	for _, r := range umeeting.InvalidReasons {
		snap.Invalid[r] = s.st.Invalid[r]
	}
	for r, n := range s.st.Invalid {
		snap.Invalid[r] = n
	}
	s.snapshotGroups(snap)
	return snap
}

func (h *Histogram) clone() *Histogram {
	c := *h
	c.Buckets = slices.Clone(h.Buckets)
	return &c
}

// peaks sweeps the meetings in progress during the trailing PeakWindow,
// each an interval [start, end), and returns the most meetings and the most
// participants at one moment.
func (s *Store) peaks(now time.Time) (meetings, participants int) {
	from, to := now.Add(-PeakWindow).Unix(), now.Unix()
	type event struct {
		t     int64
		delta int // +1 start, -1 end
		p     int
	}
	var events []event
	for _, m := range s.st.Meetings {
		if m.End <= from || m.Start >= to {
			continue
		}
		events = append(events, event{max(m.Start, from), 1, int(m.Participants)}, event{m.End, -1, int(m.Participants)})
	}
	// Ends sort before starts at the same instant: [start, end) intervals
	// that only touch do not overlap.
	slices.SortFunc(events, func(a, b event) int { return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.delta, b.delta)) })
	var curM, curP int
	for _, e := range events {
		curM += e.delta
		curP += e.delta * e.p
		meetings, participants = max(meetings, curM), max(participants, curP)
	}
	return meetings, participants
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
