package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/umeetingtest"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// BenchmarkIngest measures a whole poll's work on one answer, through the
// client: streaming decode, validation, dedup against the store, and
// aggregation into the counters and histograms (Apply), without the network
// (the answer comes from memory) and the save.
// Run with -cpu 1 for the one-core figure.
//
//   - first: every record is new (the first poll, or a backlog): the state
//     must grow by the new meetings, so the retained heap grows with them.
//   - overlap: every record was counted by an earlier poll (the steady state
//     of overlapping polls): nothing is retained, whatever the answer's size.
//
// retained-KiB is the live heap after the ingest beyond what was live before
// it (answer and, for overlap, the filled store are allocated before).
func BenchmarkIngest(b *testing.B) {
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	now := start.Add(umeetingtest.Span)
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		var answer bytes.Buffer
		if err := umeetingtest.WriteAnswer(&answer, n, start); err != nil {
			b.Fatal(err)
		}
		body := answer.Bytes()
		client := answering(b, body)
		ingest := func(b *testing.B, s *Store) ApplyResult {
			batch := s.NewBatch(s.Window(now, 48*time.Hour, 0))
			if err := client.Fetch(context.Background(), start, now, batch); err != nil {
				b.Fatal(err)
			}
			return s.Apply(batch)
		}
		for _, mode := range []string{"first", "overlap"} {
			b.Run(fmt.Sprintf("%s/records=%d", mode, n), func(b *testing.B) {
				var filled *Store
				if mode == "overlap" {
					filled, _ = Open(b.TempDir(), "bench")
					ingest(b, filled)
				}
				b.SetBytes(int64(len(body)))
				var retained int64
				for b.Loop() {
					s := filled
					if s == nil {
						b.StopTimer()
						s, _ = Open(b.TempDir(), "bench")
						b.StartTimer()
					}
					b.StopTimer()
					before := umeetingtest.LiveHeap()
					b.StartTimer()
					res := ingest(b, s)
					b.StopTimer()
					retained = max(retained, int64(umeetingtest.LiveHeap())-int64(before))
					want := n
					if mode == "overlap" {
						want = 0
					}
					if res.Counted != want {
						b.Fatalf("counted %d, want %d", res.Counted, want)
					}
					runtime.KeepAlive(s)
					b.StartTimer()
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(float64(max(retained, 0))/1024, "retained-KiB")
			})
		}
	}
}

// answering returns a client whose every request is answered with body
// from memory, so that the network's cost is not measured, with room for
// the largest answer.
func answering(b *testing.B, body []byte) *umeeting.Client {
	c, err := umeeting.New(umeeting.Config{Account: "bench", URL: "http://127.0.0.1/hisMeeting", APIKey: "k", APISecret: "s",
		MaxBodyBytes: 1 << 30, Timeout: 10 * time.Minute, HTTPClient: &http.Client{Transport: memory(body)}})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// memory is a transport answering every request with its bytes.
type memory []byte

func (m memory) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(m)), ContentLength: int64(len(m)), Request: req}, nil
}
