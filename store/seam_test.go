package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// commitPoll runs one poll at now over ms through Commit, as the poller does.
func commitPoll(t *testing.T, s *Store, now time.Time, ms ...umeeting.Meeting) error {
	t.Helper()
	b := s.NewBatch(s.Window(now, 48*time.Hour, 30*24*time.Hour))
	for i := range ms {
		b.Meeting(&ms[i])
	}
	b.CommitPage()
	_, err := s.Commit(b)
	return err
}

// TestSeamKeepsTheStartingValues: the baseline poll keeps the state as it
// saved it beside the state file; later polls leave that copy alone, so it
// still holds the starting values when the live counters have moved on.
func TestSeamKeepsTheStartingValues(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "a")
	if err := commitPoll(t, s, t0, mtg("u1", "a@x", 2*24*time.Hour, time.Hour, 3, 0), mtg("u2", "b@x", time.Hour, time.Hour, 2, 0)); err != nil {
		t.Fatal(err)
	}
	if err := commitPoll(t, s, t0.Add(time.Hour), mtg("u3", "a@x", 10*time.Minute-time.Hour, 5*time.Minute, 2, 0)); err != nil {
		t.Fatal(err)
	}
	seam, err := ReadSeam(dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !seam.Seam().Equal(t0) {
		t.Errorf("seam %v, want the first poll %v", seam.Seam(), t0)
	}
	var total uint64
	for _, se := range seam.Snapshot(t0).Series {
		total += se.Meetings
	}
	if total != 2 {
		t.Errorf("the state at the seam counts %d meetings, want the baseline's 2", total)
	}
	if err := seam.Save(); err == nil {
		t.Error("a state read at the seam can be saved")
	}
}

// TestSeamCopyFailingUndoesTheBaseline: when the copy cannot be written,
// the save fails before the state is written, Commit undoes the poll, and
// the next poll is the baseline again.
func TestSeamCopyFailingUndoesTheBaseline(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "a")
	// A folder where the copy goes makes its rename fail.
	if err := os.MkdirAll(filepath.Join(dir, "a.state.seam", "x"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := commitPoll(t, s, t0, mtg("u1", "a@x", time.Hour, time.Hour, 3, 0)); err == nil {
		t.Fatal("the baseline poll committed without its copy at the seam")
	}
	if _, err := os.Stat(filepath.Join(dir, "a.state")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the state was written without its copy at the seam: %v", err)
	}
	if w := s.Window(t0.Add(time.Minute), 48*time.Hour, 30*24*time.Hour); !w.Baseline {
		t.Error("after the failed save the next poll is not the baseline")
	}
	os.RemoveAll(filepath.Join(dir, "a.state.seam"))
	if err := commitPoll(t, s, t0.Add(time.Minute), mtg("u1", "a@x", time.Hour, time.Hour, 3, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSeam(dir, "a"); err != nil {
		t.Fatal(err)
	}
}

func TestReadSeamOfAnOlderState(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "a")
	if err := commitPoll(t, s, t0, mtg("u1", "a@x", time.Hour, time.Hour, 3, 0)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "a.state.seam"))
	if _, err := ReadSeam(dir, "a"); !errors.Is(err, ErrNoSeam) {
		t.Errorf("ReadSeam without the copy: %v, want ErrNoSeam", err)
	}
	if _, err := ReadSeam(t.TempDir(), "a"); !errors.Is(err, ErrNoState) {
		t.Errorf("ReadSeam without a state: %v, want ErrNoState", err)
	}
}
