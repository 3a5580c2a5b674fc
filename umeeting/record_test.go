package umeeting

import (
	"testing"
	"time"
)

func TestParseRecord(t *testing.T) {
	end := mustTime("2018-01-02T04:02:10Z")
	start := mustTime("2018-01-02T03:53:18Z")
	sample := Meeting{
		UUID: "jny6Sttx8NitKXw==", Host: "test03", Email: "test03@rfchina.com",
		UserType: "Corp", Start: start, End: end, Participants: 2,
	}
	// with returns the sample meeting changed by fn.
	with := func(fn func(m *Meeting)) Meeting {
		m := sample
		fn(&m)
		return m
	}
	valid := []struct {
		name string
		raw  string
		want Meeting
	}{
		{"vendor sample", record(), sample},
		{"uuid as number", record("uuid", "12345"), with(func(m *Meeting) { m.UUID = "12345" })},
		{"uuid trimmed", record("uuid", `" abc== "`), with(func(m *Meeting) { m.UUID = "abc==" })},
		{"uuid with escaped slash", record("uuid", `"ab\/c+d=="`), with(func(m *Meeting) { m.UUID = "ab/c+d==" })},
		{"id ignored, whatever it holds", record("id", `{"a": 1}`), sample},
		{"host escaped unicode", record("host", `" \u5f20\u4e09 "`), with(func(m *Meeting) { m.Host = "张三" })},
		{"host null", record("host", `null`), with(func(m *Meeting) { m.Host = "" })},
		{"host invalid UTF-8", record("host", "\"a\xffb\""), with(func(m *Meeting) { m.Host = "a\uFFFDb" })},
		{"email lower-cased", record("email", `" TeSt03@RFChina.COM "`), sample},
		{"email non-ASCII lower-cased", record("email", `"ÄB@x.cn"`), with(func(m *Meeting) { m.Email = "äb@x.cn" })},
		{"user_type missing", record("user_type", del), with(func(m *Meeting) { m.UserType = UnknownUserType })},
		{"user_type blank", record("user_type", `"  "`), with(func(m *Meeting) { m.UserType = UnknownUserType })},
		{"user_type trimmed", record("user_type", `" Pro "`), with(func(m *Meeting) { m.UserType = "Pro" })},
		{"end_time with offset", record("end_time", `"2018-01-02T12:02:10+08:00"`), sample},
		{"end_time space form", record("end_time", `"2018-01-02 04:02:10"`), sample},
		{"end_time trimmed", record("end_time", `" 2018-01-02T04:02:10Z "`), sample},
		{"end_time fractional", record("end_time", `"2018-01-02T04:02:10.5Z"`),
			with(func(m *Meeting) { m.End = end.Add(500 * time.Millisecond) })},
		{"start equals end", record("start_time", `"2018-01-02T04:02:10Z"`), with(func(m *Meeting) { m.Start = end })},
		{"start missing: duration text", record("start_time", del, "duration", `"1小时5分钟"`),
			with(func(m *Meeting) { m.Start = end.Add(-65 * time.Minute) })},
		{"start garbage: duration number", record("start_time", `"soon"`, "duration", `9`),
			with(func(m *Meeting) { m.Start = end.Add(-9 * time.Minute) })},
		{"start null: English duration", record("start_time", `null`, "duration", `"45 sec"`),
			with(func(m *Meeting) { m.Start = end.Add(-45 * time.Second) })},
		{"start missing: zero duration", record("start_time", del, "duration", `"0分钟"`),
			with(func(m *Meeting) { m.Start = end })},
		{"participants string", record("participants", `" 4 "`), with(func(m *Meeting) { m.Participants = 4 })},
		{"participants integral float", record("participants", `2.0`), sample},
		{"participants exponent", record("participants", `1e3`), with(func(m *Meeting) { m.Participants = 1000 })},
		{"participants at the bound", record("participants", `100000`), with(func(m *Meeting) { m.Participants = MaxParticipants })},
		{"exactly 48h", record("start_time", `"2017-12-31T04:02:10Z"`), with(func(m *Meeting) { m.Start = end.Add(-48 * time.Hour) })},
		{"participants null", record("participants", `null`), with(func(m *Meeting) { m.Participants = 0 })},
		{"participants missing", record("participants", del), with(func(m *Meeting) { m.Participants = 0 })},
		{"all features", record("has_video", `true`, "has_screen_share", `"TRUE"`, "has_voip", `"yes"`,
			"has_pstn", `1`, "has_3rd_party_audio", `"1"`, "recording", `2`),
			with(func(m *Meeting) {
				m.Features = FeatureVideo | FeatureScreenShare | FeatureVoIP | FeaturePSTN | FeatureThirdPartyAudio | FeatureRecording
			})},
		{"recording forms", record("recording", `"1"`, "has_video", `" Yes "`), with(func(m *Meeting) {
			m.Features = FeatureRecording | FeatureVideo
		})},
		{"recording true", record("recording", `true`), with(func(m *Meeting) { m.Features = FeatureRecording })},
		{"false forms", record("has_video", `"false"`, "has_screen_share", `"0"`, "has_voip", `"no"`,
			"has_pstn", `0.0`, "has_3rd_party_audio", `null`, "recording", `{"x": 1}`), sample},
		{"flag garbage is false", record("has_video", `"maybe"`, "has_pstn", `[1]`), sample},
		{"unknown fields ignored", record("extra", `{"nested": [1, {"a": null}]}`, "note", `"x"`), sample},
		{"escaped key", `{"uuid": "u1", "end\u005ftime": "2018-01-02T04:02:10Z", "start_time": "2018-01-02T03:53:18Z"}`,
			Meeting{UUID: "u1", UserType: UnknownUserType, Start: start, End: end}},
		{"surrounding white space", " \n" + record() + "\t ", sample},
		{"last duplicate wins", record("participants", `9`, "participants", `2`), sample},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := parseRecord([]byte(tc.raw), time.UTC)
			if reason != "" {
				t.Fatalf("parseRecord(%s): reason %q, want valid", tc.raw, reason)
			}
			if got != tc.want {
				t.Errorf("parseRecord(%s)\n got %+v\nwant %+v", tc.raw, got, tc.want)
			}
			if got.End.Location() != time.UTC || got.Start.Location() != time.UTC {
				t.Errorf("times not in UTC: %v, %v", got.Start, got.End)
			}
		})
	}

	invalid := []struct {
		name, raw, reason string
	}{
		{"uuid missing", record("uuid", del), ReasonMissingUUID},
		{"uuid empty", record("uuid", `""`), ReasonMissingUUID},
		{"uuid blank", record("uuid", `"  "`), ReasonMissingUUID},
		{"uuid null", record("uuid", `null`), ReasonMissingUUID},
		{"uuid boolean", record("uuid", `true`), ReasonMalformed},
		{"uuid object", record("uuid", `{}`), ReasonMalformed},
		{"end_time missing", record("end_time", del), ReasonBadEndTime},
		{"end_time null", record("end_time", `null`), ReasonBadEndTime},
		{"end_time garbage", record("end_time", `"yesterday"`), ReasonBadEndTime},
		{"end_time number", record("end_time", `1514865730`), ReasonBadEndTime},
		{"end_time impossible date", record("end_time", `"2018-02-30T04:02:10Z"`), ReasonBadEndTime},
		{"end_time hour 24", record("end_time", `"2018-01-02 24:02:10"`), ReasonBadEndTime},
		{"end_time object", record("end_time", `{"t": 1}`), ReasonMalformed},
		{"start_time array", record("start_time", `[]`), ReasonMalformed},
		{"end before start", record("start_time", `"2018-01-02T04:02:11Z"`), ReasonEndBeforeStart},
		{"no start, no duration", record("start_time", del, "duration", del), ReasonNoLength},
		{"bad start, bad duration", record("start_time", `"x"`, "duration", `"soon"`), ReasonNoLength},
		{"no start, negative duration", record("start_time", del, "duration", `-3`), ReasonNoLength},
		{"duration boolean", record("duration", `true`), ReasonMalformed},
		{"participants negative", record("participants", `-1`), ReasonBadParticipants},
		{"participants fractional", record("participants", `1.5`), ReasonBadParticipants},
		{"participants text", record("participants", `"two"`), ReasonBadParticipants},
		{"participants huge", record("participants", `1e20`), ReasonTooManyParticipants},
		{"participants absurd", record("participants", `2147483647`), ReasonTooManyParticipants},
		{"participants absurd as text", record("participants", `"100001"`), ReasonTooManyParticipants},
		{"start in year 1", record("start_time", `"0001-01-01T00:00:00Z"`), ReasonTooLong},
		{"longer than 48h", record("start_time", `"2017-12-31T04:02:09Z"`), ReasonTooLong},
		{"duration longer than 48h", record("start_time", del, "duration", `"49小时"`), ReasonTooLong},
		{"participants object", record("participants", `{}`), ReasonMalformed},
		{"participants boolean", record("participants", `true`), ReasonMalformed},
		{"host boolean", record("host", `false`), ReasonMalformed},
		{"email array", record("email", `["a"]`), ReasonMalformed},
		{"malformed beats missing uuid", record("uuid", del, "end_time", `{}`), ReasonMalformed},
		{"array", `[1, 2]`, ReasonMalformed},
		{"string", `"record"`, ReasonMalformed},
		{"number", `5`, ReasonMalformed},
		{"null", `null`, ReasonMalformed},
		{"truncated", `{"uuid": "a", "end_time": `, ReasonMalformed},
		{"invalid JSON", `{"uuid" "a"}`, ReasonMalformed},
		{"trailing data", record() + ` x`, ReasonMalformed},
		{"two records", record() + record(), ReasonMalformed},
		{"empty", ``, ReasonMalformed},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := parseRecord([]byte(tc.raw), time.UTC)
			if reason != tc.reason {
				t.Errorf("parseRecord(%s): reason %q, want %q", tc.raw, reason, tc.reason)
			}
			if got != (Meeting{}) {
				t.Errorf("invalid record returned %+v, want a zero Meeting", got)
			}
		})
	}
}

// TestParseRecordStringsOwnMemory checks that strings in a Meeting do not
// alias the input, which the decoder reuses.
func TestParseRecordStringsOwnMemory(t *testing.T) {
	raw := []byte(record("host", `"owner"`, "user_type", `"Pro"`))
	m, reason := parseRecord(raw, time.UTC)
	if reason != "" {
		t.Fatal(reason)
	}
	for i := range raw {
		raw[i] = 'x'
	}
	if m.UUID != "jny6Sttx8NitKXw==" || m.Host != "owner" || m.UserType != "Pro" || m.Email != "test03@rfchina.com" {
		t.Errorf("strings changed with the input: %+v", m)
	}
}

func TestFeatureFields(t *testing.T) {
	want := map[string]Feature{"has_video": FeatureVideo, "has_screen_share": FeatureScreenShare, "has_voip": FeatureVoIP,
		"has_pstn": FeaturePSTN, "has_3rd_party_audio": FeatureThirdPartyAudio, "recording": FeatureRecording}
	for name, f := range want {
		if m, reason := parseRecord([]byte(record(name, "true")), time.UTC); reason != "" || m.Features != f {
			t.Errorf("%s true: features %v (%q), want %v", name, m.Features, reason, f)
		}
	}
}
