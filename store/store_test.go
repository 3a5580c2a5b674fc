package store

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// mtg makes a meeting that ended ago before t0 and lasted length.
func mtg(uuid, email string, ago, length time.Duration, participants int, f umeeting.Feature) umeeting.Meeting {
	end := t0.Add(-ago)
	return umeeting.Meeting{
		UUID: uuid, Host: "Host " + email, Email: email, UserType: "Corp",
		Start: end.Add(-length), End: end, Participants: participants, Features: f,
	}
}

// poll runs one batch over ms, committing after every page of pageSize.
func poll(s *Store, now time.Time, ms ...umeeting.Meeting) ApplyResult {
	b := s.NewBatch(s.Window(now, 48*time.Hour, 30*24*time.Hour))
	for i := range ms {
		b.Meeting(&ms[i])
	}
	b.CommitPage()
	return s.Apply(b)
}

func TestCountsEachMeetingOnce(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	a := mtg("u1", "a@x", time.Hour, 10*time.Minute, 3, umeeting.FeatureVideo|umeeting.FeatureRecording)
	b := mtg("u2", "a@x", 2*time.Hour, 90*time.Second, 2, umeeting.FeatureVoIP)
	res := poll(s, t0, a, b, a) // a duplicate inside one answer
	if res.Counted != 2 {
		t.Fatalf("counted %d, want 2", res.Counted)
	}
	// An overlapping poll lists them again, plus a new one.
	c := mtg("u3", "b@x", 30*time.Minute, time.Hour, 10, 0)
	if res := poll(s, t0.Add(5*time.Minute), b, a, c); res.Counted != 1 {
		t.Fatalf("second poll counted %d, want 1", res.Counted)
	}
	series := func() map[string]Counters {
		got := map[string]Counters{}
		for _, se := range s.Snapshot(t0).Series {
			got[se.Email] = se.Counters
		}
		return got
	}
	// b@x's series is new: it is shown at zero for one poll.
	if got := series()["b@x"]; got != (Counters{}) {
		t.Fatalf("new series shown at %+v before it was exposed", got)
	}
	poll(s, t0.Add(10*time.Minute))
	want := map[string]Counters{
		"a@x": {Meetings: 2, Seconds: 600 + 90, Participants: 5, ParticipantSeconds: 3*600 + 2*90, Features: [6]uint64{1, 0, 1, 0, 0, 1}},
		"b@x": {Meetings: 1, Seconds: 3600, Participants: 10, ParticipantSeconds: 36000},
	}
	if got := series(); !reflect.DeepEqual(got, want) {
		t.Errorf("counters\n got %+v\nwant %+v", got, want)
	}
	h := s.Snapshot(t0).Histograms["Corp"]
	// 90 s falls in (60, 300], 600 s in (300, 600], 3600 s in (2700, 3600].
	wantBuckets := []uint64{0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	if !reflect.DeepEqual(h.Duration.Buckets, wantBuckets) || h.Duration.Sum != 4290 || h.Duration.Count != 3 {
		t.Errorf("duration histogram = %+v", h.Duration)
	}
	if h.Participants.Sum != 15 || h.Participants.Count != 3 {
		t.Errorf("participants histogram = %+v", h.Participants)
	}
}

func TestBaselineCountsBackfillThenHorizonHolds(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	inside := mtg("in", "a@x", 47*time.Hour, time.Minute, 1, 0)
	outside := mtg("out", "b@x", 49*time.Hour, time.Minute, 1, 0)
	ancient := mtg("old", "c@x", 20*24*time.Hour, time.Minute, 1, 0)
	if w := s.Window(t0, 48*time.Hour, 30*24*time.Hour); !w.Baseline || !w.From.Equal(t0.Add(-30*24*time.Hour)) {
		t.Fatalf("first window %+v, want the baseline reaching back the backfill", w)
	}
	// The first poll counts the whole backfill into the starting values,
	// shown at once.
	if res := poll(s, t0, inside, outside, ancient); res.Counted != 3 {
		t.Fatalf("result %+v, want 3 counted", res)
	}
	if !s.Seam().Equal(t0) {
		t.Errorf("seam %v, want %v", s.Seam(), t0)
	}
	snap := s.Snapshot(t0)
	if len(snap.Series) != 3 || snap.Series[0].Meetings != 1 || !snap.Series[0].Created.IsZero() {
		t.Fatalf("baseline series %+v", snap.Series)
	}
	if len(snap.Hosts) != 3 {
		t.Fatalf("hosts %d, want 3", len(snap.Hosts))
	}
	if n := snap.ActiveHosts["7d"]["Corp"]; n != 2 {
		t.Errorf("active 7d = %d, want 2", n)
	}
	if n := snap.ActiveHosts["30d"]["Corp"]; n != 3 {
		t.Errorf("active 30d = %d, want 3", n)
	}
	// Listed again later, with any lookback or backfill, none is counted twice.
	for _, lb := range []time.Duration{48 * time.Hour, 96 * time.Hour, 30 * 24 * time.Hour} {
		b := s.NewBatch(s.Window(t0.Add(time.Hour), lb, 60*24*time.Hour))
		for _, m := range []umeeting.Meeting{inside, outside, ancient} {
			b.Meeting(&m)
		}
		b.CommitPage()
		if res := s.Apply(b); res.Counted != 0 {
			t.Errorf("lookback %v: re-listed meetings counted: %+v", lb, res)
		}
	}
}

func TestShortLookbackRemembersForPeaks(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	// The baseline, with a 2h lookback: the horizon is 2h before its latest meeting.
	b := s.NewBatch(s.Window(t0.Add(-time.Hour), 2*time.Hour, 0))
	recent := mtg("r", "b@x", time.Hour, time.Minute, 1, 0)
	b.Meeting(&recent)
	b.CommitPage()
	s.Apply(b)
	b = s.NewBatch(s.Window(t0, 2*time.Hour, 0))
	m := mtg("u", "a@x", 5*time.Hour, time.Hour, 4, 0) // before the horizon, inside the peak window
	b.Meeting(&m)
	b.CommitPage()
	if res := s.Apply(b); res.Counted != 0 || res.Remembered != 1 {
		t.Fatalf("result %+v, want 1 remembered, none counted", res)
	}
	if snap := s.Snapshot(t0); snap.PeakMeetings != 1 || snap.PeakParticipants != 4 || len(snap.Series) != 1 {
		t.Errorf("snapshot %+v", snap)
	}
}

func TestDowntimeWithinBackfillIsRecovered(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "a")
	poll(s, t0, mtg("u0", "a@x", time.Hour, time.Minute, 1, 0))
	horizon := t0.Add(-time.Hour - 48*time.Hour)
	if !unixTime(s.st.Horizon).Equal(horizon) {
		t.Fatalf("horizon %v, want latest end - lookback %v", unixTime(s.st.Horizon), horizon)
	}
	// Five days later a meeting that ended four days ago (outside the 48h
	// lookback, but after the last poll) is still counted.
	later := t0.Add(5 * 24 * time.Hour)
	m := mtg("gap", "a@x", -24*time.Hour, time.Minute, 2, 0) // ended t0+1d
	if w := s.Window(later, 48*time.Hour, 30*24*time.Hour); !w.From.Equal(horizon) {
		t.Fatalf("request from %v, want the horizon", w.From)
	}
	if res := poll(s, later, m); res.Counted != 1 {
		t.Errorf("meeting ended during downtime not counted: %+v", res)
	}
}

