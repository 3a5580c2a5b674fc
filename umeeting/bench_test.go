package umeeting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/umeeting/umeeting_exporter/internal/umeetingtest"
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
				env, err := decodeAnswer(bytes.NewReader(body), start, start.Add(umeetingtest.Span), sink)
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

// BenchmarkDecodeLibraries compares, on the same answer and with the same
// field rules (parser.record), the two streaming decoders issue #8 weighed:
// jsontext (what Decode uses), and encoding/json's Decoder (Token/More for
// the envelope and the array, Decode per record into raw field values);
// and, as the floor, plain encoding/json decoding the whole answer into a
// struct slice, which holds every record at once and applies no rule.
func BenchmarkDecodeLibraries(b *testing.B) {
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	const n = 100_000
	var answer bytes.Buffer
	if err := umeetingtest.WriteAnswer(&answer, n, start); err != nil {
		b.Fatal(err)
	}
	body := answer.Bytes()
	run := func(b *testing.B, decode func() int) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if got := decode(); got != n {
				b.Fatalf("decoded %d of %d records", got, n)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	}
	b.Run("jsontext", func(b *testing.B) {
		run(b, func() int {
			sink := &countSink{}
			if _, err := decodeAnswer(bytes.NewReader(body), start, start.Add(umeetingtest.Span), sink); err != nil {
				b.Fatal(err)
			}
			return sink.meetings
		})
	})
	b.Run("encoding-json-stream", func(b *testing.B) {
		run(b, func() int { return decodeV1(b, body, start) })
	})
	b.Run("encoding-json-floor", func(b *testing.B) {
		run(b, func() int {
			var a umeetingtest.Answer
			if err := json.Unmarshal(body, &a); err != nil {
				b.Fatal(err)
			}
			return len(a.Data)
		})
	})
}

// v1Record holds the raw values of a record's fields for decodeV1.
type v1Record struct {
	UUID            json.RawMessage `json:"uuid"`
	Host            json.RawMessage `json:"host"`
	Email           json.RawMessage `json:"email"`
	UserType        json.RawMessage `json:"user_type"`
	Start           json.RawMessage `json:"start_time"`
	End             json.RawMessage `json:"end_time"`
	Duration        json.RawMessage `json:"duration"`
	Participants    json.RawMessage `json:"participants"`
	PSTN            json.RawMessage `json:"has_pstn"`
	VoIP            json.RawMessage `json:"has_voip"`
	ThirdPartyAudio json.RawMessage `json:"has_3rd_party_audio"`
	Video           json.RawMessage `json:"has_video"`
	ScreenShare     json.RawMessage `json:"has_screen_share"`
	Recording       json.RawMessage `json:"recording"`
}

// decodeV1 streams the answer's records with encoding/json's Decoder and
// applies the same rules as Decode; it returns the meetings kept.
func decodeV1(b *testing.B, body []byte, start time.Time) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	p := parser{loc: time.UTC, maxLength: DefaultMaxMeetingLength, in: map[string]string{}}
	kept := 0
	if _, err := dec.Token(); err != nil {
		b.Fatal(err)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			b.Fatal(err)
		}
		if key != "data" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				b.Fatal(err)
			}
			continue
		}
		if _, err := dec.Token(); err != nil {
			b.Fatal(err)
		}
		for dec.More() {
			var r v1Record
			if err := dec.Decode(&r); err != nil {
				b.Fatal(err)
			}
			for i, v := range [nFields]json.RawMessage{r.UUID, r.Host, r.Email, r.UserType, r.Start, r.End, r.Duration,
				r.Participants, r.Video, r.ScreenShare, r.VoIP, r.PSTN, r.ThirdPartyAudio, r.Recording} {
				p.f[i] = jsontext.Value(v)
			}
			if p.record() == "" && !p.m.End.Before(start) && !p.m.End.After(start.Add(umeetingtest.Span)) {
				kept++
			}
		}
		if _, err := dec.Token(); err != nil {
			b.Fatal(err)
		}
	}
	return kept
}

// BenchmarkFetchPages fetches an unchanged window of 10,000 records in 100
// pages, as a steady poll does, into a sink that keeps nothing: the CPU
// time of the requests and of decoding every answer.
func BenchmarkFetchPages(b *testing.B) {
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	const pages, perPage = 100, 100
	bodies := make([][]byte, pages+1)
	for p := 1; p <= pages; p++ {
		var recs []string
		for i := range perPage {
			n := (p-1)*perPage + i
			end := start.Add(time.Duration(n) * time.Second)
			recs = append(recs, meetingRecord(fmt.Sprintf("m%07dXw8NitKXw==", n), end))
		}
		bodies[p] = []byte(envelope(recs, fmt.Sprintf(`"total_records": %d`, pages*perPage), fmt.Sprintf(`"page_count": %d`, pages)))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := strconv.Atoi(r.FormValue("page_number"))
		w.Header().Set("Content-Type", "application/json")
		w.Write(bodies[max(1, min(p, pages))])
	}))
	defer srv.Close()
	c, err := New(Config{Account: "bench", URL: srv.URL, APIKey: "k", APISecret: "s", Location: time.UTC, MaxLength: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	sink := &memSink{b: b, every: 1 << 30}
	ctx := context.Background()
	from, to := start.Add(-time.Hour), start.Add(3*time.Hour)
	for b.Loop() {
		sink.meetings = 0
		if err := c.Fetch(ctx, from, to, sink); err != nil {
			b.Fatal(err)
		}
		if sink.meetings != pages*perPage {
			b.Fatalf("%d meetings, want %d", sink.meetings, pages*perPage)
		}
	}
}
