package collector

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// testSnapshot builds a real store with three hosts, counted in its first
// poll (the baseline), and takes its snapshot.
func testSnapshot(t testing.TB) *store.Snapshot {
	return snapshotWith(t, Options{PerHost: true})
}

func snapshotWith(t testing.TB, opts Options) *store.Snapshot {
	s, _ := store.Open(t.TempDir(), "acme")
	s.SetPolicy(opts, t0)
	b := s.NewBatch(s.Window(t0, 48*time.Hour, 30*24*time.Hour))
	for _, m := range []umeeting.Meeting{
		{UUID: "u1", Host: "Ann", Email: "ann@x.com", UserType: "Corp", Start: t0.Add(-2 * time.Hour), End: t0.Add(-time.Hour), Participants: 3, Features: umeeting.FeatureVideo | umeeting.FeatureVoIP},
		{UUID: "u2", Host: "Ann", Email: "ann@x.com", UserType: "Corp", Start: t0.Add(-90 * time.Minute), End: t0.Add(-80 * time.Minute), Participants: 2, Features: umeeting.FeatureRecording},
		{UUID: "u3", Host: "Bob", Email: "bob@x.com", UserType: "Pro", Start: t0.Add(-50 * time.Hour), End: t0.Add(-49 * time.Hour), Participants: 5},
		{UUID: "u4", Host: "Cy", Email: "cy@x.com", UserType: "Pro", Start: t0.Add(-30 * time.Minute), End: t0.Add(-25 * time.Minute), Participants: 1, Features: umeeting.FeaturePSTN},
	} {
		b.Meeting(&m)
	}
	b.Invalid(umeeting.ReasonMissingUUID, []byte(`{}`))
	b.CommitPage()
	s.Apply(b)
	return s.Snapshot(t0)
}

