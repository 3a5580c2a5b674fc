package umeeting

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// decodeAnswer decodes one answer as a Client's first request does, with times
// without a zone in Asia/Shanghai and the default longest meeting.
func decodeAnswer(r io.Reader, from, to time.Time, sink Sink) (Envelope, error) {
	return newDecoder(shanghai, DefaultMaxMeetingLength).decode(r, from, to, sink)
}

// vendorSample is the vendor's published sample answer, its bracket repaired.
const vendorSample = `{
    "status": 200,
    "message": "OK",
    "data": [
        {"uuid": "jny6Sttx8NitKXw==", "id": 1376669196, "host": "test03 ", "email": "test03@rfchina.com",
         "user_type": "Corp", "start_time": "2018-01-02T03:53:18Z", "end_time": "2018-01-02T04:02:10Z",
         "duration": "9分钟", "participants": 2, "has_pstn": false, "has_voip": false,
         "has_3rd_party_audio": false, "has_video": false, "has_screen_share": false, "recording": 0},
        {"uuid": "kpSi6A4nTMUxctsQ==", "id": 1396312207, "host": "test03 ", "email": "test03@rfchina.com",
         "user_type": "Corp", "start_time": "2018-01-02T09:29:47Z", "end_time": "2018-01-02T09:31:27Z",
         "duration": "2分钟", "participants": 2, "has_pstn": false, "has_voip": false,
         "has_3rd_party_audio": false, "has_video": false, "has_screen_share": false, "recording": 0},
        {"uuid": "xqWWWA==", "id": 1397639071, "host": "test05 ", "email": "test05@rfchina.com",
         "user_type": "Corp", "start_time": "2018-01-03T02:47:21Z", "end_time": "2018-01-03T02:50:32Z",
         "duration": "4分钟", "participants": 2, "has_pstn": false, "has_voip": false,
         "has_3rd_party_audio": false, "has_video": false, "has_screen_share": false, "recording": 0}
    ]
}`

// recordFields are the fields of a test record, in the vendor's order, with
// the values of the vendor's first sample record.
var recordFields = [][2]string{
	{"uuid", `"jny6Sttx8NitKXw=="`}, {"id", `1376669196`}, {"host", `"test03 "`},
	{"email", `"test03@rfchina.com"`}, {"user_type", `"Corp"`},
	{"start_time", `"2018-01-02T03:53:18Z"`}, {"end_time", `"2018-01-02T04:02:10Z"`},
	{"duration", `"9分钟"`}, {"participants", `2`}, {"has_pstn", `false`}, {"has_voip", `false`},
	{"has_3rd_party_audio", `false`}, {"has_video", `false`}, {"has_screen_share", `false`}, {"recording", `0`},
}

// del marks a field to leave out in record.
const del = "<delete>"

// record returns a record JSON: the vendor's first sample with the given
// fields replaced by raw JSON values (del removes a field), alternating
// name, value. Unknown names are appended.
func record(kv ...string) string {
	over := map[string]string{}
	var order []string
	for i := 0; i+1 < len(kv); i += 2 {
		over[kv[i]] = kv[i+1]
		order = append(order, kv[i])
	}
	var parts []string
	seen := map[string]bool{}
	add := func(name, val string) {
		seen[name] = true
		if v, ok := over[name]; ok {
			val = v
		}
		if val != del {
			parts = append(parts, fmt.Sprintf("%q: %s", name, val))
		}
	}
	for _, f := range recordFields {
		add(f[0], f[1])
	}
	for _, name := range order {
		if !seen[name] {
			add(name, "")
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// meetingRecord is a valid record with the given uuid that ends at end.
func meetingRecord(uuid string, end time.Time) string {
	return record("uuid", fmt.Sprintf("%q", uuid),
		"start_time", fmt.Sprintf("%q", end.Add(-10*time.Minute).UTC().Format(time.RFC3339)),
		"end_time", fmt.Sprintf("%q", end.UTC().Format(time.RFC3339)))
}

// envelope builds an answer: status 200, "OK", the records, and extra raw
// top-level members (e.g. `"page_count": 3`).
func envelope(records []string, extra ...string) string {
	members := append([]string{`"status": 200`, `"message": "OK"`}, extra...)
	members = append(members, `"data": [`+strings.Join(records, ",\n")+`]`)
	return "{" + strings.Join(members, ", ") + "}"
}

// eventSink records what it is told, as "M uuid", "I reason", "commit" and
// "discard". It is safe for concurrent use.
type eventSink struct {
	mu       sync.Mutex
	events   []string
	meetings []Meeting
	invalid  []string
	raws     []string
}

func (s *eventSink) Meeting(m *Meeting) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, "M "+m.UUID)
	s.meetings = append(s.meetings, *m)
}

func (s *eventSink) Invalid(reason string, raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, "I "+reason)
	s.invalid = append(s.invalid, reason)
	s.raws = append(s.raws, string(raw))
}

func (s *eventSink) CommitPage() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, "commit")
}

func (s *eventSink) DiscardPage() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, "discard")
}

func (s *eventSink) uuids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.meetings {
		out = append(out, m.UUID)
	}
	return out
}

// countSink only counts.
type countSink struct{ meetings, invalid, commits, discards int }

func (s *countSink) Meeting(*Meeting)       { s.meetings++ }
func (s *countSink) Invalid(string, []byte) { s.invalid++ }
func (s *countSink) CommitPage()            { s.commits++ }
func (s *countSink) DiscardPage()           { s.discards++ }

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// parseRecord decodes raw as the only element of an answer, reading times
// without a zone in loc: a Meeting, or the reason it is invalid (malformed
// for anything that is not one JSON value).
func parseRecord(raw []byte, loc *time.Location) (Meeting, string) {
	if !json.Valid(raw) {
		return Meeting{}, ReasonMalformed
	}
	sink := &eventSink{}
	answer := `{"status": 200, "data": [` + string(raw) + `]}`
	if _, err := newDecoder(loc, DefaultMaxMeetingLength).decode(strings.NewReader(answer), time.Time{}, time.Time{}, sink); err != nil {
		return Meeting{}, ReasonMalformed // larger than maxValueBytes
	}
	if len(sink.invalid) > 0 {
		return Meeting{}, sink.invalid[0]
	}
	return sink.meetings[0], ""
}
