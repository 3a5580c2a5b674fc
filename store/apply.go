package store

import (
	"cmp"
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

// Commit applies the batch of a successful poll and saves the state. When
// the save fails the poll is undone, so the counters served never run
// ahead of what a restart would load; its meetings are counted by a later
// poll whose save succeeds. A poll that changed nothing the state file
// holds but the time of the last poll is not saved, unless that time was
// last saved maxUnsaved ago, so a quiet poll writes nothing to the disk: a
// restart then loads the same counts, horizon, remembered meetings and
// invalid records, and polls at once.
func (s *Store) Commit(b *Batch) (ApplyResult, error) {
	s.keepRestorePoint()
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

// keepRestorePoint makes restorePoint the state as it is now. The bytes
// of the last save (or load) are that state, but for the time of the last
// poll, as long as nothing else changed since (a new policy, a read of
// older history, a failed save): only then is the state encoded. That
// spares nearly every poll an encoding of the whole state, 30 ms of CPU
// or more at 10,000 hosts: more than the rest of a poll with nothing new.
func (s *Store) keepRestorePoint() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirty || s.restorePoint == nil {
		s.restorePoint = encodeState(s.restorePoint[:0], s.st)
	}
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

// rollback undoes the Apply of a Commit: the state is decoded from the
// restore point, which holds all of it, so a meeting the poll both counted
// and forgot comes back as it was, not remembered without its count.
func (s *Store) rollback() {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := decodeState(s.restorePoint)
	if err != nil {
		panic("store: the restore point does not decode: " + err.Error()) // encoded by this process
	}
	s.st, s.dirty = st, true
}

// Apply adds the batch of a successful poll to the state: it counts the new
// meetings that ended at or after the horizon, remembers them, moves hosts'
// latest meetings forward, publishes held series, moves the horizon and
// forgets meetings that can no longer be counted.
func (s *Store) Apply(b *Batch) ApplyResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	before := st.header
	var res ApplyResult
	// changed is set by every change of what a Snapshot shows; seen by a
	// change of an invalid record's last-listed time, which is saved only.
	changed, seen := false, false
	win := b.win
	now := win.Now.Unix()
	if !win.hostsOnly {
		changed = s.releaseGroups(now)
		// Series and histograms exposed for a poll show what they hold from now on.
		for _, x := range st.Series {
			if x.Held != nil && s.exposedFor(x, now) {
				x.Held, changed = nil, true
			}
		}
		for _, h := range st.Hists {
			if h.New && s.shownFor(h.Since, now) {
				h.New, changed = false, true
			}
		}
	}

	if len(st.Meetings) == 0 {
		// The first poll or backfill: size the map once instead of growing
		// it by copies, which a first poll of a million meetings would pay
		// in peak memory.
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
		changed = true
		b.meeting(i, &m)
		start, end := m.Start.Unix(), m.End.Unix()
		if known {
			// Listed again with a later end: remembered until that end, as
			// the API keeps listing it until the horizon passes it.
			old.End = end
			st.Meetings[m.UUID] = old
		} else {
			st.Meetings[m.UUID] = meeting{Start: start, End: end, Participants: uint32(min(m.Participants, 1<<31))}
		}
		if end <= now {
			st.MaxEnd = max(st.MaxEnd, end)
		}
		s.updateHost(&m)
		switch {
		case known:
		case end < countFrom:
			res.Remembered++
		default:
			counted = append(counted, i)
		}
	}
	for i := range b.hostOnly {
		changed = s.updateHost(&b.hostOnly[i]) || changed
	}
	adm := s.admission()
	for _, i := range counted {
		b.meeting(i, &m)
		key := SeriesKey{UserType: s.fold(m.UserType)}
		if key.UserType != m.UserType {
			res.Folded++
			st.Folded++
		}
		if adm[m.Email] {
			key.Email = m.Email
		}
		s.count(key, &m, uint64(m.End.Unix()-m.Start.Unix()), win)
		res.Counted++
	}
	changed = s.expose(adm, now, false) || changed
	for _, r := range b.invalid {
		prior, known := st.InvalidSeen[r.hash]
		st.InvalidSeen[r.hash], seen = max(prior, now), true
		if !known {
			st.Invalid[r.reason]++
			res.Invalid++
			changed = true
		}
	}
	if win.Baseline {
		// History before the backfill is never counted later either.
		st.Backfilled = true
		st.Seam = now
		st.Horizon = max(st.Horizon, countFrom)
		changed = true
	}
	st.CountedThrough = max(st.CountedThrough, now)
	st.Horizon = max(st.Horizon, min(now, st.MaxEnd)-int64(win.Lookback/time.Second))
	var forgotten int
	res.Pruned, forgotten = s.prune(now)
	res.Changed = changed || res.Pruned > 0
	after := st.header
	after.CountedThrough, before.CountedThrough = 0, 0
	if res.Changed || seen || forgotten > 0 || after != before {
		s.dirty = true
	}
	return res
}

// fold returns ut, or OtherUserType once MaxUserTypes values are in use.
func (s *Store) fold(ut string) string {
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
	return ut
}

func (s *Store) count(key SeriesKey, m *umeeting.Meeting, secs uint64, win Window) {
	st := s.st
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

// updateHost moves the latest meeting of m's host to m when m ended later,
// and says whether it did.
func (s *Store) updateHost(m *umeeting.Meeting) bool {
	end := m.End.Unix()
	h := s.st.Hosts[m.Email]
	if h != nil && end <= h.LastEnd {
		return false
	}
	ut := s.fold(m.UserType)
	if h == nil {
		s.st.Hosts[m.Email] = &Host{Host: m.Host, UserType: ut, LastEnd: end, Order: s.st.NextOrder}
		s.st.NextOrder++
		return true
	}
	h.Host, h.UserType, h.LastEnd = m.Host, ut, end
	return true
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
}

// admission returns the e-mails of the hosts that get series of their
// own: those with an e-mail that the filters keep (matched against the
// e-mail and the latest display name), the first MaxHosts of them in
// first-seen order.
func (s *Store) admission() map[string]bool {
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
// peak window, and invalid records no longer listed, and says how many of
// each.
func (s *Store) prune(now int64) (meetings, invalid int) {
	before := min(s.st.Horizon, now-int64(PeakWindow/time.Second))
	for id, m := range s.st.Meetings {
		if m.End < before {
			delete(s.st.Meetings, id)
			meetings++
		}
	}
	invalidBefore := now - int64(invalidKeep/time.Second)
	for h, seen := range s.st.InvalidSeen {
		if seen < invalidBefore {
			delete(s.st.InvalidSeen, h)
			invalid++
		}
	}
	return meetings, invalid
}
