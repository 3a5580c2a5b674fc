package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// This file proves what docs/counting.md says, through a real
// Prometheus of each release (2.42 and 3.x) scraping the real exporter every
// second: a new host's
// first meeting is seen by increase(); renames, user_type changes and hosts
// leaving the per-host set neither drop nor add meetings; two replicas with
// the shipped recording rules count once; a killed exporter never serves
// less than before.
//
// Tolerance: increase() scales the change it sees between a series' first
// and last samples in the range by (sampled time + extrapolation) / sampled
// time. Prometheus (2.42 and 3.x alike) extrapolates towards each end of the
// range by the gap to it when that is under 1.1 scrape intervals (1.1 s
// here), else by half an interval, and never below zero for a counter (a
// series born at 0 gets none towards the start); 3.x's left-open range
// drops a sample only at the range's start, before every change checked. So the result is the true change times at
// most (S+1.5)/S for S seconds of samples, never less. Every series checked
// has at least 30 s of samples in its range (the tests wait for 30 scrapes
// after each change): at most 5% too much. The checks allow 0-5% above the
// true number and 1% below (float rounding).

const countingDomain = "@count.example"

// meeting returns a meeting of host local@countingDomain that ended ago.
func countingMeeting(uuid, local, name, userType string, ago time.Duration) umeeting.Meeting {
	end := time.Now().Add(-ago).Truncate(time.Second)
	return umeeting.Meeting{UUID: uuid, Host: name, Email: local + countingDomain, UserType: userType,
		Start: end.Add(-20 * time.Minute), End: end, Participants: 3, Features: umeeting.FeatureVideo}
}

// prometheusEach starts one Prometheus of each release the suite runs on
// (Debian's 2.42 and the pinned 3.x) scraping targets with the rule files;
// every check runs on each.
func prometheusEach(t *testing.T, targets ...string) []*promServer {
	t.Helper()
	var ps []*promServer
	for _, rel := range prometheusReleases(t) {
		ps = append(ps, startPrometheus(t, rel, promConfig{targets: targets, ruleFiles: mixinRuleFiles(t)}))
	}
	return ps
}

// waitScrapesEach waits until every Prometheus of ps scraped every target
// n more times (they scrape side by side, so the later ones are quick).
func waitScrapesEach(t *testing.T, ps []*promServer, n int) {
	t.Helper()
	for _, p := range ps {
		waitScrapes(t, p, n)
	}
}

// scalar evaluates expr, which must return one series, at now.
func (p *promServer) scalar(t *testing.T, expr string) float64 {
	t.Helper()
	s := p.query(t, expr, time.Time{})
	if len(s) != 1 {
		t.Fatalf("%s: %d series, want 1: %+v", expr, len(s), s)
	}
	return s[0].Value
}

// near checks that got is want within the tolerance of the file comment.
func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if got < want*0.99 || got > want*1.05 {
		t.Errorf("%s = %.3f, want %v (-1%%..+5%%)", what, got, want)
	}
}

// waitScrapes waits until Prometheus scraped every target n more times.
func waitScrapes(t *testing.T, p *promServer, n int) {
	t.Helper()
	start := time.Now()
	waitFor(t, time.Duration(n+10)*time.Second, fmt.Sprintf("%d scrapes", n), func() bool {
		d := int(time.Since(start).Seconds())
		return d >= n && p.value(fmt.Sprintf(`min(count_over_time(up{job="umeeting"}[%ds])) >= %d`, d, n)) != ""
	})
}

func served(e *exporter, name string, contains ...string) float64 {
	v, _ := sumMetric(e.Metrics(), name, append([]string{`account="e2e"`}, contains...)...)
	return v
}

