package umeeting

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/umeetingtest"
)

func decodeString(t *testing.T, body string) (*eventSink, Envelope, error) {
	t.Helper()
	sink := &eventSink{}
	env, err := decodeAnswer(strings.NewReader(body), time.Time{}, time.Time{}, sink)
	return sink, env, err
}

func TestDecodeVendorSample(t *testing.T) {
	sink, env, err := decodeString(t, vendorSample)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"jny6Sttx8NitKXw==", "kpSi6A4nTMUxctsQ==", "xqWWWA=="}
	if got := sink.uuids(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("uuids %v, want %v", got, want)
	}
	if env.Status != 200 || env.Message != "OK" || env.Records != 3 || env.Delivered != 3 || !env.HasStatus || !env.HasData {
		t.Errorf("envelope %+v", env)
	}
	if m := sink.meetings[0]; m.Host != "test03" || m.Length() != 8*time.Minute+52*time.Second {
		t.Errorf("first meeting %+v", m)
	}
	// The document as published closes data with '}': that is not JSON.
	published := strings.Replace(vendorSample, "0}\n    ]\n}", "0}\n    }\n}", 1)
	if _, _, err := decodeString(t, published); err == nil || !strings.Contains(err.Error(), "invalid JSON at byte") {
		t.Errorf("published sample: err %v, want invalid JSON", err)
	}
}

