package store

import (
	"cmp"
	"slices"
	"sort"
	"time"
)

// timeline is the number of meetings and participants in progress over
// time, as a step function of the remembered meetings that ended after
// from: after each instant at[i] (ends before starts), meetings[i] and
// participants[i] are in progress.
type timeline struct {
	at                     []int64
	meetings, participants []int
}

// peaks returns the most meetings and the most participants in progress at
// one moment of [from, to): what is in progress at from, then after each
// instant up to to. That is what a sweep of the meetings of the window,
// clipped to it, finds: its starts and ends at one instant, ends first,
// only go down and then up to the value after the instant.
func (tl *timeline) peaks(from, to int64) (meetings, participants int) {
	i := sort.Search(len(tl.at), func(i int) bool { return tl.at[i] > from })
	if i > 0 {
		meetings, participants = tl.meetings[i-1], tl.participants[i-1]
	}
	for ; i < len(tl.at) && tl.at[i] < to; i++ {
		meetings, participants = max(meetings, tl.meetings[i]), max(participants, tl.participants[i])
	}
	return meetings, participants
}

// timelineFrom returns the timeline of the meetings that ended after from.
func (s *Store) timelineFrom(from int64) *timeline {
	type event struct {
		t     int64
		delta int // +1 start, -1 end
		p     int
	}
	var events []event
	for _, m := range s.st.Meetings {
		if m.End > from {
			events = append(events, event{m.Start, 1, int(m.Participants)}, event{m.End, -1, int(m.Participants)})
		}
	}
	slices.SortFunc(events, func(a, b event) int { return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.delta, b.delta)) })
	tl := &timeline{}
	var curM, curP int
	for i, e := range events {
		curM += e.delta
		curP += e.delta * e.p
		if i+1 == len(events) || events[i+1].t != e.t {
			tl.at = append(tl.at, e.t)
			tl.meetings = append(tl.meetings, curM)
			tl.participants = append(tl.participants, curP)
		}
	}
	return tl
}

// activeHosts counts, for each of ActiveWindows, the hosts whose latest
// meeting ended in the window before now, by user_type (every user_type in
// use, with or without hosts).
func (s *Store) activeHosts(now time.Time) map[string]map[string]int {
	ends := map[string][]int64{}
	for ut := range s.st.Hists {
		ends[ut] = nil
	}
	for _, h := range s.st.Hosts {
		ends[h.UserType] = append(ends[h.UserType], h.LastEnd)
	}
	for _, e := range ends {
		slices.Sort(e)
	}
	active := make(map[string]map[string]int, len(ActiveWindows))
	for _, w := range ActiveWindows {
		since := now.Add(-w.D).Unix()
		counts := make(map[string]int, len(ends))
		for ut, e := range ends {
			i, _ := slices.BinarySearch(e, since) // the first at or after since
			counts[ut] = len(e) - i
		}
		active[w.Name] = counts
	}
	return active
}
