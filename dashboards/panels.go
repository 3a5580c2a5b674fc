package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Grafana units used by the panels (dashboards_test.go holds the closed
// list). Rates are shown per hour: at 5-minute polling a rate per second
// reads "3.33 mreq/s".
const (
	unitCount    = "short"
	unitNone     = "none" // money: the currency is a column of its own
	unitSeconds  = "s"
	unitHours    = "h"
	unitRatio    = "percentunit"
	unitBytes    = "bytes"
	unitAgo      = "dateTimeFromNow" // a timestamp in milliseconds, as "3 hours ago"
	unitDateTime = "dateTimeAsIso"   // a timestamp in milliseconds, as a date
)

// perHour is the unit of a count per hour ("12 meetings/h").
func perHour(what string) string { return "suffix:" + what + "/h" }

// dashboardsTag is the tag of every dashboard: the dashboards' links list
// the others by it.
const dashboardsTag = "umeeting"

// newDashboard starts a dashboard with what all four share: the datasource
// variable, the tag and the links to the others (keeping time range and
// variables), shared crosshair, a default range ending now.
func newDashboard(uid, title, description, from, refresh string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{dashboardsTag}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Time(from, "now").
		Refresh(refresh).
		Annotation(dashboard.NewAnnotationQueryBuilder().
			Name("Annotations & Alerts").
			Datasource(common.DataSourceRef{Type: ptr("grafana"), Uid: ptr("-- Grafana --")}).
			BuiltIn(1).Enable(true).Hide(true).IconColor("rgba(0, 211, 255, 1)").Type("dashboard")).
		Link(dashboard.NewDashboardLinkBuilder("UMeeting dashboards").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{dashboardsTag}).
			IncludeVars(true).KeepTime(true).
			Icon("external link")).
		WithVariable(datasourceVar())
}

// row is a row heading; the panels after it, up to the next row, are its.
func row(title string) *dashboard.RowBuilder { return dashboard.NewRowBuilder(title) }

// thresholds colours values with base, then with each step's colour from
// its value up: thresholds("green", from(900, "orange"), from(3600, "red")).
func thresholds(base string, steps ...dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).
		Steps(append([]dashboard.Threshold{{Color: base}}, steps...))
}

func from(value float64, color string) dashboard.Threshold {
	return dashboard.Threshold{Value: &value, Color: color}
}

func colorMode(m dashboard.FieldColorModeId) *dashboard.FieldColorBuilder {
	return dashboard.NewFieldColorBuilder().Mode(m)
}

func lastNotNull() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Fields("").Values(false)
}

// builder is what every panel builder of the SDK has (one type per panel
// kind).
type builder[T any] interface {
	Title(string) T
	Description(string) T
	Span(uint32) T
	Height(uint32) T
	Unit(string) T
	Thresholds(cog.Builder[dashboard.ThresholdsConfig]) T
}

// basics sets what every panel has: a title, a description (Grafana shows it
// on hover), its size in the 24-column grid (the SDK places panels left to
// right, row by row), a unit and thresholds that colour every value alike.
func basics[T builder[T]](b T, title, description, unit string, w, h uint32) T {
	return b.Title(title).Description(description).Span(w).Height(h).Unit(unit).Thresholds(thresholds("green"))
}

// figure is a stat: one number, coloured by thresholds, without
// sparkline. Totals over the range are one instant query (a range query's
// sparkline would recompute the range's total at every point).
func figure(title, description, unit string, w, h uint32) *stat.PanelBuilder {
	return basics(stat.NewPanelBuilder(), title, description, unit, w, h).
		ColorScheme(colorMode(dashboard.FieldColorModeIdThresholds)).
		ReduceOptions(lastNotNull()).
		ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeNone).
		JustifyMode(common.BigValueJustifyModeAuto).
		Orientation(common.VizOrientationAuto).
		TextMode(common.BigValueTextModeAuto).
		WideLayout(true).
		ShowPercentChange(false)
}

