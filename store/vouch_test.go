package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/fakeclock"
	"github.com/umeeting/umeeting_exporter/internal/timex"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// vouching is a Batch, as a poll hands it to Fetch, counting the meetings
// it is handed.
type vouching struct {
	*store.Batch
	handed *int
}

func (v vouching) Meeting(m *umeeting.Meeting) { *v.handed++; v.Batch.Meeting(m) }

// plain is a Batch that is not a umeeting.Voucher: it is handed every
// meeting, as before vouching.
type plain struct {
	umeeting.Sink
	handed *int
}

func (p plain) Meeting(m *umeeting.Meeting) { *p.handed++; p.Sink.Meeting(m) }

// vouchRig polls one simulated API into two stores, each with its own
// Client: one through a Batch that vouches for the answers it was handed
// before, the other handed every meeting.
type vouchRig struct {
	t     *testing.T
	sim   *simulator.Simulator
	api   *fakeclock.Clock // the API's clock
	sides [2]*vouchSide
}

type vouchSide struct {
	st     *store.Store
	c      *umeeting.Client
	handed int
}

func newVouchRig(t *testing.T, apiNow time.Time, opts simulator.Options) *vouchRig {
	g := &vouchRig{t: t, api: fakeclock.New(apiNow)}
	opts.APIKey, opts.APISecret, opts.Now = "k", "s", g.api.Now
	g.sim = simulator.New(opts)
	url, err := g.sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.sim.Close() })
	for i := range g.sides {
		st, info := store.Open(t.TempDir(), "a")
		if info.LoadError != nil {
			t.Fatal(info.LoadError)
		}
		c, err := umeeting.New(umeeting.Config{Account: "a", URL: url, APIKey: "k", APISecret: "s", PageSize: 25, MaxRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		g.sides[i] = &vouchSide{st: st, c: c}
	}
	return g
}

// vouchPoll is one poll of both stores.
type vouchPoll struct {
	now      time.Time // the exporter's clock
	lookback time.Duration
	fail     bool // the fetch fails at its second page, if it has one
	rollback bool // the poll is applied, then rolled back
}

// poll polls both stores and checks they hold the same numbers. It
// returns their ApplyResults and how many meetings each was handed, and
// whether the fetches failed.
func (g *vouchRig) poll(what string, p vouchPoll) (res [2]store.ApplyResult, handed [2]int, failed bool) {
	g.t.Helper()
	var errs [2]error
	for i, sd := range g.sides {
		win := sd.st.Window(p.now, p.lookback, 72*time.Hour)
		b := sd.st.NewBatch(win)
		var sink umeeting.Sink = vouching{b, &sd.handed}
		if i == 1 {
			sink = plain{b, &sd.handed}
		}
		if p.fail {
			g.sim.SetFault(simulator.Fault{Kind: simulator.FaultHTTP500, Count: 1, Page: 2})
		}
		before := sd.handed
		errs[i] = sd.c.Fetch(context.Background(), win.From, p.now, sink)
		g.sim.SetFault(simulator.Fault{Kind: simulator.FaultNone})
		handed[i] = sd.handed - before
		if errs[i] != nil {
			continue
		}
		res[i] = sd.st.Apply(b)
		if p.rollback {
			sd.st.Rollback()
		}
	}
	if (errs[0] == nil) != (errs[1] == nil) {
		g.t.Fatalf("%s: fetch errors differ: %v, %v", what, errs[0], errs[1])
	}
	if res[0] != res[1] {
		g.t.Fatalf("%s: vouched %+v, handed all %+v", what, res[0], res[1])
	}
	if got, want := g.sides[0].st.Snapshot(p.now), g.sides[1].st.Snapshot(p.now); !reflect.DeepEqual(got, want) {
		g.t.Fatalf("%s: the stores differ:\nvouched    %+v\nhanded all %+v", what, got, want)
	}
	return res, handed, errs[0] != nil
}

// TestVouchedReplayEqualsFullHandover: through random polls (answers
// listed again unchanged or with new meetings, failed fetches, rolled back
// polls, the exporter's clock stepped back and forth against the API's,
// lookback changes, meetings forgotten by prune) the store whose Batch
// vouches for replayed answers holds the same numbers as the one handed
// every meeting, after every poll; and a poll that lists the same as the
// last one, at the same time, hands over no meeting again.
func TestVouchedReplayEqualsFullHandover(t *testing.T) {
	g := newVouchRig(t, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC),
		simulator.Options{Seed: 7, Hosts: 200, MaxListingDelay: 20 * time.Minute})
	rng := rand.New(rand.NewPCG(3, 4))
	offset, lookback := time.Duration(0), 6*time.Hour
	events := map[string]int{}
	applied := false     // the last poll was applied and not rolled back
	var latest time.Time // the latest time the exporter's clock showed
	for poll := range 200 {
		what := fmt.Sprint("poll ", poll)
		// quiet: the API lists the same as for the last poll, applied, at
		// the same time, the latest the exporter's clock showed: every
		// meeting is vouched for. (After the clock stepped back, prune may
		// have forgotten meetings that end after the window's KeepFrom.)
		quiet := applied
		switch r := rng.IntN(10); {
		case r < 4: // the API lists the same again
		case r < 8:
			quiet = false
			g.api.Advance(time.Duration(1+rng.IntN(20)) * time.Minute)
		default:
			quiet = false
			g.api.Advance(time.Duration(1+rng.IntN(8)) * time.Hour)
		}
		now := g.api.Now().Add(offset)
		if rng.IntN(10) == 0 {
			// An exporter clock behind the API's and then less so sees
			// meetings of the same answers end in its window.
			offset, quiet = []time.Duration{0, -2 * time.Hour, -time.Hour, time.Hour}[rng.IntN(4)], false
			what += fmt.Sprint(", exporter clock ", offset, " from the next poll")
			events["clock"]++
		}
		if rng.IntN(15) == 0 {
			lookback, quiet = []time.Duration{2 * time.Hour, 6 * time.Hour, 30 * time.Hour}[rng.IntN(3)], false
			what += fmt.Sprint(", lookback ", lookback)
			events["lookback"]++
		}
		quiet = quiet && !now.Before(latest)
		latest = timex.Later(latest, now)
		p := vouchPoll{now: now, lookback: lookback, fail: rng.IntN(10) == 0, rollback: rng.IntN(8) == 0}
		res, handed, failed := g.poll(what, p)
		switch {
		case failed:
			events["failed"]++
		case p.rollback:
			events["rollback"]++
		}
		applied = !failed && !p.rollback
		if res[0].Pruned > 0 {
			events["pruned"]++
		}
		if quiet && !p.fail {
			events["quiet"]++
			if handed[0] > 0 || handed[1] == 0 {
				t.Errorf("%s: the API listed the same, at the same time: %d meetings handed over again, of %d", what, handed[0], handed[1])
			}
		}
	}
	t.Logf("meetings handed over: %d vouched, %d all; %v", g.sides[0].handed, g.sides[1].handed, events)
	for _, e := range []string{"clock", "lookback", "failed", "rollback", "pruned", "quiet"} {
		if events[e] < 3 {
			t.Errorf("only %d polls with %s", events[e], e)
		}
	}
}