func TestCountingThroughPrometheus(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{NoGenerated: true})
	// The baseline: history before the first start, in the starting values.
	var base []umeeting.Meeting
	for i := range 10 {
		for j := range 2 {
			base = append(base, countingMeeting(fmt.Sprintf("base-%d-%d", i, j), fmt.Sprintf("base%02d", i), fmt.Sprintf("Base %d", i), "Corp", time.Duration(j+1)*time.Hour))
		}
	}
	sim.Add(base...)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries, "metrics:\n  max_hosts: 30\n")
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	waitFor(t, 30*time.Second, "the baseline served", func() bool { return served(e, "umeeting_meetings_total") == 20 })
	ps := prometheusEach(t, e.Addr)
	waitScrapesEach(t, ps, 5)
	t1 := time.Now()

	// 20 new hosts' first meetings; a rename; a user_type change.
	var added []umeeting.Meeting
	for i := range 20 {
		// new19 ends last, so it is seen last: max_hosts drops it first.
		added = append(added, countingMeeting(fmt.Sprintf("new-%d", i), fmt.Sprintf("new%02d", i), fmt.Sprintf("New %d", i), "Corp", time.Minute+time.Duration(20-i)*time.Second))
	}
	added = append(added,
		countingMeeting("rename", "base00", "Base Zero Renamed", "Corp", time.Minute),
		countingMeeting("retype", "base01", "Base 1", "Pro", time.Minute))
	sim.Add(added...)
	waitFor(t, 30*time.Second, "the new meetings served", func() bool { return served(e, "umeeting_meetings_total") == 42 })
	waitScrapesEach(t, ps, 30)

	// Two hosts leave the per-host set (max_hosts 30 → 28: the last seen,
	// new18 and new19); new19 meets again, in the series without email.
	if strings.Count(e.Metrics(), "\numeeting_host_info{") != 30 {
		t.Fatal("not every host has series of its own")
	}
	writeConfig(t, dir, apiURL, retries, "metrics:\n  max_hosts: 28\n")
	e.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 20*time.Second, "28 hosts with series", func() bool {
		return strings.Count(e.Metrics(), "\numeeting_host_info{") == 28
	})
	if m := e.Metrics(); strings.Contains(m, `email="new19`+countingDomain) || strings.Contains(m, `email="new18`+countingDomain) {
		t.Fatal("new18 or new19 still has series of its own")
	}
	sim.Add(countingMeeting("left", "new19", "New 19", "Corp", time.Minute),
		countingMeeting("more", "base02", "Base 2", "Corp", time.Minute))
	others := `{account="e2e",user_type="Corp"}`
	waitFor(t, 30*time.Second, "the meeting of a host that left served", func() bool {
		v, _ := sumMetric(e.Metrics(), "umeeting_meetings_total", others)
		return v == 1
	})
	waitScrapesEach(t, ps, 30)
	rng := fmt.Sprintf("[%ds]", int(time.Since(t1).Seconds())+5)
	for _, p := range ps {
		t.Run(p.release.Name, func(t *testing.T) { checkCountingThroughPrometheus(t, p, rng) })
	}
	// No per-host label set is the one without host labels.
	if strings.Contains(e.Metrics(), `email=""`) {
		t.Error(`an empty email label is exported`)
	}
}

// checkCountingThroughPrometheus checks what one Prometheus stored.
func checkCountingThroughPrometheus(t *testing.T, p *promServer, rng string) {
	for i := range 20 {
		email := fmt.Sprintf("new%02d%s", i, countingDomain)
		near(t, "first meeting of "+email, p.scalar(t, fmt.Sprintf(`sum(increase(umeeting_meetings_total{account="e2e",email=%q}%s))`, email, rng)), 1)
	}
	near(t, "sum by (account) of increase", p.scalar(t, `sum by (account) (increase(umeeting_meetings_total{account="e2e"}`+rng+`))`), 24)
	near(t, "the series without email (hosts that left took no history)", p.scalar(t, `sum(increase(umeeting_meetings_total{account="e2e",email=""}`+rng+`))`), 1)
	near(t, "user_type change", p.scalar(t, `sum(increase(umeeting_meetings_total{email="base01`+countingDomain+`"}`+rng+`))`), 1)
	if n := p.scalar(t, `count(count_over_time(umeeting_meetings_total{email="base00`+countingDomain+`"}`+rng+`))`); n != 1 {
		t.Errorf("a rename made %v meetings series for one e-mail, want 1", n)
	}
	// The display name comes from the info metric, joined in PromQL.
	byHost := p.query(t, `sum by (host) (max without (instance) (increase(umeeting_meetings_total{account="e2e",email!=""}`+rng+`))
		* on (account, email) group_left (host) topk by (account, email) (1, umeeting_host_info{account="e2e"}))`, time.Time{})
	found := false
	for _, s := range byHost {
		if s.Metric["host"] == "Base Zero Renamed" {
			found = true
			near(t, "renamed host's meetings by host name", s.Value, 1)
		}
		if s.Metric["host"] == "Base 0" {
			t.Errorf("the old display name is still joined: %+v", s)
		}
	}
	if !found {
		t.Errorf("no renamed host in %+v", byHost)
	}
}

