package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/mixin"
	"github.com/umeeting/umeeting_exporter/internal/testproc"
)

// This file proves the monitoring mixin (dashboards/*.json and
// alerts/*.rules.yml) against a real Prometheus scraping the real exporter
// in --demo mode, on every release of prometheusReleases (Debian's 2.42 and
// the pinned 3.x):
//   - every query of every dashboard panel, with Grafana's variables
//     substituted as Grafana does, evaluates without error and returns data
//     (unless allow-listed in mayBeEmpty, with the reason);
//   - every metric name the mixin uses exists in the exporter's output;
//   - every recording and alerting rule is healthy;
//   - UMeetingPollsFailing fires when the simulator is made to fail.
//
// The rules are loaded with every `for:` cut to 0s, so that the fault alert
// reaches "firing" within one poll instead of 15 minutes; the `for:`
// durations themselves are covered by alerts/umeeting.rules_test.yml
// (promtool test rules).

// Grafana's view of the test Prometheus: the datasource's default scrape
// interval (15s), the interval Grafana picks for a panel when the panel
// sets none, and the dashboard time range the test pretends is selected.
const (
	grafanaScrapeInterval = 15 * time.Second
	grafanaInterval       = 15 * time.Second
	grafanaRange          = 5 * time.Minute
)

// mayBeEmpty lists the panel queries that may legitimately return no data
// in demo mode, keyed "dashboard uid / panel title / refId".
var mayBeEmpty = map[string]string{
	// None: the demo sets concurrent_meetings_limit and backfills 60 days,
	// so even the licence and idle-host panels have data.
}

// mayBeMissing lists metric names the mixin uses that the demo may not
// export, with the reason.
var mayBeMissing = map[string]string{}

// hasIdleHost says whether some host's latest meeting ended longer than
// idle ago: the backfill of older history is done.
func hasIdleHost(exposition string, idle time.Duration) bool {
	limit := float64(time.Now().Add(-idle).Unix())
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, "umeeting_host_last_meeting_timestamp_seconds{") {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil && v < limit {
			return true
		}
	}
	return false
}

