package umeeting

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting/umeetingtest"
)

// memSink counts records and, now and then, measures the live heap (after
// a collection, with the benchmark timer stopped), to show that decoding
// holds neither the answer nor its records.
type memSink struct {
	b                 *testing.B
	every             int // records between two samples
	meetings, invalid int
	peakLive          uint64
}

func (s *memSink) Meeting(*Meeting) {
	if s.meetings++; s.meetings%s.every == 0 {
		s.sample()
	}
}
func (s *memSink) Invalid(string, []byte) { s.invalid++ }
func (s *memSink) CommitPage()            {}
func (s *memSink) DiscardPage()           {}

func (s *memSink) sample() {
	s.b.StopTimer()
	s.peakLive = max(s.peakLive, umeetingtest.LiveHeap())
	s.b.StartTimer()
}

// BenchmarkDecode decodes a realistic answer (umeetingtest.WriteAnswer)
// through the streaming decoder Fetch uses, into a counting sink. Run it with
// -cpu 1 for the one-core figure. Metrics: records/s; alloc-B/rec, bytes
// allocated per record (garbage: the uuid string); live-heap-KiB, the largest
// live heap seen during a decode beyond the baseline (the answer itself is
// allocated before the baseline), which must not grow with the answer.
func BenchmarkDecode(b *testing.B) {
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for _, n := range []int{10000, 100000, 1000000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			var answer bytes.Buffer
			if err := umeetingtest.WriteAnswer(&answer, n, start); err != nil {
				b.Fatal(err)
			}
			body := answer.Bytes()
			b.SetBytes(int64(len(body)))
			baseline := umeetingtest.LiveHeap()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			var peak uint64
			b.ResetTimer()
			for range b.N {
				sink := &memSink{b: b, every: min(n/4, 1<<16)}
				env, err := Decode(bytes.NewReader(body), start, start.Add(umeetingtest.Span), sink)
				if err != nil || sink.meetings != n || env.Records != n {
					b.Fatalf("decoded %d of %d records (envelope %d): %v", sink.meetings, n, env.Records, err)
				}
				peak = max(peak, sink.peakLive)
			}
			b.StopTimer()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			records := float64(n) * float64(b.N)
			b.ReportMetric(records/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/records, "alloc-B/rec")
			b.ReportMetric(float64(max(int64(peak)-int64(baseline), 0))/1024, "live-heap-KiB")
		})
	}
}
