package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/testproc"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// statusKiB reads a "Vm...: N kB" line of /proc/PID/status.
func statusKiB(tb testing.TB, pid int, field string) float64 {
	n, err := testproc.ProcStatus(pid, field)
	if errors.Is(err, testproc.ErrNoStatusField) {
		tb.Fatal(err)
	}
	if err != nil {
		tb.Skip("no /proc:", err)
	}
	return float64(n) / 1024
}

// BenchmarkMillionMeetingWindow runs the real binary's first poll of an
// account whose window holds 1,000,000 meetings of 10,000 hosts, paged at
// 100 records (10,000 pages), against the simulator on 127.0.0.1. It
// fails unless the poll completes and umeeting_meetings_total adds up to
// exactly 1,000,000; it reports the exporter's peak resident set (VmHWM),
// its resident set afterwards and the poll's duration. One iteration
// takes a few minutes; it gives up after 15.
func BenchmarkMillionMeetingWindow(b *testing.B) {
	const meetings, hosts = 1_000_000, 10_000
	now := time.Now()
	sim := simulator.New(simulator.Options{APIKey: testKey, APISecret: testSecret, NoGenerated: true})
	apiURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sim.Close() })
	ms := make([]umeeting.Meeting, meetings)
	for i := range ms {
		h := i % hosts
		end := now.Add(-time.Minute - time.Duration(i%(40*3600))*time.Second)
		ms[i] = umeeting.Meeting{UUID: fmt.Sprintf("m%07d-Xw8NitKXw==", i), ID: int64(i), Host: fmt.Sprintf("Host %d", h),
			Email: fmt.Sprintf("host%d@example.com", h), UserType: []string{"Corp", "Pro", "Basic", "Edu"}[h%4],
			Start: end.Add(-time.Duration(5+i%90) * time.Minute), End: end, Participants: 1 + i%30, Features: umeeting.Feature(i % 64)}
	}
	sim.Add(ms...)
	ms = nil

	for b.Loop() {
		dir := b.TempDir()
		cfg := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`poll_interval: 1h
lookback: 48h
backfill: 48h
accounts:
  - name: big
    api_url: %s
    api_key: %s
    api_secret: %s
    page_size: 100
    daily_request_budget: 0
`, apiURL, testKey, testSecret)), 0o600); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		e := startExporter(b, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
		var counted float64
		deadline := time.Now().Add(15 * time.Minute)
		for {
			if time.Now().After(deadline) {
				b.Fatalf("after 15 minutes %v meetings counted, want %d\n%s", counted, meetings, e.Logs.String())
			}
			time.Sleep(time.Second)
			code, body := e.Get("/metrics")
			if code != 200 {
				continue
			}
			if up, _ := sumMetric(body, "umeeting_up", `account="big"`); up != 1 {
				if failed, _ := sumMetric(body, "umeeting_polls_total", `result="failure"`); failed > 0 {
					b.Fatalf("poll failed:\n%s", e.Logs.String())
				}
				continue
			}
			counted, _ = sumMetric(body, "umeeting_meetings_total", `account="big"`)
			if counted != meetings {
				b.Fatalf("%v meetings counted, want %d", counted, meetings)
			}
			took, _ := sumMetric(body, "umeeting_poll_duration_seconds", `account="big"`)
			pid := e.cmd.Process.Pid
			b.ReportMetric(statusKiB(b, pid, "VmHWM")/1024, "peak-rss-MiB")
			b.ReportMetric(statusKiB(b, pid, "VmRSS")/1024, "rss-after-MiB")
			b.ReportMetric(took, "poll-s")
			b.ReportMetric(time.Since(start).Seconds(), "start-to-counted-s")
			b.ReportMetric(float64(sim.Requests()), "requests")
			break
		}
		e.Kill()
	}
}
