package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// usageScope: every usage query follows the account and user type variables.
var usageScope = []string{byAccount, byUserType}

// usageTotal is what a usage counter added over the time range, summed.
func usageTotal(metric string) string { return sum(increase(sel(metric, usageScope...), overRange)) }

// totalNote ends the description of each total of the time range.
const totalNote = " Counted with increase() over the dashboard's time range, so exporter restarts and counter resets do not distort it." +
	" One figure for the whole range (no sparkline: it would recompute the range's total at every point); the panels below show it over time."

// Histogram buckets of umeeting_meeting_duration_seconds and
// umeeting_meeting_participants (store.DurationBuckets, ParticipantBuckets),
// named for the distribution panels.
var (
	lengthBuckets = []bucket{{"60", "≤ 1 min"}, {"300", "1–5 min"}, {"600", "5–10 min"}, {"900", "10–15 min"},
		{"1800", "15–30 min"}, {"2700", "30–45 min"}, {"3600", "45 min–1 h"}, {"5400", "1–1.5 h"}, {"7200", "1.5–2 h"},
		{"10800", "2–3 h"}, {"14400", "3–4 h"}, {"28800", "4–8 h"}, {"+Inf", "over 8 h"}}
	sizeBuckets = []bucket{{"1", "1"}, {"2", "2"}, {"3", "3"}, {"5", "4–5"}, {"10", "6–10"}, {"20", "11–20"},
		{"50", "21–50"}, {"100", "51–100"}, {"200", "101–200"}, {"500", "201–500"}, {"1000", "501–1000"}, {"+Inf", "over 1000"}}
)

// usageBuckets are a histogram's buckets over the time range.
func usageBuckets(histogram string) string {
	return sumBy("le", increase(sel(histogram+"_bucket", usageScope...), overRange))
}

// usageOfHosts is a usage counter per host over window, the host's display
// name joined from umeeting_host_info (at at).
func usageOfHosts(metric, window, at string, infoMatchers ...string) string {
	return "(" + increase(sel(metric, byAccount, byUserType, `email!=""`), window) +
		" * on (account, email) group_left (host) topk by (account, email) (1, " + sel("umeeting_host_info", infoMatchers...) + at + "))"
}

