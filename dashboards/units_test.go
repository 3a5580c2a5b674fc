package dashboards

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/umeeting/umeeting_exporter/internal/mixin"
	"github.com/umeeting/umeeting_exporter/store"
)

// unitOf returns the unit Grafana applies to the values of query refID: an
// override matching the query (by frame refId, or a table's "Value #X"
// column), else the panel's default.
func unitOf(p panel, refID string) string {
	for _, o := range p.FieldConfig.Overrides {
		if (o.Matcher.ID == "byFrameRefID" && o.Matcher.Options == refID) ||
			(o.Matcher.ID == "byName" && o.Matcher.Options == "Value #"+refID) {
			for _, prop := range o.Properties {
				var u string
				if prop.ID == "unit" && json.Unmarshal(prop.Value, &u) == nil {
					return u
				}
			}
		}
	}
	return p.FieldConfig.Defaults.Unit
}

var (
	perHourExpr = regexp.MustCompile(`\*\s*(3600|86400)\s*$`)
	inHours     = regexp.MustCompile(`/\s*3600\b`)
)

// TestDashboardUnits: hours are shown in hours, rates per hour or per day
// (never per second: at 5-minute polling that reads "3.33 mreq/s").
func TestDashboardUnits(t *testing.T) {
	for _, l := range loadDashboards(t) {
		for _, p := range allPanels(l.d.Panels) {
			for _, tg := range p.Targets {
				name := fmt.Sprintf("%s: panel %q %s", l.file, p.Title, tg.RefID)
				unit := unitOf(p, tg.RefID)
				expr := strings.TrimSpace(tg.Expr)
				if inHours.MatchString(expr) && unit != "h" {
					t.Errorf("%s: seconds divided by 3600 shown as %q, want unit h (hours)", name, unit)
				}
				if strings.Contains(expr, "rate(") && unit != "percentunit" {
					if !perHourExpr.MatchString(expr) || !perHourUnit.MatchString(unit) {
						t.Errorf("%s: a rate must be multiplied by 3600 or 86400 and shown in a per-hour or per-day unit, got unit %q for %s", name, unit, expr)
					}
				}
				if perHourUnit.MatchString(unit) && !strings.Contains(expr, "increase1h") && !perHourExpr.MatchString(expr) {
					t.Errorf("%s: unit %q but the query is not a rate per hour or day: %s", name, unit, expr)
				}
			}
		}
	}
}

// TestStatsDoNotRecomputeTotals: a stat's total for the time range is one
// instant query. As a range query, its sparkline would evaluate a trailing
// increase over the whole range at every point (a 7-day view: 100 seven-day
// increases over every host series), and show a confusing curve.
func TestStatsDoNotRecomputeTotals(t *testing.T) {
	for _, l := range loadDashboards(t) {
		for _, p := range allPanels(l.d.Panels) {
			if p.Type != "stat" {
				continue
			}
			for _, tg := range p.Targets {
				if strings.Contains(tg.Expr, "$__range") && (tg.Range || p.Options.GraphMode != "none") {
					t.Errorf("%s: stat %q %s: a total over $__range must be an instant query without sparkline (range %v, graphMode %q)",
						l.file, p.Title, tg.RefID, tg.Range, p.Options.GraphMode)
				}
			}
		}
	}
}

// relabel is one label_replace(…, dst, name, "le", regex) of a query.
type relabel struct {
	dst, name string
	re        *regexp.Regexp
}

var labelReplaceLe = regexp.MustCompile(`"(\w+)", "([^"]*)", "le", "((?:[^"\\]|\\.)*)"\)`)

func relabels(t *testing.T, expr string) []relabel {
	var out []relabel
	for _, m := range labelReplaceLe.FindAllStringSubmatch(expr, -1) {
		src, err := strconv.Unquote(`"` + m[3] + `"`)
		if err != nil {
			t.Fatalf("regex %s of %s: %v", m[3], expr, err)
		}
		out = append(out, relabel{dst: m[1], name: m[2], re: regexp.MustCompile("^(?:" + src + ")$")})
	}
	return out
}

// TestHistogramBucketNames: the distribution panels name each bucket in
// words (durations, participant ranges), not with the raw le bound
// ("28800"), and the names hold whether Prometheus writes le as "60"
// (2.x) or "60.0" (3.x, which normalises classic-histogram le values).
func TestHistogramBucketNames(t *testing.T) {
	bounds := map[string][]float64{
		"umeeting_meeting_duration_seconds_bucket": store.DurationBuckets,
		"umeeting_meeting_participants_bucket":     store.ParticipantBuckets,
	}
	found := 0
	for _, l := range loadDashboards(t) {
		for _, p := range allPanels(l.d.Panels) {
			for _, tg := range p.Targets {
				if !strings.Contains(tg.Expr, "by (le)") || strings.Contains(tg.Expr, "histogram_quantile") {
					continue
				}
				name := fmt.Sprintf("%s: panel %q %s", l.file, p.Title, tg.RefID)
				found++
				if strings.Contains(tg.LegendFormat, "{{le}}") {
					t.Errorf("%s: legend %q shows the raw le bound", name, tg.LegendFormat)
				}
				var bs []float64
				for metric, b := range bounds {
					if strings.Contains(tg.Expr, metric) {
						bs = b
					}
				}
				rs := relabels(t, tg.Expr)
				if len(rs) == 0 || bs == nil {
					t.Errorf("%s: no label_replace naming the buckets of a known histogram: %s", name, tg.Expr)
					continue
				}
				if legend := "{{" + rs[0].dst + "}}"; tg.LegendFormat != legend {
					t.Errorf("%s: legend %q, want %q", name, tg.LegendFormat, legend)
				}
				for _, b := range bs {
					v2 := strconv.FormatFloat(b, 'f', -1, 64) // "60", as Prometheus 2 stores it
					v3 := v2 + ".0"                           // "60.0", as Prometheus 3 stores it
					checkBucketNamed(t, name, rs, v2, v3)
				}
				checkBucketNamed(t, name, rs, "+Inf")
			}
		}
	}
	if found < 2 {
		t.Errorf("found %d distribution queries, want the length and size distributions", found)
	}
}