// TestCountingReplicas: two exporters of one config, scraped by one
// Prometheus with the shipped rules, count every meeting once, first
// meetings of new hosts included.
func TestCountingReplicas(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{NoGenerated: true})
	var base []umeeting.Meeting
	for i := range 5 {
		base = append(base, countingMeeting(fmt.Sprintf("base-%d", i), fmt.Sprintf("base%02d", i), fmt.Sprintf("Base %d", i), "Corp", time.Hour))
	}
	sim.Add(base...)
	var es []*exporter
	for range 2 {
		dir := t.TempDir()
		cfg := writeConfig(t, dir, apiURL, retries, "")
		es = append(es, startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data")))
	}
	for _, e := range es {
		waitFor(t, 30*time.Second, "the baseline served", func() bool { return served(e, "umeeting_meetings_total") == 5 })
	}
	ps := prometheusEach(t, es[0].Addr, es[1].Addr)
	waitScrapesEach(t, ps, 5)

	var added []umeeting.Meeting
	for i := range 15 {
		added = append(added, countingMeeting(fmt.Sprintf("new-%d", i), fmt.Sprintf("new%02d", i), fmt.Sprintf("New %d", i), "Pro", time.Minute))
	}
	for i := range 5 {
		added = append(added, countingMeeting(fmt.Sprintf("again-%d", i), fmt.Sprintf("base%02d", i), fmt.Sprintf("Base %d", i), "Corp", time.Minute))
	}
	sim.Add(added...)
	for _, e := range es {
		waitFor(t, 30*time.Second, "the new meetings served", func() bool { return served(e, "umeeting_meetings_total") == 25 })
	}
	waitScrapesEach(t, ps, 30)
	for _, p := range ps {
		t.Run(p.release.Name, func(t *testing.T) {
			near(t, "umeeting:meetings:increase1h over both replicas", p.scalar(t, `sum(umeeting:meetings:increase1h{account="e2e"})`), 20)
			near(t, "Pro (only new hosts' first meetings)", p.scalar(t, `sum(umeeting:meetings:increase1h{account="e2e",user_type="Pro"})`), 15)
			// Both replicas are scraped: without the aggregation it is twice.
			near(t, "plain sum over both replicas", p.scalar(t, `sum(increase(umeeting_meetings_total{account="e2e"}[1h]))`), 40)
		})
	}
}

// TestCountersNeverDecreaseAfterFailedSaves: saves fail (the state file's
// place is taken by a folder, which fails as root too), meetings arrive,
// the exporter is killed and restarted while the API fails: it never
// serves less than it served, and counts the meetings once saves work.
func TestCountersNeverDecreaseAfterFailedSaves(t *testing.T) {
	sim, _, cfg, data, e := startWithBase(t)
	maxServed := 0.0
	watch := func(e *exporter) float64 {
		t.Helper()
		v := served(e, "umeeting_meetings_total")
		if v < maxServed {
			t.Fatalf("served %v meetings after serving %v", v, maxServed)
		}
		maxServed = v
		return v
	}
	waitFor(t, 30*time.Second, "the baseline served", func() bool { return watch(e) == 30 })

	state := filepath.Join(data, "e2e.state")
	saved, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	// A poll may save the state again between the remove and the mkdir:
	// then try again (a few times, each a short window).
	for try := 0; ; try++ {
		os.Remove(state)
		err := os.MkdirAll(filepath.Join(state, "blocker"), 0o700)
		if err == nil {
			break
		}
		if try == 20 {
			t.Fatal(err)
		}
	}
	var more []umeeting.Meeting
	for i := range 25 {
		more = append(more, countingMeeting(fmt.Sprintf("more-%d", i), fmt.Sprintf("h%02d", i%10), "H", "Corp", time.Minute))
	}
	sim.Add(more...)
	waitFor(t, 20*time.Second, "failed saves", func() bool { return served(e, "umeeting_state_save_failures_total") >= 2 })
	if v := watch(e); v != 30 {
		t.Fatalf("served %v meetings while no save succeeded, want the 30 saved", v)
	}
	if !strings.Contains(e.Logs.String(), "Saving state failed; the poll's meetings are counted once a save succeeds") {
		t.Error("failed save not logged")
	}
	e.Kill()

	// What a read-only folder keeps: the last state saved.
	os.RemoveAll(state)
	if err := os.WriteFile(state, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	sim.SetFault(simulator.Fault{Kind: simulator.FaultHTTP500})
	e = startExporter(t, "--config.file="+cfg, "--storage.path="+data)
	waitFor(t, 20*time.Second, "a failed poll after the restart", func() bool {
		watch(e)
		return served(e, "umeeting_polls_total", `result="failure"`) >= 1
	})
	sim.SetFault(simulator.Fault{Kind: simulator.FaultNone})
	waitFor(t, 30*time.Second, "the meetings counted once saves work", func() bool { return watch(e) == 55 })
}