// TestNoVouchingWhenKeepFromMovesBack: after the exporter's clock stepped
// back, a poll's window keeps meetings that the last poll, handed the same
// answers, did not: one listed late, before that poll's KeepFrom, or one
// that poll forgot. The Batch does not vouch for those answers, and both
// stores remember the meeting again.
func TestNoVouchingWhenKeepFromMovesBack(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 7, 0, 0, 0, time.UTC) // 15:00 in the API's zone
	meeting := func(uuid, email string, end time.Time) umeeting.Meeting {
		return umeeting.Meeting{UUID: uuid, Host: email, Email: email, UserType: "Pro", Start: end.Add(-30 * time.Minute), End: end, Participants: 2}
	}
	t.Run("listed late, before the last KeepFrom", func(t *testing.T) {
		g := newVouchRig(t, t0, simulator.Options{NoGenerated: true})
		g.sim.Add(meeting("a1", "a@x", t0.Add(-time.Hour)))
		g.poll("baseline", vouchPoll{now: t0, lookback: 6 * time.Hour})
		// Lookback raised: the window reaches before KeepFrom, where a
		// meeting listed late only moves its host.
		g.api.Advance(20 * time.Minute)
		g.sim.Add(meeting("x", "x@x", t0.Add(-25*time.Hour)))
		if res, _, _ := g.poll("lookback raised", vouchPoll{now: g.api.Now(), lookback: 48 * time.Hour}); res[0].Remembered != 0 {
			t.Fatalf("the late meeting was remembered: %+v", res[0])
		}
		res, _, _ := g.poll("clock back 2h20m", vouchPoll{now: t0.Add(-2 * time.Hour), lookback: 48 * time.Hour})
		if res[1].Remembered != 1 {
			t.Errorf("handed every meeting, the store remembered %d meetings, want the late one", res[1].Remembered)
		}
	})
	t.Run("forgotten by the last poll", func(t *testing.T) {
		g := newVouchRig(t, t0, simulator.Options{NoGenerated: true})
		g.sim.Add(meeting("a1", "a@x", t0.Add(-time.Hour)), meeting("y", "y@x", t0.Add(-29*time.Hour)))
		g.poll("baseline", vouchPoll{now: t0, lookback: 30 * time.Hour})
		// Eight hours on, a new meeting moves the horizon past y: forgotten.
		g.api.Advance(8 * time.Hour)
		g.sim.Add(meeting("z", "z@x", t0.Add(7*time.Hour)))
		if res, _, _ := g.poll("8h on", vouchPoll{now: g.api.Now(), lookback: 30 * time.Hour}); res[0].Pruned != 1 {
			t.Fatalf("y was not forgotten: %+v", res[0])
		}
		res, _, _ := g.poll("clock back 14h", vouchPoll{now: t0.Add(-6 * time.Hour), lookback: 30 * time.Hour})
		if res[1].Remembered != 1 {
			t.Errorf("handed every meeting, the store remembered %d meetings, want y again", res[1].Remembered)
		}
	})
}
