package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/history"
	"github.com/umeeting/umeeting_exporter/internal/account"
	"github.com/umeeting/umeeting_exporter/internal/testproc"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// This file proves the history export (#10, #19) with the real binary and
// a real Prometheus: 60 days of simulated history are written as TSDB
// blocks, with the recording rules, after the exporter's first start, by
// one command; the blocks are moved into Prometheus's data folder, and
// Prometheus, restarted once, shows for every past day exactly the meetings
// of that day, and across the seam between imported and scraped samples
// every meeting once.

// prom3Dir holds Prometheus 3 binaries when they were built (see TEAM.md).
const prom3Dir = "/root/.cache/umeeting-prom3/v0.316.0"

// promVersion is one Prometheus to prove the import with.
type promVersion struct {
	name              string
	prometheus        string
	leftOpenIntervals bool // Prometheus 3 ranges are (t-d, t]
}

func promVersions(t *testing.T) []promVersion {
	t.Helper()
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("the prometheus binary is not in PATH (%v): install Debian's prometheus package", err)
	}
	vs := []promVersion{{name: "2.42", prometheus: promBin}}
	if p3 := filepath.Join(prom3Dir, "prometheus"); func() bool { _, err := os.Stat(p3); return err == nil }() {
		vs = append(vs, promVersion{name: "3.16", prometheus: p3, leftOpenIntervals: true})
	}
	if len(vs) == 1 {
		t.Logf("no Prometheus 3 binaries in %s: proving with 2.42 only", prom3Dir)
	}
	return vs
}

// promProc is a Prometheus process whose data folder survives restarts.
type promProc struct {
	t       *testing.T
	v       promVersion
	cfg     string
	dataDir string
	srv     *promServer
	cmd     *exec.Cmd
	done    <-chan struct{}
	logs    *syncBuffer
}