func TestDiscardPageForgetsThePage(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	b := s.NewBatch(s.Window(t0, 48*time.Hour, 30*24*time.Hour))
	m1, m2 := mtg("u1", "a@x", time.Hour, time.Minute, 1, 0), mtg("u2", "a@x", time.Hour, time.Minute, 1, 0)
	old := mtg("old", "z@x", 10*24*time.Hour, time.Minute, 1, 0)
	b.Meeting(&m1)
	b.CommitPage()
	b.Meeting(&m2)
	b.Meeting(&old)
	b.Invalid(umeeting.ReasonMissingUUID, []byte(`{"x":1}`))
	b.DiscardPage()
	// The retried page lists m2 again: it must be taken again.
	b.Meeting(&m2)
	b.CommitPage()
	res := s.Apply(b)
	if res.Counted != 2 || res.Invalid != 0 {
		t.Fatalf("result %+v, want 2 counted and no invalid", res)
	}
	if len(s.Snapshot(t0).Hosts) != 1 {
		t.Error("host of a discarded page was kept")
	}
}

func TestInvalidRecordsCountedOnce(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "a")
	for range 3 {
		b := s.NewBatch(s.Window(t0, 48*time.Hour, 0))
		b.Invalid(umeeting.ReasonMissingUUID, []byte(`{"host":"x"}`))
		b.Invalid(umeeting.ReasonMissingUUID, []byte(`{"host":"x"}`))
		b.Invalid(umeeting.ReasonBadEndTime, []byte(`{"uuid":"u"}`))
		b.CommitPage()
		s.Apply(b)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(dir, "a")
	b := s2.NewBatch(s2.Window(t0, 48*time.Hour, 0))
	b.Invalid(umeeting.ReasonMissingUUID, []byte(`{"host":"x"}`))
	b.CommitPage()
	s2.Apply(b)
	inv := s2.Snapshot(t0).Invalid
	if inv[umeeting.ReasonMissingUUID] != 1 || inv[umeeting.ReasonBadEndTime] != 1 || inv[umeeting.ReasonMalformed] != 0 {
		t.Errorf("invalid = %v", inv)
	}
	if len(inv) != len(umeeting.InvalidReasons) {
		t.Errorf("not every reason present: %v", inv)
	}
}