func TestMixinAgainstPrometheus(t *testing.T) {
	releases := prometheusReleases(t)
	simAddr := freeAddr(t)
	e := startExporter(t, "--demo", "--demo.simulator-address="+simAddr, "--storage.path="+t.TempDir())
	waitFor(t, 60*time.Second, "the first successful demo poll and the backfill", func() bool {
		m := e.Metrics()
		up, _ := sumMetric(m, "umeeting_up", `account="demo"`)
		_, meetings := sumMetric(m, "umeeting_meetings_total", `account="demo"`)
		return up == 1 && meetings && hasIdleHost(m, 30*24*time.Hour)
	})
	exposition := e.Metrics()

	ruleFiles := mixinRuleFiles(t)
	dashboards := loadMixinDashboards(t)

	t.Run("metric names exist", func(t *testing.T) {
		checkMixinMetricNames(t, exposition, dashboards, ruleFiles)
	})

	// One Prometheus per release, all scraping the same exporter.
	servers := make([]*promServer, len(releases))
	for i, rel := range releases {
		servers[i] = startPrometheus(t, rel, promConfig{targets: []string{e.Addr}, ruleFiles: ruleFiles})
	}
	for _, p := range servers {
		t.Run(p.release.Name, func(t *testing.T) { checkMixin(t, p, dashboards, ruleFiles) })
	}

	t.Run("alert fires on failing polls", func(t *testing.T) {
		for _, p := range servers {
			if st := p.alertState(t, "UMeetingPollsFailing", "demo"); st != "" {
				t.Fatalf("Prometheus %s: UMeetingPollsFailing is %s before any fault", p.release.Name, st)
			}
		}
		resp, err := http.Post("http://"+simAddr+"/-/fault?kind=http_500&count=0", "", nil)
		if err != nil {
			t.Fatalf("injecting the fault: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("injecting the fault: HTTP %d", resp.StatusCode)
		}
		for _, p := range servers {
			waitFor(t, 60*time.Second, "UMeetingPollsFailing firing for account demo on Prometheus "+p.release.Name, func() bool {
				return p.alertState(t, "UMeetingPollsFailing", "demo") == "firing"
			})
		}
	})
}

// checkMixin runs the rules and every dashboard query on one Prometheus
// that scrapes the demo exporter.
func checkMixin(t *testing.T, p *promServer, dashboards []dashboardFile, ruleFiles []string) {
	waitFor(t, 30*time.Second, "5 scrapes of the exporter with umeeting_up 1", func() bool {
		return p.value(`count_over_time(umeeting_up{job="umeeting",account="demo"}[1m]) >= 5 and on () up{job="umeeting"} == 1`) != ""
	})

	// Every rule evaluated at least once, and none in error.
	var rules []promRule
	waitFor(t, 20*time.Second, "every rule evaluated", func() bool {
		rules = p.rules(t)
		for _, r := range rules {
			if r.Health != "ok" {
				return false
			}
		}
		return len(rules) > 0
	})
	if want := len(ruleExprs(t, ruleFiles)); len(rules) != want {
		t.Errorf("Prometheus loaded %d rules, the rule files have %d", len(rules), want)
	}

	t.Run("dashboard queries", func(t *testing.T) {
		all := map[string][]string{"account": {"All"}, "user_type": {"All"}, "host": {"All"}}
		for _, d := range dashboards {
			for _, q := range d.queries() {
				p.checkQuery(t, d, q, all, true)
			}
		}
	})

	t.Run("dashboard queries with chosen values", func(t *testing.T) {
		// As when a user picks values: one account, several user types
		// and hosts of those types, regex-escaped and joined the way
		// Grafana does. A mis-escaped value would match nothing, so data
		// is required here too.
		// One active host and one idle for 30+ days, so that the usage
		// panels and the idle-licence table both have rows.
		types := firstValues(p.labelValues(t, "user_type", `umeeting_meetings_total{account="demo"}`), 2)
		hostsOfTypes := fmt.Sprintf(`umeeting_host_info{account="demo",user_type=~"%s"}`, strings.Join(types, "|"))
		idle := p.hostsOf(t, fmt.Sprintf(`umeeting_host_last_meeting_timestamp_seconds{account="demo",user_type=~"%s"} < time() - 30 * 86400`, strings.Join(types, "|")))
		if len(idle) == 0 {
			t.Fatalf("no host of types %v idle for 30 days in the demo", types)
		}
		chosen := map[string][]string{
			"account":   {"demo"},
			"user_type": types,
			"host":      append(firstValues(pickHosts(p.labelValues(t, "host", hostsOfTypes)), 1), idle[0]),
			// The demo directory has a department with regex metacharacters.
			"department": {"R&D (Beijing)", "Sales"},
		}
		t.Logf("chosen values: %q", chosen)
		for _, d := range dashboards {
			for _, q := range d.queries() {
				p.checkQuery(t, d, q, chosen, true)
			}
		}
	})

	t.Run("le spelling", func(t *testing.T) {
		// The distribution panels' bucket names match le="60" and "60.0"
		// (dashboards/units_test.go): Prometheus 3 normalises classic-
		// histogram le values to floats, and 2.x stores what the exporter
		// writes, "60.0" in OpenMetrics (which it prefers) and "60" in text.
		les := p.labelValues(t, "le", `umeeting_meeting_duration_seconds_bucket{account="demo"}`)
		switch {
		case slices.Contains(les, "60.0"), slices.Contains(les, "60"):
			t.Logf("Prometheus %s stores le values %q", p.release.Name, les)
		default:
			t.Errorf("Prometheus %s stores le values %q, neither 60 nor 60.0", p.release.Name, les)
		}
	})

	t.Run("regex escaping of variable values", func(t *testing.T) {
		// The demo's names hold no regex metacharacters: prove the escaping
		// on one that has them all, through Prometheus's own regex matching.
		const nasty = `Room (3F) [A].b+c?*^$|{x}'`
		expr := fmt.Sprintf(`label_replace(label_replace(vector(1), "host", %q, "", ""), "matched", "yes", "host", "%s")`,
			nasty, grafanaRegexEscape(nasty))
		if got := p.labelOf(t, expr, "matched"); got != "yes" {
			t.Errorf("%s: escaped value does not match itself (matched=%q)", expr, got)
		}
	})
}

// mixinRuleFiles lists the shipped rule files.
func mixinRuleFiles(t *testing.T) []string {
	t.Helper()
	files, err := mixin.RuleFiles(filepath.Join("..", "alerts"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// ---------------------------------------------------------------- dashboards

type dashTarget struct {
	Expr    string `json:"expr"`
	Legend  string `json:"legendFormat"`
	RefID   string `json:"refId"`
	Instant bool   `json:"instant"`
	Range   bool   `json:"range"`
}

type dashPanel struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Interval string       `json:"interval"`
	Targets  []dashTarget `json:"targets"`
	Panels   []dashPanel  `json:"panels"`
}

type dashVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
	Current    struct {
		Value json.RawMessage `json:"value"`
	} `json:"current"`
}

type dashboardFile struct {
	UID        string      `json:"uid"`
	Panels     []dashPanel `json:"panels"`
	Templating struct {
		List []dashVariable `json:"list"`
	} `json:"templating"`
}

// panelQuery is one query of a dashboard as Grafana would send it.
type panelQuery struct {
	key      string // uid/title/refId
	expr     string
	legend   string        // legendFormat: the labels named in it must be on every series
	rng      bool          // also sent as a range query
	interval time.Duration // the panel's $__interval
	span     time.Duration // the dashboard's time range; grafanaRange when 0
}

func loadMixinDashboards(t *testing.T) []dashboardFile {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in ../dashboards: %v", err)
	}
	var out []dashboardFile
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboardFile
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, d)
	}
	return out
}

