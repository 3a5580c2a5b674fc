package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
)

// Per-account series of the exporter's own health. Each replica exports
// its own: they are read per account (max by) or added up, not taken once.
var (
	lastSuccess = sel("umeeting_last_successful_poll_timestamp_seconds", byAccount) + " > 0"
	lastSave    = sel("umeeting_state_last_save_timestamp_seconds", byAccount) + " > 0"
)

// rateFloor is the rate graphs' minimum interval: polls every few minutes
// read as a steady rate.
const rateFloor = "15m"

func health() *dashboard.DashboardBuilder {
	return newDashboard("umeeting-exporter-health", "umeeting_exporter health",
		"Is umeeting_exporter working: polls, API requests, staleness, invalid records, state saves, config reloads, build info.",
		"now-6h", "1m").
		WithVariable(accountVar()).
		WithVariable(userTypeVar()).
		WithRow(row("Status")).
		WithPanel(status("Last poll",
			"umeeting_up per account: OK when the last poll of the UMeeting API succeeded. Usage metrics keep the values of the last successful poll while it fails.", 6).
			Targets(queries(rangeQuery(maxBy("account", sel("umeeting_up", byAccount)), "{{account}}")))).
		WithPanel(current("Age of the last successful poll",
			"Time since the last successful poll, per account (empty before the first success). UMeetingDataStale fires when it exceeds 3 poll intervals.",
			unitSeconds, 6, 4).
			GraphMode(common.BigValueGraphModeArea).
			Thresholds(thresholds("green", from(900, "orange"), from(3600, "red"))).
			Targets(queries(rangeQuery(ageOf(maxBy("account", lastSuccess)), "{{account}}")))).
		WithPanel(status("Config reload",
			"umeeting_config_last_reload_successful: whether the last configuration reload (SIGHUP or POST /-/reload) worked, per exporter.", 4).
			Targets(queries(rangeQuery(maxBy("instance", "umeeting_config_last_reload_successful"), "{{instance}}")))).
		WithPanel(figure("Config reloads in the time range",
			"Successful configuration reloads in the time range (changes of umeeting_config_last_reload_success_timestamp_seconds) and the time of the latest one.",
			unitCount, 4, 4).Decimals(0).
			Targets(queries(instantQuery(sum(changes("umeeting_config_last_reload_success_timestamp_seconds", overRange)), "reloads")))).
		WithPanel(current("Last successful config reload", "When the configuration was last loaded successfully, per exporter.", unitAgo, 4, 4).
			Targets(queries(rangeQuery(millis(maxBy("instance", "umeeting_config_last_reload_success_timestamp_seconds")), "{{instance}}")))).
		WithPanel(grid("Build info", "Version of every running umeeting_exporter (umeeting_exporter_build_info).", unitCount, 24, 4, "version").
			Targets(queries(tableQuery("count by (instance, version, revision, branch, goversion) (umeeting_exporter_build_info)"))).
			OverrideByName("Value", []dashboard.DynamicConfigValue{{Id: "displayName", Value: "Exporters"}, {Id: "unit", Value: unitCount}}).
			WithTransformation(hide("Time", "Value"))).
		WithRow(row("Polling")).
		WithPanel(stacked("API requests per hour by result",
			"Requests to the hisMeeting API per hour, by result: success, http_error, rate_limited, api_error, bad_response, timeout, network_error. Averaged over at least 15 minutes, so that polls every few minutes read as a steady rate. Replicas each make their own requests: they add up.",
			perHour("requests"), 12, 8).Interval(rateFloor).
			Targets(queries(rangeQuery(hourly(sumBy("result", rate(sel("umeeting_api_requests_total", byAccount)))), "{{result}}")))).
		WithPanel(ranking("API requests in the time range by result", "Requests to the hisMeeting API in the time range, by result.",
			unitCount, 6, 8).Decimals(0).
			Targets(queries(instantQuery(sumBy("result", counted(sel("umeeting_api_requests_total", byAccount), overRange)), "{{result}}")))).
		WithPanel(graph("Polls per hour by result",
			"Polls per hour by account and result (success, failure), averaged over at least 15 minutes: 12/h is a poll every 5 minutes. One poll may make several API requests (paging, retries). Replicas each poll: they add up.",
			perHour("polls"), 6, 8).Interval(rateFloor).
			Targets(queries(rangeQuery(hourly(sumBy("account, result", rate(sel("umeeting_polls_total", byAccount)))), "{{account}} {{result}}")))).
		WithPanel(graph("Poll duration",
			"How long the last poll took, per account, next to the configured poll interval (dashed).", unitSeconds, 8, 8).
			Targets(queries(
				rangeQuery(maxBy("account", sel("umeeting_poll_duration_seconds", byAccount)), "{{account}} duration"),
				rangeQuery(maxBy("account", sel("umeeting_poll_interval_seconds", byAccount)), "{{account}} interval"))).
			OverrideByRegexp(".* interval", []dashboard.DynamicConfigValue{dashed()})).
		WithPanel(graph("Age of the last successful poll",
			"Time since the last successful poll, per account. A sawtooth that resets every poll interval is healthy.", unitSeconds, 8, 8).
			Targets(queries(rangeQuery(ageOf(maxBy("account", lastSuccess)), "{{account}}")))).
		WithPanel(plot("API request budget remaining",
			"Requests each account may still make in the rolling 24 hours (-1 means no budget is configured).", unitCount, 8, 8).
			Targets(queries(rangeQuery(maxBy("account", sel("umeeting_api_request_budget_remaining", byAccount)), "{{account}}")))).
		WithRow(row("Data quality and state")).
		WithPanel(graph("Invalid records per hour by reason",
			"API records skipped as invalid per hour, by account and reason (missing_uuid, bad_end_time, end_before_start, no_length, bad_participants, malformed, too_long, too_many_participants), averaged over at least 15 minutes. Their meetings are not counted. Replicas read the same records: the larger count of the two is shown.",
			perHour("records"), 8, 8).Interval(rateFloor).
			Targets(queries(rangeQuery(hourly(sumBy("account, reason", once(rate(sel("umeeting_records_invalid_total", byAccount))))), "{{account}} {{reason}}")))).
		WithPanel(ranking("Invalid records in the time range",
			"API records skipped as invalid in the time range, by reason. Replicas read the same records: the larger count of the two is shown.",
			unitCount, 8, 8).Decimals(0).
			Targets(queries(instantQuery(sumBy("reason", increase(sel("umeeting_records_invalid_total", byAccount), overRange)), "{{reason}}")))).
		WithPanel(figure("State-save failures in the time range",
			"Failed saves of the exporter's state file per account in the time range; the state keeps counters and the dedup memory across restarts.",
			unitCount, 4, 4).Decimals(0).
			Thresholds(thresholds("green", from(1, "red"))).
			Targets(queries(instantQuery(sumBy("account", counted(sel("umeeting_state_save_failures_total", byAccount), overRange)), "{{account}}")))).
		WithPanel(current("Age of the last state save",
			"Time since the state of each account was last saved to disk (empty before the first save).", unitSeconds, 4, 4).
			Targets(queries(rangeQuery(ageOf(maxBy("account", lastSave)), "{{account}}")))).
		WithPanel(graph("Remembered meetings",
			"Meetings remembered per account to count each meeting once; grows with the poll lookback, not with uptime.", unitCount, 8, 8).
			Targets(queries(rangeQuery(maxBy("account", sel("umeeting_remembered_meetings", byAccount)), "{{account}}")))).
		WithPanel(graph("Exported usage series by user type",
			"Series of umeeting_meetings_total per exporter, account and user_type: one per host, so this is the exporter's cardinality (every usage family has as many). Reduce it under metrics: in the config (per_host: false, host_include/host_exclude, max_hosts).",
			unitCount, 8, 8).
			Targets(queries(rangeQuery("count by (instance, account, user_type) ("+sel("umeeting_meetings_total", usageScope...)+")", "{{instance}} {{account}} {{user_type}}")))).
		WithPanel(graph("Exporter memory",
			"Resident memory of the umeeting_exporter processes (process_resident_memory_bytes).", unitBytes, 8, 8).
			Targets(queries(rangeQuery(ofExporter("process_resident_memory_bytes"), "{{instance}}")))).
		WithPanel(graph("Exporter CPU",
			"CPU used by the umeeting_exporter processes, in cores (rate of process_cpu_seconds_total).", unitRatio, 8, 8).
			Targets(queries(rangeQuery(ofExporter(rate("process_cpu_seconds_total")), "{{instance}}"))))
}

// status is a stat of a 0/1 gauge per series: a red "Failing" or a green
// "OK" as the background.
func status(title, description string, w uint32) *stat.PanelBuilder {
	return current(title, description, unitNone, w, 4).
		ColorMode(common.BigValueColorModeBackground).
		Thresholds(thresholds("red", from(1, "green"))).
		Mappings([]dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
			Type: dashboard.MappingTypeValueToText,
			Options: map[string]dashboard.ValueMappingResult{
				"0": {Text: ptr("Failing"), Color: ptr("red"), Index: ptr[int32](0)},
				"1": {Text: ptr("OK"), Color: ptr("green"), Index: ptr[int32](1)},
			},
		}}})
}
