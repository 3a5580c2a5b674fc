package store

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// TestSnapshotPatchedEqualsFull: through random polls (meetings of known
// and new hosts, renames, licence types beyond the cap, hosts beyond
// max_hosts, held series released, backfill reads of hosts only, rolled
// back polls, snapshots between an Apply and its Rollback, several polls
// between two snapshots, policy changes), every Snapshot, patched from the
// last one, equals one built from scratch.
func TestSnapshotPatchedEqualsFull(t *testing.T) {
	s, _ := Open(t.TempDir(), "acme")
	policies := []Policy{
		{PerHost: true, MaxHosts: 40, MaxUserTypes: 4, HoldFor: time.Minute},
		{PerHost: true, MaxHosts: 25, MaxUserTypes: 4, HoldFor: time.Minute},
	}
	s.SetPolicy(policies[0], t0)
	rng := rand.New(rand.NewPCG(1, 2))
	now := t0
	snapshots := 0
	check := func(what string) {
		t.Helper()
		got := s.Snapshot(now)
		s.mu.Lock()
		s.shown.reset()
		s.mu.Unlock()
		if want := s.Snapshot(now); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: the patched snapshot differs from a full one:\n got %+v\nwant %+v", what, got, want)
		}
		snapshots++
	}
	for poll := range 300 {
		now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
		w := s.Window(now, 48*time.Hour, 30*24*time.Hour)
		if rng.IntN(10) == 0 {
			w = w.HostsOnly()
		}
		b := s.NewBatch(w)
		for i := range rng.IntN(6) {
			h := rng.IntN(60)
			end := now.Add(-time.Duration(rng.IntN(600)) * time.Second)
			b.Meeting(&umeeting.Meeting{UUID: fmt.Sprint(poll, "-", i), Host: fmt.Sprint("Host ", h, []string{"", " (renamed)"}[rng.IntN(2)]),
				Email: fmt.Sprintf("h%02d@x.com", h), UserType: []string{"Corp", "Pro", "Basic", "Edu", "Trial", "Free"}[rng.IntN(6)],
				Start: end.Add(-time.Hour), End: end, Participants: 1 + rng.IntN(9)})
		}
		b.CommitPage()
		s.Apply(b)
		what := fmt.Sprint("poll ", poll)
		if rng.IntN(8) == 0 {
			if rng.IntN(2) == 0 {
				check(what + ", before its rollback")
			}
			s.Rollback()
			what += ", rolled back"
		}
		if rng.IntN(30) == 0 {
			s.SetPolicy(policies[rng.IntN(len(policies))], now)
			what += ", with a new policy"
		}
		if rng.IntN(3) > 0 {
			check(what)
		}
	}
	if snapshots < 150 {
		t.Errorf("only %d snapshots compared", snapshots)
	}
}

// TestHeldReleaseSkipEqualsFullScan: a store that skips the look for held
// series to release while none is held holds exactly what one that looks
// at every series every poll holds, through polls that create and hold
// series, hosts renamed in and out of the include filter, backfill reads
// of hosts only, policy changes and rollbacks.
func TestHeldReleaseSkipEqualsFullScan(t *testing.T) {
	fast, _ := Open(t.TempDir(), "a")
	full, _ := Open(t.TempDir(), "a")
	policies := []Policy{
		{PerHost: true, MaxHosts: 30, MaxUserTypes: 4, HoldFor: 30 * time.Second},
		{PerHost: true, MaxHosts: 15, MaxUserTypes: 4, HoldFor: 30 * time.Second},
		{PerHost: true, MaxHosts: 30, MaxUserTypes: 4, HoldFor: 30 * time.Second, Include: regexp.MustCompile(`^Host \d+$`)},
	}
	for _, s := range []*Store{fast, full} {
		s.SetPolicy(policies[0], t0)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	now := t0
	skipped := 0
	for poll := range 400 {
		now = now.Add(time.Duration(rng.IntN(120)) * time.Second)
		w := fast.Window(now, 48*time.Hour, 30*24*time.Hour)
		if rng.IntN(10) == 0 {
			w = w.HostsOnly()
		}
		var ms []umeeting.Meeting
		for i := range rng.IntN(4) * rng.IntN(2) { // half the polls count nothing
			h := rng.IntN(50)
			end := now.Add(-time.Duration(rng.IntN(600)) * time.Second)
			ms = append(ms, umeeting.Meeting{UUID: fmt.Sprint(poll, "-", i), Host: fmt.Sprint("Host ", h, []string{"", " (renamed)"}[rng.IntN(2)]), Email: fmt.Sprintf("h%02d@x.com", h),
				UserType: "Pro", Start: end.Add(-time.Hour), End: end, Participants: 2})
		}
		if fast.noneHeld {
			skipped++
		}
		full.noneHeld = false
		rollback, policy := rng.IntN(8) == 0, rng.IntN(15) == 0
		for _, s := range []*Store{fast, full} {
			b := s.NewBatch(w)
			for i := range ms {
				b.Meeting(&ms[i])
			}
			b.CommitPage()
			s.Apply(b)
			if rollback {
				s.Rollback()
			}
			if policy {
				s.SetPolicy(policies[poll%len(policies)], now)
			}
		}
		if !reflect.DeepEqual(fast.st.Series, full.st.Series) {
			t.Fatalf("poll %d: the series differ from those of a full look", poll)
		}
	}
	if skipped < 50 {
		t.Errorf("the look was skipped in %d polls only", skipped)
	}
}
