package history

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/account"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// BenchmarkExport90Days exports 90 days of a simulated account, as
// docs/history.md's sizing table says: per-host series, and per-account
// series only. It reports the blocks' size and the peak heap, and the floor
// measured in the same run: fetching and decoding the same history from the
// simulator (no replay, no blocks).
//
//	go test -run '^$' -bench BenchmarkExport90Days -benchtime 1x ./history/
func BenchmarkExport90Days(b *testing.B) {
	for _, c := range []struct {
		hosts   int
		perHost bool
	}{
		{300, true},
		{300, false},
		{10000, false},
	} {
		b.Run(fmt.Sprintf("hosts=%d/per_host=%v", c.hosts, c.perHost), func(b *testing.B) {
			// One page a month: the simulator builds a month's listing
			// for every page it serves, which would dominate at 10,000 hosts.
			f := newFixtureWith(b, c.hosts, 90*24*time.Hour, simulator.Options{DisablePaging: true})
			for range b.N {
				b.StopTimer()
				os.RemoveAll(filepath.Join(f.dir, "history"))
				fetchFloor := measureFetch(b, f)
				stop := sampleHeap()
				b.StartTimer()
				begun := time.Now()
				out, _ := f.export(b, Options{PerHost: c.perHost, MaxRequests: 1000})
				took := time.Since(begun)
				b.StopTimer()
				peak := stop()
				var size int64
				err := filepath.WalkDir(out, func(_ string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						fi, err := d.Info()
						if err == nil {
							size += fi.Size()
						}
						return err
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(size)/1e6, "blocks_MB")
				b.ReportMetric(float64(peak)/1e6, "peak_heap_MB")
				b.ReportMetric(took.Seconds(), "export_s")
				b.ReportMetric(fetchFloor.Seconds(), "floor_fetch_s")
				os.RemoveAll(out)
				b.StartTimer()
			}
		})
	}
}

// measureFetch is the floor of the export's reading: the same requests,
// decoded into a sink that only counts.
func measureFetch(b *testing.B, f *fixture) time.Duration {
	b.Helper()
	client, err := account.NewClient(f.cfg.Accounts[0], nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	begun := time.Now()
	for _, m := range months(seamAt.Add(-f.cfg.Backfill.D()), seamAt, f.cfg.Accounts[0].MaxMeetingLength.D(), f.cfg.Accounts[0].Location) {
		if err := client.Fetch(context.Background(), m.From, m.To, &countSink{}); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(begun)
}

type countSink struct{ n int }

func (c *countSink) Meeting(*umeeting.Meeting) { c.n++ }
func (c *countSink) Invalid(string, []byte)    {}
func (c *countSink) CommitPage()               {}
func (c *countSink) DiscardPage()              {}

// sampleHeap records the largest heap in use until the returned function
// is called, which returns it.
func sampleHeap() func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); return peak.Load() }
}