func (d dashboardFile) queries() []panelQuery {
	var out []panelQuery
	var visit func(ps []dashPanel)
	visit = func(ps []dashPanel) {
		for _, p := range ps {
			visit(p.Panels)
			interval := grafanaInterval
			if p.Interval != "" {
				if floor, err := time.ParseDuration(p.Interval); err == nil && floor > interval {
					interval = floor
				}
			}
			for _, tg := range p.Targets {
				out = append(out, panelQuery{key: d.UID + "/" + p.Title + "/" + tg.RefID, expr: tg.Expr, legend: tg.Legend, rng: tg.Range, interval: interval})
			}
		}
	}
	visit(d.Panels)
	for _, v := range d.Templating.List {
		var q string
		if v.Type == "query" && json.Unmarshal(v.Query, &q) == nil {
			out = append(out, panelQuery{key: d.UID + "/variable " + v.Name, expr: labelValuesSelector(q), interval: grafanaInterval})
		}
	}
	return out
}

// labelValuesSelector turns Grafana's label_values(selector, label) into
// the selector, which Prometheus can evaluate.
func labelValuesSelector(q string) string {
	q = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(q), "label_values("), ")")
	if i := strings.LastIndexByte(q, ','); i >= 0 {
		q = q[:i]
	}
	return q
}

var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// interpolate substitutes the variables of expr as Grafana's Prometheus
// datasource does: built-in interval and range variables; for multi-value
// variables "All" becomes the allValue, one value is regex-escaped, several
// become (a|b); single-value variables take their current value.
func (d dashboardFile) interpolate(expr string, q panelQuery, chosen map[string][]string) (string, error) {
	rateInterval := max(q.interval+grafanaScrapeInterval, 4*grafanaScrapeInterval)
	span := grafanaRange
	if q.span > 0 {
		span = q.span
	}
	builtin := map[string]string{
		"__interval":      promDuration(q.interval),
		"__interval_ms":   strconv.FormatInt(q.interval.Milliseconds(), 10),
		"__rate_interval": promDuration(rateInterval),
		"__range":         promDuration(span),
		"__range_s":       strconv.FormatInt(int64(span.Seconds()), 10),
		"__range_ms":      strconv.FormatInt(span.Milliseconds(), 10),
	}
	vars := map[string]dashVariable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	var bad []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if s, ok := builtin[name]; ok {
			return s
		}
		v, ok := vars[name]
		if !ok {
			bad = append(bad, name)
			return m
		}
		if !v.Multi && !v.IncludeAll {
			var cur string
			if json.Unmarshal(v.Current.Value, &cur) != nil {
				bad = append(bad, name+" (no current value)")
			}
			return cur
		}
		values := chosen[name]
		if len(values) == 0 || slices.Equal(values, []string{"All"}) {
			return v.AllValue
		}
		esc := make([]string, len(values))
		for i, s := range values {
			esc[i] = grafanaRegexEscape(s)
		}
		if len(esc) == 1 {
			return esc[0]
		}
		return "(" + strings.Join(esc, "|") + ")"
	})
	if len(bad) > 0 {
		return "", fmt.Errorf("unknown variables %v", bad)
	}
	return out, nil
}

