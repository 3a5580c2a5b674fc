package store

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// commit is poll, committed (applied and saved unless nothing but the
// poll's time changed).
func commit(t *testing.T, s *Store, now time.Time, invalid []string, ms ...umeeting.Meeting) ApplyResult {
	t.Helper()
	b := s.NewBatch(s.Window(now, 48*time.Hour, 30*24*time.Hour))
	for i := range ms {
		b.Meeting(&ms[i])
	}
	for _, raw := range invalid {
		b.Invalid(umeeting.ReasonBadEndTime, []byte(raw))
	}
	b.CommitPage()
	res, err := s.Commit(b)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestPollThatChangedNothingIsNotSaved: a poll that lists only known
// meetings changes nothing the state file holds but its own time, and is
// not written; everything else is, and the time at least hourly. A
// restart after unsaved polls loads the same numbers and counts nothing
// again.
func TestPollThatChangedNothingIsNotSaved(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "a")
	ms := []umeeting.Meeting{mtg("u1", "a@x", time.Hour, 10*time.Minute, 3, 0), mtg("u2", "b@x", 2*time.Hour, time.Minute, 1, 0)}
	if res := commit(t, s, t0, nil, ms...); !res.Saved {
		t.Fatal("baseline not saved")
	}
	onDisk, _ := os.ReadFile(s.Path())
	now := t0
	for i := range 5 {
		now = now.Add(time.Minute)
		if res := commit(t, s, now, nil, ms...); res.Saved || res.Counted != 0 {
			t.Fatalf("poll %d listing only known meetings: %+v", i+1, res)
		}
	}
	if data, _ := os.ReadFile(s.Path()); string(data) != string(onDisk) {
		t.Error("the state file changed although no poll saved")
	}

	// A restart now: the same numbers; the next poll counts nothing.
	s2, info := Open(dir, "a")
	if info.LoadError != nil {
		t.Fatal(info.LoadError)
	}
	want := s.Snapshot(now)
	if got := s2.Snapshot(now); !reflect.DeepEqual(got.Series, want.Series) || got.Remembered != want.Remembered || !unixTime(s2.st.Horizon).Equal(unixTime(s.st.Horizon)) {
		t.Errorf("after a restart: %+v, want %+v", got.Series, want.Series)
	}
	if res := commit(t, s2, now.Add(time.Minute), nil, ms...); res.Counted != 0 || !res.Saved {
		t.Errorf("first poll after the restart: %+v (counts nothing, saves its time)", res)
	}

	for _, c := range []struct {
		what    string
		change  func(now time.Time) ApplyResult
		counted int
	}{
		{"a new meeting", func(now time.Time) ApplyResult {
			return commit(t, s, now, nil, append(ms, mtg("u3", "c@x", 0, time.Minute, 2, 0))...)
		}, 1},
		{"an invalid record listed (its last sighting moves)", func(now time.Time) ApplyResult {
			return commit(t, s, now, []string{`{"uuid":"x"}`}, ms...)
		}, 0},
		{"the same invalid record listed again", func(now time.Time) ApplyResult {
			return commit(t, s, now, []string{`{"uuid":"x"}`}, ms...)
		}, 0},
		{"backfill marked done", func(now time.Time) ApplyResult {
			s.SetBackfilled()
			return commit(t, s, now, nil, ms...)
		}, 0},
		{"an hour since the last save", func(now time.Time) ApplyResult {
			return commit(t, s, now.Add(maxUnsaved), nil, ms...)
		}, 0},
	} {
		now = now.Add(time.Minute)
		if res := c.change(now); !res.Saved || res.Counted != c.counted {
			t.Errorf("%s: %+v, want saved and %d counted", c.what, res, c.counted)
		}
		checkResaved(t, s, dir, "a", c.what)
	}
}

// TestUnsavedPollsStillFailWhenSavesAreBlocked: a state that must not be
// written (it could not be moved aside) fails every poll, as before.
func TestUnsavedPollsStillFailWhenSavesAreBlocked(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	ms := mtg("u1", "a@x", time.Hour, 10*time.Minute, 3, 0)
	commit(t, s, t0, nil, ms)
	s.saveBlocked = os.ErrPermission
	b := s.NewBatch(s.Window(t0.Add(time.Minute), 48*time.Hour, 0))
	b.Meeting(&ms)
	b.CommitPage()
	if _, err := s.Commit(b); err == nil {
		t.Error("a poll of a store that cannot save succeeded")
	}
}

// TestAdmissionFollowsHostsAndPolicy: every host's Admitted and series'
// Exposed follow the admission after every kind of change (new hosts past
// MaxHosts, a rename into an exclusion, a new policy, a poll undone).
func TestAdmissionFollowsHostsAndPolicy(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	check := func(what string) {
		t.Helper()
		s.mu.Lock()
		defer s.mu.Unlock()
		want := s.admission()
		for email, h := range s.st.Hosts {
			if h.Admitted != want[email] {
				t.Errorf("%s: host %s admitted %v, want %v", what, email, h.Admitted, want[email])
			}
		}
		for k, x := range s.st.Series {
			if x.Exposed != (k.Email == "" || want[k.Email]) {
				t.Errorf("%s: series %v exposed %v", what, k, x.Exposed)
			}
		}
	}
	now := t0
	s.SetPolicy(Policy{PerHost: true, MaxHosts: 2, Exclude: regexp.MustCompile("^Gone")}, now)
	for i, email := range []string{"a@x", "b@x", "c@x"} {
		now = now.Add(time.Minute)
		poll(s, now, mtg(fmt.Sprint("m", i), email, time.Duration(-i)*time.Minute, time.Minute, 1, 0))
		check("host " + email)
	}
	now = now.Add(time.Minute)
	renamed := mtg("m9", "a@x", -10*time.Minute, time.Minute, 1, 0)
	renamed.Host = "Gone a"
	poll(s, now, renamed)
	check("a host renamed into the exclusion")
	failedCommit(t, s, now.Add(time.Second), mtg("m10", "e@x", -10*time.Minute, time.Minute, 1, 0))
	check("a new host's poll undone")
	s.SetPolicy(Policy{PerHost: true, MaxHosts: 1}, now)
	check("a new policy")
	poll(s, now.Add(time.Minute))
	check("a poll that changed no host")
	poll(s, now.Add(2*time.Minute), mtg("m20", "d@x", -20*time.Minute, time.Minute, 1, 0))
	check("a new host counted")
	poll(s, now.Add(3*time.Minute), mtg("m21", "a@x", -21*time.Minute, time.Minute, 1, 0))
	check("an admitted host counted")
	s.SetPolicy(Policy{PerHost: true, MaxHosts: 3}, now)
	failedCommit(t, s, now.Add(4*time.Minute))
	check("more hosts admitted, the poll undone")
	poll(s, now.Add(5*time.Minute))
	check("a poll after the rollback")
}

// failedCommit commits a poll of ms at now whose save fails, and checks
// that it failed.
func failedCommit(t *testing.T, s *Store, now time.Time, ms ...umeeting.Meeting) {
	t.Helper()
	s.saveBlocked = os.ErrPermission
	defer func() { s.saveBlocked = nil }()
	b := s.NewBatch(s.Window(now, 48*time.Hour, 30*24*time.Hour))
	for i := range ms {
		b.Meeting(&ms[i])
	}
	b.CommitPage()
	if _, err := s.Commit(b); err == nil {
		t.Fatal("a commit whose save fails succeeded")
	}
}
