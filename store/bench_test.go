package store

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// filledStore returns a store remembering n meetings of 2,000 hosts, all
// inside a 48h lookback, as after a busy two days.
func filledStore(b *testing.B, n int) *Store {
	s, _ := Open(b.TempDir(), "bench")
	batch := s.NewBatch(s.Window(t0, 48*time.Hour, 0))
	for i := range n {
		end := t0.Add(-time.Duration(i%(47*3600)) * time.Second)
		m := umeeting.Meeting{
			UUID: fmt.Sprintf("k%07dXw8NitKXw==", i),
			Host: fmt.Sprintf("host %d", i%2000), Email: fmt.Sprintf("host%d@example.com", i%2000),
			UserType: "Corp", Start: end.Add(-30 * time.Minute), End: end, Participants: 1 + i%20,
			Features: umeeting.Feature(i % 64),
		}
		batch.Meeting(&m)
	}
	batch.CommitPage()
	s.Apply(batch)
	return s
}

// BenchmarkSave measures one durable, atomic save (encode, write, fsync,
// rename, fsync of the folder) of the state of 100,000 remembered meetings.
func BenchmarkSave(b *testing.B) {
	s := filledStore(b, 100_000)
	if s.Remembered() != 100_000 {
		b.Fatalf("remembered %d", s.Remembered())
	}
	b.ResetTimer()
	for b.Loop() {
		if err := s.Save(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	fi, err := os.Stat(s.Path())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/1e6, "MB/file")
}

// BenchmarkOpen measures loading that state at start-up.
func BenchmarkOpen(b *testing.B) {
	s := filledStore(b, 100_000)
	if err := s.Save(); err != nil {
		b.Fatal(err)
	}
	dir := s.path[:len(s.path)-len("/bench.state")]
	for b.Loop() {
		if _, info := Open(dir, "bench"); info.LoadError != nil {
			b.Fatal(info.LoadError)
		}
	}
}