func checkBucketNamed(t *testing.T, where string, rs []relabel, les ...string) {
	t.Helper()
	var names []string
	for _, le := range les {
		var matched []string
		for _, r := range rs {
			if r.re.MatchString(le) {
				matched = append(matched, r.name)
			}
		}
		if len(matched) != 1 {
			t.Errorf("%s: le=%q is named by %d label_replace calls %q, want exactly 1", where, le, len(matched), matched)
			continue
		}
		names = append(names, matched[0])
	}
	for _, n := range names {
		if n != names[0] || strings.TrimSpace(n) == "" {
			t.Errorf("%s: le %q named %q: want one non-empty name for all spellings", where, les, names)
		}
	}
}

var topkCall = regexp.MustCompile(`topk\(\s*10\s*,`)

// TestTopHostsOverTheRange: a top-10 panel shows the same 10 hosts for the
// whole time range. topk in a range query picks 10 per time bucket, so a
// graph's legend would hold more than 10 hosts: over time, the top 10 are
// chosen once over the range (`[$__range] @ end()`); a table is one instant
// query over $__range.
func TestTopHostsOverTheRange(t *testing.T) {
	found := 0
	for _, l := range loadDashboards(t) {
		for _, p := range allPanels(l.d.Panels) {
			for _, tg := range p.Targets {
				loc := topkCall.FindStringIndex(tg.Expr)
				if loc == nil {
					continue
				}
				found++
				name := fmt.Sprintf("%s: panel %q %s", l.file, p.Title, tg.RefID)
				arg := tg.Expr[loc[1]:]
				switch {
				case tg.Instant:
					if !strings.Contains(arg, "[$__range]") {
						t.Errorf("%s: an instant top 10 must rank over [$__range]: %s", name, tg.Expr)
					}
				case !strings.Contains(arg, "[$__range] @ end()"):
					t.Errorf("%s: a top 10 over time must rank once over the range ([$__range] @ end()), not per bucket: %s", name, tg.Expr)
				case !strings.Contains(tg.Expr[:loc[0]], " and on ("):
					t.Errorf("%s: the per-bucket values must be limited to the top 10 with `and on (...)`: %s", name, tg.Expr)
				}
			}
		}
	}
	if found < 4 {
		t.Errorf("found %d top-10 queries, want the usage tables and the hosts graphs", found)
	}
}

// usageRead matches an increase/rate of a usage counter or histogram, and a
// read of a usage gauge: what two replicas export twice.
var usageRead = regexp.MustCompile(`(?:(?:increase|rate)\(umeeting_(?:meetings_total|meeting_seconds_total|participants_total|participant_seconds_total|meetings_by_feature_total|meeting_duration_seconds_bucket|meeting_participants_bucket|records_invalid_total|department_\w+_total|cost_center_\w+_total)\b)|umeeting_active_hosts\{`)

// replicaProblems lists the usage reads of expr not taken as the largest
// over replicas (`max without (instance) (...)`) before anything adds them up.
func replicaProblems(expr string) []string {
	var out []string
	for _, loc := range usageRead.FindAllStringIndex(expr, -1) {
		if !strings.HasSuffix(strings.TrimRight(expr[:loc[0]], " \n"), "max without (instance) (") {
			out = append(out, fmt.Sprintf("%s… is not wrapped in max without (instance) (…): two replicas would count twice", expr[loc[0]:loc[1]]))
		}
	}
	return out
}

// TestReplicasCountOnce: the shipped recording rules and every dashboard
// query give the figure of one exporter when two replicas are scraped (the
// e2e test TestMixinWithTwoReplicas proves the numbers on a real Prometheus).
func TestReplicasCountOnce(t *testing.T) {
	n := 0
	for _, l := range loadDashboards(t) {
		for _, p := range allPanels(l.d.Panels) {
			for _, tg := range p.Targets {
				for _, problem := range replicaProblems(tg.Expr) {
					t.Errorf("%s: panel %q %s: %s", l.file, p.Title, tg.RefID, problem)
				}
				n += len(usageRead.FindAllString(tg.Expr, -1))
			}
		}
	}
	for _, r := range loadRules(t) {
		if r.Record == "" {
			continue
		}
		for _, problem := range replicaProblems(r.Expr) {
			t.Errorf("rule %s: %s", r.Record, problem)
		}
		n += len(usageRead.FindAllString(r.Expr, -1))
	}
	if n < 20 {
		t.Errorf("found only %d usage reads in the mixin", n)
	}
	if p := replicaProblems(`sum(increase(umeeting_meetings_total[1h]))`); len(p) != 1 {
		t.Errorf("replicaProblems accepts a plain sum of increases: %v", p)
	}
}

// loadRules reads every rule of ../alerts.
func loadRules(t *testing.T) []mixin.Rule {
	t.Helper()
	files, err := mixin.RuleFiles(filepath.Join("..", "alerts"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := mixin.LoadRules(files)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}
