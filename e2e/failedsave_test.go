package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// TestFailedSaveCountsEveryMeetingLater: the state file cannot be written
// for a poll that counts a meeting listed late, just after the horizon,
// and forgets it in the same poll (a newer meeting moves the horizon past
// it). Once the file can be written again, the exporter's totals equal
// the simulator's ground truth: the undone poll lost nothing.
func TestFailedSaveCountsEveryMeetingLater(t *testing.T) {
	sim, base, _, data, e := startWithBase(t)
	waitFor(t, 30*time.Second, "the baseline served", func() bool { return served(e, "umeeting_meetings_total") == 30 })

	state := filepath.Join(data, "e2e.state")
	// A save may put the file back between the removal and the folder.
	waitFor(t, 10*time.Second, "the state file's place taken by a folder", func() bool {
		os.Remove(state)
		return os.MkdirAll(filepath.Join(state, "blocker"), 0o700) == nil
	})
	// The horizon is the latest end listed less the 48h lookback: late
	// ends a minute after it, recent moves the horizon past late.
	late := countingMeeting("late", "late", "Late", "Corp", time.Hour+48*time.Hour-time.Minute)
	late.End = base[0].End.Add(-48 * time.Hour).Add(time.Minute)
	late.Start = late.End.Add(-20 * time.Minute)
	recent := countingMeeting("recent", "recent", "Recent", "Corp", time.Second)
	sim.Add(late, recent)
	waitFor(t, 20*time.Second, "a failed save", func() bool { return served(e, "umeeting_state_save_failures_total") >= 1 })
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	waitExact(t, e, sim, "e2e")
}

// startWithBase starts an exporter polling a simulator that lists 30
// meetings of 10 hosts, ended an hour ago; it returns them, the config
// file and the storage folder.
func startWithBase(t *testing.T) (sim *simulator.Simulator, base []umeeting.Meeting, cfg, data string, e *exporter) {
	t.Helper()
	sim, apiURL := newSim(t, simulator.Options{NoGenerated: true})
	for i := range 30 {
		base = append(base, countingMeeting(fmt.Sprintf("base-%d", i), fmt.Sprintf("h%02d", i%10), "H", "Corp", time.Hour))
	}
	sim.Add(base...)
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	cfg = writeConfig(t, dir, apiURL, retries, "")
	return sim, base, cfg, data, startExporter(t, "--config.file="+cfg, "--storage.path="+data)
}