func usage() *dashboard.DashboardBuilder {
	recorded := func(name string) string { return sel(name, usageScope...) }
	return newDashboard("umeeting-usage", "UMeeting usage",
		"UMeeting usage for the chosen time range: meetings, hours, participants, feature adoption, active hosts, concurrency and top hosts, from umeeting_exporter.",
		"now-7d", "5m").
		WithVariable(accountVar()).
		WithVariable(userTypeVar()).
		WithRow(row("Totals for the time range")).
		WithPanel(figure("Meetings", "Finished meetings in the time range."+totalNote, unitCount, 4, 4).Decimals(0).
			Targets(queries(instantQuery(usageTotal("umeeting_meetings_total"), "meetings")))).
		WithPanel(figure("Meeting hours", "Sum of meeting lengths in the time range, in hours."+totalNote, unitHours, 4, 4).Decimals(1).
			Targets(queries(instantQuery(asHours(usageTotal("umeeting_meeting_seconds_total")), "hours")))).
		WithPanel(figure("Participants", "Sum of participants over the meetings of the time range (a person in two meetings counts twice)."+totalNote, unitCount, 4, 4).Decimals(0).
			Targets(queries(instantQuery(usageTotal("umeeting_participants_total"), "participants")))).
		WithPanel(figure("Participant-hours", "Sum of meeting length times participants in the time range, in hours."+totalNote, unitHours, 4, 4).Decimals(1).
			Targets(queries(instantQuery(asHours(usageTotal("umeeting_participant_seconds_total")), "participant-hours")))).
		WithPanel(figure("Average meeting length", "Meeting time divided by meetings in the time range.", unitSeconds, 4, 4).
			Targets(queries(instantQuery(ratio(usageTotal("umeeting_meeting_seconds_total"), usageTotal("umeeting_meetings_total")), "average")))).
		WithPanel(figure("Average participants", "Participants per meeting in the time range.", unitCount, 4, 4).Decimals(1).
			Targets(queries(instantQuery(ratio(usageTotal("umeeting_participants_total"), usageTotal("umeeting_meetings_total")), "average")))).
		WithRow(row("Over time")).
		WithPanel(stacked("Meetings per hour by user type",
			"Finished meetings in the trailing hour, by the host's user_type (recording rule umeeting:meetings:increase1h).",
			perHour("meetings"), 8, 8).
			Targets(queries(rangeQuery(sumBy("user_type", recorded("umeeting:meetings:increase1h")), "{{user_type}}")))).
		WithPanel(stacked("Meeting hours per hour by user type",
			"Hours of meetings that finished in the trailing hour, by the host's user_type (recording rule umeeting:meeting_seconds:increase1h): 3 h per hour is three meetings running all the time.",
			unitHours, 8, 8).
			Targets(queries(rangeQuery(asHours(sumBy("user_type", recorded("umeeting:meeting_seconds:increase1h"))), "{{user_type}}")))).
		WithPanel(graph("Participants per hour",
			"Participants (per hour) and participant-hours (hours per hour: the average number of people in meetings) of the meetings that finished in the trailing hour (recording rules umeeting:participants:increase1h and umeeting:participant_seconds:increase1h).",
			perHour("participants"), 8, 8).
			Targets(queries(
				rangeQuery(sum(recorded("umeeting:participants:increase1h")), "participants"),
				rangeQuery(asHours(sum(recorded("umeeting:participant_seconds:increase1h"))), "participant-hours"))).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{{Id: "unit", Value: unitHours}})).
		WithRow(row("Feature adoption")).
		WithPanel(shares("Feature adoption in the time range",
			"Share of the time range's meetings that used each feature: video, screen_share, voip (computer audio), pstn (telephone dial-in), third_party_audio, recording.",
			8, 8).
			Targets(queries(instantQuery(shareOf(
				sumBy("feature", increase(sel("umeeting_meetings_by_feature_total", usageScope...), overRange)),
				usageTotal("umeeting_meetings_total")), "{{feature}}")))).
		WithPanel(graph("Feature adoption over time",
			"Share of the meetings of the trailing hour that used each feature (recording rules umeeting:meetings_by_feature:increase1h and umeeting:meetings:increase1h).",
			unitRatio, 16, 8).Max(1).
			Targets(queries(rangeQuery(shareOf(
				sumBy("feature", recorded("umeeting:meetings_by_feature:increase1h")),
				sum(recorded("umeeting:meetings:increase1h"))), "{{feature}}")))).
		WithRow(row("Hosts and concurrency")).
		WithPanel(graph("Active hosts by user type",
			"Distinct hosts (by e-mail) whose latest meeting ended within the last 1, 7 and 30 days, by user_type. Computed by the exporter from its remembered meetings. With two replicas, each host is counted once (max without (instance)).",
			unitCount, 8, 9).
			Legend(legend(common.LegendDisplayModeTable, "lastNotNull", "max")).
			Targets(queries(rangeQuery(sumBy("user_type, window", once(sel("umeeting_active_hosts", usageScope...))), "{{user_type}} {{window}}")))).
		WithPanel(graph("Peak concurrent meetings (trailing 24 h)",
			"Most meetings in progress at one moment during the trailing 24 hours, per account, and the licence limit when concurrent_meetings_limit is set. Per account only: the user_type filter does not apply.",
			unitCount, 8, 9).
			Targets(queries(
				rangeQuery(maxBy("account", sel("umeeting_concurrent_meetings_peak", byAccount)), "{{account}} peak"),
				rangeQuery(maxBy("account", sel("umeeting_concurrent_meetings_limit", byAccount)), "{{account}} licence limit"))).
			OverrideByRegexp(".*licence limit", []dashboard.DynamicConfigValue{dashed(),
				{Id: "color", Value: map[string]string{"mode": "fixed", "fixedColor": "red"}}})).
		WithPanel(graph("Peak concurrent participants (trailing 24 h)",
			"Most participants in meetings in progress at one moment during the trailing 24 hours, per account. Per account only: the user_type filter does not apply.",
			unitCount, 8, 9).
			Targets(queries(rangeQuery(maxBy("account", sel("umeeting_concurrent_participants_peak", byAccount)), "{{account}}")))).
		WithPanel(current("Licence use (peak / limit)",
			"Peak concurrent meetings of the trailing 24 hours as a share of the licence limit (recording rule umeeting:concurrent_meetings:limit_ratio). Empty for accounts without concurrent_meetings_limit in the exporter config. UMeetingConcurrentMeetingsNearLimit fires at 90 %.",
			unitRatio, 24, 4).
			GraphMode(common.BigValueGraphModeArea).
			Thresholds(thresholds("green", from(0.75, "orange"), from(0.9, "red"))).
			Targets(queries(rangeQuery(sel("umeeting:concurrent_meetings:limit_ratio", byAccount), "{{account}}")))).
		WithRow(row("Distributions")).
		WithPanel(ranking("Meeting length distribution",
			"Meetings of the time range per length (histogram umeeting_meeting_duration_seconds), one bar per bucket: ≤ 1 min, 1–5 min, … 4–8 h, over 8 h. The bucket names are set in the query (label_replace on le, which reads 60 or 60.0 depending on the Prometheus version and the exposition format).",
			unitCount, 8, 10).Decimals(0).
			Targets(queries(bucketsQuery(named(usageBuckets("umeeting_meeting_duration_seconds"), "length", lengthBuckets), "{{length}}")))).
		WithPanel(ranking("Meeting size distribution",
			"Meetings of the time range per number of participants (histogram umeeting_meeting_participants), one bar per bucket: 1, 2, 3, 4–5, … 501–1000, over 1000. The bucket names are set in the query (label_replace on le, which reads 5 or 5.0 depending on the Prometheus version and the exposition format).",
			unitCount, 8, 10).Decimals(0).
			Targets(queries(bucketsQuery(named(usageBuckets("umeeting_meeting_participants"), "size", sizeBuckets), "{{size}}")))).
		WithPanel(figure("Meeting length median and 90th percentile",
			"Estimated from the histogram umeeting_meeting_duration_seconds over the time range.", unitSeconds, 8, 5).
			Targets(queries(
				instantQuery(quantile(0.5, usageBuckets("umeeting_meeting_duration_seconds")), "median"),
				instantQuery(quantile(0.9, usageBuckets("umeeting_meeting_duration_seconds")), "90th percentile")))).
		WithPanel(figure("Meeting size median and 90th percentile",
			"Participants per meeting, estimated from the histogram umeeting_meeting_participants over the time range.", unitCount, 8, 5).Decimals(1).
			Targets(queries(
				instantQuery(quantile(0.5, usageBuckets("umeeting_meeting_participants")), "median"),
				instantQuery(quantile(0.9, usageBuckets("umeeting_meeting_participants")), "90th percentile")))).
		WithRow(row("Top hosts")).
		WithPanel(withColumns(grid("Top 10 hosts by meetings",
			"Hosts with the most finished meetings in the time range. Click a host to open it in the UMeeting hosts dashboard.",
			unitCount, 12, 10, "Meetings"), linkedHostLabels,
			countCol("Meetings", topk(10, sumBy("account, host, email, user_type", usageOfHosts("umeeting_meetings_total", overRange, "", byAccount)))))).
		WithPanel(withColumns(grid("Top 10 hosts by meeting time",
			"Hosts whose meetings lasted longest in total in the time range. Click a host to open it in the UMeeting hosts dashboard.",
			unitCount, 12, 10, "Meeting time"), linkedHostLabels,
			secondsCol("Meeting time", topk(10, sumBy("account, host, email, user_type", usageOfHosts("umeeting_meeting_seconds_total", overRange, "", byAccount))))))
}
