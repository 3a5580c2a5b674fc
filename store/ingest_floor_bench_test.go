package store

import (
	"bytes"
	"context"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/umeetingtest"
)

// BenchmarkIngestVsFloor runs, in one go on the same 100,000-record answer,
// the whole ingest of a first poll (through the client: streaming decode,
// validation, dedup, aggregation: as BenchmarkIngest's "first") and the floor: plain
// encoding/json decoding the same bytes into a struct slice, with no rule,
// no dedup and every record held at once. Besides records/s (wall clock,
// which a shared machine inflates) it reports records per CPU-second of
// the process, and BENCHMARKS.md divides the two sides.
func BenchmarkIngestVsFloor(b *testing.B) {
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	now := start.Add(umeetingtest.Span)
	const n = 100_000
	var answer bytes.Buffer
	if err := umeetingtest.WriteAnswer(&answer, n, start); err != nil {
		b.Fatal(err)
	}
	body := answer.Bytes()
	client := answering(b, body)
	run := func(b *testing.B, setup func(), work func() int) {
		b.SetBytes(int64(len(body)))
		cpu := 0.0
		for b.Loop() {
			b.StopTimer()
			setup()
			b.StartTimer()
			before := cpuSeconds()
			if got := work(); got != n {
				b.Fatalf("%d of %d records", got, n)
			}
			cpu += cpuSeconds() - before
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(n)*float64(b.N)/cpu, "records/cpu-s")
	}
	b.Run("ingest", func(b *testing.B) {
		var s *Store
		run(b, func() { s, _ = Open(b.TempDir(), "bench") }, func() int {
			batch := s.NewBatch(s.Window(now, 48*time.Hour, 0))
			if err := client.Fetch(context.Background(), start, now, batch); err != nil {
				b.Fatal(err)
			}
			return s.Apply(batch).Counted
		})
	})
	b.Run("floor-encoding-json", func(b *testing.B) {
		run(b, func() {}, func() int {
			var a umeetingtest.Answer
			if err := json.Unmarshal(body, &a); err != nil {
				b.Fatal(err)
			}
			return len(a.Data)
		})
	})
}

// cpuSeconds is the CPU time (user and system) the process used so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