func newPromProc(t *testing.T, v promVersion, target string) *promProc {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	// The mixin's rules run live, at the interval history evaluates them
	// at (its default, Prometheus's).
	var rules []string
	for _, f := range mixinRuleFiles(t) {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, fmt.Sprintf("  - %q\n", abs))
	}
	text := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: %s\nrule_files:\n%sscrape_configs:\n  - job_name: umeeting\n    static_configs:\n      - targets: [%q]\n",
		model.Duration(history.DefaultEvalInterval), strings.Join(rules, ""), target)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &promProc{t: t, v: v, cfg: cfg, dataDir: filepath.Join(dir, "data"), srv: &promServer{addr: freeAddr(t)}}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *promProc) start() {
	p.t.Helper()
	p.logs = &syncBuffer{}
	// The default retention (15d) would delete the imported months.
	p.cmd = exec.Command(p.v.prometheus, "--config.file="+p.cfg, "--storage.tsdb.path="+p.dataDir,
		"--storage.tsdb.retention.time=1y", "--web.listen-address="+p.srv.addr, "--log.level=warn")
	p.done = testproc.Start(p.t, p.cmd, p.logs)
	cmd, done := p.cmd, p.done
	waitFor(p.t, 60*time.Second, "prometheus "+p.v.name+" ready", func() bool {
		select {
		case <-done:
			p.t.Fatalf("prometheus %s exited: %v\n%s", p.v.name, cmd.ProcessState, p.logs.String())
		default:
		}
		resp, err := http.Get("http://" + p.srv.addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// stop ends Prometheus gracefully (so its head is kept in the WAL).
func (p *promProc) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	if p.t.Failed() {
		p.t.Logf("prometheus %s logs:\n%s", p.v.name, p.logs.String())
	}
	p.cmd = nil
}

// moveBlocks stops Prometheus, moves the blocks of dir (a copy of what
// history wrote) into its data folder and starts it again: the procedure of
// docs/history.md.
func (p *promProc) moveBlocks(dir string) {
	p.t.Helper()
	p.stop()
	entries, err := os.ReadDir(dir)
	if err != nil {
		p.t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(p.dataDir, e.Name())); err != nil {
			p.t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		p.t.Fatalf("history wrote no block")
	}
	p.t.Logf("prometheus %s: %d blocks moved in", p.v.name, n)
	p.start()
}

// scalar evaluates expr at ts and returns its single value (NaN if none).
func (p *promProc) scalar(expr string, ts time.Time) float64 {
	p.t.Helper()
	series, err := p.srv.get("/api/v1/query", url.Values{"query": {expr}, "time": {promTime(ts)}}).result()
	if err != nil {
		p.t.Fatalf("prometheus %s: %s: %v", p.v.name, expr, err)
	}
	if len(series) == 0 {
		return math.NaN()
	}
	var s struct {
		Value []any `json:"value"`
	}
	if err := json.Unmarshal(series[0], &s); err != nil || len(s.Value) != 2 {
		p.t.Fatalf("prometheus %s: %s: bad answer %s", p.v.name, expr, series[0])
	}
	v, _ := strconv.ParseFloat(s.Value[1].(string), 64)
	return v
}

// historyTruth is what the simulator says about meetings that ended in (from, to].
func historyTruth(sim *simulator.Simulator, from, to time.Time) map[string]float64 {
	s := simulator.Summarize(sim.Truth(from.Add(time.Second), to))
	out := map[string]float64{
		`umeeting_meetings_total`:            float64(s.Meetings),
		`umeeting_meeting_seconds_total`:     float64(s.MeetingSeconds),
		`umeeting_participants_total`:        float64(s.Participants),
		`umeeting_participant_seconds_total`: float64(s.ParticipantSeconds),
	}
	for _, f := range umeeting.FeatureNames {
		out[fmt.Sprintf(`umeeting_meetings_by_feature_total{feature=%q}`, f)] = float64(s.Features[f])
	}
	return out
}

// selector adds the account matcher to a family name with or without labels.
func selector(name, account string) string {
	if i := strings.IndexByte(name, '{'); i >= 0 {
		return name[:i] + fmt.Sprintf("{account=%q,", account) + name[i+1:]
	}
	return name + fmt.Sprintf("{account=%q}", account)
}

// tolerance is how far Prometheus may be from the truth for a range
// (from, to] evaluated at to where samples lie at both ends. Prometheus 2
// reads [from, to] and finds samples at both ends: exact. Prometheus 3
// reads (from, to] and finds the first at from+1ms (the export writes every
// UTC midnight twice): it extrapolates by 1 ms over the range.
func tolerance(v promVersion, truth float64, rng time.Duration) float64 {
	if !v.leftOpenIntervals {
		return 1e-9
	}
	return truth*float64(time.Millisecond)/float64(rng-time.Millisecond) + 1e-9
}

func writeHistoryConfig(t *testing.T, dir, apiURL, backfill string) string {
	t.Helper()
	// A new series is held at 0 for a poll interval: 2s, so that a scrape
	// every second surely sees the 0.
	cfg := fmt.Sprintf(`poll_interval: 2s
lookback: 1h
backfill: %s
accounts:
  - name: acme
    api_url: %s
    api_key: %s
    api_secret: %s
    daily_request_budget: 0
`, backfill, apiURL, testKey, testSecret)
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runHistory runs the subcommand with the mixin's rule files and returns
// the output folder and its stderr; the labels are those Prometheus gives
// the exporter's series (job, instance).
func runHistory(t *testing.T, cfgFile, storage, instance string, more ...string) (string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "blocks")
	args := []string{"history", "--config.file=" + cfgFile, "--storage.path=" + storage,
		"--output=" + out, "--label=job=umeeting", "--label=instance=" + instance}
	for _, f := range mixinRuleFiles(t) {
		args = append(args, "--rules="+f)
	}
	logs, err := exec.Command(exporterBinary, append(args, more...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("history: %v\n%s", err, logs)
	}
	return out, string(logs)
}

// copyBlocks copies the blocks in dir to a new folder, for one Prometheus.
func copyBlocks(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	if err := os.CopyFS(to, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return to
}

// checkDays compares, for every whole UTC day of the history, the increase
// of every usage counter over the day with the simulator's truth.
func checkDays(t *testing.T, p *promProc, sim *simulator.Simulator, from, to time.Time) {
	t.Helper()
	days := 0
	for d := from; !d.Add(24 * time.Hour).After(to); d = d.Add(24 * time.Hour) {
		end := d.Add(24 * time.Hour)
		for name, want := range historyTruth(sim, d, end) {
			got := p.scalar(fmt.Sprintf("sum(increase(%s[1d]))", selector(name, "acme")), end)
			if math.IsNaN(got) && want == 0 {
				got = 0 // a feature never used that day and before: no series
			}
			if math.Abs(got-want) > tolerance(p.v, want, 24*time.Hour) {
				t.Errorf("prometheus %s: increase(%s[1d]) over %s = %v, truth %v", p.v.name, name, d.Format(time.DateOnly), got, want)
			}
		}
		days++
	}
	if days < 55 {
		t.Errorf("only %d whole days checked", days)
	}
	t.Logf("prometheus %s: %d whole days match the truth", p.v.name, days)
}

// checkSeam checks a range (from, at] that begins in the imported history
// and ends in the live samples: its increase is the meetings in it, and no
// counter resets anywhere.
func checkSeam(t *testing.T, p *promProc, sim *simulator.Simulator, from, at time.Time) {
	t.Helper()
	rng := at.Sub(from)
	window := fmt.Sprintf("%dms", rng.Milliseconds())
	for name, want := range historyTruth(sim, from, at) {
		got := p.scalar(fmt.Sprintf("sum(increase(%s[%s]))", selector(name, "acme"), window), at)
		if math.IsNaN(got) && want == 0 {
			got = 0
		}
		if math.Abs(got-want) > tolerance(p.v, want, rng) {
			t.Errorf("prometheus %s: increase(%s) over (%s, %s] across the seam = %v, truth %v",
				p.v.name, name, from.Format(time.RFC3339), at.Format(time.RFC3339), got, want)
			series, _ := p.srv.get("/api/v1/query", url.Values{"query": {fmt.Sprintf("increase(%s[%s]) > 0", selector(name, "acme"), window)}, "time": {promTime(at)}}).result()
			for _, s := range series {
				t.Logf("  %s", s)
			}
		}
	}
	for _, name := range []string{"umeeting_meetings_total", "umeeting_meeting_seconds_total", "umeeting_participants_total",
		"umeeting_participant_seconds_total", "umeeting_meetings_by_feature_total", "umeeting_meeting_duration_seconds_bucket",
		"umeeting_meeting_participants_bucket", "umeeting_meeting_duration_seconds_count"} {
		sel := selector(name, "acme")
		if r := p.scalar(fmt.Sprintf("sum(resets(%s[61d]))", sel), at); r != 0 && !math.IsNaN(r) {
			t.Errorf("prometheus %s: %s has %v counter resets", p.v.name, name, r)
		}
		// The history adds no label set of its own: a sum over the 61 days
		// sees the live series only.
		all, live := p.scalar(fmt.Sprintf("count(count_over_time(%s[61d]))", sel), at), p.scalar(fmt.Sprintf("count(%s)", sel), at)
		if all != live {
			t.Errorf("prometheus %s: %s has %v series over the history and the live samples, %v live", p.v.name, name, all, live)
		}
	}
}

// hourRules are the mixin's per-hour recording rules of the usage counters.
var hourRules = map[string]string{
	"umeeting_meetings_total":            "umeeting:meetings:increase1h",
	"umeeting_meeting_seconds_total":     "umeeting:meeting_seconds:increase1h",
	"umeeting_participants_total":        "umeeting:participants:increase1h",
	"umeeting_participant_seconds_total": "umeeting:participant_seconds:increase1h",
	"umeeting_meetings_by_feature_total": "umeeting:meetings_by_feature:increase1h",
}

// checkRuleDays sums, for every whole UTC day of the history, the per-hour
// recording rules (evaluated by history) at the evaluation at each of the
// day's 24 whole hours, and compares the sum with the simulator's truth of
// the day.
//
// Bounds, from increase()'s extrapolation, as a live evaluation has them:
// history evaluates with Prometheus 3's engine, whose range (h-1h, h] holds
// the history's points from h-1h+step to h: the meetings of the hour but
// those of its first step, stretched to the hour by at most
// 1h/(1h-step); a series born within the hour starts at 0 and is not
// stretched at its start. So a day's sum lies between the truth less the
// meetings of the first step of each hour and the truth times
// 1h/(1h-step). On Prometheus 3.16, every hour's value is also exactly
// what the server's own instant evaluation of the rule's expression over
// the imported series gives at that hour.
func checkRuleDays(t *testing.T, p *promProc, sim *simulator.Simulator, from, to time.Time) {
	t.Helper()
	const ms = time.Millisecond
	step := history.Step
	days := int(to.Sub(from) / (24 * time.Hour))
	got := map[string][]float64{} // truth key -> per day
	rangeQuery := func(expr string) []struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	} {
		// The evaluation at h is the latest one at h+I-1ms.
		series, err := p.srv.get("/api/v1/query_range", url.Values{"query": {expr},
			"start": {promTime(from.Add(time.Hour + history.DefaultEvalInterval - ms))}, "end": {promTime(to.Add(history.DefaultEvalInterval - ms))},
			"step": {"3600"}}).result()
		if err != nil {
			t.Fatalf("prometheus %s: %s: %v", p.v.name, expr, err)
		}
		out := make([]struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		}, len(series))
		for i, raw := range series {
			if err := json.Unmarshal(raw, &out[i]); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	compared := 0
	for name, rule := range hourRules {
		by := ""
		if name == "umeeting_meetings_by_feature_total" {
			by = " by (feature)"
		}
		recorded := rangeQuery(fmt.Sprintf("sum%s (%s{account=\"acme\"})", by, rule))
		for _, m := range recorded {
			key := name
			if f := m.Metric["feature"]; f != "" {
				key = fmt.Sprintf("%s{feature=%q}", name, f)
			}
			if got[key] == nil {
				got[key] = make([]float64, days)
			}
			for _, pt := range m.Values {
				hour := time.UnixMilli(int64(math.Round(pt[0].(float64) * 1000))).Add(-(history.DefaultEvalInterval - ms)) // h
				day := int(hour.Add(-ms).Sub(from) / (24 * time.Hour))
				v, _ := strconv.ParseFloat(pt[1].(string), 64)
				got[key][day] += v
			}
		}
		if !p.v.leftOpenIntervals {
			continue
		}
		// The server's own evaluation, at the whole hours.
		live, err := p.srv.get("/api/v1/query_range", url.Values{"query": {fmt.Sprintf("sum%s (max without (instance) (increase(%s{account=\"acme\"}[1h])))", by, name)},
			"start": {promTime(from.Add(time.Hour))}, "end": {promTime(to)}, "step": {"3600"}}).result()
		if err != nil {
			t.Fatal(err)
		}
		own := map[string]float64{}
		for _, raw := range live {
			var m struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			}
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			for _, pt := range m.Values {
				own[fmt.Sprintf("%s %v", m.Metric["feature"], pt[0])] = mustFloat(pt[1])
			}
		}
		for _, m := range recorded {
			for _, pt := range m.Values {
				at := math.Round(pt[0].(float64)*1000-float64((history.DefaultEvalInterval-ms).Milliseconds())) / 1000
				want, ok := own[fmt.Sprintf("%s %v", m.Metric["feature"], at)]
				if v := mustFloat(pt[1]); !ok || math.Abs(v-want) > 1e-9*math.Max(1, want) {
					t.Errorf("prometheus %s: %s at %v recorded %v, the server evaluates %v (%v)", p.v.name, rule, at, v, want, ok)
				} else {
					compared++
				}
			}
		}
	}
	stretch := float64(time.Hour) / float64(time.Hour-step)
	lo, hi := math.Inf(1), math.Inf(-1) // ratios to the truth
	for i := range days {
		d := from.Add(time.Duration(i) * 24 * time.Hour)
		lost := map[string]float64{}
		for h := d; h.Before(d.Add(24 * time.Hour)); h = h.Add(time.Hour) {
			for key, v := range historyTruth(sim, h, h.Add(step)) {
				lost[key] += v
			}
		}
		for key, want := range historyTruth(sim, d, d.Add(24*time.Hour)) {
			var v float64
			if got[key] != nil {
				v = got[key][i]
			}
			if want > 0 {
				lo, hi = min(lo, v/want), max(hi, v/want)
			}
			if v < want-lost[key]-1e-6 || v > want*stretch+1e-6 {
				t.Errorf("prometheus %s: per-hour rule of %s summed over %s = %v, truth %v (allowed %v to %v)",
					p.v.name, key, d.Format(time.DateOnly), v, want, want-lost[key], want*stretch)
			}
		}
	}
	if days < 55 {
		t.Errorf("only %d whole days of rules checked", days)
	}
	if p.v.leftOpenIntervals && compared < 55*24 {
		t.Errorf("only %d per-hour values compared with the server's evaluation", compared)
	}
	t.Logf("prometheus %s: %d whole days of per-hour rules within the bounds (ratios %.5f to %.5f), %d hourly values equal to the server's",
		p.v.name, days, lo, hi, compared)
}

func mustFloat(v any) float64 {
	f, _ := strconv.ParseFloat(v.(string), 64)
	return f
}

// lastScrape is the time of the latest scrape of the exporter.
func (p *promProc) lastScrape() time.Time {
	p.t.Helper()
	ts := p.scalar(`timestamp(umeeting_up{account="acme"})`, time.Now())
	if math.IsNaN(ts) {
		p.t.Fatalf("prometheus %s has no umeeting_up", p.v.name)
	}
	return time.UnixMilli(int64(math.Round(ts * 1000)))
}

// TestHistoryImportIsContinuous exports, imports and checks the history
// twice: right after the exporter's first start, and a day after it (the
// first start is then made in-process with the exporter's own store and
// client, at a clock a day back, and the real exporter goes on from that
// state: its live counters are a day past their starting values, which
// the history must still end at).
//
// A third run reaches further back than backfill: the first start reads 30
// days, `history --since=120d` reads the 30 before them too (the simulator
// serves 60), stops at the first month the API serves nothing of, and every
// day, old or new, is the truth, the seam exact: the older months' series
// are lowered (below zero) so as to end at the live starting values.
func TestHistoryImportIsContinuous(t *testing.T) {
	versions := promVersions(t)
	t.Run("right after the first start", func(t *testing.T) { historyScenario(t, versions, historyRun{backfill: "60d", rules: true}) })
	t.Run("a day after the first start", func(t *testing.T) {
		historyScenario(t, versions, historyRun{after: 24 * time.Hour, backfill: "60d", rules: true})
	})
	t.Run("further back than backfill", func(t *testing.T) { historyScenario(t, versions, historyRun{backfill: "30d", since: "120d"}) })
}

// historyRun is one scenario of TestHistoryImportIsContinuous.
type historyRun struct {
	after    time.Duration // from the first start to the live exporter's
	backfill string        // the config's
	since    string        // history --since
	rules    bool          // also check the recording rules and the dashboards
}

func historyScenario(t *testing.T, versions []promVersion, run historyRun) {
	after := run.after
	now0 := time.Now()
	// Generated meetings end before the test (all listed by its start: the
	// listing delay is at most 3m); the live part adds its own.
	sim, apiURL := newSim(t, simulator.Options{Hosts: 10, HistoryStart: now0.Add(-after - 60*24*time.Hour), HistoryEnd: now0.Add(-5 * time.Minute)})
	dir := t.TempDir()
	cfgFile := writeHistoryConfig(t, dir, apiURL, run.backfill)
	storage := filepath.Join(dir, "data")
	if after > 0 {
		firstStartAt(t, cfgFile, storage, now0.Add(-after))
	}
	e := startExporter(t, "--config.file="+cfgFile, "--storage.path="+storage)
	waitFor(t, 60*time.Second, "the first poll", func() bool { return upValue(e, "acme") == 1 })
	seam := readSeam(t, storage)

	proms := make([]*promProc, len(versions))
	for i, v := range versions {
		proms[i] = newPromProc(t, v, e.Addr)
	}

	// Live: one meeting by a known host and one by a host never seen
	// before; right after the first start also one that the API lists only
	// now although it ended before the first start (counted live, so the
	// history must leave it out).
	// The host of the latest meeting: the last day may have none (a weekend).
	hosts := sim.Truth(time.Time{}, now0)
	known := hosts[len(hosts)-1]
	live := []umeeting.Meeting{
		{UUID: "live-known", ID: 2, Host: known.Host, Email: known.Email, UserType: known.UserType,
			Start: time.Now().Add(-30 * time.Minute), End: time.Now().Add(-time.Second), Participants: 3, Features: umeeting.FeatureScreenShare},
		{UUID: "live-new", ID: 3, Host: "New Host", Email: "new.host@example.com", UserType: "Pro",
			Start: time.Now().Add(-20 * time.Minute), End: time.Now().Add(-time.Second), Participants: 2},
	}
	if after == 0 {
		live = append(live, umeeting.Meeting{UUID: "late-listed", ID: 1, Host: known.Host, Email: known.Email, UserType: known.UserType,
			Start: seam.Add(-40 * time.Minute), End: seam.Add(-2 * time.Minute), Participants: 4, Features: umeeting.FeatureVideo})
	}
	base := make([]float64, len(proms))
	for i, p := range proms {
		waitFor(t, 30*time.Second, "prometheus "+p.v.name+" scraping the first numbers", func() bool {
			base[i] = p.scalar(`sum(umeeting_meetings_total{account="acme"})`, time.Now())
			return base[i] > 0
		})
	}
	sim.Add(live...)
	for i, p := range proms {
		waitFor(t, 60*time.Second, "prometheus "+p.v.name+" scraping the live meetings", func() bool {
			return p.scalar(`sum(umeeting_meetings_total{account="acme"})`, time.Now()) == base[i]+float64(len(live))
		})
	}

	var more []string
	if run.since != "" {
		more = append(more, "--since="+run.since)
	}
	blocks, logs := runHistory(t, cfgFile, storage, e.Addr, more...)
	t.Logf("history:\n%s", logs)
	if !strings.Contains(logs, "month 1/") {
		t.Errorf("no progress line per month on stderr:\n%s", logs)
	}
	if run.since != "" && !strings.Contains(logs, "the API serves nothing in") {
		t.Errorf("--since reaching past the simulator's 60 days: no word of where the history stops:\n%s", logs)
	}

	firstDay := seam.Add(-60 * 24 * time.Hour).Truncate(24 * time.Hour).Add(24 * time.Hour)
	lastMidnight := seam.Truncate(24 * time.Hour)
	for _, p := range proms {
		p.moveBlocks(copyBlocks(t, blocks))
		at := p.lastScrape()
		// Restarted, it scrapes on: wait for a scrape after the restart.
		waitFor(t, 30*time.Second, "a scrape after the restart", func() bool { return p.lastScrape().After(at) })
		at = p.lastScrape()
		checkDays(t, p, sim, firstDay, lastMidnight)
		checkSeam(t, p, sim, lastMidnight, at)
		if run.rules {
			checkRuleDays(t, p, sim, firstDay, lastMidnight)
			checkDashboards30d(t, p, seam)
		}
	}
}

// firstStartAt makes the exporter's first start at a past time with its
// own code: the baseline window of a fresh state, the API client, a commit.
func firstStartAt(t *testing.T, cfgFile, storage string, at time.Time) {
	t.Helper()
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	st, info := store.Open(storage, "acme")
	if !info.Fresh {
		t.Fatalf("state in %s is not fresh", storage)
	}
	st.SetPolicy(account.MetricsOptions(cfg.Metrics), at)
	win := st.Window(at, cfg.Lookback.D(), cfg.Backfill.D())
	b := st.NewBatch(win)
	client, err := account.NewClient(cfg.Accounts[0], nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Fetch(context.Background(), win.From, at, b); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(b); err != nil {
		t.Fatal(err)
	}
}

// readSeam is where the exporter's live counters began.
func readSeam(t *testing.T, storage string) time.Time {
	t.Helper()
	st, err := store.ReadSeam(storage, "acme")
	if err != nil {
		t.Fatal(err)
	}
	return st.Seam()
}

// liveOnly matches the metrics a history cannot hold: the exporter's own
// health, and the licence limit (configuration, not usage).
var liveOnly = regexp.MustCompile(`\b(umeeting_up|umeeting_last_successful_poll_timestamp_seconds|umeeting_polls?_\w+|umeeting_api_\w+|umeeting_backfill_\w+|umeeting_state_\w+|umeeting_config_\w+|umeeting_records_invalid_total|umeeting_remembered_meetings|umeeting_exporter_build_info|umeeting_concurrent_meetings_limit|umeeting:concurrent_meetings:limit_ratio|process_\w+|go_\w+)\b`)

// notInHistory matches what the history leaves out (docs/history.md): the
// directory join (departments, cost centres, licences), which reads the
// directory as it is now.
var notInHistory = regexp.MustCompile(`\b(umeeting_department_\w+|umeeting_cost_center_\w+|umeeting_directory_\w+|umeeting_chargeback_\w+)\b`)

// checkDashboards30d sends every query of every dashboard as a range query
// over 30 days ending in the imported history (an hour before the seam, so
// no live sample is involved): each must return data on every day of it.
// A panel's range query is sent at its interval (30m for 30 days) and must
// have a point on every day; an instant panel's query, which Grafana sends
// at the end of the range, is sent at every day's end (step 1d) and must
// have a point at each. Queries of live-only metrics and of the directory
// join are left out, with the reason.
func checkDashboards30d(t *testing.T, p *promProc, seam time.Time) {
	t.Helper()
	const span, interval, day = 30 * 24 * time.Hour, 30 * time.Minute, 24 * time.Hour
	end := seam.Add(-time.Hour).Truncate(interval)
	all := map[string][]string{"account": {"All"}, "user_type": {"All"}, "host": {"All"}, "department": {"All"}}
	checked := 0
	for _, d := range loadMixinDashboards(t) {
		for _, q := range d.queries() {
			if m := liveOnly.FindString(q.expr); m != "" {
				t.Logf("%s: not history (%s)", q.key, m)
				continue
			}
			if m := notInHistory.FindString(q.expr); m != "" {
				t.Logf("%s: not in the history (%s: the directory join)", q.key, m)
				continue
			}
			q.span, q.interval = span, max(q.interval, interval)
			expr, err := d.interpolate(q.expr, q, all)
			if err != nil {
				t.Errorf("%s: %v", q.key, err)
				continue
			}
			step := day
			if q.rng {
				step = q.interval
			}
			series, err := p.srv.get("/api/v1/query_range", url.Values{"query": {expr}, "start": {promTime(end.Add(-span))},
				"end": {promTime(end)}, "step": {strconv.Itoa(int(step.Seconds()))}}).result()
			checked++
			if err != nil {
				t.Errorf("prometheus %s: %s over 30 days of history: %v", p.v.name, q.key, err)
				continue
			}
			// Days (ending at end) with at least one point.
			have := map[int]bool{}
			for _, raw := range series {
				var m struct {
					Values [][2]any `json:"values"`
				}
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatal(err)
				}
				for _, pt := range m.Values {
					at := time.UnixMilli(int64(math.Round(pt[0].(float64) * 1000)))
					have[int(end.Sub(at)/day)] = true
				}
			}
			var empty []int
			for i := range int(span / day) {
				if !have[i] {
					empty = append(empty, i)
				}
			}
			switch {
			case len(empty) == 0:
			case strings.Contains(q.key, "idle"):
				t.Logf("%s: no data on %d of 30 days: no simulated host was idle that long then", q.key, len(empty))
			default:
				t.Errorf("prometheus %s: %s has no data on %d of 30 days of history (days before the end: %v): %s",
					p.v.name, q.key, len(empty), empty, expr)
			}
		}
	}
	if checked < 40 {
		t.Errorf("only %d dashboard queries checked", checked)
	}
	t.Logf("prometheus %s: %d dashboard queries return data on every day of 30 days of imported history", p.v.name, checked)
}

// TestHistoryFlags: `history --help` shows the history's own flags, not the
// server's, and each mistake on its command line is said once.
func TestHistoryFlags(t *testing.T) {
	out, err := exec.Command(exporterBinary, "history", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("history --help: %v\n%s", err, out)
	}
	for _, want := range []string{"--output=OUTPUT", "--rules=RULES", "--label=LABEL", "--config.file", "--storage.path", "--since"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("history --help lacks %s:\n%s", want, out)
		}
	}
	for _, server := range []string{"--web.listen-address", "--web.telemetry-path", "--config.check", "--web.max-requests", "--step", "--split", "--rules-range-file"} {
		if strings.Contains(string(out), server) {
			t.Errorf("history --help shows %s, not a flag of history:\n%s", server, out)
		}
	}
	dir := t.TempDir()
	for args, want := range map[string]string{
		"history --label=job=j":                                  "required flag(s) '--output' not provided",
		"history --output=" + dir + " --step=5m":                 "unknown long flag '--step'",
		"history --output=" + dir + " --rules=/no/such/file.yml": "/no/such/file.yml",
		"history --output=" + dir + " --web.listen-address=:1":   "unknown long flag '--web.listen-address'",
	} {
		out, err := exec.Command(exporterBinary, strings.Fields(args)...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err == nil || !strings.Contains(string(out), want) || len(lines) != 1 {
			t.Errorf("%s: %v, want one line saying %q:\n%s", args, err, want, out)
		}
	}
}
