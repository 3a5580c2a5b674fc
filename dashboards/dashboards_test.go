// Package dashboards holds the Grafana dashboards of umeeting_exporter as
// plain JSON (importable into Grafana 10, 11 and 12, and provisioned by
// deploy/). This test checks their structure; e2e/prometheus_test.go runs
// every query against a real Prometheus scraping the real exporter.
package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// knownMetrics are the metric names of the exporter's contract
// (notes/metrics.md), histogram series included; the e2e test checks the
// dashboards against the live /metrics of the real binary as well.
var knownMetrics = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range []string{
		"umeeting_meetings_total", "umeeting_meeting_seconds_total", "umeeting_participants_total",
		"umeeting_participant_seconds_total", "umeeting_meetings_by_feature_total",
		"umeeting_host_last_meeting_timestamp_seconds", "umeeting_host_info", "umeeting_active_hosts",
		"umeeting_meetings_user_type_folded_total",
		"umeeting_concurrent_meetings_peak", "umeeting_concurrent_participants_peak",
		"umeeting_concurrent_meetings_limit",
		"umeeting_up", "umeeting_last_successful_poll_timestamp_seconds", "umeeting_poll_duration_seconds",
		"umeeting_poll_interval_seconds", "umeeting_polls_total", "umeeting_api_requests_total",
		"umeeting_api_request_budget_remaining", "umeeting_records_invalid_total", "umeeting_remembered_meetings",
		"umeeting_state_save_failures_total", "umeeting_state_last_save_timestamp_seconds",
		"umeeting_config_last_reload_successful", "umeeting_config_last_reload_success_timestamp_seconds",
		"umeeting_exporter_build_info",
		// The directory join (#11).
		"umeeting_department_meetings_total", "umeeting_department_meeting_seconds_total",
		"umeeting_department_participant_seconds_total", "umeeting_department_meetings_by_feature_total",
		"umeeting_department_usage_cost_total", "umeeting_cost_center_usage_cost_total",
		"umeeting_directory_up", "umeeting_directory_licences", "umeeting_directory_idle_licences",
		"umeeting_directory_idle_licence_last_meeting_timestamp_seconds", "umeeting_directory_licence_mismatches",
		"umeeting_chargeback_licence_monthly_cost",
		"process_resident_memory_bytes", "process_cpu_seconds_total",
	} {
		m[n] = true
	}
	for _, h := range []string{"umeeting_meeting_duration_seconds", "umeeting_meeting_participants"} {
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			m[h+s] = true
		}
	}
	return m
}()

// counterSeries must only be read through increase/rate/changes (or counted
// as series), so that restarts and counter resets do the right thing.
var counterSeries = regexp.MustCompile(`^umeeting_\w+(_total|_bucket|_sum|_count)$`)

// grafanaUnits are the Grafana unit ids the dashboards may use; a typo in a
// unit silently shows raw numbers, so the list is closed. Per-second units
// (reqps, ops, cps) are not in it: at 5-minute polling they read "3.33
// mreq/s"; rates are shown per hour (perHourUnit).
var grafanaUnits = map[string]bool{
	"short": true, "none": true, "s": true, "h": true, "percentunit": true,
	"bytes": true, "dateTimeFromNow": true, "dateTimeAsIso": true,
}

// perHourUnit matches Grafana's custom units for a rate per hour or per day
// ("suffix:requests/h", shown as "12 requests/h").
var perHourUnit = regexp.MustCompile(`^suffix:[a-z-]+/[hd]$`)

func knownUnit(u string) bool { return grafanaUnits[u] || perHourUnit.MatchString(u) }

var panelTypes = map[string]bool{"row": true, "stat": true, "timeseries": true, "table": true, "bargauge": true}

// wantDashboards are the files and their stable uids (links and deploy rely on them).
var wantDashboards = map[string]string{
	"umeeting-usage.json":           "umeeting-usage",
	"umeeting-hosts.json":           "umeeting-hosts",
	"umeeting-departments.json":     "umeeting-departments",
	"umeeting-exporter-health.json": "umeeting-exporter-health",
}

