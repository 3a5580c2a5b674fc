package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// TestGenerationSeesEveryChange publishes as the poller does (a new
// snapshot only when Generation moved, otherwise the last one with fresh
// Gauges) through baseline, new and held series, held increments shown
// after a poll with nothing new, reloads, rollbacks and time passing, and
// checks every publication against a fresh Snapshot.
func TestGenerationSeesEveryChange(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	now := t0
	var last *Snapshot
	var lastGen uint64
	reused := 0
	publish := func(what string) {
		t.Helper()
		gen := s.Generation()
		var snap *Snapshot
		if last != nil && gen == lastGen {
			c := *last
			c.At = now
			c.ActiveHosts, c.PeakMeetings, c.PeakParticipants = s.Gauges(now)
			snap = &c
			reused++
		} else {
			snap = s.Snapshot(now)
		}
		last, lastGen = snap, gen
		if fresh := s.Snapshot(now); !reflect.DeepEqual(snap, fresh) {
			t.Fatalf("%s: published %+v\nfresh %+v", what, snap, fresh)
		}
	}
	p := Policy{PerHost: true, MaxHosts: 2, HoldFor: 5 * time.Minute}
	s.SetPolicy(p, now)
	step := func(what string, ms ...string) {
		t.Helper()
		now = now.Add(5 * time.Minute)
		var batch []umeeting.Meeting
		for _, e := range ms {
			m := mtg(what+e, e, 0, time.Minute, 2, 0)
			m.End, m.Start = now.Add(-time.Minute), now.Add(-2*time.Minute)
			batch = append(batch, m)
		}
		poll(s, now, batch...)
		publish(what)
	}
	step("baseline", "a@x", "b@x")
	step("nothing new")
	step("new host, held", "c@x")
	step("nothing new: the held increment shows")
	step("nothing new again")
	step("a meeting", "a@x")
	s.SetPolicy(Policy{PerHost: true, MaxHosts: 1, HoldFor: 5 * time.Minute}, now)
	publish("reload")
	step("after reload")
	now = now.Add(25 * time.Hour)
	publish("a day later")
	before := s.Generation()
	m := mtg("rolled back", "a@x", 0, time.Minute, 1, 0)
	m.End, m.Start = now.Add(-time.Minute), now.Add(-2*time.Minute)
	poll(s, now, m)
	s.Rollback()
	if s.Generation() == before {
		t.Error("Rollback left the generation")
	}
	publish("rolled back")
	if reused < 3 {
		t.Errorf("only %d publications reused the last snapshot", reused)
	}
}
