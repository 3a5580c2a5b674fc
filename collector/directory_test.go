package collector

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/directory"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

const testDirectory = `email,department,cost_center,site,licence,account,manager
ann@x.com,Sales,CC-1,Beijing,Pro,,Zoe
bob@x.com,Sales,CC-2,Beijing,Pro,,Zoe
dan@x.com,Finance,CC-3,Shanghai,Corp,,Yan
old@x.com,Finance,CC-3,Shanghai,Corp,,Yan
zed@x.com,Finance,CC-3,Shanghai,Corp,other,Yan
sam@x.com,Finance,CC-3,Shanghai,,,Yan
`

// series is what /metrics serves of c as "name{label=value,...}" → value
// (a histogram's count), labels sorted, for the families whose name starts
// with one of prefixes.
func series(t *testing.T, c *Collector, prefixes ...string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, mf := range served(t, c) {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(mf.GetName(), p) }) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(ls)
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out
}

func TestDirectoryMetrics(t *testing.T) {
	dirs := directory.NewManager(log.NewNopLogger(), nil)
	defer dirs.Stop()
	dirs.Apply(&config.Config{
		Directory: &config.Directory{Embedded: []byte(testDirectory), RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 10,
			ExtraColumns: []string{"manager"}},
		Tariffs: &config.Tariffs{Currency: "EUR", Monthly: map[string]float64{"Pro": 10, "Corp": 20}, PerMeetingHour: 2, PerPSTNMeeting: 1},
	})
	s, _ := store.Open(t.TempDir(), "acme")
	s.SetAttributor(dirs, 10)
	// A baseline of 48h: the older meetings only update their hosts.
	b := s.NewBatch(s.Window(t0, 48*time.Hour, 48*time.Hour))
	for _, m := range []umeeting.Meeting{
		{UUID: "u1", Host: "Ann", Email: "ann@x.com", UserType: "Corp", Start: t0.Add(-2 * time.Hour), End: t0.Add(-time.Hour), Participants: 3},
		{UUID: "u2", Host: "Ann", Email: "ann@x.com", UserType: "Corp", Start: t0.Add(-90 * time.Minute), End: t0.Add(-80 * time.Minute), Participants: 2},
		{UUID: "u3", Host: "Bob", Email: "bob@x.com", UserType: "Pro", Start: t0.Add(-50 * time.Hour), End: t0.Add(-49 * time.Hour), Participants: 5},
		{UUID: "u4", Host: "Cy", Email: "cy@x.com", UserType: "Pro", Start: t0.Add(-30 * time.Minute), End: t0.Add(-25 * time.Minute), Participants: 1, Features: umeeting.FeaturePSTN},
		{UUID: "u5", Host: "Old", Email: "old@x.com", UserType: "Corp", Start: t0.Add(-40 * 24 * time.Hour), End: t0.Add(-40*24*time.Hour + time.Minute), Participants: 1},
	} {
		b.Meeting(&m)
	}
	b.CommitPage()
	s.Apply(b)

	c := New()
	c.SetDirectory(dirs.Current())
	c.SetUsage("acme", s.Snapshot(t0), Options{PerHost: true})
	got := series(t, c, "umeeting_department_", "umeeting_directory_", "umeeting_chargeback_", "umeeting_cost_center_meetings_total")
	oldEnd := float64(t0.Add(-40*24*time.Hour + time.Minute).Unix())
	want := map[string]float64{
		"umeeting_department_meetings_total{account=acme,department=Sales}":                                                                 2,
		"umeeting_department_meetings_total{account=acme,department=(unknown)}":                                                             1,
		"umeeting_department_meeting_seconds_total{account=acme,department=Sales}":                                                          4200,
		"umeeting_department_participant_seconds_total{account=acme,department=Sales}":                                                      3*3600 + 2*600,
		"umeeting_department_meetings_by_feature_total{account=acme,department=(unknown),feature=pstn}":                                     1,
		"umeeting_department_usage_cost_total{account=acme,currency=EUR,department=Sales}":                                                  2.333333,
		"umeeting_department_usage_cost_total{account=acme,currency=EUR,department=(unknown)}":                                              1.166667,
		"umeeting_cost_center_meetings_total{account=acme,cost_center=CC-1}":                                                                2,
		"umeeting_cost_center_meetings_total{account=acme,cost_center=(unknown)}":                                                           1,
		"umeeting_directory_licences{account=acme,department=Sales,licence=Pro}":                                                            2,
		"umeeting_directory_licences{account=acme,department=Finance,licence=Corp}":                                                         2,
		"umeeting_directory_idle_licences{account=acme,department=Finance,idle=never,licence=Corp}":                                         1,
		"umeeting_directory_idle_licences{account=acme,department=Finance,idle=30d,licence=Corp}":                                           1,
		"umeeting_directory_idle_licences{account=acme,department=Finance,idle=90d,licence=Corp}":                                           0,
		"umeeting_directory_idle_licences{account=acme,department=Sales,idle=never,licence=Pro}":                                            0,
		"umeeting_directory_idle_licences{account=acme,department=Sales,idle=30d,licence=Pro}":                                              0,
		"umeeting_directory_idle_licences{account=acme,department=Sales,idle=90d,licence=Pro}":                                              0,
		"umeeting_directory_idle_licence_last_meeting_timestamp_seconds{account=acme,department=Finance,email=dan@x.com,licence=Corp}":      0,
		"umeeting_directory_idle_licence_last_meeting_timestamp_seconds{account=acme,department=Finance,email=old@x.com,licence=Corp}":      oldEnd,
		"umeeting_directory_licence_mismatches{account=acme,department=Sales,licence=Pro,user_type=Corp}":                                   1,
		"umeeting_chargeback_licence_monthly_cost{account=acme,cost_center=CC-1,currency=EUR,department=Sales}":                             10,
		"umeeting_chargeback_licence_monthly_cost{account=acme,cost_center=CC-2,currency=EUR,department=Sales}":                             10,
		"umeeting_chargeback_licence_monthly_cost{account=acme,cost_center=CC-3,currency=EUR,department=Finance}":                           40,
		"umeeting_directory_host_info{account=acme,cost_center=CC-1,department=Sales,email=ann@x.com,licence=Pro,manager=Zoe,site=Beijing}": 1,
		"umeeting_directory_host_info{account=acme,cost_center=CC-2,department=Sales,email=bob@x.com,licence=Pro,manager=Zoe,site=Beijing}": 1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || fmt.Sprintf("%.6f", g) != fmt.Sprintf("%.6f", v) {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k := range got {
		if strings.Contains(k, "zed@") || strings.Contains(k, "sam@") || (strings.Contains(k, "ann@") && !strings.HasPrefix(k, "umeeting_directory_host_info")) {
			t.Errorf("unexpected series %s", k)
		}
	}
	lint(t, c)

	// A new directory rebuilds the gauges without a poll; counters stay.
	moveAnnToLegal(t, dirs)
	c.SetDirectory(dirs.Current())
	got = series(t, c, "umeeting_directory_licences", "umeeting_department_meetings_total", "umeeting_chargeback")
	if got["umeeting_directory_licences{account=acme,department=Legal,licence=Pro}"] != 1 || len(got) != 3 || got["umeeting_directory_licences{account=acme,department=Sales,licence=Pro}"] != 0 {
		t.Errorf("after the directory changed: %v", got)
	}
	if got["umeeting_department_meetings_total{account=acme,department=Sales}"] != 2 {
		t.Errorf("a move changed a past number: %v", got)
	}

	// per_host false: no e-mail labels.
	s.SetPolicy(Options{PerHost: false}, t0)
	c.SetUsage("acme", s.Snapshot(t0), Options{PerHost: false})
	for k := range series(t, c, "umeeting_directory_") {
		if strings.Contains(k, "email=") {
			t.Errorf("e-mail label with per_host false: %s", k)
		}
	}
}

// moveAnnToLegal replaces the directory by one of Ann alone, in Legal, and
// waits until it is read.
func moveAnnToLegal(t *testing.T, dirs *directory.Manager) {
	t.Helper()
	dirs.Apply(&config.Config{Directory: &config.Directory{
		Embedded: []byte("email,department,cost_center,site,licence\nann@x.com,Legal,CC-9,Beijing,Pro\n"), RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 10}})
	for deadline := time.Now().Add(5 * time.Second); dirs.Current().Dir.Len() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the new directory was not read")
		}
	}
}

