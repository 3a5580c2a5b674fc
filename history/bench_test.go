package history

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/poller"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// BenchmarkExport90Days exports 90 days of a simulated account, as the
// README's sizing table says: per-host series at the default step, and
// per-account series only. It reports the file's size and samples and the
// peak heap, and two floors measured in the same run: fetching and
// decoding the same history from the simulator (no replay, no file), and
// writing a file of the same size line by line (no replay).
//
//	go test -run '^$' -bench BenchmarkExport90Days -benchtime 1x ./history/
func BenchmarkExport90Days(b *testing.B) {
	for _, c := range []struct {
		hosts   int
		perHost bool
		step    time.Duration
	}{
		{300, true, DefaultStep},
		{300, false, DefaultStep},
		{10000, false, DefaultStep},
	} {
		b.Run(fmt.Sprintf("hosts=%d/per_host=%v/step=%s", c.hosts, c.perHost, c.step), func(b *testing.B) {
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
				out, _ := f.export(b, Options{PerHost: c.perHost, Step: c.step, MaxRequests: 1000})
				took := time.Since(begun)
				b.StopTimer()
				peak := stop()
				st, err := os.Stat(out)
				if err != nil {
					b.Fatal(err)
				}
				writeFloor := measureWrite(b, out)
				b.ReportMetric(float64(st.Size())/1e6, "file_MB")
				b.ReportMetric(float64(countLines(b, out)), "lines")
				b.ReportMetric(float64(peak)/1e6, "peak_heap_MB")
				b.ReportMetric(took.Seconds(), "export_s")
				b.ReportMetric(fetchFloor.Seconds(), "floor_fetch_s")
				b.ReportMetric(writeFloor.Seconds(), "floor_write_s")
				os.Remove(out)
				b.StartTimer()
			}
		})
	}
}

// measureFetch is the floor of the export's reading: the same requests,
// decoded into a sink that only counts.
func measureFetch(b *testing.B, f *fixture) time.Duration {
	b.Helper()
	client, err := poller.NewClient(f.cfg.Accounts[0], nil, nil, nil)
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

// measureWrite is the floor of the export's writing: the same lines copied
// through a buffered writer to a new file.
func measureWrite(b *testing.B, path string) time.Duration {
	b.Helper()
	in, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(path + ".floor")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(out.Name())
	begun := time.Now()
	w := bufio.NewWriterSize(out, 1<<20)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		w.Write(sc.Bytes())
		w.WriteByte('\n')
	}
	w.Flush()
	out.Sync()
	out.Close()
	return time.Since(begun)
}

func countLines(b *testing.B, path string) int {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	n := 0
	buf := make([]byte, 1<<20)
	for {
		k, err := f.Read(buf)
		n += strings.Count(string(buf[:k]), "\n")
		if err == io.EOF {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

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