// grafanaRegexEscape is Grafana's prometheusSpecialRegexEscape: the value
// goes into a double-quoted PromQL string holding a regular expression.
func grafanaRegexEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\\\`)
		case strings.ContainsRune(`$^*{}[]'+?.()|`, r):
			b.WriteString(`\\`)
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// promDuration renders d the way Grafana does: whole seconds.
func promDuration(d time.Duration) string {
	return strconv.FormatInt(int64(d.Seconds()), 10) + "s"
}

// ---------------------------------------------------------------- metric names

// mixinMetric matches the exporter's metric names in PromQL (recording
// rule names contain ':' and Prometheus's own series, like up, are left out).
var mixinMetric = regexp.MustCompile(`\b(?:umeeting_|process_|go_)[A-Za-z0-9_]*`)

// checkMixinMetricNames checks every metric name of the dashboards and rules
// against the families of the live exposition.
func checkMixinMetricNames(t *testing.T, exposition string, dashboards []dashboardFile, ruleFiles []string) {
	families := map[string]string{}
	for _, line := range strings.Split(exposition, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			families[f[2]] = f[3]
		}
	}
	exists := func(name string) bool {
		if _, ok := families[name]; ok {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && families[base] == "histogram" {
				return true
			}
		}
		return false
	}
	var texts []string
	for _, d := range dashboards {
		for _, q := range d.queries() {
			texts = append(texts, q.expr)
		}
	}
	texts = append(texts, ruleExprs(t, ruleFiles)...)
	seen := map[string]bool{}
	for _, text := range texts {
		for _, name := range mixinMetric.FindAllString(text, -1) {
			if seen[name] {
				continue
			}
			seen[name] = true
			if exists(name) {
				continue
			}
			if why, ok := mayBeMissing[name]; ok {
				t.Logf("%s not exported by the demo (%s)", name, why)
				continue
			}
			t.Errorf("%s is used by the mixin but not exported by umeeting_exporter", name)
		}
	}
	if len(seen) < 10 {
		t.Errorf("found only %d metric names in the mixin: %v", len(seen), seen)
	}
}

// ---------------------------------------------------------------- Prometheus

// prometheusReleases returns the Prometheus releases every Prometheus-backed
// test runs on (Debian's 2.42 and the pinned 3.x that scripts/test-deps.sh
// builds); a missing one fails the test. Run a check on each:
//
//	for _, rel := range prometheusReleases(t) {
//		p := startPrometheus(t, rel, promConfig{targets: ..., ruleFiles: ...})
//		...
//	}
func prometheusReleases(t *testing.T) []mixin.PrometheusRelease {
	t.Helper()
	releases, err := mixin.PrometheusReleases()
	if err != nil {
		t.Fatal(err)
	}
	return releases
}

// promConfig is what a test Prometheus scrapes and loads.
type promConfig struct {
	targets   []string // host:port of exporters, scraped every second as job "umeeting"
	ruleFiles []string // rule files, loaded with every `for:` cut to 0s; evaluated every second
	flags     []string // more command-line flags, e.g. --enable-feature=...
}

type promServer struct {
	release mixin.PrometheusRelease
	addr    string // host:port of its web server
}

