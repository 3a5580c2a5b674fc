package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/mixin"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// replicaDiffers lists the dashboard queries that legitimately differ with a
// second replica, keyed "dashboard uid/panel title/refId", with the reason.
// Every other query must give the figure of one exporter.
var replicaDiffers = map[string]string{
	"umeeting-exporter-health/Age of the last successful poll/A":          "the replicas poll at different moments",
	"umeeting-exporter-health/Config reload/A":                            "one series per exporter",
	"umeeting-exporter-health/Last successful config reload/A":            "one series per exporter",
	"umeeting-exporter-health/Build info/A":                               "one row per exporter",
	"umeeting-exporter-health/API requests per hour by result/A":          "each replica makes its own requests: they add up",
	"umeeting-exporter-health/API requests in the time range by result/A": "each replica makes its own requests: they add up",
	"umeeting-exporter-health/Polls per hour by result/A":                 "each replica polls: they add up",
	"umeeting-exporter-health/Poll duration/A":                            "each replica's own polls",
	"umeeting-exporter-health/Age of the last state save/A":               "each replica saves its own state",
	"umeeting-exporter-health/Exported usage series by user type/A":       "one series per exporter",
	"umeeting-exporter-health/Exporter memory/A":                          "one series per exporter",
	"umeeting-exporter-health/Exporter CPU/A":                             "one series per exporter",
}

// TestMixinWithTwoReplicas runs two replicas of the exporter on one API, as
// docs/high-availability.md recommends, and checks on a real
// Prometheus of each release that the recording rules and every dashboard
// query give the figures of one replica: one Prometheus scrapes both
// replicas, another only the first, and their answers at the same instant
// must agree. The recorded increases must also match the ground truth of
// the meetings added during the test.
func TestMixinWithTwoReplicas(t *testing.T) {
	releases := prometheusReleases(t)
	sim, apiURL := newSim(t, simulator.Options{Hosts: 40})
	var replicas []*exporter
	for _, name := range []string{"a", "b"} {
		dir := t.TempDir()
		cfg := writeConfig(t, dir, apiURL, retries, "")
		e := startExporter(t, "--config.file="+cfg, "--storage.path="+dir+"/data-"+name)
		waitExact(t, e, sim, "e2e")
		replicas = append(replicas, e)
	}

	ruleFiles := mixinRuleFiles(t)
	type pair struct{ both, one *promServer }
	var pairs []pair
	for _, rel := range releases {
		pairs = append(pairs, pair{
			both: startPrometheus(t, rel, promConfig{targets: []string{replicas[0].Addr, replicas[1].Addr}, ruleFiles: ruleFiles}),
			one:  startPrometheus(t, rel, promConfig{targets: []string{replicas[0].Addr}, ruleFiles: ruleFiles}),
		})
	}
	// 20 s of samples before the new meetings and 10 s after them, so that
	// increase()'s extrapolation at the ends of a series (at most about
	// 1.5 s of a 1 s scrape interval) stays within 5 % of the figures.
	scraped := func(p *promServer, targets int) func() bool {
		return func() bool {
			return p.value(fmt.Sprintf(`count(count_over_time(umeeting_up{account="e2e"}[1m]) >= 20) == %d`, targets)) != ""
		}
	}
	for _, pp := range pairs {
		waitFor(t, 60*time.Second, "20 scrapes of both replicas", scraped(pp.both, 2))
		waitFor(t, 60*time.Second, "20 scrapes of one replica", scraped(pp.one, 1))
	}

	// New meetings of existing hosts (so no new series), ended just now.
	added := addMeetingsOfKnownHosts(t, sim, 24)
	for _, e := range replicas {
		waitExact(t, e, sim, "e2e")
	}
	want := truthTotals(sim)
	for _, pp := range pairs {
		for _, p := range []*promServer{pp.both, pp.one} {
			waitFor(t, 30*time.Second, "Prometheus "+p.release.Name+" scraped the new totals", func() bool {
				return p.value(fmt.Sprintf(`min(sum by (instance) (umeeting_meetings_total{account="e2e"})) == %v`, want.Meetings)) != ""
			})
		}
	}
	time.Sleep(10 * time.Second)
	at := time.Now().Add(-500 * time.Millisecond)

	addedByType := map[string]float64{}
	for _, m := range added {
		addedByType[m.UserType]++
	}
	dashboards := loadMixinDashboards(t)
	for _, pp := range pairs {
		t.Run(pp.both.release.Name, func(t *testing.T) {
			// The recorded hour against the ground truth: increase()
			// extrapolates the first and last samples of a window by at most
			// half a scrape interval plus the time to the evaluation (about
			// 1.5 s), against ≥ 30 s of samples: within 5 %, 10 % allowed.
			// Two replicas summed would give twice the meetings.
			for _, s := range pp.both.query(t, `umeeting:meetings:increase1h{account="e2e"}`, at) {
				wantN := addedByType[s.Metric["user_type"]]
				if s.Value < 0.95*wantN || s.Value > 1.1*wantN+0.01 {
					t.Errorf("umeeting:meetings:increase1h{user_type=%q} = %.3f with two replicas, want the %v meetings added", s.Metric["user_type"], s.Value, wantN)
				}
			}
			if got := pp.both.query(t, `sum(umeeting:meetings:increase1h{account="e2e"})`, at); len(got) != 1 || got[0].Value < 0.95*float64(len(added)) {
				t.Errorf("sum(umeeting:meetings:increase1h) = %v, want about %d", got, len(added))
			}

			for _, r := range recordedRules(t, ruleFiles) {
				compareReplicaAnswers(t, "rule "+r, pp.both, pp.one, r, at)
			}
			all := map[string][]string{"account": {"All"}, "user_type": {"All"}, "host": {"All"}}
			n := 0
			for _, d := range dashboards {
				for _, q := range d.queries() {
					if strings.Contains(q.key, "/variable ") {
						continue // label values: the same names either way
					}
					if why := replicaDiffers[q.key]; why != "" {
						t.Logf("%s: not compared (%s)", q.key, why)
						continue
					}
					expr, err := d.interpolate(q.expr, q, all)
					if err != nil {
						t.Fatalf("%s: %v", q.key, err)
					}
					compareReplicaAnswers(t, q.key, pp.both, pp.one, expr, at)
					n++
				}
			}
			if n < 40 {
				t.Errorf("compared only %d dashboard queries", n)
			}
		})
	}
}

