package store

import (
	"cmp"
	"slices"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// Other is the department (or cost centre) of meetings beyond the cap on
// distinct values.
const Other = "(other)"

// Attribution is what the directory says about a meeting's host at the
// time the meeting is counted.
type Attribution struct {
	Department string
	CostCenter string
	CostMicros uint64 // usage price of the meeting, in millionths of the currency
}

// Attributor joins a meeting with the directory. ok false: no directory
// is configured, nothing is counted by department.
type Attributor interface {
	Attribute(m *umeeting.Meeting, secs uint64) (a Attribution, ok bool)
}

// GroupCounters are the usage counters of a department or cost centre.
type GroupCounters struct {
	Counters
	CostMicros uint64
}

func (g *GroupCounters) add(m *umeeting.Meeting, secs, cost uint64) {
	g.Counters.add(m, secs)
	g.CostMicros = satAdd(g.CostMicros, cost)
}

func (g *GroupCounters) sub(o *GroupCounters) GroupCounters {
	r := *g
	r.Meetings -= o.Meetings
	r.Seconds -= o.Seconds
	r.Participants -= o.Participants
	r.ParticipantSeconds -= o.ParticipantSeconds
	for i := range r.Features {
		r.Features[i] -= o.Features[i]
	}
	r.CostMicros -= o.CostMicros
	return r
}

// group is one department's (or cost centre's) counters. A group born
// after the first poll is published at zero and holds its increments back
// until it was published for the policy's HoldFor, as a new series does,
// so that increase() sees its first meetings.
type group struct {
	Total   GroupCounters
	Held    GroupCounters // part of Total not published yet
	Exposed bool          // released: Held is no longer added to
	Since   int64         // unix seconds of its birth
}

// groups are the counters by department and by cost centre.
type groups struct {
	Departments map[string]*group
	CostCenters map[string]*group
}

// SetAttributor makes the store count every meeting it counts from now on
// also by department and cost centre, as a says at that time; at most
// maxValues distinct values each (0: no cap), the rest as Other.
func (s *Store) SetAttributor(a Attributor, maxValues int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attributor, s.maxGroups = a, maxValues
}

// countGroups is the hook of count: it adds one counted meeting to its
// host's department and cost centre.
func (s *Store) countGroups(m *umeeting.Meeting, secs uint64, now int64) {
	if s.attributor == nil {
		return
	}
	a, ok := s.attributor.Attribute(m, secs)
	if !ok {
		return
	}
	// The first poll of a fresh state publishes what it counted at once
	// (the baseline); later new groups start at zero.
	baseline := s.st.CountedThrough == 0
	s.addGroup(s.st.Groups.Departments, a.Department, m, secs, a.CostMicros, baseline, now)
	s.addGroup(s.st.Groups.CostCenters, a.CostCenter, m, secs, a.CostMicros, baseline, now)
}

func (s *Store) addGroup(gs map[string]*group, name string, m *umeeting.Meeting, secs, cost uint64, baseline bool, now int64) {
	g := gs[name]
	if g == nil && s.maxGroups > 0 && len(gs) >= s.maxGroups && name != Other {
		name = Other
		g = gs[name]
	}
	if g == nil {
		g = &group{Exposed: baseline, Since: now}
		gs[name] = g
	}
	g.Total.add(m, secs, cost)
	if !g.Exposed {
		g.Held.add(m, secs, cost)
	}
}

// releaseGroups is called at each Apply: groups published for HoldFor
// since their birth now publish their whole count. It says whether any did.
func (s *Store) releaseGroups(now int64) (released bool) {
	for _, gs := range []map[string]*group{s.st.Groups.Departments, s.st.Groups.CostCenters} {
		for _, g := range gs {
			if !g.Exposed && s.shownFor(g.Since, now) {
				g.Exposed, g.Held, released = true, GroupCounters{}, true
			}
		}
	}
	return released
}

// GroupSeries is one department's or cost centre's published counters.
type GroupSeries struct {
	Name string
	GroupCounters
}

// snapshotGroups copies the published counters.
func (s *Store) snapshotGroups(snap *Snapshot) {
	copyOut := func(gs map[string]*group) []GroupSeries {
		out := make([]GroupSeries, 0, len(gs))
		for name, g := range gs {
			out = append(out, GroupSeries{Name: name, GroupCounters: g.Total.sub(&g.Held)})
		}
		slices.SortFunc(out, func(a, b GroupSeries) int { return cmp.Compare(a.Name, b.Name) })
		return out
	}
	snap.Departments = copyOut(s.st.Groups.Departments)
	snap.CostCenters = copyOut(s.st.Groups.CostCenters)
}
