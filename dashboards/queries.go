package dashboards

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// promDS is the datasource of every panel and query: the dashboard's
// datasource variable, so that the files import into any Grafana.
var promDS = common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}

func datasourceVar() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus").
		Hide(dashboard.VariableHideDontHide).Regex("")
}

// pick is a multi-select of label values, "All" meaning any value (.*),
// refreshed when the time range changes.
func pick(name, label, description, query string) *dashboard.QueryVariableBuilder {
	all := "All"
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).Description(description).
		Datasource(promDS).
		Query(dashboard.StringOrMap{String: &query}).Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Regex("").Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).IncludeAll(true).AllValue(".*").
		Current(dashboard.VariableOption{Selected: ptr(true),
			Text:  dashboard.StringOrArrayOfString{ArrayOfString: []string{all}},
			Value: dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}}}).
		Options([]dashboard.VariableOption{}).
		Hide(dashboard.VariableHideDontHide)
}

// The account and user type variables, shared by the dashboards.
func accountVar() *dashboard.QueryVariableBuilder {
	return pick("account", "Account", "UMeeting accounts polled by the exporter.", "label_values(umeeting_up, account)")
}

func userTypeVar() *dashboard.QueryVariableBuilder {
	return pick("user_type", "User type", "Licence type of the host (user_type of the API records).",
		`label_values(umeeting_meetings_total{account=~"$account"}, user_type)`)
}

// Matchers of the dashboard variables.
const (
	byAccount    = `account=~"$account"`
	byUserType   = `user_type=~"$user_type"`
	byHost       = `host=~"$host"`
	byDepartment = `department=~"$department"`
)

// Range selectors: the dashboard's whole time range, one point's
// interval, and the rate window Grafana fits to the scrape interval.
const (
	overRange   = "[$__range]"
	perInterval = "[$__interval]"
	rateWindow  = "[$__rate_interval]"
	// atEnd evaluates a selector at the end of the range, whatever the point.
	atEnd = " @ end()"
)

// sel is a series selector: metric{matchers...}.
func sel(metric string, matchers ...string) string {
	if len(matchers) == 0 {
		return metric
	}
	return metric + "{" + strings.Join(matchers, ", ") + "}"
}

// once reads what two replicas of the exporter both export as the figure
// of one: the largest of the copies (max without (instance)), taken before
// anything adds series up. Recording rules do the same (TestReplicasCountOnce).
func once(expr string) string { return "max without (instance) (" + expr + ")" }

// increase is what a counter (selector s) added over window, once.
func increase(s, window string) string { return once(counted(s, window)) }

// counted is what a counter added over window, each exporter's own (the
// exporter's requests and polls, which add up over replicas).
func counted(s, window string) string { return "increase(" + s + window + ")" }

// PromQL building blocks, named for what they compute. shareOf divides
// each feature's count by the meetings' total; withLabel adds a constant
// label; ageOf turns a timestamp into seconds ago.
func maximum(expr string) string        { return "max(" + expr + ")" }
func sum(expr string) string            { return "sum(" + expr + ")" }
func sumBy(labels, expr string) string  { return "sum by (" + labels + ") (" + expr + ")" }
func maxBy(labels, expr string) string  { return "max by (" + labels + ") (" + expr + ")" }
func asHours(secondsExpr string) string { return secondsExpr + " / 3600" }
func ratio(part, whole string) string   { return part + " / " + whole }
func shareOf(part, whole string) string {
	return part + "\n  / ignoring (feature) group_left\n" + whole
}
func ageOf(timestamp string) string      { return "time() - " + timestamp }
func millis(secondsExpr string) string   { return secondsExpr + " * 1000" }
func hourly(ratePerSecond string) string { return ratePerSecond + " * 3600" }
func rate(s string) string               { return "rate(" + s + rateWindow + ")" }
func changes(s, window string) string    { return "changes(" + s + window + ")" }
func countOrZero(expr string) string     { return "count(" + expr + ") or vector(0)" }
func withLabel(expr, dst, value string) string {
	return fmt.Sprintf("label_replace(%s, %q, %q, \"\", \"\")", expr, dst, value)
}

// prorated is a monthly amount for the dashboard's time range (30-day months).
func prorated(monthly string) string { return monthly + " * $__range_s / (30 * 86400)" }

// ofExporter keeps the process series of umeeting_exporter among those of
// every job.
func ofExporter(expr string) string {
	return expr + " * on (instance, job) group_left umeeting_exporter_build_info"
}

// topOverRange keeps, at every point of a graph, the series of the n
// label sets (by) largest over the whole range: topk at each point would
// pick other series at each one (TestTopHostsOverTheRange). series(window,
// at) is the figure over window, its selectors evaluated at at ("" or atEnd).
func topOverRange(n int, by string, series func(window, at string) string) string {
	return sumBy(by, series(perInterval, "")) + "\n  and on (" + by + ")\n" +
		topk(n, sumBy(by, series(overRange+atEnd, atEnd)))
}

// topk is the n largest series of an instant query.
func topk(n int, expr string) string { return fmt.Sprintf("topk(%d, %s)", n, expr) }

// quantile estimates the q quantile of a histogram (buckets: its sum by le).
func quantile(q float64, buckets string) string {
	return fmt.Sprintf("histogram_quantile(%v, %s)", q, buckets)
}

// bucket names one bucket of a histogram by its upper bound.
type bucket struct {
	le   string // as the exporter writes it: "60", "+Inf"
	name string
}

// named gives every series of buckets (a sum by (le)) the label dst with
// the bucket's name, whether Prometheus stores le as "60" (2.x) or "60.0"
// (3.x normalises classic-histogram bounds).
func named(buckets, dst string, bs []bucket) string {
	for _, b := range bs {
		re := regexp.QuoteMeta(b.le) + `(\.0)?`
		if b.le == "+Inf" {
			re = `\+Inf`
		}
		buckets = fmt.Sprintf("label_replace(%s, %q, %q, \"le\", %q)", buckets, dst, b.name, re)
	}
	return buckets
}

// Queries, in a panel's order: refIds A, B, C… and the datasource variable.
func instantQuery(expr, legend string) *prometheus.DataqueryBuilder {
	return query(expr, legend).Instant().Format(prometheus.PromQueryFormatTimeSeries)
}

func rangeQuery(expr, legend string) *prometheus.DataqueryBuilder {
	return query(expr, legend).Range().Format(prometheus.PromQueryFormatTimeSeries)
}

// tableQuery is an instant query whose labels become columns.
func tableQuery(expr string) *prometheus.DataqueryBuilder {
	return query(expr, "__auto").Instant().Format(prometheus.PromQueryFormatTable)
}

// bucketsQuery is an instant query of histogram buckets, one bar each, in
// the order of their bounds.
func bucketsQuery(expr, legend string) *prometheus.DataqueryBuilder {
	return query(expr, legend).Instant().Format(prometheus.PromQueryFormatHeatmap)
}

func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(promDS).EditorMode(prometheus.QueryEditorModeCode).
		Expr(expr).LegendFormat(legend)
}

// queries numbers qs A, B, C… as a panel's targets.
func queries(qs ...*prometheus.DataqueryBuilder) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(qs))
	for i, q := range qs {
		out[i] = q.RefId(refID(i))
	}
	return out
}

func refID(i int) string { return string(rune('A' + i)) }