func TestUsageMetricsPerHost(t *testing.T) {
	c := New()
	c.SetUsage("acme", testSnapshot(t), Options{PerHost: true})
	want := `
# HELP umeeting_meetings_total Finished meetings, each counted once when first seen, by host e-mail and the host's licence type at the meeting (hosts without a series of their own have no email label); join umeeting_host_info for display names. Values come from the last successful poll.
# TYPE umeeting_meetings_total counter
umeeting_meetings_total{account="acme",email="ann@x.com",user_type="Corp"} 2
umeeting_meetings_total{account="acme",email="bob@x.com",user_type="Pro"} 1
umeeting_meetings_total{account="acme",email="cy@x.com",user_type="Pro"} 1
# HELP umeeting_meeting_seconds_total Sum of the lengths of finished meetings, in seconds. Values come from the last successful poll.
# TYPE umeeting_meeting_seconds_total counter
umeeting_meeting_seconds_total{account="acme",email="ann@x.com",user_type="Corp"} 4200
umeeting_meeting_seconds_total{account="acme",email="bob@x.com",user_type="Pro"} 3600
umeeting_meeting_seconds_total{account="acme",email="cy@x.com",user_type="Pro"} 300
# HELP umeeting_participants_total Sum of participants over finished meetings. Values come from the last successful poll.
# TYPE umeeting_participants_total counter
umeeting_participants_total{account="acme",email="ann@x.com",user_type="Corp"} 5
umeeting_participants_total{account="acme",email="bob@x.com",user_type="Pro"} 5
umeeting_participants_total{account="acme",email="cy@x.com",user_type="Pro"} 1
# HELP umeeting_participant_seconds_total Sum of meeting length times participants (participant-seconds) over finished meetings. Values come from the last successful poll.
# TYPE umeeting_participant_seconds_total counter
umeeting_participant_seconds_total{account="acme",email="ann@x.com",user_type="Corp"} 12000
umeeting_participant_seconds_total{account="acme",email="bob@x.com",user_type="Pro"} 18000
umeeting_participant_seconds_total{account="acme",email="cy@x.com",user_type="Pro"} 300
# HELP umeeting_meetings_by_feature_total Finished meetings that used a feature (video, screen_share, voip, pstn dial-in, third_party_audio, recording). Values come from the last successful poll.
# TYPE umeeting_meetings_by_feature_total counter
umeeting_meetings_by_feature_total{account="acme",email="ann@x.com",feature="pstn",user_type="Corp"} 0
umeeting_meetings_by_feature_total{account="acme",email="ann@x.com",feature="recording",user_type="Corp"} 1
umeeting_meetings_by_feature_total{account="acme",email="ann@x.com",feature="screen_share",user_type="Corp"} 0
umeeting_meetings_by_feature_total{account="acme",email="ann@x.com",feature="third_party_audio",user_type="Corp"} 0
umeeting_meetings_by_feature_total{account="acme",email="ann@x.com",feature="video",user_type="Corp"} 1
umeeting_meetings_by_feature_total{account="acme",email="ann@x.com",feature="voip",user_type="Corp"} 1
umeeting_meetings_by_feature_total{account="acme",email="bob@x.com",feature="pstn",user_type="Pro"} 0
umeeting_meetings_by_feature_total{account="acme",email="bob@x.com",feature="recording",user_type="Pro"} 0
umeeting_meetings_by_feature_total{account="acme",email="bob@x.com",feature="screen_share",user_type="Pro"} 0
umeeting_meetings_by_feature_total{account="acme",email="bob@x.com",feature="third_party_audio",user_type="Pro"} 0
umeeting_meetings_by_feature_total{account="acme",email="bob@x.com",feature="video",user_type="Pro"} 0
umeeting_meetings_by_feature_total{account="acme",email="bob@x.com",feature="voip",user_type="Pro"} 0
umeeting_meetings_by_feature_total{account="acme",email="cy@x.com",feature="pstn",user_type="Pro"} 1
umeeting_meetings_by_feature_total{account="acme",email="cy@x.com",feature="recording",user_type="Pro"} 0
umeeting_meetings_by_feature_total{account="acme",email="cy@x.com",feature="screen_share",user_type="Pro"} 0
umeeting_meetings_by_feature_total{account="acme",email="cy@x.com",feature="third_party_audio",user_type="Pro"} 0
umeeting_meetings_by_feature_total{account="acme",email="cy@x.com",feature="video",user_type="Pro"} 0
umeeting_meetings_by_feature_total{account="acme",email="cy@x.com",feature="voip",user_type="Pro"} 0
# HELP umeeting_host_info Always 1: the latest display name and licence type of each host with series of its own, for joins like ` + "`* on(account, email) group_left(host) umeeting_host_info`" + `. Values come from the last successful poll.
# TYPE umeeting_host_info gauge
umeeting_host_info{account="acme",email="ann@x.com",host="Ann",user_type="Corp"} 1
umeeting_host_info{account="acme",email="bob@x.com",host="Bob",user_type="Pro"} 1
umeeting_host_info{account="acme",email="cy@x.com",host="Cy",user_type="Pro"} 1
# HELP umeeting_host_last_meeting_timestamp_seconds Unix time at which the host's latest meeting ended, one series per host e-mail with its latest name and user_type. Values come from the last successful poll.
# TYPE umeeting_host_last_meeting_timestamp_seconds gauge
umeeting_host_last_meeting_timestamp_seconds{account="acme",email="ann@x.com",host="Ann",user_type="Corp"} 1.7951724e+09
umeeting_host_last_meeting_timestamp_seconds{account="acme",email="bob@x.com",host="Bob",user_type="Pro"} 1.7949996e+09
umeeting_host_last_meeting_timestamp_seconds{account="acme",email="cy@x.com",host="Cy",user_type="Pro"} 1.7951745e+09
# HELP umeeting_active_hosts Distinct hosts (by e-mail) whose latest meeting ended within the window, by the user_type of that meeting. Values come from the last successful poll.
# TYPE umeeting_active_hosts gauge
umeeting_active_hosts{account="acme",user_type="Corp",window="1d"} 1
umeeting_active_hosts{account="acme",user_type="Corp",window="30d"} 1
umeeting_active_hosts{account="acme",user_type="Corp",window="7d"} 1
umeeting_active_hosts{account="acme",user_type="Pro",window="1d"} 1
umeeting_active_hosts{account="acme",user_type="Pro",window="30d"} 2
umeeting_active_hosts{account="acme",user_type="Pro",window="7d"} 2
# HELP umeeting_concurrent_meetings_peak Most meetings in progress at the same moment during the trailing 24 hours. Values come from the last successful poll.
# TYPE umeeting_concurrent_meetings_peak gauge
umeeting_concurrent_meetings_peak{account="acme"} 2
# HELP umeeting_concurrent_participants_peak Most participants in meetings in progress at the same moment during the trailing 24 hours. Values come from the last successful poll.
# TYPE umeeting_concurrent_participants_peak gauge
umeeting_concurrent_participants_peak{account="acme"} 5
# HELP umeeting_records_invalid_total Records of the API skipped as invalid, each counted once, by reason.
# TYPE umeeting_records_invalid_total counter
umeeting_records_invalid_total{account="acme",reason="bad_end_time"} 0
umeeting_records_invalid_total{account="acme",reason="bad_participants"} 0
umeeting_records_invalid_total{account="acme",reason="end_before_start"} 0
umeeting_records_invalid_total{account="acme",reason="malformed"} 0
umeeting_records_invalid_total{account="acme",reason="missing_uuid"} 1
umeeting_records_invalid_total{account="acme",reason="no_length"} 0
umeeting_records_invalid_total{account="acme",reason="too_long"} 0
umeeting_records_invalid_total{account="acme",reason="too_many_participants"} 0
# HELP umeeting_remembered_meetings Meetings remembered to count each once; grows with the lookback, not with uptime.
# TYPE umeeting_remembered_meetings gauge
umeeting_remembered_meetings{account="acme"} 3
# HELP umeeting_meetings_user_type_folded_total Meetings counted with user_type "other" because the account already had metrics.max_user_types distinct licence types.
# TYPE umeeting_meetings_user_type_folded_total counter
umeeting_meetings_user_type_folded_total{account="acme"} 0
`
	names := []string{
		"umeeting_meetings_total", "umeeting_meeting_seconds_total", "umeeting_participants_total", "umeeting_participant_seconds_total",
		"umeeting_meetings_by_feature_total", "umeeting_host_last_meeting_timestamp_seconds", "umeeting_active_hosts",
		"umeeting_concurrent_meetings_peak", "umeeting_concurrent_participants_peak", "umeeting_records_invalid_total",
		"umeeting_remembered_meetings", "umeeting_host_info", "umeeting_meetings_user_type_folded_total",
	}
	compareServed(t, c, want, names...)
}