func TestPruneBoundsMemory(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	for day := range 10 {
		now := t0.Add(time.Duration(day) * 24 * time.Hour)
		var ms []umeeting.Meeting
		for i := range 100 {
			m := mtg(fmt.Sprintf("d%d-%d", day, i), "a@x", 0, time.Minute, 1, 0)
			m.End = now.Add(-time.Duration(i) * time.Minute)
			m.Start = m.End.Add(-time.Minute)
			ms = append(ms, m)
		}
		poll(s, now, ms...)
	}
	// Polls a day apart with a 48h lookback: meetings of the last 73h
	// (time since the previous poll + lookback + margin) stay, no more.
	if n := s.Remembered(); n > 400 {
		t.Errorf("remembered %d meetings after 10 days, want <= 400", n)
	}
	if got := s.Snapshot(t0).Series[0].Meetings; got != 1000 {
		t.Errorf("counted %d, want 1000", got)
	}
}

func TestPeaks(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	at := func(uuid string, startAgo, endAgo time.Duration, p int) umeeting.Meeting {
		return umeeting.Meeting{UUID: uuid, Email: uuid, UserType: "Corp", Start: t0.Add(-startAgo), End: t0.Add(-endAgo), Participants: p}
	}
	poll(s, t0,
		at("a", 5*time.Hour, 3*time.Hour, 2),
		at("b", 4*time.Hour, 2*time.Hour, 3),     // overlaps a: 2 meetings, 5 people
		at("c", 2*time.Hour, time.Hour, 7),       // starts when b ends: no overlap
		at("d", 30*time.Hour, 23*time.Hour, 1),   // started before the window, ran into it
		at("e", 40*time.Hour, 30*time.Hour, 100), // entirely before the window
	)
	snap := s.Snapshot(t0)
	if snap.PeakMeetings != 2 || snap.PeakParticipants != 7 {
		t.Errorf("peaks = %d meetings, %d participants; want 2, 7", snap.PeakMeetings, snap.PeakParticipants)
	}
}

func TestSaveOpenRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, info := Open(dir, "acme")
	if !info.Fresh || info.LoadError != nil {
		t.Fatalf("info = %+v", info)
	}
	poll(s, t0,
		mtg("u1", "a@x", time.Hour, 10*time.Minute, 3, umeeting.FeatureVideo),
		mtg("u2", "b@x", 3*24*time.Hour, time.Minute, 1, 0))
	s.SetBackfilled()
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2, info := Open(dir, "acme")
	if info.Fresh || info.LoadError != nil {
		t.Fatalf("reopen info = %+v", info)
	}
	if !reflect.DeepEqual(s.st, s2.st) {
		t.Errorf("state changed across save/open:\n%+v\n%+v", s.st, s2.st)
	}
	if !s2.Backfilled() || !s2.CountedThrough().Equal(t0) {
		t.Error("flags lost")
	}
	// The state, and its copy at the seam (the first poll): no temporary file.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 || entries[0].Name() != "acme.state" || entries[1].Name() != "acme.state.seam" {
		t.Errorf("left files behind: %v", entries)
	}
}

func TestCorruptStateIsSetAside(t *testing.T) {
	for name, damage := range map[string]func([]byte) []byte{
		"garbage":   func([]byte) []byte { return []byte("not a state file at all") },
		"truncated": func(b []byte) []byte { return b[:len(b)/2] },
		"bit flip":  func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b },
		"empty":     func([]byte) []byte { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := Open(dir, "a")
			poll(s, t0, mtg("u1", "a@x", time.Hour, time.Minute, 1, 0))
			if err := s.Save(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "a.state")
			data, _ := os.ReadFile(path)
			damaged := damage(data)
			os.WriteFile(path, damaged, 0o600)

			s2, info := Open(dir, "a")
			if info.LoadError == nil || !info.Fresh || info.SetAside == "" {
				t.Fatalf("info = %+v", info)
			}
			if !strings.Contains(info.LoadError.Error(), path) {
				t.Errorf("error does not name the file: %v", info.LoadError)
			}
			kept, err := os.ReadFile(info.SetAside)
			if err != nil || string(kept) != string(damaged) {
				t.Errorf("damaged file not kept aside intact: %v", err)
			}
			if s2.Remembered() != 0 {
				t.Error("fresh state expected")
			}
			if err := s2.Save(); err != nil {
				t.Errorf("saving after setting aside: %v", err)
			}
		})
	}
}

func TestLeftoverTempFileIsHarmless(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "a")
	poll(s, t0, mtg("u1", "a@x", time.Hour, time.Minute, 1, 0))
	s.Save()
	// A crash between writing the temporary file and the rename leaves it.
	os.WriteFile(filepath.Join(dir, "a.state.tmp-123"), []byte("half"), 0o600)
	s2, info := Open(dir, "a")
	if info.LoadError != nil || s2.Remembered() != 1 {
		t.Errorf("info %+v remembered %d", info, s2.Remembered())
	}
}

func TestLockDirIsExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	unlock, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(dir); err == nil || !strings.Contains(err.Error(), "in use by another umeeting_exporter") {
		t.Errorf("second lock: %v", err)
	}
	unlock()
	unlock2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
}

// breakSaves makes every save of the account's state fail, even as root:
// a non-empty folder where the state file goes cannot be renamed over.
func breakSaves(t *testing.T, path string) (repair func()) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := os.MkdirAll(filepath.Join(path, "blocker"), 0o700); err != nil {
		t.Fatal(err)
	}
	return func() {
		os.RemoveAll(path)
		os.WriteFile(path, data, 0o600)
	}
}

