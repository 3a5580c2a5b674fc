package store

import (
	"cmp"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// ApplyResult says what Apply changed.
type ApplyResult struct {
	Counted    int // meetings added to the counters
	Remembered int // meetings remembered but not counted (ended before the horizon)
	Invalid    int // invalid records counted
	Pruned     int // remembered meetings forgotten
	Folded     int // counted meetings whose user_type was folded into OtherUserType
	// Changed says the poll changed what a Snapshot shows (but for the
	// gauges that move with time alone): a publisher needs a new Snapshot.
	Changed bool
	// Saved: Commit wrote the state (it does not when the poll changed
	// nothing but its own time, see Commit).
	Saved bool
}

// undoLog is what one Apply changed, to put back on rollback.
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
// changed it, for rollback to put back.
func (u *undoLog) keepPrior(id string, m meeting) {
	if _, done := u.prior[id]; !done {
		u.prior[id] = m
	}
}

// remember keeps in prior a copy of cur[k] as it was before the poll first
// changed it (nil: absent), once per key, for rollback to put back.
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
		s.rollback()
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
	return s.saveBlocked != nil || s.dirty ||
		s.st.CountedThrough-s.savedThrough >= int64(maxUnsaved/time.Second)
}

// rollback undoes the last Apply.
func (s *Store) rollback() {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.undo
	if u == nil {
		return
	}
	s.undo = nil
	s.dirty = true
	s.admOK = false
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
// forgets meetings that can no longer be counted. rollback undoes it.
func (s *Store) Apply(b *Batch) ApplyResult {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	for k, x := range st.Series {
		if x.Held != nil && !win.hostsOnly && s.exposedFor(x, now) {
			u.touchSeries(st, k)
			x.Held = nil
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
	for email, h := range st.Hosts {
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
	for k, x := range st.Series {
		exposed := k.Email == "" || adm[k.Email]
		if x.Exposed != exposed {
			u.touchSeries(st, k)
			x.Exposed, x.Since = exposed, 0
			if exposed {
				x.Since = now
			}
		}
	}

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
	res.Changed = u.changed(st)
	h, prior := st.header, u.header
	h.CountedThrough, prior.CountedThrough = 0, 0
	if res.Changed || h != prior || len(u.invalidSeen) > 0 {
		s.dirty = true
	}
	return res
}

// changed says whether an Apply logged in u changed what a Snapshot shows:
// everything it changes there is logged, for rollback.
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
			x.Held = &Counters{}
		}
		st.Series[key] = x
	case !x.Exposed && x.Held == nil && !win.Baseline:
		// Coming back (its host admitted again): show the old values first.
		held := x.Counters
		x.Held = &held
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
	s.admOK = false
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
	s.admOK = false
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
	for id, m := range s.st.Meetings {
		if m.End < before {
			u.keepPrior(id, m)
			delete(s.st.Meetings, id)
			n++
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