// builtinVars are Grafana's own variables that a query may use.
var builtinVars = map[string]bool{
	"__rate_interval": true, "__range": true, "__range_s": true, "__range_ms": true,
	"__interval": true, "__interval_ms": true,
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct{ H, W, X, Y int }

type override struct {
	Matcher struct {
		ID      string `json:"id"`
		Options string `json:"options"`
	} `json:"matcher"`
	Properties []struct {
		ID    string          `json:"id"`
		Value json.RawMessage `json:"value"`
	} `json:"properties"`
}

type target struct {
	Datasource   *datasource `json:"datasource"`
	Expr         string      `json:"expr"`
	RefID        string      `json:"refId"`
	LegendFormat string      `json:"legendFormat"`
	Instant      bool        `json:"instant"`
	Range        bool        `json:"range"`
	Format       string      `json:"format"`
}

type panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Datasource  *datasource `json:"datasource"`
	GridPos     *gridPos    `json:"gridPos"`
	Interval    string      `json:"interval"`
	FieldConfig struct {
		Defaults struct {
			Unit   string `json:"unit"`
			Custom struct {
				SpanNulls any `json:"spanNulls"`
			} `json:"custom"`
		} `json:"defaults"`
		Overrides []override `json:"overrides"`
	} `json:"fieldConfig"`
	Options struct {
		GraphMode string `json:"graphMode"` // stat: "area" draws a sparkline
	} `json:"options"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // of a collapsed row
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *datasource     `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

type dashboardFile struct {
	UID           string          `json:"uid"`
	Title         string          `json:"title"`
	Description   string          `json:"description"`
	ID            any             `json:"id"`
	Inputs        json.RawMessage `json:"__inputs"`
	Requires      json.RawMessage `json:"__requires"`
	SchemaVersion int             `json:"schemaVersion"`
	Tags          []string        `json:"tags"`
	Refresh       string          `json:"refresh"`
	Time          struct{ From, To string }
	Links         []struct {
		Type        string   `json:"type"`
		Tags        []string `json:"tags"`
		IncludeVars bool     `json:"includeVars"`
		KeepTime    bool     `json:"keepTime"`
	} `json:"links"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

// loaded is one dashboard file, parsed twice: typed and generic.
type loaded struct {
	file string
	d    dashboardFile
	raw  any
}

func loadDashboards(t *testing.T) []loaded {
	t.Helper()
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var out []loaded
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		l := loaded{file: f}
		if err := json.Unmarshal(b, &l.d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := json.Unmarshal(b, &l.raw); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got = append(got, f)
		out = append(out, l)
	}
	want := make([]string, 0, len(wantDashboards))
	for f := range wantDashboards {
		want = append(want, f)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("dashboard files = %v, want %v", got, want)
	}
	return out
}

// allPanels flattens rows, collapsed or not.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// recordedNames reads the recording rules of ../alerts.
func recordedNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, r := range loadRules(t) {
		if r.Record != "" {
			names[r.Record] = true
		}
	}
	return names
}

func TestDashboardMetadata(t *testing.T) {
	uids := map[string]string{}
	for _, l := range loadDashboards(t) {
		d := l.d
		t.Run(l.file, func(t *testing.T) {
			if want := wantDashboards[l.file]; d.UID != want {
				t.Errorf("uid = %q, want %q", d.UID, want)
			}
			if prev, dup := uids[d.UID]; dup {
				t.Errorf("uid %q also used by %s", d.UID, prev)
			}
			uids[d.UID] = l.file
			if d.Title == "" || d.Description == "" {
				t.Error("title and description must be set")
			}
			if d.ID != nil {
				t.Errorf("id = %v, want null (Grafana assigns it)", d.ID)
			}
			if d.Inputs != nil || d.Requires != nil {
				t.Error("__inputs/__requires present: provisioning would not resolve ${DS_...} inputs")
			}
			if d.SchemaVersion != 39 {
				t.Errorf("schemaVersion = %d, want 39 (Grafana 10-12)", d.SchemaVersion)
			}
			if !slices.Contains(d.Tags, "umeeting") {
				t.Errorf("tags = %v, want umeeting (dashboard links rely on it)", d.Tags)
			}
			if d.Time.From == "" || d.Time.To != "now" || d.Refresh == "" {
				t.Errorf("time %+v refresh %q: want a default range ending now and a refresh", d.Time, d.Refresh)
			}
			linked := false
			for _, k := range d.Links {
				if k.Type == "dashboards" && slices.Contains(k.Tags, "umeeting") && k.IncludeVars && k.KeepTime {
					linked = true
				}
			}
			if !linked {
				t.Error("no dashboard link by tag umeeting that keeps time and variables")
			}
		})
	}
}

func TestDashboardVariables(t *testing.T) {
	for _, l := range loadDashboards(t) {
		t.Run(l.file, func(t *testing.T) {
			vars := map[string]variable{}
			for _, v := range l.d.Templating.List {
				if _, dup := vars[v.Name]; dup {
					t.Errorf("variable %q defined twice", v.Name)
				}
				vars[v.Name] = v
			}
			ds, ok := vars["datasource"]
			if !ok || ds.Type != "datasource" || string(ds.Query) != `"prometheus"` {
				t.Errorf("want a datasource variable of type prometheus, got %+v", ds)
			}
			want := []string{"account", "user_type"}
			switch l.d.UID {
			case "umeeting-hosts":
				want = append(want, "host")
			case "umeeting-departments": // directory series carry no user_type
				want = []string{"account", "department"}
			}
			for _, name := range want {
				v, ok := vars[name]
				if !ok {
					t.Errorf("variable %q missing", name)
					continue
				}
				if v.Type != "query" || !v.Multi || !v.IncludeAll || v.AllValue != ".*" {
					t.Errorf("variable %q: type %q multi %v includeAll %v allValue %q; want a multi-select query with All = .*",
						name, v.Type, v.Multi, v.IncludeAll, v.AllValue)
				}
				if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
					t.Errorf("variable %q: datasource %+v, want uid ${datasource}", name, v.Datasource)
				}
				var q string
				if err := json.Unmarshal(v.Query, &q); err != nil || !strings.HasPrefix(q, "label_values(") {
					t.Errorf("variable %q: query %s, want a label_values() string", name, v.Query)
				}
				checkExpr(t, "variable "+name, q, vars, nil)
			}
		})
	}
}

func TestDashboardPanels(t *testing.T) {
	recorded := recordedNames(t)
	for _, l := range loadDashboards(t) {
		t.Run(l.file, func(t *testing.T) {
			vars := map[string]variable{}
			for _, v := range l.d.Templating.List {
				vars[v.Name] = v
			}
			ids := map[int]string{}
			var boxes []gridPos
			for _, p := range allPanels(l.d.Panels) {
				name := fmt.Sprintf("panel %d %q", p.ID, p.Title)
				if p.ID <= 0 {
					t.Errorf("%s: id must be positive", name)
				}
				if prev, dup := ids[p.ID]; dup {
					t.Errorf("%s: id also used by %q", name, prev)
				}
				ids[p.ID] = p.Title
				if !panelTypes[p.Type] {
					t.Errorf("%s: unexpected panel type %q", name, p.Type)
				}
				if p.Title == "" || p.GridPos == nil {
					t.Errorf("%s: title and gridPos required", name)
					continue
				}
				g := *p.GridPos
				if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
					t.Errorf("%s: gridPos %+v outside the 24-column grid", name, g)
				}
				for _, o := range boxes {
					if g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H {
						t.Errorf("%s: gridPos %+v overlaps %+v", name, g, o)
					}
				}
				boxes = append(boxes, g)
				if p.Type == "row" {
					continue
				}
				if p.Description == "" {
					t.Errorf("%s: no description", name)
				}
				if !isVarDatasource(p.Datasource) {
					t.Errorf("%s: datasource %+v, want the ${datasource} variable", name, p.Datasource)
				}
				if !knownUnit(p.FieldConfig.Defaults.Unit) {
					t.Errorf("%s: unit %q missing or not a known Grafana unit", name, p.FieldConfig.Defaults.Unit)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: no query", name)
				}
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					if refs[tg.RefID] || tg.RefID == "" {
						t.Errorf("%s: refId %q empty or repeated", name, tg.RefID)
					}
					refs[tg.RefID] = true
					if !isVarDatasource(tg.Datasource) {
						t.Errorf("%s %s: datasource %+v, want the ${datasource} variable", name, tg.RefID, tg.Datasource)
					}
					if tg.Instant == tg.Range {
						t.Errorf("%s %s: exactly one of instant and range must be set", name, tg.RefID)
					}
					checkExpr(t, name+" "+tg.RefID, tg.Expr, vars, recorded)
				}
				for _, o := range p.FieldConfig.Overrides {
					if ref, ok := strings.CutPrefix(o.Matcher.Options, "Value #"); ok && !refs[ref] {
						t.Errorf("%s: override for %q but no query %s", name, o.Matcher.Options, ref)
					}
					for _, prop := range o.Properties {
						var unit string
						if prop.ID == "unit" && (json.Unmarshal(prop.Value, &unit) != nil || !knownUnit(unit)) {
							t.Errorf("%s: override unit %s not a known Grafana unit", name, prop.Value)
						}
					}
				}
			}
		})
	}
}

// TestNoHardCodedDatasource walks every object of the JSON: a datasource
// reference other than the variable would break import into another Grafana.
func TestNoHardCodedDatasource(t *testing.T) {
	for _, l := range loadDashboards(t) {
		walk(l.raw, func(key string, v any) {
			if key != "datasource" {
				return
			}
			m, ok := v.(map[string]any)
			if !ok {
				t.Errorf("%s: datasource %v is not an object {type, uid}", l.file, v)
				return
			}
			if m["type"] == "grafana" && m["uid"] == "-- Grafana --" {
				return // the built-in annotations query
			}
			if m["type"] != "prometheus" || m["uid"] != "${datasource}" {
				t.Errorf("%s: datasource %v, want {prometheus ${datasource}}", l.file, m)
			}
		})
	}
}

// TestPanelLinks checks that data links into other dashboards name a
// dashboard uid that exists.
func TestPanelLinks(t *testing.T) {
	uids := map[string]bool{}
	for _, uid := range wantDashboards {
		uids[uid] = true
	}
	linkRE := regexp.MustCompile(`^/d/([\w-]+)`)
	n := 0
	for _, l := range loadDashboards(t) {
		walk(l.raw, func(key string, v any) {
			s, ok := v.(string)
			if key != "url" || !ok || s == "" {
				return
			}
			n++
			m := linkRE.FindStringSubmatch(s)
			if m == nil || !uids[m[1]] {
				t.Errorf("%s: link %q does not point at one of the dashboards %v", l.file, s, wantDashboards)
			}
		})
	}
	if n == 0 {
		t.Error("no data links between the dashboards")
	}
}

func walk(v any, fn func(key string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			fn(k, c)
			walk(c, fn)
		}
	case []any:
		for _, c := range x {
			walk(c, fn)
		}
	}
}

func isVarDatasource(d *datasource) bool {
	return d != nil && d.Type == "prometheus" && d.UID == "${datasource}"
}

var (
	varRef       = regexp.MustCompile(`\$\{?(\w+)`)
	varMatcher   = regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"\$\{?(\w+)`)
	rangeSel     = regexp.MustCompile(`\[([^\]]*)\]`)
	metricName   = regexp.MustCompile(`\b(?:umeeting[_:]|process_|go_)[A-Za-z0-9_:]*`)
	countByOpen  = regexp.MustCompile(`count by \([^)]*\) \($`)
	rateFuncOpen = regexp.MustCompile(`(increase|rate|changes)\($`)
)

// checkExpr reports the problems exprProblems finds in one query.
func checkExpr(t *testing.T, where, expr string, vars map[string]variable, recorded map[string]bool) {
	t.Helper()
	for _, p := range exprProblems(expr, vars, recorded) {
		t.Errorf("%s: %s", where, p)
	}
}

// exprProblems checks one PromQL query of a dashboard: the variables it uses
// exist and are matched with =~, ranges come from Grafana ($__range,
// $__rate_interval, $__interval), counters go through increase/rate, and
// every metric name is the exporter's or a recording rule's. recorded nil
// skips the checks that need the rules (variable queries).
func exprProblems(expr string, vars map[string]variable, recorded map[string]bool) []string {
	var out []string
	if strings.TrimSpace(expr) == "" {
		return []string{"empty expr"}
	}
	for _, m := range varRef.FindAllStringSubmatch(expr, -1) {
		if _, ok := vars[m[1]]; !ok && !builtinVars[m[1]] {
			out = append(out, fmt.Sprintf("uses undefined variable $%s", m[1]))
		}
	}
	for _, m := range varMatcher.FindAllStringSubmatch(expr, -1) {
		if v := vars[m[3]]; v.Multi && m[2] != "=~" {
			out = append(out, fmt.Sprintf("multi-value variable $%s matched with %s, want =~", m[3], m[2]))
		}
		if m[1] != m[3] {
			out = append(out, fmt.Sprintf("label %s matched against $%s", m[1], m[3]))
		}
	}
	for _, m := range rangeSel.FindAllStringSubmatch(expr, -1) {
		if !builtinVars[strings.TrimPrefix(m[1], "$")] {
			out = append(out, fmt.Sprintf("fixed range [%s]; use $__range, $__rate_interval or $__interval", m[1]))
		}
	}
	for _, loc := range metricName.FindAllStringIndex(expr, -1) {
		name := expr[loc[0]:loc[1]]
		switch {
		case strings.Contains(name, ":"):
			if recorded != nil && !recorded[name] {
				out = append(out, fmt.Sprintf("%s is not recorded by alerts/*.rules.yml", name))
			}
		case !knownMetrics[name]:
			out = append(out, fmt.Sprintf("%s is not a metric of the exporter", name))
		case counterSeries.MatchString(name) && recorded != nil:
			before := expr[:loc[0]]
			if !rateFuncOpen.MatchString(before) && !countByOpen.MatchString(before) {
				out = append(out, fmt.Sprintf("counter %s read without increase()/rate()", name))
			}
		}
	}
	return out
}

// TestCheckExprRejects makes sure the expression checks catch what they are for.
func TestCheckExprRejects(t *testing.T) {
	vars := map[string]variable{"account": {Name: "account", Multi: true}}
	recorded := map[string]bool{"umeeting:meetings:increase1h": true}
	good := `sum(increase(umeeting_meetings_total{account=~"$account"}[$__range])) + sum(umeeting:meetings:increase1h{account=~"$account"})`
	if p := exprProblems(good, vars, recorded); len(p) != 0 {
		t.Errorf("good query rejected: %v", p)
	}
	for _, expr := range []string{
		`sum(increase(umeeting_meetings_total{account="$account"}[$__range]))`, // = on a multi-value variable
		`sum(increase(umeeting_meetings_total{account=~"$account"}[5m]))`,      // fixed window
		`sum(umeeting_meetings_total{account=~"$account"})`,                    // raw counter
		`sum(umeeting_meetings{account=~"$account"})`,                          // not a metric
		`sum(umeeting:meetings:increase5m{account=~"$account"})`,               // not recorded
		`sum(umeeting_up{account=~"$nosuch"})`,                                 // undefined variable
		`sum(umeeting_up{acount=~"$account"})`,                                 // label typo
	} {
		if len(exprProblems(expr, vars, recorded)) == 0 {
			t.Errorf("exprProblems accepted %s", expr)
		}
	}
}