// current is a stat of a value now (a range query, its last value shown),
// with at most 100 points for the optional sparkline.
func current(title, description, unit string, w, h uint32) *stat.PanelBuilder {
	return figure(title, description, unit, w, h).MaxDataPoints(100)
}

// graph is a time series of lines, from 0 up, with a legend below and
// a tooltip listing every series. Gaps stay gaps (spanNulls false): a
// missing point means no sample within Prometheus's 5-minute lookback
// (the exporter was not scraped), which a line must not hide. Graphs of
// gauges (values now, not counts over a window) must be whole over
// imported history too: each point reads the latest sample within that
// lookback, which the history's samples (at least one every 5 minutes)
// always hold, so they have no minimum interval and no *_over_time window
// that a short range would make narrower than the samples' spacing.
func graph(title, description, unit string, w, h uint32) *timeseries.PanelBuilder {
	return plot(title, description, unit, w, h).Min(0)
}

// plot is a graph of values that may be negative.
func plot(title, description, unit string, w, h uint32) *timeseries.PanelBuilder {
	return basics(timeseries.NewPanelBuilder(), title, description, unit, w, h).
		ColorScheme(colorMode(dashboard.FieldColorModeIdPaletteClassic)).
		DrawStyle(common.GraphDrawStyleLine).
		LineWidth(1).
		FillOpacity(10).
		GradientMode(common.GraphGradientModeNone).
		ShowPoints(common.VisibilityModeNever).
		SpanNulls(common.BoolOrFloat64{Bool: ptr(false)}).
		Stacking(stacking(common.StackingModeNone)).
		AxisPlacement(common.AxisPlacementAuto).
		AxisLabel("").
		LineInterpolation(common.LineInterpolationLinear).
		Legend(legend(common.LegendDisplayModeList)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
}

// stacked is a graph of parts that add up to a whole.
func stacked(title, description, unit string, w, h uint32) *timeseries.PanelBuilder {
	return graph(title, description, unit, w, h).FillOpacity(30).Stacking(stacking(common.StackingModeNormal))
}

// bars is a stacked graph of bars, one per $__interval: counts per bucket.
func bars(title, description, unit string, w, h uint32) *timeseries.PanelBuilder {
	return stacked(title, description, unit, w, h).DrawStyle(common.GraphDrawStyleBars).FillOpacity(80)
}

func stacking(m common.StackingMode) *common.StackingConfigBuilder {
	return common.NewStackingConfigBuilder().Mode(m).Group("A")
}

func legend(m common.LegendDisplayMode, calcs ...string) *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().DisplayMode(m).Placement(common.LegendPlacementBottom).ShowLegend(true).Calcs(append([]string{}, calcs...))
}

// dashed draws a line dashed (an interval, a limit beside the values).
func dashed() dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}}
}

// ranking is a horizontal bar gauge: one bar per series, values from 0.
func ranking(title, description, unit string, w, h uint32) *bargauge.PanelBuilder {
	return basics(bargauge.NewPanelBuilder(), title, description, unit, w, h).
		ColorScheme(colorMode(dashboard.FieldColorModeIdContinuousBlPu)).
		Min(0).
		ReduceOptions(lastNotNull()).
		DisplayMode(common.BarGaugeDisplayModeGradient).
		ValueMode(common.BarGaugeValueModeColor).
		NamePlacement(common.BarGaugeNamePlacementAuto).
		Orientation(common.VizOrientationHorizontal).
		ShowUnfilled(true).
		Sizing(common.BarGaugeSizingAuto).
		MinVizWidth(8).MinVizHeight(16).MaxVizHeight(300)
}

// shares is a ranking of ratios between 0 and 100 %.
func shares(title, description string, w, h uint32) *bargauge.PanelBuilder {
	return ranking(title, description, unitRatio, w, h).Max(1)
}