func TestHistograms(t *testing.T) {
	c := New()
	c.SetUsage("acme", testSnapshot(t), Options{PerHost: true})
	want := `
# HELP umeeting_meeting_duration_seconds Distribution of the lengths of finished meetings, in seconds. Values come from the last successful poll.
# TYPE umeeting_meeting_duration_seconds histogram
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="60"} 0
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="300"} 0
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="600"} 1
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="900"} 1
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="1800"} 1
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="2700"} 1
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="3600"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="5400"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="7200"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="10800"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="14400"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="28800"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Corp",le="+Inf"} 2
umeeting_meeting_duration_seconds_sum{account="acme",user_type="Corp"} 4200
umeeting_meeting_duration_seconds_count{account="acme",user_type="Corp"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="60"} 0
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="300"} 1
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="600"} 1
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="900"} 1
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="1800"} 1
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="2700"} 1
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="3600"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="5400"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="7200"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="10800"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="14400"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="28800"} 2
umeeting_meeting_duration_seconds_bucket{account="acme",user_type="Pro",le="+Inf"} 2
umeeting_meeting_duration_seconds_sum{account="acme",user_type="Pro"} 3900
umeeting_meeting_duration_seconds_count{account="acme",user_type="Pro"} 2
`
	compareServed(t, c, want, "umeeting_meeting_duration_seconds")
	if n := len(served(t, c)["umeeting_meeting_participants"].GetMetric()); n != 2 {
		t.Errorf("participant histograms: %d, want 2", n)
	}
}

