package simulator

import (
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// TestListingWithoutCompanyFollowsChanges: the listing a simulator without
// generated meetings keeps between pages still shows meetings as they are
// added and as they end.
func TestListingWithoutCompanyFollowsChanges(t *testing.T) {
	clock := newClock(t0)
	s, apiURL := serve(t, Options{Now: clock.Now, NoGenerated: true})
	meeting := func(uuid string, end time.Time) umeeting.Meeting {
		return umeeting.Meeting{UUID: uuid, Host: "Ann", Email: "ann@x.com", UserType: "Pro", Start: end.Add(-time.Hour), End: end, Participants: 2}
	}
	listed := func() int {
		return len(fetchAll(t, apiURL, day(t0.Add(-24*time.Hour)), day(t0.Add(24*time.Hour)), 100))
	}
	s.Add(meeting("ended", t0.Add(-time.Hour)), meeting("later", t0.Add(30*time.Minute)))
	if n := listed(); n != 1 {
		t.Fatalf("%d records listed, want the one meeting that ended", n)
	}
	clock.Set(t0.Add(time.Hour))
	if n := listed(); n != 2 {
		t.Fatalf("%d records listed once the second meeting ended, want 2", n)
	}
	s.Add(meeting("added", t0.Add(-2*time.Hour)))
	if n := listed(); n != 3 {
		t.Fatalf("%d records listed after Add, want 3", n)
	}
}
