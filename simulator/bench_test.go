package simulator

import (
	"testing"
)

func BenchmarkGenerateDay(b *testing.B) {
	s := New(Options{Seed: 1, Now: newClock(t0).Now})
	d := s.dayOf(t0)
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		n += len(s.generateDay(d - int64(i%28)))
	}
	b.ReportMetric(float64(n)/float64(b.N), "meetings/day")
}

// benchAnswer measures the application's answer to a month query (days
// cached after the first), without HTTP.
func benchAnswer(b *testing.B, opts Options, extra ...string) {
	opts.Seed, opts.Now = 1, newClock(t0).Now
	s := New(opts)
	v := params(day(t0.AddDate(0, -1, 0)), today, extra...)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		size = len(s.answer(v, 1))
	}
	b.ReportMetric(float64(size), "bytes/answer")
}

func BenchmarkMonthPage100(b *testing.B) { benchAnswer(b, Options{}, "page_size", "100") }

func BenchmarkMonthUnpaged(b *testing.B) { benchAnswer(b, Options{DisablePaging: true}) }

// BenchmarkMonthPagesHTTP fetches every page of a month over HTTP, as a
// client does on its first poll.
func BenchmarkMonthPagesHTTP(b *testing.B) {
	_, api := serve(b, Options{Seed: 1, Now: newClock(t0).Now})
	var n int
	for b.Loop() {
		n = len(fetchAll(b, api, day(t0.AddDate(0, -1, 0)), today, 100))
	}
	b.ReportMetric(float64(n), "records")
}
