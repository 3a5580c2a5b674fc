package history

import (
	"strings"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/simulator"
)

// TestEmptyMonthAskedAgain: one transient {"status":200,"data":null} for a
// month was saved as an empty month for good, so every later run showed
// that month's meetings as one jump before the seam. The month is asked
// again by the next run, whose days all equal the truth.
func TestEmptyMonthAskedAgain(t *testing.T) {
	const backfill = 40 * 24 * time.Hour
	f := newFixture(t, 10, backfill)
	f.sim.SetFault(simulator.Fault{Kind: simulator.FaultNoData, Count: 1}) // the first month's first page
	_, progress := f.export(t, Options{PerHost: true})
	if !strings.Contains(progress, "month 1/2 ") || !strings.Contains(progress, ": 0 meetings, 0 invalid records") {
		t.Fatalf("the faulted month did not come back empty:\n%s", progress)
	}
	before := f.sim.Requests()
	out, progress := f.export(t, Options{PerHost: true})
	if f.sim.Requests() == before || strings.Count(progress, "already fetched") != 1 {
		t.Errorf("the second run did not ask for the empty month again (and only for it):\n%s", progress)
	}
	if days := f.checkDays(t, readSamples(t, out), seamAt.Add(-backfill), true); days < 38 {
		t.Errorf("only %d whole days checked", days)
	}
}

// TestOneRequestAMonth: the client reaches back max_meeting_length before
// a period, so periods cut without that reach took two requests each; a
// month now takes one (the API answers in one page here).
func TestOneRequestAMonth(t *testing.T) {
	f := newFixtureWith(t, 10, 60*24*time.Hour, simulator.Options{DisablePaging: true})
	before := f.sim.Requests()
	_, progress := f.export(t, Options{PerHost: true, Step: time.Hour})
	n, fetched := f.sim.Requests()-before, strings.Count(progress, " meetings, ")
	if n != fetched || fetched < 3 {
		t.Errorf("%d requests for %d months:\n%s", n, fetched, progress)
	}
}