// TestHostsLeftOutKeepTotals checks per_host: false, include/exclude and
// the cap: hosts left out are counted in series without the email label
// and the account's totals do not change.
func TestHostsLeftOutKeepTotals(t *testing.T) {
	for name, tc := range map[string]struct {
		opts       Options
		hostSeries int // umeeting_meetings_total series with host labels
		hostGauges int
	}{
		"per host":      {Options{PerHost: true}, 3, 3},
		"per_host off":  {Options{PerHost: false}, 0, 0},
		"include":       {Options{PerHost: true, Include: regexp.MustCompile(`^(?:ann@.*)$`)}, 1, 1},
		"exclude name":  {Options{PerHost: true, Exclude: regexp.MustCompile(`^(?:Cy)$`)}, 2, 2},
		"cap of 1 host": {Options{PerHost: true, MaxHosts: 1}, 1, 1},
	} {
		t.Run(name, func(t *testing.T) {
			c := New()
			c.SetUsage("acme", snapshotWith(t, tc.opts), tc.opts)
			var total float64
			withHost := 0
			gauges := 0
			for _, mf := range served(t, c) {
				for _, m := range mf.GetMetric() {
					hasHost := false
					for _, l := range m.GetLabel() {
						hasHost = hasHost || l.GetName() == "host" || l.GetName() == "email"
					}
					switch mf.GetName() {
					case "umeeting_meetings_total":
						total += m.GetCounter().GetValue()
						if hasHost {
							withHost++
						}
					case "umeeting_host_last_meeting_timestamp_seconds":
						gauges++
					default:
						if hasHost && !tc.opts.PerHost {
							t.Errorf("%s has host labels with per_host off", mf.GetName())
						}
					}
				}
			}
			if total != 4 {
				t.Errorf("total meetings %v, want 4", total)
			}
			if withHost != tc.hostSeries || gauges != tc.hostGauges {
				t.Errorf("host series %d gauges %d, want %d %d", withHost, gauges, tc.hostSeries, tc.hostGauges)
			}
		})
	}
}

func TestStatusMetrics(t *testing.T) {
	c := New()
	c.SetStatus("acme", Status{Up: true, LastSuccess: t0, PollDuration: 1500 * time.Millisecond, PollInterval: 5 * time.Minute, BudgetRemaining: -1, ConcurrentLimit: 50})
	c.SetStatus("beta", Status{})
	want := `
# HELP umeeting_up 1 when the last poll of the account's API succeeded, 0 when it failed; usage metrics then keep the values of the last successful poll.
# TYPE umeeting_up gauge
umeeting_up{account="acme"} 1
umeeting_up{account="beta"} 0
# HELP umeeting_last_successful_poll_timestamp_seconds Unix time of the last successful poll of the account; 0 before the first.
# TYPE umeeting_last_successful_poll_timestamp_seconds gauge
umeeting_last_successful_poll_timestamp_seconds{account="acme"} 1.795176e+09
umeeting_last_successful_poll_timestamp_seconds{account="beta"} 0
# HELP umeeting_poll_duration_seconds How long the last poll of the account took, in seconds.
# TYPE umeeting_poll_duration_seconds gauge
umeeting_poll_duration_seconds{account="acme"} 1.5
umeeting_poll_duration_seconds{account="beta"} 0
# HELP umeeting_concurrent_meetings_limit Licence limit of meetings at the same moment, from the config (concurrent_meetings_limit).
# TYPE umeeting_concurrent_meetings_limit gauge
umeeting_concurrent_meetings_limit{account="acme"} 50
`
	compareServed(t, c, want, "umeeting_up", "umeeting_last_successful_poll_timestamp_seconds", "umeeting_poll_duration_seconds", "umeeting_concurrent_meetings_limit")
	c.Delete("beta")
	if n := len(served(t, c)["umeeting_up"].GetMetric()); n != 1 {
		t.Errorf("deleted account still exposed: %d", n)
	}
}

