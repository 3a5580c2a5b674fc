package dashboards

import (
	"slices"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// departmentScope: every query follows the account and department
// variables (directory series carry no user_type).
var departmentScope = []string{byAccount, byDepartment}

// ofDepartments reads a directory gauge of the selected departments, once.
func ofDepartments(metric string, matchers ...string) string {
	return once(sel(metric, slices.Concat(departmentScope, matchers)...))
}

// departmentsAdded is what a department counter added over window, once.
func departmentsAdded(metric, window string, matchers ...string) string {
	return increase(sel(metric, slices.Concat(departmentScope, matchers)...), window)
}

// idleLicences are the licences never used or unused for 30 days or more.
var idleLicences = sum(ofDepartments("umeeting_directory_idle_licences", `idle=~"never|30d"`))

// chargeback is a table of the estimated cost per by (the label sets of
// the rows) over the time range: licence prices prorated to the range,
// usage prices of the range's meetings, and their total.
func chargeback(title, description, by, usageMetric string, matchers ...string) *table.PanelBuilder {
	licences := prorated(sumBy(by, once(sel("umeeting_chargeback_licence_monthly_cost", matchers...))))
	usage := sumBy(by, increase(sel(usageMetric, matchers...), overRange))
	total := sumBy(by, "\n  "+withLabel(licences, "part", "licences")+"\n  or "+withLabel(usage, "part", "usage")+"\n")
	return withColumns(grid(title, description, unitNone, 12, 10, "Total"), directoryLabels,
		moneyCol("Licences", licences), moneyCol("Usage", usage), moneyCol("Total", total))
}

func departments() *dashboard.DashboardBuilder {
	return newDashboard("umeeting-departments", "UMeeting departments and licences",
		"Usage by department joined from the company directory, licences idle since they were bought (even never used) with their holders, licence mismatches and the chargeback estimate by department and cost centre.",
		"now-7d", "5m").
		WithVariable(accountVar()).
		WithVariable(pick("department", "Department",
			`Departments of the directory (with licences or usage); "(unknown)" holds hosts the directory does not list, "(other)" those beyond max_departments.`,
			`label_values({__name__=~"umeeting_department_meetings_total|umeeting_directory_licences", account=~"$account"}, department)`)).
		WithRow(row("Selected departments in the time range")).
		WithPanel(figure("Meetings",
			"Finished meetings hosted by people of the selected departments in the time range, attributed to the department the host had when each meeting was counted (a move changes no past number). With two exporter replicas the larger of their counts is taken (max without instance) before summing.",
			unitCount, 4, 4).Decimals(0).
			Targets(queries(instantQuery(sum(departmentsAdded("umeeting_department_meetings_total", overRange)), "__auto")))).
		WithPanel(figure("Meeting hours", "Sum of the lengths of the selected departments' meetings in the time range, in hours.", unitHours, 4, 4).Decimals(1).
			Targets(queries(instantQuery(asHours(sum(departmentsAdded("umeeting_department_meeting_seconds_total", overRange))), "__auto")))).
		WithPanel(current("Licences",
			"Licences held by people of the selected departments, from the directory's licence column (now, not over the time range).",
			unitCount, 4, 4).Decimals(0).GraphMode(common.BigValueGraphModeArea).
			Targets(queries(rangeQuery(sum(ofDepartments("umeeting_directory_licences")), "__auto")))).
		WithPanel(current("Idle licences",
			"Licences of the selected departments whose holder never held a meeting in the exporter's history or whose latest meeting ended 30 days ago or more.",
			unitCount, 4, 4).Decimals(0).GraphMode(common.BigValueGraphModeArea).
			Targets(queries(rangeQuery(idleLicences, "__auto")))).
		WithPanel(current("Share of licences idle",
			"Idle licences (never used or no meeting for 30 days) as a share of all licences of the selected departments; the alert UMeetingIdleLicencesHigh fires above the configured share.",
			unitRatio, 4, 4).Decimals(1).GraphMode(common.BigValueGraphModeArea).
			Targets(queries(rangeQuery(ratio(idleLicences, sum(ofDepartments("umeeting_directory_licences"))), "__auto")))).
		WithPanel(figure("Estimated cost",
			"Chargeback estimate for the time range, in the currency of the tariffs: the monthly licence prices prorated to the range (30-day months) plus the usage prices (per meeting hour, per dial-in meeting) of the range's meetings. An estimate, not an invoice.",
			unitNone, 4, 4).Decimals(2).
			Targets(queries(instantQuery(prorated(sum(ofDepartments("umeeting_chargeback_licence_monthly_cost")))+"\n  + "+
				sum(departmentsAdded("umeeting_department_usage_cost_total", overRange)), "__auto")))).
		WithRow(row("Usage by department over time")).
		WithPanel(bars("Meetings per department",
			"Finished meetings per department in each time bucket (at least one hour; Grafana widens the bucket on long ranges).",
			unitCount, 12, 9).Interval("1h").
			Targets(queries(rangeQuery(sumBy("department", departmentsAdded("umeeting_department_meetings_total", perInterval)), "{{department}}")))).
		WithPanel(bars("Meeting hours per department", "Meeting hours per department in each time bucket (at least one hour).",
			unitHours, 12, 9).Interval("1h").
			Targets(queries(rangeQuery(asHours(sumBy("department", departmentsAdded("umeeting_department_meeting_seconds_total", perInterval))), "{{department}}")))).
		WithRow(row("Top departments")).
		WithPanel(ranking("Top 10 departments by meeting hours", "The ten selected departments with the most meeting hours in the time range.",
			unitHours, 8, 9).
			Targets(queries(instantQuery(topk(10, asHours(sumBy("department", departmentsAdded("umeeting_department_meeting_seconds_total", overRange)))), "{{department}}")))).
		WithPanel(withColumns(grid("Usage by department",
			"Meetings, meeting hours, participant-hours and dial-in (PSTN) meetings per department in the time range.",
			unitCount, 16, 9, "Meeting hours"), directoryLabels,
			countCol("Meetings", sumBy("account, department", departmentsAdded("umeeting_department_meetings_total", overRange))),
			hoursCol("Meeting hours", asHours(sumBy("account, department", departmentsAdded("umeeting_department_meeting_seconds_total", overRange)))),
			hoursCol("Participant-hours", asHours(sumBy("account, department", departmentsAdded("umeeting_department_participant_seconds_total", overRange)))),
			countCol("Dial-in meetings", sumBy("account, department", departmentsAdded("umeeting_department_meetings_by_feature_total", overRange, `feature="pstn"`))))).
		WithRow(row("Licences")).
		WithPanel(withColumns(grid("Licences by department",
			"Licences per department and licence type from the directory; idle: holders who never held a meeting in the exporter's history (never), or whose latest meeting ended 30 or 90 days ago or more (90d is part of 30d); mismatches: holders whose latest meeting in the API carried another user type than the directory's licence.",
			unitCount, 12, 10, "Never used"), directoryLabels,
			countCol("Licences", sumBy("account, department, licence", ofDepartments("umeeting_directory_licences"))),
			countCol("Never used", sumBy("account, department, licence", ofDepartments("umeeting_directory_idle_licences", `idle="never"`))),
			countCol("Idle 30d+", sumBy("account, department, licence", ofDepartments("umeeting_directory_idle_licences", `idle="30d"`))),
			countCol("Idle 90d+", sumBy("account, department, licence", ofDepartments("umeeting_directory_idle_licences", `idle="90d"`))))).
		WithPanel(withColumns(grid("Licence mismatches",
			"Licence holders whose latest meeting in the API carried another user type than the licence the directory lists for them: fix the directory or the licence assignment.",
			unitCount, 12, 10, "Holders"), directoryLabels,
			countCol("Holders", sumBy("account, department, licence, user_type", ofDepartments("umeeting_directory_licence_mismatches"))))).
		WithPanel(withColumns(grid("Idle licence holders",
			"Holders of a licence who never held a meeting in the exporter's history (last meeting: never) or whose latest meeting ended 30 days ago or more: licences that could be reclaimed. Needs per_host: true.",
			unitDateTime, 24, 10, "Last meeting"), directoryLabels,
			dateCol("Last meeting", ofDepartments("umeeting_directory_idle_licence_last_meeting_timestamp_seconds"))).
			Mappings([]dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText,
				Options: map[string]dashboard.ValueMappingResult{"0": {Text: ptr("never"), Index: ptr[int32](0)}}}}})).
		WithRow(row("Chargeback (estimate)")).
		WithPanel(chargeback("Chargeback by department",
			"Estimated cost per department for the time range, in the tariffs' currency: licences (monthly prices prorated to the range, 30-day months) and usage (per meeting hour and per dial-in meeting, at the tariffs in force when each meeting was counted). An estimate, not an invoice.",
			"account, department, currency", "umeeting_department_usage_cost_total", departmentScope...)).
		WithPanel(chargeback("Chargeback by cost centre",
			"Estimated cost per cost centre for the time range (all departments of the selected accounts), in the tariffs' currency: licences prorated to the range plus usage. An estimate, not an invoice.",
			"account, cost_center, currency", "umeeting_cost_center_usage_cost_total", byAccount))
}