// compareReplicaAnswers evaluates expr at the same instant on a Prometheus
// scraping both replicas and on one scraping the first only; the answers
// must hold the same series (instance aside) with values within 10 %: the
// two servers scrape at different moments, so increase() extrapolates a
// little differently, while a doubled figure is off by 100 %.
func compareReplicaAnswers(t *testing.T, what string, both, one *promServer, expr string, at time.Time) {
	t.Helper()
	index := func(ss []promSample) map[string]float64 {
		out := map[string]float64{}
		for _, s := range ss {
			delete(s.Metric, "instance")
			b, _ := json.Marshal(s.Metric) // sorted keys
			out[string(b)] = s.Value
		}
		return out
	}
	gotBoth, gotOne := index(both.query(t, expr, at)), index(one.query(t, expr, at))
	if !slices.Equal(slices.Sorted(maps.Keys(gotBoth)), slices.Sorted(maps.Keys(gotOne))) {
		t.Errorf("%s: two replicas give series %v, one replica %v\n%s", what, slices.Sorted(maps.Keys(gotBoth)), slices.Sorted(maps.Keys(gotOne)), expr)
		return
	}
	for k, b := range gotBoth {
		o := gotOne[k]
		if math.IsNaN(b) && math.IsNaN(o) {
			continue
		}
		if math.Abs(b-o) > 0.1*math.Max(math.Abs(b), math.Abs(o))+1e-9 {
			t.Errorf("%s %s: %v with two replicas, %v with one\n%s", what, k, b, o, expr)
		}
	}
}

// recordedRules returns the names of the recording rules.
func recordedRules(t *testing.T, files []string) []string {
	t.Helper()
	rules, err := mixin.LoadRules(files)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rules {
		if r.Record != "" {
			out = append(out, r.Record)
		}
	}
	return out
}

// addMeetingsOfKnownHosts lists n new meetings that ended in the last
// minute, spread over the hosts the simulator already knows (so that no new
// series appears), and returns them.
func addMeetingsOfKnownHosts(t *testing.T, sim *simulator.Simulator, n int) []umeeting.Meeting {
	t.Helper()
	hosts := map[string]umeeting.Meeting{}
	for _, m := range sim.Truth(time.Time{}, time.Now().Add(time.Hour)) {
		if m.Email != "" && m.UserType != umeeting.UnknownUserType && len(hosts) < 6 {
			hosts[m.Email] = m
		}
	}
	if len(hosts) < 2 {
		t.Fatalf("the simulator knows only %d hosts", len(hosts))
	}
	emails := slices.Sorted(maps.Keys(hosts))
	now := time.Now().Truncate(time.Second)
	var added []umeeting.Meeting
	for i := range n {
		h := hosts[emails[i%len(emails)]]
		end := now.Add(-time.Duration(5+i) * time.Second)
		added = append(added, umeeting.Meeting{
			UUID: fmt.Sprintf("replica-test-%d", i), ID: int64(9000 + i),
			Host: h.Host, Email: h.Email, UserType: h.UserType,
			Start: end.Add(-time.Duration(10+7*i) * time.Minute), End: end,
			Participants: 2 + i%5, Features: umeeting.AllFeatures[i%len(umeeting.AllFeatures)],
		})
	}
	sim.Add(added...)
	return added
}