func TestLint(t *testing.T) {
	c := New()
	opts := Options{PerHost: true, MaxHosts: 1}
	c.SetUsage("acme", snapshotWith(t, opts), opts)
	c.SetStatus("acme", Status{Up: true, ConcurrentLimit: 3})
	lint(t, c)
	reg := prometheus.NewRegistry()
	inst := NewInstruments(reg)
	inst.InitAccount("acme")
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(inst.APIRequests); n != len(umeeting.RequestResults) {
		t.Errorf("api request series %d, want %d pre-initialised", n, len(umeeting.RequestResults))
	}
	inst.DeleteAccount("acme")
	if n := testutil.CollectAndCount(inst.APIRequests); n != 0 {
		t.Errorf("series left after DeleteAccount: %d", n)
	}
}

// TestNewUserTypeHeldLikeItsCounters: the histograms of a user_type first
// counted after the baseline are published empty, like the counters of its
// new series at 0, and show its first meetings only when those counters
// do: never ahead of them, and increase() on _count sees the first meetings.
func TestNewUserTypeHeldLikeItsCounters(t *testing.T) {
	opts := Options{PerHost: true, HoldFor: time.Minute}
	s, _ := store.Open(t.TempDir(), "acme")
	s.SetPolicy(opts, t0)
	c := New()
	poll := func(now time.Time, ms ...umeeting.Meeting) {
		b := s.NewBatch(s.Window(now, 48*time.Hour, 30*24*time.Hour))
		for i := range ms {
			b.Meeting(&ms[i])
		}
		b.CommitPage()
		s.Apply(b)
		c.SetUsage("acme", s.Snapshot(now), opts)
	}
	// shown checks the meetings of user_type Pro in the counter and the
	// observations in both histograms: published, and all at want.
	shown := func(what string, want float64) {
		t.Helper()
		names := []string{"umeeting_meetings_total", "umeeting_meeting_duration_seconds", "umeeting_meeting_participants"}
		got := map[string]float64{}
		for k, v := range series(t, c, names...) {
			if name, labels, _ := strings.Cut(k, "{"); strings.Contains(labels, "user_type=Pro") {
				got[name] += v
			}
		}
		for _, name := range names {
			if v, ok := got[name]; !ok || v != want {
				t.Errorf("%s: %s{user_type=\"Pro\"} shows %v (published: %v), want %v", what, name, v, ok, want)
			}
		}
	}
	poll(t0, umeeting.Meeting{UUID: "u1", Host: "Ann", Email: "ann@x.com", UserType: "Corp",
		Start: t0.Add(-2 * time.Hour), End: t0.Add(-time.Hour), Participants: 3})
	pro := func(uuid, email string) umeeting.Meeting {
		return umeeting.Meeting{UUID: uuid, Host: "Pat", Email: email, UserType: "Pro",
			Start: t0.Add(-30 * time.Minute), End: t0.Add(-20 * time.Minute), Participants: 2}
	}
	now := t0.Add(time.Minute)
	poll(now, pro("p1", "pat@x.com"))
	shown("a new user_type", 0)
	poll(now, pro("p2", "pat@x.com")) // a poll in the same second
	shown("a poll before the hold ended", 0)
	poll(now.Add(time.Minute))
	shown("a poll one hold later", 2)
}
