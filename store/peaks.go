package store

import (
	"cmp"
	"slices"
	"time"
)

// peaks returns the most meetings and the most participants in progress
// at one moment of the trailing PeakWindow: a sweep of the remembered
// meetings of the window, each an interval [start, end) clipped to it,
// ends before starts at one instant.
func (s *Store) peaks(now time.Time) (meetings, participants int) {
	from, to := now.Add(-PeakWindow).Unix(), now.Unix()
	type event struct {
		t     int64
		delta int // +1 start, -1 end
		p     int
	}
	var events []event
	for _, m := range s.st.Meetings {
		if m.End > from && m.Start < to {
			events = append(events, event{max(m.Start, from), 1, int(m.Participants)}, event{m.End, -1, int(m.Participants)})
		}
	}
	slices.SortFunc(events, func(a, b event) int { return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.delta, b.delta)) })
	var curM, curP int
	for _, e := range events {
		curM += e.delta
		curP += e.delta * e.p
		meetings, participants = max(meetings, curM), max(participants, curP)
	}
	return meetings, participants
}

// activeHosts counts, for each of ActiveWindows, the hosts whose latest
// meeting ended in the window before now, by user_type (every user_type in
// use, with or without hosts).
func (s *Store) activeHosts(now time.Time) map[string]map[string]int {
	active := make(map[string]map[string]int, len(ActiveWindows))
	for _, w := range ActiveWindows {
		counts := make(map[string]int, len(s.st.Hists))
		for ut := range s.st.Hists {
			counts[ut] = 0
		}
		since := now.Add(-w.D).Unix()
		for _, h := range s.st.Hosts {
			n := counts[h.UserType] // a host's user_type is in use: 0 too
			if h.LastEnd >= since {
				n++
			}
			counts[h.UserType] = n
		}
		active[w.Name] = counts
	}
	return active
}
