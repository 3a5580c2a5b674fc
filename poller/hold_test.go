package poller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// byDomain puts the hosts of fresh.example in department Fresh, the others
// in Old.
type byDomain struct{}

func (byDomain) Attribute(m *umeeting.Meeting, _ uint64) (store.Attribution, bool) {
	if strings.HasSuffix(m.Email, "@fresh.example") {
		return store.Attribution{Department: "Fresh", CostCenter: "C"}, true
	}
	return store.Attribution{Department: "Old", CostCenter: "C"}, true
}

// sample returns the value of the series of family name whose labels
// include label=value, and whether it is served.
func (g *countingRig) sample(name, label, value string) (float64, bool) {
	g.t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		g.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestNewSeriesHeldForAPollIntervalOfUptime: a new series (a new host's,
// a new department's) is served at 0 for a poll interval of the exporter's
// uptime before it shows its first meeting, so that Prometheus stores the
// 0 and increase() sees the meeting. A poll right after the one that
// created it (a reload's poll at once) does not release it, nor does the
// poll at once after a restart that was down longer than the interval:
// the held 0 may never have been scraped before the crash.
func TestNewSeriesHeldForAPollIntervalOfUptime(t *testing.T) {
	g := newCountingRig(t)
	g.attr = byDomain{}
	g.start("lookback: 48h\nbackfill: 2d\n")
	g.poll(2, "baseline")

	end := g.apiClock().Add(-time.Minute)
	g.sim.Add(umeeting.Meeting{UUID: "fresh-1", Host: "Fresh", Email: "new@fresh.example", UserType: "Corp",
		Start: end.Add(-30 * time.Minute), End: end, Participants: 2})
	held := func(what string, want float64) {
		t.Helper()
		for _, s := range []struct{ name, label, value string }{
			{"umeeting_meetings_total", "email", "new@fresh.example"},
			{"umeeting_department_meetings_total", "department", "Fresh"},
		} {
			if v, ok := g.sample(s.name, s.label, s.value); !ok || v != want {
				t.Errorf("%s: %s{%s=%q} = %v (served: %v), want %v", what, s.name, s.label, s.value, v, ok, want)
			}
		}
	}
	pollNow := func(what string) {
		t.Helper()
		if err := g.r.poll(context.Background()); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	pollNow("the poll that counts the new host's first meeting")
	held("after the poll that counted it", 0)
	pollNow("a poll at once (reload)")
	held("after a poll at once", 0)

	// kill -9, down for 1.4 poll intervals, restart: the start serves the
	// held 0 and polls at once.
	g.mu.Lock()
	g.apiNow = g.apiNow.Add(rigInterval * 7 / 5)
	g.mu.Unlock()
	g.start("lookback: 48h\nbackfill: 2d\n")
	held("after the restart", 0)
	pollNow("the poll at once after the restart")
	held("after the first poll after the restart", 0)

	g.poll(1, "a poll interval of uptime later")
	held("a poll interval after the restart", 1)
}
