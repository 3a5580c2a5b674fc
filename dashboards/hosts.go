package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// selected is a usage counter of the hosts the variables select, over
// window, per host (its display name joined from umeeting_host_info).
func selected(metric, window, at string) string {
	return usageOfHosts(metric, window, at, byAccount, byHost)
}

// selectedTotal is what the selected hosts added over the time range.
func selectedTotal(metric string) string { return sum(selected(metric, overRange, "")) }

// lastMeeting is when each selected host's latest meeting ended.
var lastMeeting = sel("umeeting_host_last_meeting_timestamp_seconds", byAccount, byUserType, byHost, `host!=""`)

// idleFor keeps the hosts (by) whose latest meeting ended $idle_days or
// more ago, with how long ago.
func idleFor(by string) string {
	return "(" + ageOf(maxBy(by, lastMeeting)) + ") > $idle_days * 86400"
}

func hosts() *dashboard.DashboardBuilder {
	const bucketNote = " Shows the 10 of the selected hosts that were busiest over the whole time range (the same 10 in every bucket)."
	perHost := func(metric string) string {
		return topOverRange(10, "host", func(window, at string) string { return selected(metric, window, at) })
	}
	hostRow := "account, host, email, user_type"
	return newDashboard("umeeting-hosts", "UMeeting hosts",
		"One UMeeting host or a set of hosts: meetings, time, participants, features and latest meeting; hosts idle long enough to reclaim their licence.",
		"now-7d", "5m").
		WithVariable(accountVar()).
		WithVariable(userTypeVar()).
		WithVariable(pick("host", "Host", "Host display names (exported only with per_host: true).",
			`label_values(umeeting_host_last_meeting_timestamp_seconds{account=~"$account", user_type=~"$user_type"}, host)`)).
		WithVariable(idleDaysVar()).
		WithRow(row("Selected hosts in the time range")).
		WithPanel(figure("Meetings", "Finished meetings of the selected hosts in the time range."+hostTotalNote, unitCount, 4, 4).Decimals(0).
			Targets(queries(instantQuery(selectedTotal("umeeting_meetings_total"), "meetings")))).
		WithPanel(figure("Meeting hours", "Sum of the meeting lengths of the selected hosts in the time range, in hours."+hostTotalNote, unitHours, 4, 4).Decimals(1).
			Targets(queries(instantQuery(asHours(selectedTotal("umeeting_meeting_seconds_total")), "hours")))).
		WithPanel(figure("Participants", "Sum of participants over the meetings of the selected hosts in the time range."+hostTotalNote, unitCount, 4, 4).Decimals(0).
			Targets(queries(instantQuery(selectedTotal("umeeting_participants_total"), "participants")))).
		WithPanel(figure("Hosts with meetings", "Selected hosts (by e-mail) that held at least one meeting in the time range.", unitCount, 4, 4).Decimals(0).
			Targets(queries(instantQuery(countOrZero(sumBy("account, email", selected("umeeting_meetings_total", overRange, ""))+" > 0"), "hosts")))).
		WithPanel(current("Latest meeting ended",
			"When the most recent meeting of the selected hosts ended (umeeting_host_last_meeting_timestamp_seconds).", unitAgo, 4, 4).
			Targets(queries(rangeQuery(millis(maximum(lastMeeting)), "latest")))).
		WithPanel(current("Idle hosts",
			"Selected hosts whose latest meeting ended at least $idle_days days ago: licences that could be reclaimed.", unitCount, 4, 4).Decimals(0).
			GraphMode(common.BigValueGraphModeArea).
			Thresholds(thresholds("green", from(1, "orange"))).
			Targets(queries(rangeQuery(countOrZero(idleFor("account, email")), "idle")))).
		WithRow(row("Over time")).
		WithPanel(bars("Meetings per host",
			"Finished meetings per host in each time bucket (at least one hour; Grafana widens the bucket on long ranges)."+bucketNote,
			unitCount, 12, 9).Interval("1h").
			Targets(queries(rangeQuery(perHost("umeeting_meetings_total"), "{{host}}")))).
		WithPanel(bars("Meeting time per host",
			"Total length of the meetings per host that finished in each time bucket (at least one hour)."+bucketNote,
			unitSeconds, 12, 9).Interval("1h").
			Targets(queries(rangeQuery(perHost("umeeting_meeting_seconds_total"), "{{host}}")))).
		WithRow(row("Per host")).
		WithPanel(withColumns(grid("Host summary",
			"Per selected host over the time range: meetings, meeting time, participants, participant-hours, and when the latest meeting ended.",
			unitCount, 24, 10, "Meetings"), hostLabels,
			countCol("Meetings", sumBy(hostRow, selected("umeeting_meetings_total", overRange, ""))),
			secondsCol("Meeting time", sumBy(hostRow, selected("umeeting_meeting_seconds_total", overRange, ""))),
			countCol("Participants", sumBy(hostRow, selected("umeeting_participants_total", overRange, ""))),
			hoursCol("Participant-hours", asHours(sumBy(hostRow, selected("umeeting_participant_seconds_total", overRange, "")))),
			dateCol("Latest meeting ended", maxBy(hostRow, lastMeeting)))).
		WithPanel(grid("Meetings by feature per host",
			"Meetings per selected host in the time range that used each feature (video, screen_share, voip, pstn dial-in, third_party_audio, recording); one row per host e-mail.",
			unitCount, 16, 10, "video").
			Targets(queries(tableQuery(sumBy("email, feature", selected("umeeting_meetings_by_feature_total", overRange, ""))))).
			WithTransformation(dashboard.DataTransformerConfig{Id: "groupingToMatrix", Options: map[string]any{
				"columnField": "feature", "rowField": "email", "valueField": "Value", "emptyValue": "zero"}}).
			WithTransformation(hide("Time"))).
		WithPanel(shares("Feature adoption of the selected hosts",
			"Share of the selected hosts' meetings in the time range that used each feature.", 8, 10).
			Targets(queries(instantQuery(shareOf(
				sumBy("feature", selected("umeeting_meetings_by_feature_total", overRange, "")),
				selectedTotal("umeeting_meetings_total")), "{{feature}}")))).
		WithRow(row("Idle hosts")).
		WithPanel(withColumns(grid("Hosts idle for $idle_days days or more",
			"Hosts whose latest meeting ended at least $idle_days days ago (choose the threshold above): licences that could be reclaimed. Hosts are known from meetings the exporter has seen since its state began; the dashboard's time range does not apply.",
			unitSeconds, 24, 10, "Last hosted"), hostLabels,
			column{"Last hosted", unitSeconds, 1, idleFor(hostRow)}))
}

// hostTotalNote ends the description of each total of the selected hosts.
const hostTotalNote = " Counted with increase() over the dashboard's time range, so exporter restarts and counter resets do not distort it." +
	" One figure for the whole range (no sparkline: it would recompute the range's total at every point)."

// idleDaysVar is how many days without a meeting make a host idle.
func idleDaysVar() *dashboard.CustomVariableBuilder {
	values := []string{"30", "60", "90", "180"}
	var options []dashboard.VariableOption
	for i, v := range values {
		options = append(options, dashboard.VariableOption{Selected: ptr(i == 0),
			Text: dashboard.StringOrArrayOfString{String: ptr(v)}, Value: dashboard.StringOrArrayOfString{String: ptr(v)}})
	}
	return dashboard.NewCustomVariableBuilder("idle_days").
		Label("Idle for at least (days)").
		Description("A host counts as idle when its latest meeting ended at least this many days ago.").
		Values(dashboard.StringOrMap{String: ptr("30,60,90,180")}).
		Current(options[0]).
		Options(options).
		Multi(false).IncludeAll(false).
		Hide(dashboard.VariableHideDontHide)
}