// startPrometheus runs a Prometheus of the given release with cfg, and
// waits until it is ready. It is stopped when the test ends.
func startPrometheus(t *testing.T, rel mixin.PrometheusRelease, cfg promConfig) *promServer {
	t.Helper()
	dir := t.TempDir()
	forLine := regexp.MustCompile(`(?m)^(\s+for:\s*)\S+\s*$`)
	for _, f := range cfg.ruleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b = forLine.ReplaceAll(b, []byte("${1}0s"))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	targets, _ := json.Marshal(cfg.targets)
	text := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: umeeting
    static_configs:
      - targets: %s
`, filepath.Join(dir, "*.rules.yml"), targets)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &promServer{release: rel, addr: freeAddr(t)}
	logs := &syncBuffer{}
	args := append([]string{"--config.file=" + cfgFile, "--storage.tsdb.path=" + t.TempDir(),
		"--web.listen-address=" + p.addr, "--log.level=warn"}, cfg.flags...)
	cmd := exec.Command(rel.Prometheus, args...)
	done := testproc.Start(t, cmd, logs)
	testproc.StopAtEnd(t, "prometheus "+rel.Name, logs, func() {
		cmd.Process.Kill()
		<-done
	})
	waitFor(t, 30*time.Second, "prometheus "+rel.Name+" ready", func() bool {
		select {
		case <-done:
			t.Fatalf("prometheus %s exited: %v\n%s", rel.Name, cmd.ProcessState, logs.String())
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

type promAPIResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// get calls the HTTP API; a transport or JSON error is returned as an
// error response so that callers report it with the query.
func (p *promServer) get(path string, params url.Values) promAPIResponse {
	client := http.Client{Timeout: 20 * time.Second}
	resp, err := client.Get("http://" + p.addr + path + "?" + params.Encode())
	if err != nil {
		return promAPIResponse{Status: "error", Error: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r promAPIResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return promAPIResponse{Status: "error", Error: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, body)}
	}
	return r
}

// result returns the series of a query answer (vector or matrix).
func (r promAPIResponse) result() ([]json.RawMessage, error) {
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	var data struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(r.Data, &data); err != nil {
		return nil, fmt.Errorf("result is not a vector or matrix: %s", r.Data)
	}
	return data.Result, nil
}

// promSample is one series of an instant query's answer.
type promSample struct {
	Metric map[string]string
	Value  float64
}

// query evaluates expr at time at (now when zero); an error fails the test.
func (p *promServer) query(t *testing.T, expr string, at time.Time) []promSample {
	t.Helper()
	params := url.Values{"query": {expr}}
	if !at.IsZero() {
		params.Set("time", promTime(at))
	}
	series, err := p.get("/api/v1/query", params).result()
	if err != nil {
		t.Fatalf("Prometheus %s: %s: %v", p.release.Name, expr, err)
	}
	out := make([]promSample, 0, len(series))
	for _, raw := range series {
		var s struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("%s: %v: %s", expr, err, raw)
		}
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			t.Fatalf("%s: value %q: %v", expr, str, err)
		}
		out = append(out, promSample{Metric: s.Metric, Value: v})
	}
	return out
}

// hostsOf returns the host labels of the series an instant query returns.
func (p *promServer) hostsOf(t *testing.T, expr string) []string {
	t.Helper()
	series, err := p.get("/api/v1/query", url.Values{"query": {expr}}).result()
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	var hosts []string
	for _, raw := range series {
		var s struct {
			Metric map[string]string `json:"metric"`
		}
		if json.Unmarshal(raw, &s) == nil && s.Metric["host"] != "" {
			hosts = append(hosts, s.Metric["host"])
		}
	}
	slices.Sort(hosts)
	return hosts
}

// value returns the first sample value of an instant query, "" if none.
func (p *promServer) value(expr string) string {
	series, err := p.get("/api/v1/query", url.Values{"query": {expr}}).result()
	if err != nil || len(series) == 0 {
		return ""
	}
	var s struct {
		Value []any `json:"value"`
	}
	if json.Unmarshal(series[0], &s) != nil || len(s.Value) != 2 {
		return ""
	}
	v, _ := s.Value[1].(string)
	return v
}

// labelOf returns a label of the first series of an instant query.
func (p *promServer) labelOf(t *testing.T, expr, label string) string {
	t.Helper()
	series, err := p.get("/api/v1/query", url.Values{"query": {expr}}).result()
	if err != nil || len(series) == 0 {
		t.Fatalf("%s: %v (%d series)", expr, err, len(series))
	}
	var s struct {
		Metric map[string]string `json:"metric"`
	}
	if err := json.Unmarshal(series[0], &s); err != nil {
		t.Fatal(err)
	}
	return s.Metric[label]
}

// checkQuery interpolates one dashboard query and sends it as Grafana
// would: instant, and as a range query for range targets. With needData,
// an empty answer is an error unless mayBeEmpty says why it is not.
func (p *promServer) checkQuery(t *testing.T, d dashboardFile, q panelQuery, chosen map[string][]string, needData bool) {
	t.Helper()
	expr, err := d.interpolate(q.expr, q, chosen)
	if err != nil {
		t.Errorf("%s: %v", q.key, err)
		return
	}
	now := time.Now()
	calls := []struct {
		path   string
		params url.Values
	}{{"/api/v1/query", url.Values{"query": {expr}, "time": {promTime(now)}}}}
	if q.rng {
		calls = append(calls, struct {
			path   string
			params url.Values
		}{"/api/v1/query_range", url.Values{"query": {expr}, "start": {promTime(now.Add(-2 * time.Minute))},
			"end": {promTime(now)}, "step": {"5"}}})
	}
	for _, c := range calls {
		series, err := p.get(c.path, c.params).result()
		switch {
		case err != nil:
			t.Errorf("%s: %s %s: %v", q.key, c.path, expr, err)
		case len(series) > 0 || !needData:
		case mayBeEmpty[q.key] != "":
			t.Logf("%s: no data, as expected: %s", q.key, mayBeEmpty[q.key])
		default:
			t.Errorf("%s: %s returned no data: %s", q.key, c.path, expr)
		}
		checkLegendLabels(t, q, series)
	}
}

var legendLabel = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

// checkLegendLabels fails when a series lacks a label its legend shows: the
// legend would be blank (e.g. a bucket name that matched neither "60" nor
// Prometheus 3's "60.0").
func checkLegendLabels(t *testing.T, q panelQuery, series []json.RawMessage) {
	t.Helper()
	for _, m := range legendLabel.FindAllStringSubmatch(q.legend, -1) {
		for _, raw := range series {
			var s struct {
				Metric map[string]string `json:"metric"`
			}
			if json.Unmarshal(raw, &s) == nil && s.Metric[m[1]] == "" {
				t.Errorf("%s: legend %q, but a series has no %s label: %v", q.key, q.legend, m[1], s.Metric)
				break
			}
		}
	}
}

func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// labelValues lists the values of a label on the series of a selector.
func (p *promServer) labelValues(t *testing.T, label, selector string) []string {
	t.Helper()
	r := p.get("/api/v1/label/"+label+"/values", url.Values{"match[]": {selector}})
	var values []string
	if r.Status != "success" || json.Unmarshal(r.Data, &values) != nil || len(values) == 0 {
		t.Fatalf("no values of %s for %s: %+v", label, selector, r)
	}
	return values
}

type promRule struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

// rules returns every loaded rule; a rule in error fails the test at once.
func (p *promServer) rules(t *testing.T) []promRule {
	t.Helper()
	r := p.get("/api/v1/rules", nil)
	var data struct {
		Groups []struct {
			Name  string     `json:"name"`
			Rules []promRule `json:"rules"`
		} `json:"groups"`
	}
	if r.Status != "success" || json.Unmarshal(r.Data, &data) != nil {
		t.Fatalf("/api/v1/rules: %+v", r)
	}
	var out []promRule
	for _, g := range data.Groups {
		for _, rule := range g.Rules {
			if rule.Health == "err" {
				t.Fatalf("rule %s of group %s is unhealthy: %s", rule.Name, g.Name, rule.LastError)
			}
			out = append(out, rule)
		}
	}
	return out
}

// alertState returns the state (pending, firing) of an alert for an
// account, "" when it is not active.
func (p *promServer) alertState(t *testing.T, name, account string) string {
	t.Helper()
	r := p.get("/api/v1/alerts", nil)
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if r.Status != "success" || json.Unmarshal(r.Data, &data) != nil {
		t.Fatalf("/api/v1/alerts: %+v", r)
	}
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == name && a.Labels["account"] == account {
			return a.State
		}
	}
	return ""
}

// ruleExprs returns the expr of every rule of the rule files.
func ruleExprs(t *testing.T, files []string) []string {
	t.Helper()
	rules, err := mixin.LoadRules(files)
	if err != nil {
		t.Fatal(err)
	}
	exprs := make([]string, len(rules))
	for i, r := range rules {
		exprs[i] = r.Expr
	}
	return exprs
}

func firstValues(s []string, n int) []string {
	return s[:min(n, len(s))]
}

// pickHosts chooses two hosts, preferring names with regex metacharacters,
// then names beyond ASCII, then names with spaces, so that Grafana's escaping of them
// is exercised.
func pickHosts(hosts []string) []string {
	meta := regexp.MustCompile(`[$^*{}\[\]'+?.()|\\]`)
	nonASCII := regexp.MustCompile(`[^\x00-\x7f]`)
	score := func(h string) int {
		switch {
		case meta.MatchString(h):
			return 0
		case nonASCII.MatchString(h):
			return 1
		case strings.Contains(h, " "):
			return 2
		}
		return 3
	}
	hosts = slices.Clone(hosts)
	slices.SortStableFunc(hosts, func(a, b string) int { return score(a) - score(b) })
	return firstValues(hosts, 2)
}
