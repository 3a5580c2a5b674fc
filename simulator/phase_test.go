package simulator

import (
	"testing"
	"time"
)

// TestTestNowSetsTheMomentOfTheWeek: with UMEETING_TEST_NOW, a simulator on
// the live clock is as busy as at that moment of the week, while the
// meetings it lists stay on the real clock.
func TestTestNowSetsTheMomentOfTheWeek(t *testing.T) {
	// The last 24 hours before a Wednesday noon and before a Sunday noon in
	// Beijing: a working day against a weekend.
	last24h := func(at time.Time) (int, int) {
		t.Setenv(TestNowEnv, at.Format(time.RFC3339))
		before := time.Now()
		s := New(Options{Seed: 1})
		after := time.Now()
		ms := s.Truth(after.Add(-24*time.Hour), after)
		working := 0
		for _, m := range ms {
			if m.End.After(after) || m.End.Before(before.Add(-24*time.Hour)) {
				t.Fatalf("meeting ending %s listed at real time %s", m.End, after)
			}
			// The hour it started in, on the clock shifted to at.
			local := m.Start.Add(at.Sub(before)).In(beijing)
			if wd, h := local.Weekday(), local.Hour(); wd != time.Saturday && wd != time.Sunday && h >= 8 && h < 19 {
				working++
			}
		}
		return len(ms), working
	}
	wed, wedWorking := last24h(time.Date(2026, 12, 9, 12, 0, 0, 0, beijing))
	sun, _ := last24h(time.Date(2026, 12, 13, 12, 0, 0, 0, beijing))
	t.Logf("last 24h: %d meetings before a Wednesday noon (%d in working hours), %d before a Sunday noon", wed, wedWorking, sun)
	if wed < 5*sun {
		t.Errorf("%d meetings before a Wednesday noon, %d before a Sunday noon: want a working day's volume", wed, sun)
	}
	if wedWorking < wed*3/4 {
		t.Errorf("%d of %d meetings before a Wednesday noon started in working hours", wedWorking, wed)
	}
}

// TestTestNowMalformed: a value that is not RFC 3339 stops the test run
// rather than running at another moment than asked.
func TestTestNowMalformed(t *testing.T) {
	t.Setenv(TestNowEnv, "Monday evening")
	defer func() {
		if recover() == nil {
			t.Error("New accepted a malformed " + TestNowEnv)
		}
	}()
	New(Options{})
}

// TestTestNowLeavesGivenClocksAlone: a simulator given a clock is
// deterministic already; the variable does not change its meetings.
func TestTestNowLeavesGivenClocksAlone(t *testing.T) {
	want := New(Options{Seed: 3, Now: newClock(t0).Now}).Truth(t0.Add(-48*time.Hour), t0)
	t.Setenv(TestNowEnv, "2026-12-12T23:00:00Z")
	got := New(Options{Seed: 3, Now: newClock(t0).Now}).Truth(t0.Add(-48*time.Hour), t0)
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d meetings with %s set, %d without", len(got), TestNowEnv, len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("meeting %d differs: %+v vs %+v", i, got[i], want[i])
		}
	}
}