// grid is a table of instant queries (its columns), one row per label
// set, sorted by the column sortBy, largest first.
func grid(title, description, unit string, w, h uint32, sortBy string) *table.PanelBuilder {
	return basics(table.NewPanelBuilder(), title, description, unit, w, h).
		Align(common.FieldTextAlignmentAuto).
		CellOptions(common.TableCellOptions{TableAutoCellOptions: &common.TableAutoCellOptions{Type: "auto"}}).
		Filterable(true).
		Inspect(false).
		CellHeight(common.TableCellHeightSm).
		ShowHeader(true).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"}).CountRows(false)).
		SortBy([]cog.Builder[common.TableSortByFieldState]{common.NewTableSortByFieldStateBuilder().DisplayName(sortBy).Desc(true)})
}

// label is a label column of a table, its title and an optional data
// link (to another dashboard, with the row's values as variables).
type label struct{ name, title, link string }

// Label columns of the tables.
var (
	hostLabels = []label{{"account", "Account", ""}, {"host", "Host", ""}, {"email", "E-mail", ""}, {"user_type", "User type", ""}}
	// linkedHostLabels open the hosts dashboard on the row's host.
	linkedHostLabels = []label{{"account", "Account", ""},
		{"host", "Host", "/d/umeeting-hosts/umeeting-hosts?${__url_time_range}&var-account=${__data.fields.account:percentencode}&var-host=${__data.fields.host:percentencode}"},
		{"email", "E-mail", ""}, {"user_type", "User type", ""}}
	directoryLabels = []label{{"account", "Account", ""}, {"department", "Department", ""}, {"cost_center", "Cost centre", ""},
		{"licence", "Licence", ""}, {"email", "E-mail", ""}, {"user_type", "API user type", ""}, {"currency", "Currency", ""}, {"idle", "Idle", ""}}
)

// column is a value column of a table: one instant query.
type column struct {
	title, unit string
	decimals    int // -1: Grafana's choice
	expr        string
}

func countCol(title, expr string) column   { return column{title, unitCount, 0, expr} }
func hoursCol(title, expr string) column   { return column{title, unitHours, 1, expr} }
func secondsCol(title, expr string) column { return column{title, unitSeconds, -1, expr} }
func moneyCol(title, expr string) column   { return column{title, unitNone, 2, expr} }

// dateCol shows a timestamp in seconds (multiplied to milliseconds) as a date.
func dateCol(title, expr string) column { return column{title, unitDateTime, -1, expr + " * 1000"} }

// withColumns fills table t: the label columns titled, then one instant
// query per value column, merged into one row per label set (Grafana names
// the value of query X "Value #X", of a lone query "Value"); Time hidden.
func withColumns(t *table.PanelBuilder, labels []label, cols ...column) *table.PanelBuilder {
	for _, l := range labels {
		props := []dashboard.DynamicConfigValue{{Id: "displayName", Value: l.title}}
		if l.link != "" {
			props = append(props, dashboard.DynamicConfigValue{Id: "links", Value: []map[string]string{{"title": "Open in UMeeting hosts", "url": l.link}}})
		}
		t.OverrideByName(l.name, props)
	}
	var qs []*prometheus.DataqueryBuilder
	for i, c := range cols {
		name := "Value"
		if len(cols) > 1 {
			name = "Value #" + refID(i)
		}
		props := []dashboard.DynamicConfigValue{{Id: "displayName", Value: c.title}, {Id: "unit", Value: c.unit}}
		if c.decimals >= 0 {
			props = append(props, dashboard.DynamicConfigValue{Id: "decimals", Value: c.decimals})
		}
		t.OverrideByName(name, props)
		qs = append(qs, tableQuery(c.expr))
	}
	if len(cols) > 1 {
		t.WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}})
	}
	return t.Targets(queries(qs...)).WithTransformation(hide("Time"))
}

// hide is the transformation that leaves out the named columns.
func hide(names ...string) dashboard.DataTransformerConfig {
	exclude := map[string]bool{}
	for _, n := range names {
		exclude[n] = true
	}
	return dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
		"excludeByName": exclude, "indexByName": map[string]any{}, "renameByName": map[string]any{}}}
}

func ptr[T any](v T) *T { return &v }