func TestFailedSaveUndoesThePoll(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "a")
	a := mtg("u1", "a@x", time.Hour, time.Minute, 1, 0)
	b := s.NewBatch(s.Window(t0, 48*time.Hour, 30*24*time.Hour))
	b.Meeting(&a)
	b.CommitPage()
	if _, err := s.Commit(b); err != nil {
		t.Fatal(err)
	}
	before := s.Snapshot(t0)
	repair := breakSaves(t, s.Path())
	later := t0.Add(5 * time.Minute)
	c, d := mtg("u2", "a@x", 0, time.Minute, 1, 0), mtg("u3", "new@x", 0, time.Minute, 1, 0)
	b = s.NewBatch(s.Window(later, 48*time.Hour, 30*24*time.Hour))
	b.Meeting(&c)
	b.Meeting(&d)
	b.Invalid(umeeting.ReasonMalformed, []byte("x"))
	b.CommitPage()
	if _, err := s.Commit(b); err == nil {
		t.Fatal("save over a folder succeeded")
	}
	if after := s.Snapshot(t0); !reflect.DeepEqual(before, after) {
		t.Fatalf("a poll whose save failed changed the state:\n%+v\n%+v", before, after)
	}
	repair()
	b = s.NewBatch(s.Window(later, 48*time.Hour, 30*24*time.Hour))
	b.Meeting(&c)
	b.Meeting(&d)
	b.Invalid(umeeting.ReasonMalformed, []byte("x"))
	b.CommitPage()
	if res, err := s.Commit(b); err != nil || res.Counted != 2 || res.Invalid != 1 {
		t.Fatalf("retry: %+v, %v", res, err)
	}
}

// TestAdmissionMovesOnlyNewIncrements: a host entering or leaving the
// per-host set takes no history with it, so no series jumps.
func TestAdmissionMovesOnlyNewIncrements(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	now := t0
	n := 0
	// Polls 5 minutes apart, each after a reload with policy p a minute
	// after the previous poll.
	step := func(p Policy, emails ...string) map[SeriesKey]uint64 {
		p.HoldFor = 5 * time.Minute
		s.SetPolicy(p, now.Add(time.Minute))
		now = now.Add(5 * time.Minute)
		var ms []umeeting.Meeting
		for _, e := range emails {
			n++
			m := mtg(fmt.Sprint("m", n), e, 0, time.Minute, 1, 0)
			m.End, m.Start = now.Add(-time.Minute), now.Add(-2*time.Minute)
			ms = append(ms, m)
		}
		poll(s, now, ms...)
		got := map[SeriesKey]uint64{}
		for _, se := range s.Snapshot(now).Series {
			got[se.SeriesKey] = se.Meetings
		}
		return got
	}
	one := Policy{PerHost: true, MaxHosts: 1}
	two := Policy{PerHost: true, MaxHosts: 2}
	a, b, other := SeriesKey{"a@x", "Corp"}, SeriesKey{"b@x", "Corp"}, SeriesKey{"", "Corp"}
	want := func(got map[SeriesKey]uint64, w map[SeriesKey]uint64) {
		t.Helper()
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("series %v, want %v", got, w)
		}
	}
	want(step(one, "a@x", "b@x", "b@x"), map[SeriesKey]uint64{a: 1, other: 2}) // baseline
	want(step(two, "b@x"), map[SeriesKey]uint64{a: 1, b: 0, other: 2})         // b admitted: new series held at 0
	want(step(two, "b@x"), map[SeriesKey]uint64{a: 1, b: 2, other: 2})         // its history stays in other
	want(step(one, "b@x"), map[SeriesKey]uint64{a: 1, other: 3})               // b leaves: only new meetings move
	want(step(two, "b@x"), map[SeriesKey]uint64{a: 1, b: 2, other: 3})         // back: old value first, increment held
	want(step(two), map[SeriesKey]uint64{a: 1, b: 3, other: 3})                // exposed for a poll interval
	// The reload itself shows who has series of their own, before a poll.
	s.SetPolicy(one, now.Add(time.Minute))
	if got := len(s.Snapshot(now).Series); got != 2 {
		t.Errorf("%d series right after a reload to max_hosts 1, want 2", got)
	}
}

