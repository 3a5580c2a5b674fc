package store

import (
	"math"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// TestCountersNeverWrap: a counter at the top of uint64 stays there; it
// never wraps to a small value, which increase() would read as a reset
// followed by a huge jump.
func TestCountersNeverWrap(t *testing.T) {
	end := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	m := umeeting.Meeting{UUID: "u", Email: "a@x", UserType: "Corp", Start: end.Add(-31 * 24 * time.Hour), End: end,
		Participants: umeeting.MaxParticipants}
	c := Counters{Seconds: math.MaxUint64 - 5, Participants: math.MaxUint64 - 5, ParticipantSeconds: math.MaxUint64 - 5}
	c.add(&m, uint64(m.Length()/time.Second))
	if c.Seconds != math.MaxUint64 || c.Participants != math.MaxUint64 || c.ParticipantSeconds != math.MaxUint64 {
		t.Errorf("counters wrapped: %+v", c)
	}
	h := newHistogram(DurationBuckets)
	h.Sum = math.MaxUint64 - 1
	if h.observe(DurationBuckets, 100); h.Sum != math.MaxUint64 {
		t.Errorf("histogram sum wrapped: %d", h.Sum)
	}
}
