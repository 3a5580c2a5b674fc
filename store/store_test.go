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
	snap := s.Snapshot(t0)
	got := map[string]Counters{}
	for _, se := range snap.Series {
		got[se.Email] = se.Counters
	}
	want := map[string]Counters{
		"a@x": {Meetings: 2, Seconds: 600 + 90, Participants: 5, ParticipantSeconds: 3*600 + 2*90, Features: [6]uint64{1, 0, 1, 0, 0, 1}},
		"b@x": {Meetings: 1, Seconds: 3600, Participants: 10, ParticipantSeconds: 36000},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("counters\n got %+v\nwant %+v", got, want)
	}
	h := snap.Histograms["Corp"]
	// 90 s falls in (60, 300], 600 s in (300, 600], 3600 s in (2700, 3600].
	wantBuckets := []uint64{0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	if !reflect.DeepEqual(h.Duration.Buckets, wantBuckets) || h.Duration.Sum != 4290 || h.Duration.Count != 3 {
		t.Errorf("duration histogram = %+v", h.Duration)
	}
	if h.Participants.Sum != 15 || h.Participants.Count != 3 {
		t.Errorf("participants histogram = %+v", h.Participants)
	}
}

func TestWindowDecidesWhatIsCounted(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	inside := mtg("in", "a@x", 47*time.Hour, time.Minute, 1, 0)
	outside := mtg("out", "b@x", 49*time.Hour, time.Minute, 1, 0)    // host only
	ancient := mtg("old", "c@x", 20*24*time.Hour, time.Minute, 1, 0) // host only
	res := poll(s, t0, inside, outside, ancient)
	if res.Counted != 1 || res.Remembered != 0 {
		t.Fatalf("result %+v, want 1 counted", res)
	}
	snap := s.Snapshot(t0)
	if len(snap.Hosts) != 3 || snap.Remembered != 1 {
		t.Fatalf("hosts %d remembered %d, want 3 and 1", len(snap.Hosts), snap.Remembered)
	}
	if n := snap.ActiveHosts["7d"]["Corp"]; n != 2 {
		t.Errorf("active 7d = %d, want 2", n)
	}
	if n := snap.ActiveHosts["30d"]["Corp"]; n != 3 {
		t.Errorf("active 30d = %d, want 3", n)
	}
	if n := snap.ActiveHosts["1d"]["Corp"]; n != 0 {
		t.Errorf("active 1d = %d, want 0", n)
	}
	// The outside meeting never becomes countable later.
	if res := poll(s, t0.Add(time.Hour), outside); res.Counted != 0 {
		t.Errorf("re-listed old meeting counted")
	}
}

func TestShortLookbackRemembersForPeaks(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	b := s.NewBatch(s.Window(t0, 2*time.Hour, 0))
	m := mtg("u", "a@x", 3*time.Hour, time.Hour, 4, 0) // before the lookback, inside the peak window
	b.Meeting(&m)
	b.CommitPage()
	if res := s.Apply(b); res.Counted != 0 || res.Remembered != 1 {
		t.Fatalf("result %+v, want 1 remembered, none counted", res)
	}
	if snap := s.Snapshot(t0); snap.PeakMeetings != 1 || snap.PeakParticipants != 4 || len(snap.Series) != 0 {
		t.Errorf("snapshot %+v", snap)
	}
}

func TestDowntimeWithinBackfillIsRecovered(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "a")
	poll(s, t0)
	// Five days later a meeting that ended four days ago (outside the 48h
	// lookback, but after the last poll) is still counted.
	later := t0.Add(5 * 24 * time.Hour)
	m := mtg("gap", "a@x", -24*time.Hour, time.Minute, 2, 0) // ended t0+1d
	if w := s.Window(later, 48*time.Hour, 30*24*time.Hour); !w.CountFrom.Equal(t0.Add(-48 * time.Hour)) {
		t.Fatalf("count from %v, want last poll - lookback", w.CountFrom)
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
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
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
