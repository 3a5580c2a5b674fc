package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// TestChangedSeesEveryChange publishes as a poller does (a new snapshot
// only after a poll whose result says Changed, or a new policy; otherwise
// the last one with fresh Gauges) through baseline, new and held series,
// held increments shown after a poll with nothing new, reloads, a poll
// undone by a failed save and time passing, and checks every publication against a
// fresh Snapshot.
func TestChangedSeesEveryChange(t *testing.T) {
	s, _ := Open(t.TempDir(), "a")
	now := t0
	var last *Snapshot
	reused := 0
	publish := func(what string, changed bool) {
		t.Helper()
		var snap *Snapshot
		if last != nil && !changed {
			c := *last
			c.At = now
			c.ActiveHosts, c.PeakMeetings, c.PeakParticipants = s.Gauges(now)
			snap = &c
			reused++
		} else {
			snap = s.Snapshot(now)
		}
		last = snap
		if fresh := s.Snapshot(now); !reflect.DeepEqual(snap, fresh) {
			t.Fatalf("%s: published %+v\nfresh %+v", what, snap, fresh)
		}
	}
	p := Policy{PerHost: true, MaxHosts: 2, HoldFor: 5 * time.Minute}
	s.SetPolicy(p, now)
	meetings := func(what string, emails ...string) []umeeting.Meeting {
		var batch []umeeting.Meeting
		for _, e := range emails {
			m := mtg(what+e, e, 0, time.Minute, 2, 0)
			m.End, m.Start = now.Add(-time.Minute), now.Add(-2*time.Minute)
			batch = append(batch, m)
		}
		return batch
	}
	step := func(what string, emails ...string) {
		t.Helper()
		now = now.Add(5 * time.Minute)
		res := poll(s, now, meetings(what, emails...)...)
		publish(what, res.Changed)
	}
	step("baseline", "a@x", "b@x")
	step("nothing new")
	step("new host, held", "c@x")
	step("nothing new: the held increment shows")
	step("nothing new again")
	step("a meeting", "a@x")
	s.SetPolicy(Policy{PerHost: true, MaxHosts: 1, HoldFor: 5 * time.Minute}, now)
	publish("reload", true)
	step("after reload")
	now = now.Add(25 * time.Hour)
	publish("a day later", false)
	failedCommit(t, s, now, meetings("undone", "a@x", "z@x")...)
	publish("a poll undone by a failed save", false)
	if reused < 3 {
		t.Errorf("only %d publications reused the last snapshot", reused)
	}
}