func TestCapDepartments(t *testing.T) {
	f := capDepartments(map[string]int{"A": 5, "B": 3, "C": 3, "(unknown)": 1}, 2)
	for in, want := range map[string]string{"A": "A", "B": "B", "C": store.Other, "": store.Other} {
		if got := f(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
	if f := capDepartments(map[string]int{"A": 1}, 5); f("") != directory.Unknown {
		t.Error("empty department not unknown")
	}
}

// TestIdleHoldersCapped: a directory of many never-used licences does not
// turn into as many series: at most max_hosts, the longest idle first.
func TestIdleHoldersCapped(t *testing.T) {
	var csv strings.Builder
	csv.WriteString("email,department,cost_center,site,licence\n")
	for i := range 50 {
		fmt.Fprintf(&csv, "p%02d@x.com,D,C,S,Pro\n", i)
	}
	dirs := directory.NewManager(log.NewNopLogger(), nil)
	defer dirs.Stop()
	dirs.Apply(&config.Config{Directory: &config.Directory{Embedded: []byte(csv.String()), RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 10}})
	s, _ := store.Open(t.TempDir(), "acme")
	b := s.NewBatch(s.Window(t0, 48*time.Hour, 60*24*time.Hour))
	m := umeeting.Meeting{UUID: "u", Host: "P", Email: "p00@x.com", UserType: "Pro", Start: t0.Add(-40 * 24 * time.Hour), End: t0.Add(-40*24*time.Hour + time.Minute)}
	b.Meeting(&m)
	b.CommitPage()
	s.Apply(b)
	c := New()
	c.SetDirectory(dirs.Current())
	c.SetUsage("acme", s.Snapshot(t0), Options{PerHost: true, MaxHosts: 10})
	got := series(t, c, "umeeting_directory_idle_licence_last_meeting_timestamp_seconds")
	if len(got) != 10 {
		t.Fatalf("%d idle holder series, want 10", len(got))
	}
	if _, ok := got["umeeting_directory_idle_licence_last_meeting_timestamp_seconds{account=acme,department=D,email=p00@x.com,licence=Pro}"]; ok {
		t.Error("a holder idle for 40 days listed before holders who never met")
	}
	if n := series(t, c, "umeeting_directory_idle_licences")["umeeting_directory_idle_licences{account=acme,department=D,idle=never,licence=Pro}"]; n != 49 {
		t.Errorf("never-used licences = %v, want 49 (the counts are not capped)", n)
	}
}

// TestLicenceTypesCapped: a free-text licence column does not multiply
// the licence series: the least held types beyond maxLicenceTypes are
// folded into (other), with their counts.
func TestLicenceTypesCapped(t *testing.T) {
	var csv strings.Builder
	csv.WriteString("email,department,cost_center,site,licence\n")
	for i := range maxLicenceTypes + 20 {
		fmt.Fprintf(&csv, "p%03d@x.com,D,C,S,Type %03d\n", i, i)
	}
	for i := range 3 {
		fmt.Fprintf(&csv, "pro%d@x.com,D,C,S,Pro\n", i)
	}
	dirs := directory.NewManager(log.NewNopLogger(), nil)
	defer dirs.Stop()
	dirs.Apply(&config.Config{Directory: &config.Directory{Embedded: []byte(csv.String()), RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 10}})
	s, _ := store.Open(t.TempDir(), "acme")
	c := New()
	c.SetDirectory(dirs.Current())
	c.SetUsage("acme", s.Snapshot(t0), Options{PerHost: true})
	got := series(t, c, "umeeting_directory_licences")
	var total float64
	for _, v := range got {
		total += v
	}
	if len(got) != maxLicenceTypes+1 || total != maxLicenceTypes+23 {
		t.Fatalf("%d licence series holding %v licences, want %d holding %d", len(got), total, maxLicenceTypes+1, maxLicenceTypes+23)
	}
	if got["umeeting_directory_licences{account=acme,department=D,licence=Pro}"] != 3 {
		t.Errorf("the most held type was folded: %v", got)
	}
}

// TestDirectoryFollowsCountsAndTime: the directory metrics served are
// those of a fresh build after a poll that counted meetings, after polls
// that counted nothing while a holder's idle time crossed 30 days (they
// depend on time alone then), after a new host's department was released,
// and after a new directory.
func TestDirectoryFollowsCountsAndTime(t *testing.T) {
	dirs := directory.NewManager(log.NewNopLogger(), nil)
	defer dirs.Stop()
	dirs.Apply(&config.Config{
		Directory: &config.Directory{Embedded: []byte(testDirectory), RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 10},
		Tariffs:   &config.Tariffs{Currency: "EUR", Monthly: map[string]float64{"Pro": 10, "Corp": 20}, PerMeetingHour: 2},
	})
	opts := Options{PerHost: true}
	s, _ := store.Open(t.TempDir(), "acme")
	s.SetAttributor(dirs, 10)
	c := New()
	c.SetDirectory(dirs.Current())
	var snap *store.Snapshot
	poll := func(now time.Time, ms ...umeeting.Meeting) {
		b := s.NewBatch(s.Window(now, 48*time.Hour, 48*time.Hour))
		for i := range ms {
			b.Meeting(&ms[i])
		}
		b.CommitPage()
		res := s.Apply(b)
		snap = s.Snapshot(now)
		if res.Changed {
			c.SetUsage("acme", snap, opts)
		} else {
			active, peakMeetings, peakParticipants := s.Gauges(now)
			c.SetGauges("acme", now, active, peakMeetings, peakParticipants)
		}
	}
	meeting := func(uuid, email, userType string, end time.Time) umeeting.Meeting {
		return umeeting.Meeting{UUID: uuid, Host: email, Email: email, UserType: userType, Start: end.Add(-time.Hour), End: end, Participants: 2}
	}
	check := func(what string) {
		t.Helper()
		fresh := New()
		fresh.SetDirectory(dirs.Current())
		fresh.SetUsage("acme", snap, opts)
		for _, accept := range []string{"", "application/openmetrics-text;version=1.0.0"} {
			if got, want := servedBody(t, c, accept, ""), servedBody(t, fresh, accept, ""); !bytes.Equal(got, want) {
				t.Errorf("%s, Accept %q: served %d bytes, a fresh build %d bytes:\n%s", what, accept, len(got), len(want), firstDiff(got, want))
			}
		}
	}
	poll(t0, meeting("u1", "ann@x.com", "Pro", t0.Add(-time.Hour)), meeting("u2", "old@x.com", "Corp", t0.Add(-20*time.Hour)))
	check("the baseline")

	now := t0.Add(time.Minute)
	poll(now, meeting("u3", "ann@x.com", "Pro", now.Add(-time.Minute)))
	check("a meeting of an admitted host")

	before := string(servedBody(t, c, "", ""))
	now = t0.Add(30*24*time.Hour - 19*time.Hour) // old@x.com's latest meeting is 30 days old
	poll(now)
	check("a host idle for 30 days")
	if after := string(servedBody(t, c, "", "")); after == before {
		t.Error("the idle licences did not move: the test shows nothing")
	}

	now = now.Add(time.Minute)
	poll(now, meeting("u4", "bob@x.com", "Pro", now.Add(-time.Minute)))
	check("a new host")
	now = now.Add(time.Minute)
	poll(now)
	check("its department's first increments shown")

	moveAnnToLegal(t, dirs)
	c.SetDirectory(dirs.Current())
	check("a new directory")
}

// TestChargebackCostCentresCapped: the monthly licence cost folds cost
// centres beyond max_departments into (other), as the usage counters by
// cost centre do, keeping the total.
func TestChargebackCostCentresCapped(t *testing.T) {
	var csv strings.Builder
	csv.WriteString("email,department,cost_center,site,licence\n")
	for i := range 30 {
		fmt.Fprintf(&csv, "p%02d@x.com,D,CC-%02d,S,Pro\n", i, i)
	}
	fmt.Fprintf(&csv, "big@x.com,D,CC-00,S,Pro\n")
	got := chargeback(t, csv.String(), map[string]float64{"Pro": 10})
	var total float64
	for _, v := range got {
		total += v
	}
	if len(got) != 6 || total != 310 {
		t.Fatalf("%d cost series costing %v, want 6 (5 cost centres and (other)) costing 310: %v", len(got), total, got)
	}
	if got["umeeting_chargeback_licence_monthly_cost{account=acme,cost_center=CC-00,currency=EUR,department=D}"] != 20 ||
		got["umeeting_chargeback_licence_monthly_cost{account=acme,cost_center=(other),currency=EUR,department=D}"] != 250 {
		t.Errorf("the largest cost centre was folded, or (other) is wrong: %v", got)
	}
}

// TestChargebackTariffsIgnoreCase: a tariff prices the licence type
// whatever its case, as licence mismatches compare them.
func TestChargebackTariffsIgnoreCase(t *testing.T) {
	got := chargeback(t, "email,department,cost_center,site,licence\na@x.com,D,C,S,Pro\nb@x.com,D,C,S,PRO\n", map[string]float64{"pro": 10})
	if v := got["umeeting_chargeback_licence_monthly_cost{account=acme,cost_center=C,currency=EUR,department=D}"]; v != 20 {
		t.Errorf("Pro and PRO priced by the tariff of pro: %v, want 20", got)
	}
}

// chargeback is the monthly licence cost series of account acme, without
// meetings, with directory csv (max_departments 5) and monthly tariffs
// in EUR.
func chargeback(t *testing.T, csv string, monthly map[string]float64) map[string]float64 {
	t.Helper()
	dirs := directory.NewManager(log.NewNopLogger(), nil)
	defer dirs.Stop()
	dirs.Apply(&config.Config{
		Directory: &config.Directory{Embedded: []byte(csv), RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 5},
		Tariffs:   &config.Tariffs{Currency: "EUR", Monthly: monthly},
	})
	s, _ := store.Open(t.TempDir(), "acme")
	c := New()
	c.SetDirectory(dirs.Current())
	c.SetUsage("acme", s.Snapshot(t0), Options{PerHost: true})
	return series(t, c, "umeeting_chargeback_licence_monthly_cost")
}

// TestLicencesChargedOnceAcrossAccounts: with two accounts and a directory
// without an account column, each licence is held by one account, the one
// of its holder's latest meeting (none: the first by name), so sums over
// accounts count it once; its holder is idle only when idle in both. The
// served metrics follow a holder whose latest meeting moves to the other
// account, and the licences of a removed account.
func TestLicencesChargedOnceAcrossAccounts(t *testing.T) {
	dirs := directory.NewManager(log.NewNopLogger(), nil)
	defer dirs.Stop()
	dirs.Apply(&config.Config{
		Directory: &config.Directory{Embedded: []byte("email,department,cost_center,site,licence\n" +
			"ann@x.com,Sales,CC-1,Beijing,Pro\nbob@x.com,Sales,CC-2,Beijing,Pro\n" +
			"dan@x.com,Finance,CC-3,Shanghai,Corp\nold@x.com,Finance,CC-3,Shanghai,Corp\n"),
			RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 10},
		Tariffs: &config.Tariffs{Currency: "EUR", Monthly: map[string]float64{"Pro": 10, "Corp": 20}},
	})
	opts := Options{PerHost: true}
	c := New()
	c.SetDirectory(dirs.Current())
	stores, snaps := map[string]*store.Store{}, map[string]*store.Snapshot{}
	poll := func(account string, now time.Time, ms ...umeeting.Meeting) {
		s := stores[account]
		if s == nil {
			s, _ = store.Open(t.TempDir(), account)
			stores[account] = s
		}
		b := s.NewBatch(s.Window(now, 48*time.Hour, 48*time.Hour))
		for i := range ms {
			b.Meeting(&ms[i])
		}
		b.CommitPage()
		s.Apply(b)
		snaps[account] = s.Snapshot(now)
		c.SetUsage(account, snaps[account], opts)
	}
	meeting := func(uuid, email string, end time.Time) umeeting.Meeting {
		return umeeting.Meeting{UUID: uuid, Host: email, Email: email, UserType: "Pro", Start: end.Add(-time.Hour), End: end, Participants: 2}
	}
	day := 24 * time.Hour
	poll("beta", t0, meeting("b1", "ann@x.com", t0.Add(-5*time.Hour)), meeting("b2", "bob@x.com", t0.Add(-2*time.Hour)),
		meeting("b3", "old@x.com", t0.Add(-40*day)))
	poll("acme", t0, meeting("a1", "ann@x.com", t0.Add(-time.Hour)), meeting("a2", "old@x.com", t0.Add(-100*day)))

	got := series(t, c, "umeeting_directory_licences", "umeeting_directory_idle_", "umeeting_chargeback_")
	sums := map[string]float64{}
	for k, v := range got {
		name, labels, _ := strings.Cut(k, "{")
		idle := ""
		if i := strings.Index(labels, "idle="); i >= 0 {
			idle, _, _ = strings.Cut(labels[i:], ",")
		}
		sums[name+idle] += v
	}
	for k, want := range map[string]float64{
		"umeeting_directory_licences":                                    4,
		"umeeting_chargeback_licence_monthly_cost":                       60,
		"umeeting_directory_idle_licencesidle=never":                     1, // dan
		"umeeting_directory_idle_licencesidle=30d":                       1, // old: 40 days in beta
		"umeeting_directory_idle_licencesidle=90d":                       0, // not 100 days: met in beta since
		"umeeting_directory_idle_licence_last_meeting_timestamp_seconds": float64(t0.Add(-40 * day).Unix()),
	} {
		if sums[k] != want {
			t.Errorf("sum over accounts of %s = %v, want %v", k, sums[k], want)
		}
	}
	for k, want := range map[string]float64{
		"umeeting_directory_licences{account=acme,department=Sales,licence=Pro}":                                                       1, // ann
		"umeeting_directory_licences{account=acme,department=Finance,licence=Corp}":                                                    1, // dan, no meeting
		"umeeting_directory_licences{account=beta,department=Sales,licence=Pro}":                                                       1, // bob
		"umeeting_directory_licences{account=beta,department=Finance,licence=Corp}":                                                    1, // old
		"umeeting_directory_idle_licence_last_meeting_timestamp_seconds{account=acme,department=Finance,email=dan@x.com,licence=Corp}": 0,
		"umeeting_chargeback_licence_monthly_cost{account=beta,cost_center=CC-2,currency=EUR,department=Sales}":                        10,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	checkServedEqualsFresh(t, c, snaps, opts)

	// bob's latest meeting is now in acme: a poll of acme alone moves his
	// licence out of beta's served metrics.
	now := t0.Add(time.Minute)
	poll("acme", now, meeting("a3", "bob@x.com", now.Add(-time.Second)))
	got = series(t, c, "umeeting_directory_licences")
	if got["umeeting_directory_licences{account=acme,department=Sales,licence=Pro}"] != 2 || got["umeeting_directory_licences{account=beta,department=Sales,licence=Pro}"] != 0 {
		t.Errorf("bob's licence did not move to acme: %v", got)
	}
	checkServedEqualsFresh(t, c, snaps, opts)

	// Without acme, beta holds every licence.
	c.Delete("acme")
	delete(snaps, "acme")
	if got := series(t, c, "umeeting_directory_licences"); got["umeeting_directory_licences{account=beta,department=Finance,licence=Corp}"] != 2 {
		t.Errorf("beta does not hold dan's licence: %v", got)
	}
	checkServedEqualsFresh(t, c, snaps, opts)
}