func TestUserTypesAreCapped(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	s.SetPolicy(Policy{PerHost: true, MaxUserTypes: 2}, t0)
	var ms []umeeting.Meeting
	for i := range 50 {
		m := mtg(fmt.Sprint("u", i), "a@x", time.Duration(i)*time.Minute, time.Minute, 1, 0)
		m.UserType = fmt.Sprint("T", i%5)
		ms = append(ms, m)
	}
	res := poll(s, t0, ms...)
	snap := s.Snapshot(t0)
	types := map[string]uint64{}
	for _, se := range snap.Series {
		types[se.UserType] += se.Meetings
	}
	if len(types) != 3 || types[OtherUserType] != 30 || snap.Folded != 30 || res.Folded != 30 {
		t.Errorf("series by user_type %v, folded %d", types, snap.Folded)
	}
	if len(snap.Histograms) != 3 {
		t.Errorf("histograms %d, want 3", len(snap.Histograms))
	}
}

func TestInvalidRecordCountedOnceWhileListed(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	for h := range 24 * 7 {
		b := s.NewBatch(s.Window(t0.Add(time.Duration(h)*time.Hour), 48*time.Hour, 0))
		b.Invalid(umeeting.ReasonMissingUUID, []byte(`{"host":"still listed"}`))
		b.CommitPage()
		s.Apply(b)
	}
	if n := s.Snapshot(t0).Invalid[umeeting.ReasonMissingUUID]; n != 1 {
		t.Errorf("an invalid record listed for a week was counted %d times", n)
	}
}

// checkResaved saves s, opens it again from dir and fails the test (saying
// what) unless the state read back equals s's.
func checkResaved(t *testing.T, s *Store, dir, account, what string) {
	t.Helper()
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	again, info := Open(dir, account)
	if info.LoadError != nil || !reflect.DeepEqual(s.st, again.st) {
		t.Errorf("%s: %v\n%+v\n%+v", what, info.LoadError, s.st, again.st)
	}
}

// TestEmptyEmailIsNeverAHostSeries: a host without an e-mail is counted in
// the series without host labels, which Prometheus could not tell apart
// from a per-host series with an empty email label.
func TestEmptyEmailIsNeverAHostSeries(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	poll(s, t0, mtg("u1", "", time.Hour, time.Minute, 1, 0), mtg("u2", "a@x", time.Hour, time.Minute, 1, 0))
	snap := s.Snapshot(t0)
	got := map[SeriesKey]uint64{}
	for _, se := range snap.Series {
		got[se.SeriesKey] = se.Meetings
	}
	if want := map[SeriesKey]uint64{{"", "Corp"}: 1, {"a@x", "Corp"}: 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for _, h := range snap.Hosts {
		if h.Email == "" && h.Admitted {
			t.Error("a host without e-mail is admitted")
		}
	}
}

// TestHoldSurvivesRestart: a series held at zero is still held, and still
// shown at zero, after a restart; the next poll shows its count.
func TestHoldSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "a")
	poll(s, t0, mtg("u1", "a@x", time.Hour, time.Minute, 1, 0))
	poll(s, t0.Add(5*time.Minute), mtg("u2", "new@x", 0, time.Minute, 1, 0))
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(dir, "a")
	shown := func(s *Store) map[string]uint64 {
		got := map[string]uint64{}
		for _, se := range s.Snapshot(t0).Series {
			got[se.Email] = se.Meetings
		}
		return got
	}
	if got := shown(s2); got["new@x"] != 0 || got["a@x"] != 1 || len(got) != 2 {
		t.Fatalf("after a restart %v, want new@x held at 0", got)
	}
	poll(s2, t0.Add(10*time.Minute))
	if got := shown(s2); got["new@x"] != 1 {
		t.Errorf("after the next poll %v, want new@x at 1", got)
	}
}

// shownByUserType sums, per user_type, the meetings of the exposed series
// and the observations of both histograms, as a scrape would see them.
func shownByUserType(s *Store, now time.Time) (series, durations, participants map[string]uint64) {
	series, durations, participants = map[string]uint64{}, map[string]uint64{}, map[string]uint64{}
	snap := s.Snapshot(now)
	for _, se := range snap.Series {
		series[se.UserType] += se.Meetings
	}
	for ut, h := range snap.Histograms {
		durations[ut], participants[ut] = h.Duration.Count, h.Participants.Count
	}
	return series, durations, participants
}

