package simulator

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// TestCompanyShape checks that the default company looks like a real one:
// volume, working hours, long tails, feature rates and idle licences.
func TestCompanyShape(t *testing.T) {
	s := New(Options{Seed: 1, Now: newClock(t0).Now, HistoryStart: t0.Add(-120 * 24 * time.Hour)})
	all := s.Truth(time.Time{}, t0)
	last60 := s.Truth(t0.Add(-60*24*time.Hour), t0)
	t.Logf("hosts %d, meetings: 120 days %d, 60 days %d", len(s.hosts), len(all), len(last60))
	if n := len(last60); n < 10000 || n > 20000 {
		t.Errorf("60 days of 300 hosts: %d meetings, want 10k-20k", n)
	}

	var workday, weekend, workHours, short, long, alone, crowd, under10 int
	feat := make([]int, len(umeeting.AllFeatures))
	perDay := make(map[string]int)
	for _, m := range last60 {
		local := m.Start.In(beijing)
		perDay[day(m.Start)]++
		if wd := local.Weekday(); wd == time.Saturday || wd == time.Sunday {
			weekend++
		} else {
			workday++
			if h := local.Hour(); h >= 9 && h < 18 {
				workHours++
			}
		}
		switch l := m.Length(); {
		case l < 5*time.Minute:
			short++
		case l >= 2*time.Hour:
			long++
		}
		switch p := m.Participants; {
		case p == 1:
			alone++
		case p >= 50:
			crowd++
		case p <= 10:
			under10++
		}
		for i, f := range umeeting.AllFeatures {
			if m.Features&f != 0 {
				feat[i]++
			}
		}
	}
	n := float64(len(last60))
	t.Logf("per day: workday avg %.0f, weekend avg %.0f; working hours %.0f%% of workday meetings",
		float64(workday)/43, float64(weekend)/17, 100*float64(workHours)/float64(workday))
	t.Logf("length <5m %.1f%%, >=2h %.1f%%; participants 1: %.1f%%, <=10: %.1f%%, >=50: %.1f%%",
		100*float64(short)/n, 100*float64(long)/n, 100*float64(alone)/n, 100*float64(under10)/n, 100*float64(crowd)/n)
	if float64(weekend)/17 > 0.2*float64(workday)/43 {
		t.Errorf("weekends too busy: %d weekend vs %d workday meetings", weekend, workday)
	}
	if share := float64(workHours) / float64(workday); share < 0.75 {
		t.Errorf("only %.2f of workday meetings start in working hours", share)
	}
	for name, c := range map[string]struct {
		got      int
		min, max float64
	}{
		"short": {short, 0.03, 0.12}, "long": {long, 0.01, 0.06}, "alone": {alone, 0.02, 0.07},
		"2-10": {under10, 0.75, 0.95}, "crowd": {crowd, 0.01, 0.06},
	} {
		if share := float64(c.got) / n; share < c.min || share > c.max {
			t.Errorf("%s: share %.3f, want [%.2f, %.2f]", name, share, c.min, c.max)
		}
	}
	for i, want := range featureRates {
		got := float64(feat[i]) / n
		t.Logf("feature %s: %.3f", umeeting.FeatureNames[i], got)
		if math.Abs(got-want) > 0.03 {
			t.Errorf("feature %s: rate %.3f, want about %.2f", umeeting.FeatureNames[i], got, want)
		}
	}

	// Idle licences: hosts who did host, but not in the last 30 days.
	lastEnd := make(map[string]time.Time)
	for _, m := range all {
		lastEnd[m.Email] = m.End
	}
	idle := 0
	for _, end := range lastEnd {
		if t0.Sub(end) > 30*24*time.Hour {
			idle++
		}
	}
	t.Logf("hosts seen in 120 days %d, idle for 30+ days %d", len(lastEnd), idle)
	if idle < 3 {
		t.Errorf("want some idle hosts (30+ days without a meeting), got %d", idle)
	}

	types := make(map[string]int)
	for _, h := range s.hosts {
		types[h.userType]++
	}
	t.Logf("user types: %v", types)
	if types["Corp"] < 150 || types["Pro"] < 50 || types["Basic"] < 15 || types["Edu"] < 5 {
		t.Errorf("user type mix off: %v", types)
	}
}

// TestUUIDsUnique checks uuids (and those of invalid companions) across
// many days, and that recurring meeting ids repeat.
func TestUUIDsUnique(t *testing.T) {
	s := New(Options{Seed: 3, Now: newClock(t0).Now, InvalidRate: 0.2})
	days, _ := s.snapshot(s.dayOf(t0)-60, s.dayOf(t0), t0)
	seen := make(map[string]bool)
	ids := make(map[int64]int)
	add := func(u string) {
		if u == "" || seen[u] {
			t.Fatalf("uuid %q empty or repeated", u)
		}
		seen[u] = true
	}
	for _, d := range days {
		for i := range d {
			m := &d[i]
			add(m.uuid)
			if m.invalid != invalidNone {
				add(m.invUUID)
			}
			ids[m.id]++
		}
	}
	repeated := 0
	for _, c := range ids {
		if c > 1 {
			repeated++
		}
	}
	if repeated < 100 {
		t.Errorf("only %d meeting ids recur", repeated)
	}
	if !slices.ContainsFunc(days[len(days)/2], func(m meeting) bool { return len(m.uuid) == 16 && m.uuid[15] == '=' }) {
		t.Errorf("no padded uuid on a whole day")
	}
}

func TestDurationText(t *testing.T) {
	for _, c := range []struct {
		secs     int64
		hourForm bool
		want     string
	}{
		{532, false, "9分钟"}, {100, false, "2分钟"}, {191, false, "4分钟"}, {0, false, "0分钟"}, {60, true, "1分钟"},
		{3900, true, "1小时5分钟"}, {3900, false, "65分钟"}, {7200, true, "2小时"}, {3601, true, "1小时1分钟"},
	} {
		if got := durationText(c.secs, c.hourForm); got != c.want {
			t.Errorf("durationText(%d, %v) = %q, want %q", c.secs, c.hourForm, got, c.want)
		}
	}
}