func TestDecodeEnvelopes(t *testing.T) {
	rec := record()
	tests := []struct {
		name    string
		body    string
		records int
		want    Envelope // compared on status, message and paging fields
	}{
		{"data before status", `{"data": [` + rec + `], "message": "OK", "status": 200}`, 1,
			Envelope{Status: 200, Message: "OK"}},
		{"status as string", `{"status": " 200 ", "data": [` + rec + `]}`, 1, Envelope{Status: 200}},
		{"status as float", `{"status": 200.0, "data": []}`, 0, Envelope{Status: 200}},
		{"data null", `{"status": 200, "message": "OK", "data": null}`, 0, Envelope{Status: 200, Message: "OK"}},
		{"data without status", `{"data": [` + rec + `]}`, 1, Envelope{}},
		{"status without data", `{"status": 200}`, 0, Envelope{Status: 200}},
		{"extra keys", `{"x": {"a": [1, {"b": null}]}, "status": 200, "y": "z", "data": [` + rec + `], "z": [true]}`, 1,
			Envelope{Status: 200}},
		{"escaped keys", `{"st\u0061tus": 200, "d\u0061ta": [` + rec + `, ` + rec + `]}`, 2, Envelope{Status: 200}},
		{"paging fields", `{"status": 200, "page_count": 3, "page_number": "2", "page_size": 100, "total_records": 250,
			"next_page_token": "abc", "data": [` + rec + `]}`, 1,
			Envelope{Status: 200, PageCount: 3, TotalRecords: 250, NextPageToken: "abc"}},
		{"unreadable paging fields", `{"status": 200, "page_count": "many", "total_records": {}, "data": []}`, 0,
			Envelope{Status: 200}},
		{"error null", `{"status": 200, "error": null, "data": []}`, 0, Envelope{Status: 200}},
		{"error 0", `{"status": 200, "error": 0, "data": []}`, 0, Envelope{Status: 200}},
		{"error 0.0", `{"error": 0.0, "data": []}`, 0, Envelope{}},
		{"error false", `{"status": 200, "error": false, "data": []}`, 0, Envelope{Status: 200}},
		{"error empty", `{"status": 200, "error": "", "data": []}`, 0, Envelope{Status: 200}},
		{"error empty object", `{"status": 200, "error": {}, "data": []}`, 0, Envelope{Status: 200}},
		{"byte order mark", "\xef\xbb\xbf" + `{"status": 200, "data": [` + rec + `]}`, 1, Envelope{Status: 200}},
		{"white space around", " \r\n\t" + `{ "status" : 200 , "data" : [ ` + rec + ` ] }` + "\n\n", 1, Envelope{Status: 200}},
		{"non-record elements", `{"status": 200, "data": [1, "x", null, [], ` + rec + `]}`, 5, Envelope{Status: 200}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink, env, err := decodeString(t, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if env.Records != tc.records || env.Delivered != tc.records || len(sink.meetings)+len(sink.invalid) != tc.records {
				t.Errorf("records %d, delivered %d, sink %d+%d; want %d", env.Records, env.Delivered,
					len(sink.meetings), len(sink.invalid), tc.records)
			}
			got := env
			got.HasStatus, got.HasData, got.Records, got.Delivered = false, false, 0, 0
			if got != tc.want {
				t.Errorf("envelope %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	rec := record()
	big := `{"status": 200, "data": [{"uuid": "` + strings.Repeat("a", maxValueBytes) + `"}]}`
	tests := []struct {
		name      string
		body      string
		err       string // in the error text
		delivered int
		api       bool // an *APIError
	}{
		{"empty", ``, "empty body", 0, false},
		{"only white space", " \n\t ", "empty body", 0, false},
		{"HTML", "<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "HTML page instead of JSON", 0, false},
		{"HTML after space", "\n  <html>", "HTML page instead of JSON", 0, false},
		{"JSON array", `[` + rec + `]`, "answer is a JSON array, not an object", 0, false},
		{"plain text", `Service Unavailable`, `answer is not a JSON object (starts with "Service Unavailable")`, 0, false},
		{"null", `null`, "answer is not a JSON object", 0, false},
		{"truncated in data", `{"status": 200, "data": [` + rec[:100], "truncated JSON: the answer ends after", 0, false},
		{"truncated after record", `{"status": 200, "data": [` + rec + `, `, "truncated JSON", 1, false},
		{"truncated before end", `{"status": 200, "data": [` + rec + `]`, "truncated JSON", 1, false},
		{"truncated in key", `{"sta`, "truncated JSON", 0, false},
		{"garbage", `{"status": 200, "data": [` + rec + `, @]}`, `invalid JSON at byte`, 1, false},
		{"missing comma", `{"status": 200 "data": []}`, `invalid JSON at byte 15`, 0, false},
		{"trailing comma", `{"status": 200, "data": [],}`, `invalid JSON`, 0, false},
		{"trailing comma in data", `{"status": 200, "data": [` + rec + `,]}`, `invalid JSON`, 1, false},
		{"trailing garbage", `{"status": 200, "data": []} {"status": 200}`, "unexpected data after the JSON answer, which ends at byte 27", 0, false},
		{"status 500", `{"status": 500, "message": "internal error", "data": []}`, `API status 500: "internal error"`, 0, true},
		{"status as text 401", `{"status": "401", "message": "Invalid api_secret"}`, `API status 401: "Invalid api_secret"`, 0, true},
		{"status not a number", `{"status": "OK", "data": []}`, `envelope status "OK" is not a number`, 0, false},
		{"bad status after data", `{"data": [` + rec + `, ` + rec + `], "status": 429, "message": "too many requests"}`,
			`API status 429: "too many requests"`, 2, true},
		{"bad status before data", `{"status": 503, "data": [` + rec + `], "message": "busy"}`, `API status 503: "busy"`, 0, true},
		{"zoom error", `{"error": {"code": 124, "message": "Invalid api key."}}`, `API error 124: "Invalid api key."`, 0, true},
		{"zoom error with status 200", `{"status": 200, "error": {"code": 300, "message": "Invalid date"}, "data": [` + rec + `]}`,
			`API error 300: "Invalid date"`, 0, true},
		{"error string", `{"error": "Unauthorized"}`, `API error 0: "Unauthorized"`, 0, true},
		{"error 1", `{"error": 1, "data": []}`, `API error 0: "1"`, 0, true},
		{"neither status nor data", `{"message": "OK"}`, "answer has neither status nor data", 0, false},
		{"empty object", `{}`, "answer has neither status nor data", 0, false},
		{"data is an object", `{"status": 200, "data": {"uuid": "x"}}`, "data is an object, not an array", 0, false},
		{"data is a string", `{"status": 200, "data": "none"}`, "data is a string, not an array", 0, false},
		{"record too large", big, "is larger than 1048576 bytes", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink, env, err := decodeString(t, tc.body)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want it to contain %q", err, tc.err)
			}
			var apiErr *APIError
			if errors.As(err, &apiErr) != tc.api {
				t.Errorf("err %v (%T): APIError %v, want %v", err, err, !tc.api, tc.api)
			}
			if env.Delivered != tc.delivered || len(sink.events) != tc.delivered {
				t.Errorf("delivered %d (sink %v), want %d", env.Delivered, sink.events, tc.delivered)
			}
		})
	}
}

func TestDecodeReadError(t *testing.T) {
	boom := errors.New("connection reset by peer")
	body := io.MultiReader(strings.NewReader(`{"status": 200, "data": [`+record()+`, `), iotest.ErrReader(boom))
	sink := &eventSink{}
	env, err := decodeAnswer(body, time.Time{}, time.Time{}, sink)
	var re *readError
	if !errors.Is(err, boom) || !errors.As(err, &re) {
		t.Fatalf("err %v, want a read error wrapping %v", err, boom)
	}
	if env.Delivered != 1 {
		t.Errorf("delivered %d, want 1", env.Delivered)
	}
}

func TestDecodeFiltersByEndTime(t *testing.T) {
	from, to := mustTime("2026-11-20T10:00:00Z"), mustTime("2026-11-20T12:00:00Z")
	records := []string{
		meetingRecord("before", from.Add(-time.Second)),
		meetingRecord("at-from", from),
		meetingRecord("inside", from.Add(time.Hour)),
		meetingRecord("at-to", to),
		meetingRecord("after", to.Add(time.Second)),
		record("uuid", `"broken"`, "end_time", del),
	}
	sink := &eventSink{}
	env, err := decodeAnswer(strings.NewReader(envelope(records)), from, to, sink)
	if err != nil {
		t.Fatal(err)
	}
	want := "M at-from,M inside,M at-to,I bad_end_time"
	if got := strings.Join(sink.events, ","); got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	if env.Records != 6 || env.Delivered != 4 {
		t.Errorf("records %d delivered %d, want 6 and 4", env.Records, env.Delivered)
	}
	if sink.raws[0] != records[5] { // as written: its hash identifies it across polls and releases
		t.Errorf("invalid raw %s, want %s", sink.raws[0], records[5])
	}
}

// TestDecodeSmallReads decodes the same answer through readers that cut it
// everywhere, which must not change anything.
func TestDecodeSmallReads(t *testing.T) {
	var answer bytes.Buffer
	start := mustTime("2026-11-20T00:00:00Z")
	if err := umeetingtest.WriteAnswer(&answer, 300, start); err != nil {
		t.Fatal(err)
	}
	// Escapes, odd records and numbers cut at buffer ends, too.
	body := strings.Replace(answer.String(), `"data": [`, `"d\u0061ta": [1, -2.5e3, "x\u00e9\\\"y", {"uuid": null}, `, 1)
	body = strings.Replace(body, `"status": 200`, `"status": 200, "page_count": 12345`, 1)
	body = strings.Replace(body, "\n    ]\n}", ",\n\t{\"uuid\" :  \"late\" }\n    ]\n}", 1) // after 100 KiB
	ref, refEnv, err := decodeString(t, body)
	if err != nil {
		t.Fatal(err)
	}
	if len(ref.meetings) != 300 || len(ref.invalid) != 5 || refEnv.PageCount != 12345 {
		t.Fatalf("reference decode: %d meetings, %d invalid, envelope %+v", len(ref.meetings), len(ref.invalid), refEnv)
	}
	if got, want := strings.Join(ref.raws, " "), `1 -2.5e3 "x\u00e9\\\"y" {"uuid": null} {"uuid" :  "late" }`; got != want {
		t.Fatalf("invalid elements handed over as %s, want them as written: %s", got, want)
	}
	readers := map[string]func(io.Reader) io.Reader{
		"one byte":    iotest.OneByteReader,
		"half":        iotest.HalfReader,
		"data+err":    iotest.DataErrReader,
		"timeout":     func(r io.Reader) io.Reader { return iotest.TimeoutReader(iotest.OneByteReader(r)) },
		"uneven 7":    func(r io.Reader) io.Reader { return &chunkReader{r: r, size: 7} },
		"uneven 4099": func(r io.Reader) io.Reader { return &chunkReader{r: r, size: 4099} },
	}
	for name, wrap := range readers {
		t.Run(name, func(t *testing.T) {
			sink := &eventSink{}
			env, err := decodeAnswer(wrap(strings.NewReader(body)), time.Time{}, time.Time{}, sink)
			if name == "timeout" { // the second read fails
				if !errors.Is(err, iotest.ErrTimeout) {
					t.Fatalf("err %v, want %v", err, iotest.ErrTimeout)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if env != refEnv || strings.Join(sink.events, ",") != strings.Join(ref.events, ",") ||
				strings.Join(sink.raws, ",") != strings.Join(ref.raws, ",") {
				t.Errorf("differs from the one-read decode: %+v vs %+v", env, refEnv)
			}
			for i := range sink.meetings {
				if sink.meetings[i] != ref.meetings[i] {
					t.Fatalf("meeting %d: %+v, want %+v", i, sink.meetings[i], ref.meetings[i])
				}
			}
		})
	}
}

// chunkReader returns at most size bytes per read.
type chunkReader struct {
	r    io.Reader
	size int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.size)]) }

// TestDecodeGeneratedAnswer checks umeetingtest.WriteAnswer's promises.
func TestDecodeGeneratedAnswer(t *testing.T) {
	start := mustTime("2026-11-20T00:00:00Z")
	var answer bytes.Buffer
	if err := umeetingtest.WriteAnswer(&answer, 1000, start); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(answer.Bytes()) {
		t.Fatal("generated answer is not JSON")
	}
	if per := answer.Len() / 1000; per < 330 || per > 430 {
		t.Errorf("%d bytes per record, want about 370-400", per)
	}
	sink := &eventSink{}
	if _, err := decodeAnswer(&answer, start, start.Add(umeetingtest.Span), sink); err != nil {
		t.Fatal(err)
	}
	uuids, hosts, types := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, m := range sink.meetings {
		uuids[m.UUID], hosts[m.Email], types[m.UserType] = true, true, true
	}
	if len(sink.meetings) != 1000 || len(uuids) != 1000 || len(hosts) != umeetingtest.Hosts || len(types) != len(umeetingtest.UserTypes) {
		t.Errorf("%d meetings, %d uuids, %d hosts, %d user types", len(sink.meetings), len(uuids), len(hosts), len(types))
	}
}

// TestDecodeDepthLimit checks that the decoder and encoding/json agree on
// the nesting limit, and that deep nesting neither crashes nor is accepted
// past it.
func TestDecodeDepthLimit(t *testing.T) {
	for _, depth := range []int{9998, 9999} { // the envelope and data array count too
		deep := `{"status": 200, "data": [` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `]}`
		_, env, err := decodeString(t, deep)
		if got, want := err == nil, json.Valid([]byte(deep)); got != want {
			t.Errorf("depth %d: decoder accepts %v (%v), encoding/json %v", depth, got, err, want)
		}
		if err == nil && env.Records != 1 {
			t.Errorf("depth %d: %d records", depth, env.Records)
		}
	}
}

// TestDecodeZonelessTimes: times without a zone are read in the account's
// zone; those with Z or an offset stay as written.
func TestDecodeZonelessTimes(t *testing.T) {
	want := mustTime("2026-11-20T04:02:10Z")
	for _, end := range []string{"2026-11-20 12:02:10", "2026-11-20T12:02:10", "2026-11-20T04:02:10Z",
		"2026-11-20T12:02:10+08:00", "2026-11-20 04:02:10Z", " 2026-11-20T12:02:10 "} {
		body := envelope([]string{record("uuid", `"u"`, "start_time", del, "duration", `"9分钟"`, "end_time", `"`+end+`"`)})
		sink := &eventSink{}
		if _, err := newDecoder(shanghai, time.Hour).decode(strings.NewReader(body), time.Time{}, time.Time{}, sink); err != nil {
			t.Fatal(err)
		}
		if len(sink.meetings) != 1 || !sink.meetings[0].End.Equal(want) || sink.meetings[0].End.Location() != time.UTC {
			t.Errorf("end_time %q: %+v, want %v", end, sink.meetings, want)
		}
	}
	// The same text in another account's zone is another instant.
	m, reason := parseRecord([]byte(record("end_time", `"2018-01-02 04:02:10"`)), time.FixedZone("UTC-5", -5*3600))
	if reason != "" || !m.End.Equal(mustTime("2018-01-02T09:02:10Z")) {
		t.Errorf("in UTC-5: %v %q", m.End, reason)
	}
}
