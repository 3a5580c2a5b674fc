package store

import (
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// mapAttributor is a directory as a map e-mail → department; cost centre
// is "cc-" + department; every meeting costs 1.5 units.
type mapAttributor map[string]string

func (a mapAttributor) Attribute(m *umeeting.Meeting, secs uint64) (Attribution, bool) {
	d, ok := a[m.Email]
	if !ok {
		d = "(unknown)"
	}
	return Attribution{Department: d, CostCenter: "cc-" + d, CostMicros: 1_500_000}, true
}

func groupMeetings(gs []GroupSeries) map[string]uint64 {
	out := map[string]uint64{}
	for _, g := range gs {
		out[g.Name] = g.Meetings
	}
	return out
}

func TestGroupsAttributedWhenCounted(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "a")
	people := mapAttributor{"a@x": "Sales", "b@x": "Finance"}
	s.SetAttributor(people, 3)

	// The first poll of a fresh state is the baseline: published at once.
	poll(s, t0, mtg("1", "a@x", time.Hour, time.Minute, 2, umeeting.FeaturePSTN), mtg("2", "c@x", time.Hour, time.Minute, 1, 0))
	snap := s.Snapshot(t0)
	if got := groupMeetings(snap.Departments); got["Sales"] != 1 || got["(unknown)"] != 1 || len(got) != 2 {
		t.Fatalf("baseline departments = %v", got)
	}
	if g := snap.Departments[1]; g.Name != "Sales" || g.Seconds != 60 || g.ParticipantSeconds != 120 || g.Features[3] != 1 || g.CostMicros != 1_500_000 {
		t.Errorf("Sales = %+v", g)
	}
	if got := groupMeetings(snap.CostCenters); got["cc-Sales"] != 1 {
		t.Errorf("cost centres = %v", got)
	}

	// a@x moves to Legal: the past stays with Sales, new meetings go to
	// Legal, which is born at zero and shows its first meeting a poll later.
	people["a@x"] = "Legal"
	poll(s, t0.Add(time.Minute), mtg("3", "a@x", 0, time.Minute, 1, 0))
	snap = s.Snapshot(t0.Add(time.Minute))
	if got := groupMeetings(snap.Departments); got["Sales"] != 1 || got["Legal"] != 0 {
		t.Fatalf("after the move = %v; want Sales 1 and Legal published at 0", got)
	}
	poll(s, t0.Add(2*time.Minute))
	snap = s.Snapshot(t0.Add(2 * time.Minute))
	if got := groupMeetings(snap.Departments); got["Sales"] != 1 || got["Legal"] != 1 {
		t.Fatalf("a poll later = %v; want Legal 1", got)
	}

	// The cap: a fourth department is folded into (other).
	people["d@x"] = "Ops"
	poll(s, t0.Add(3*time.Minute), mtg("4", "d@x", 0, time.Minute, 1, 0))
	s.Snapshot(t0.Add(3 * time.Minute)) // the poller publishes after every poll
	poll(s, t0.Add(4*time.Minute))
	snap = s.Snapshot(t0.Add(4 * time.Minute))
	if got := groupMeetings(snap.Departments); got[Other] != 1 || got["Ops"] != 0 {
		t.Fatalf("over the cap = %v", got)
	}

	// Persisted with the account's counts, held parts included.
	people["a@x"] = "Support"
	poll(s, t0.Add(5*time.Minute), mtg("5", "a@x", 0, time.Minute, 1, 0))
	before := s.Snapshot(t0.Add(5 * time.Minute))
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2, info := Open(dir, "a")
	if info.LoadError != nil {
		t.Fatal(info.LoadError)
	}
	after := s2.Snapshot(t0.Add(5 * time.Minute))
	if a, b := groupMeetings(before.Departments), groupMeetings(after.Departments); len(a) != len(b) || a["Support"] != b["Support"] || a["Legal"] != 1 || b["Legal"] != 1 {
		t.Fatalf("after restart %v, before %v", b, a)
	}
	s2.SetAttributor(people, 3)
	poll(s2, t0.Add(6*time.Minute))
	if got := groupMeetings(s2.Snapshot(t0.Add(6 * time.Minute)).Departments); got["Support"] != 0 || got[Other] != 2 {
		// Support came over the cap (Sales, (unknown), Legal): (other).
		t.Fatalf("after restart and a poll = %v", got)
	}
}

func TestNoAttributorNoGroups(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	poll(s, t0, mtg("1", "a@x", time.Hour, time.Minute, 2, 0))
	if snap := s.Snapshot(t0); len(snap.Departments) != 0 || len(snap.CostCenters) != 0 {
		t.Fatalf("groups without a directory: %+v", snap.Departments)
	}
}
