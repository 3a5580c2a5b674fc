package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// meetingEnded makes a meeting of host email that ended at end and lasted
// ten minutes.
func meetingEnded(uuid, email string, end time.Time) umeeting.Meeting {
	return umeeting.Meeting{UUID: uuid, Host: "Host " + email, Email: email, UserType: "Corp",
		Start: end.Add(-10 * time.Minute), End: end, Participants: 2}
}

// TestFailedSaveLosesNoMeeting: a poll whose save fails is undone as a
// whole, even for a meeting it both counted and forgot (listed late, just
// after the horizon that the same poll moves past it): once saves work
// again, the next poll counts it.
func TestFailedSaveLosesNoMeeting(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "a")
	commit(t, s, t0, nil, meetingEnded("base", "a@x", t0.Add(-time.Hour)))
	horizon := unixTime(s.st.Horizon)
	late := meetingEnded("late", "b@x", horizon.Add(time.Minute))
	recent := meetingEnded("recent", "c@x", t0.Add(30*time.Second))

	// The state file's place is taken by a folder: the save fails, as root too.
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.Path(), "blocker"), 0o700); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch(s.Window(t0.Add(time.Minute), 48*time.Hour, 30*24*time.Hour))
	b.Meeting(&late)
	b.Meeting(&recent)
	b.CommitPage()
	if _, err := s.Commit(b); err == nil {
		t.Fatal("a save into a folder succeeded")
	}
	if err := os.RemoveAll(s.Path()); err != nil {
		t.Fatal(err)
	}
	if res := commit(t, s, t0.Add(2*time.Minute), nil, late, recent); res.Counted != 2 {
		t.Errorf("after the failed save, the next poll counted %d meetings, want 2", res.Counted)
	}
}

// TestLaterEndIsRemembered: a meeting listed again with a later end is
// remembered until that end, so it is not counted again while the API
// keeps listing it after the horizon passed its first end.
func TestLaterEndIsRemembered(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	poll(s, t0, meetingEnded("base", "a@x", t0.Add(-time.Hour)))
	t1 := t0.Add(time.Minute)
	first := meetingEnded("m", "b@x", t1.Add(-3*time.Hour))
	if res := poll(s, t1, first); res.Counted != 1 {
		t.Fatalf("counted %d, want 1", res.Counted)
	}
	later := first
	later.End = first.End.Add(2 * time.Hour)
	if res := poll(s, t1.Add(time.Minute), later); res.Counted != 0 {
		t.Fatalf("the later end counted %d again", res.Counted)
	}
	// A day and more later the horizon passes the first end, not the later one.
	t3 := first.End.Add(49 * time.Hour)
	if res := poll(s, t3, later, meetingEnded("z", "c@x", t3.Add(-time.Second))); res.Counted != 1 {
		t.Fatalf("counted %d, want only the new meeting", res.Counted)
	}
	if !unixTime(s.st.Horizon).After(first.End) || unixTime(s.st.Horizon).After(later.End) {
		t.Fatalf("horizon %v is not between the first end %v and the later one %v", unixTime(s.st.Horizon), first.End, later.End)
	}
	if res := poll(s, t3.Add(time.Minute), later); res.Counted != 0 {
		t.Errorf("the meeting listed with its later end inside the window was counted again (%d)", res.Counted)
	}
}
