package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// TestHeldZeroSurvivesACrash: a new host's series is served at 0 before
// its first meeting shows, so that increase() sees that meeting. The
// exporter is killed while it holds the 0, stays down for longer than the
// poll interval, and polls at once when it starts again: the 0 is still
// served for a poll interval of uptime, and a Prometheus that never saw
// the series before the crash counts the meeting.
func TestHeldZeroSurvivesACrash(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{NoGenerated: true})
	var base []umeeting.Meeting
	for i := range 3 {
		base = append(base, countingMeeting(fmt.Sprintf("base-%d", i), fmt.Sprintf("base%02d", i), "Base", "Corp", time.Hour))
	}
	sim.Add(base...)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries, "")
	const interval = 5 * time.Second
	text := strings.Replace(mustRead(t, cfg), "poll_interval: 2s", fmt.Sprintf("poll_interval: %s", interval), 1)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	args := []string{"--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, "data")}
	e := startExporterAt(t, addr, args...)
	waitFor(t, 30*time.Second, "the baseline served", func() bool { return served(e, "umeeting_meetings_total") == 3 })

	fresh := `email="fresh` + countingDomain + `"`
	sim.Add(countingMeeting("fresh-1", "fresh", "Fresh", "Corp", time.Minute))
	waitFor(t, 2*interval, "the new host's series served", func() bool {
		_, ok := sumMetric(e.Metrics(), "umeeting_meetings_total", fresh)
		return ok
	})
	if v := served(e, "umeeting_meetings_total", fresh); v != 0 {
		t.Fatalf("the new host's series is served at %v before a poll interval passed, want the held 0", v)
	}
	e.Kill()
	down := time.Now()

	ps := prometheusEach(t, addr) // scraping a target that is down
	time.Sleep(time.Until(down.Add(interval * 7 / 5)))
	e = startExporterAt(t, addr, args...)
	waitFor(t, 3*interval, "the new host's first meeting served", func() bool {
		return served(e, "umeeting_meetings_total", fresh) == 1
	})
	waitScrapesEach(t, ps, 30)
	for _, p := range ps {
		t.Run(p.release.Name, func(t *testing.T) {
			near(t, "first meeting of the new host", p.scalar(t, `sum(increase(umeeting_meetings_total{account="e2e",`+fresh+`}[5m]))`), 1)
		})
	}
}
