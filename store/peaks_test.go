package store

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// sweepPeaks is the sweep the store used before the timeline: the
// meetings of the window, clipped to it, ends before starts at one instant.
func sweepPeaks(ms map[string]meeting, from, to int64) (meetings, participants int) {
	type event struct {
		t     int64
		delta int
		p     int
	}
	var events []event
	for _, m := range ms {
		if m.End <= from || m.Start >= to {
			continue
		}
		events = append(events, event{max(m.Start, from), 1, int(m.Participants)}, event{m.End, -1, int(m.Participants)})
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

// TestTimelinePeaksEqualTheSweep: on random meetings (touching, zero
// length, spanning the window's start, starting after its end), every
// trailing window, sliding forward and stepping back, with meetings added
// between, gives the sweep's peaks.
func TestTimelinePeaksEqualTheSweep(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const span = int64(72 * 3600)
	base := t0.Unix() - span
	s, _ := Open(t.TempDir(), "a")
	add := func(n int) {
		for range n {
			start := base + rng.Int64N(span)/60*60 // on minutes: many shared instants
			length := rng.Int64N(4*3600) / 60 * 60
			if rng.IntN(20) == 0 {
				length = 0
			}
			s.st.Meetings[fmt.Sprint(len(s.st.Meetings))] = meeting{Start: start, End: start + length, Participants: uint32(rng.IntN(50))}
		}
	}
	add(2000)
	now := base + int64(PeakWindow/time.Second)
	for step := range 300 {
		switch {
		case step%50 == 49:
			add(50)
		case step%37 == 0:
			now -= rng.Int64N(3 * 3600) // a clock stepped back
		default:
			now += rng.Int64N(600)
		}
		from := now - int64(PeakWindow/time.Second)
		s.mu.Lock()
		gm, gp := s.peaks(time.Unix(now, 0))
		s.mu.Unlock()
		if wm, wp := sweepPeaks(s.st.Meetings, from, now); gm != wm || gp != wp {
			t.Fatalf("step %d, window %d..%d: %d meetings, %d participants; the sweep finds %d, %d", step, from, now, gm, gp, wm, wp)
		}
	}
}

// countActive is how the store counted active hosts before hostEnds.
func countActive(st *state, now time.Time) map[string]map[string]int {
	userTypes := map[string]struct{}{}
	for ut := range st.Hists {
		userTypes[ut] = struct{}{}
	}
	for _, h := range st.Hosts {
		userTypes[h.UserType] = struct{}{}
	}
	out := map[string]map[string]int{}
	for _, w := range ActiveWindows {
		counts := map[string]int{}
		for ut := range userTypes {
			counts[ut] = 0
		}
		since := now.Add(-w.D).Unix()
		for _, h := range st.Hosts {
			if h.LastEnd >= since {
				counts[h.UserType]++
			}
		}
		out[w.Name] = counts
	}
	return out
}

// TestActiveHostsEqualTheCount: hosts' latest meetings spread over 40 days,
// some exactly on a window's edge, user_types with no host (a histogram
// only), hosts changed between calls, the clock forward and back.
func TestActiveHostsEqualTheCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s, _ := Open(t.TempDir(), "a")
	uts := []string{"Corp", "Pro", "Basic"}
	s.st.Hists["Edu"] = &Histograms{}
	now := t0
	for step := range 200 {
		if step%20 == 0 {
			for range 100 {
				email := fmt.Sprint(rng.IntN(500), "@x")
				end := now.Add(-time.Duration(rng.Int64N(int64(40 * 24 * time.Hour))))
				if rng.IntN(10) == 0 {
					end = now.Add(-ActiveWindows[rng.IntN(len(ActiveWindows))].D) // on the edge
				}
				s.st.Hosts[email] = &Host{UserType: uts[rng.IntN(len(uts))], LastEnd: end.Unix()}
			}
		} else {
			now = now.Add(time.Duration(rng.Int64N(int64(2*time.Hour))) - 30*time.Minute)
		}
		s.mu.Lock()
		got := s.activeHosts(now)
		s.mu.Unlock()
		if want := countActive(s.st, now); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: %v, counted %v", step, got, want)
		}
	}
}