// TestNewHistogramsHeldWithNewSeries: the histograms of a user_type first
// counted after the baseline are shown empty, and their observations held,
// for as long as the counters of the series created with them, across a
// poll too soon to release them and a restart (whose uptime the hold counts
// again); then both show together.
// The baseline's histograms are shown at once.
func TestNewHistogramsHeldWithNewSeries(t *testing.T) {
	dir := t.TempDir()
	policy := Policy{PerHost: true, HoldFor: time.Minute}
	s, _ := Open(dir, "a")
	s.SetPolicy(policy, t0)
	pro := func(uuid, email string) umeeting.Meeting {
		m := mtg(uuid, email, time.Hour, 10*time.Minute, 2, 0)
		m.UserType = "Pro"
		return m
	}
	check := func(s *Store, now time.Time, what string, corp, pro uint64) {
		t.Helper()
		want := map[string]uint64{"Corp": corp, "Pro": pro}
		series, durations, participants := shownByUserType(s, now)
		if series["Pro"] != pro || series["Corp"] != corp || !reflect.DeepEqual(durations, want) || !reflect.DeepEqual(participants, want) {
			t.Errorf("%s: series %v, duration histograms %v, participant histograms %v; want %v in each",
				what, series, durations, participants, want)
		}
	}
	poll(s, t0, mtg("u1", "a@x", time.Hour, time.Minute, 1, 0))
	snap := s.Snapshot(t0)
	if h := snap.Histograms["Corp"]; h.Duration.Count != 1 {
		t.Fatalf("baseline histogram shows %d observations, want 1 at once", h.Duration.Count)
	}

	now := t0.Add(time.Minute)
	poll(s, now, pro("p1", "p@x"), pro("p2", ""))
	check(s, now, "a new user_type", 1, 0)
	poll(s, now, pro("p3", "q@x")) // an overlapping poll in the same second
	check(s, now, "a poll before the hold ended", 1, 0)
	poll(s, now.Add(30*time.Second))
	check(s, now, "a poll half a hold later", 1, 0)

	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2, info := Open(dir, "a")
	if info.LoadError != nil {
		t.Fatal(info.LoadError)
	}
	s2.SetPolicy(policy, now.Add(40*time.Second))
	check(s2, now, "after a restart", 1, 0)
	poll(s2, now.Add(time.Minute))
	check(s2, now, "a poll one hold after the birth, 20s after the restart", 1, 0)
	poll(s2, now.Add(100*time.Second))
	check(s2, now, "a poll one hold after the restart", 1, 3)
}

// TestActiveHostsWindows: a host whose latest meeting ended exactly a
// window ago is active in it, a second earlier is not; a user_type in use
// without active hosts shows 0.
func TestActiveHostsWindows(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	s.st.Hists["Edu"] = &Histograms{}
	s.st.Hosts["edge@x"] = &Host{UserType: "Corp", LastEnd: t0.Add(-24 * time.Hour).Unix()}
	s.st.Hosts["before@x"] = &Host{UserType: "Corp", LastEnd: t0.Add(-24*time.Hour - time.Second).Unix()}
	s.st.Hosts["old@x"] = &Host{UserType: "Pro", LastEnd: t0.Add(-40 * 24 * time.Hour).Unix()}
	active, _, _ := s.Gauges(t0)
	want := map[string]map[string]int{
		"1d":  {"Corp": 1, "Pro": 0, "Edu": 0},
		"7d":  {"Corp": 2, "Pro": 0, "Edu": 0},
		"30d": {"Corp": 2, "Pro": 0, "Edu": 0},
	}
	if !reflect.DeepEqual(active, want) {
		t.Errorf("active hosts %v, want %v", active, want)
	}
}
