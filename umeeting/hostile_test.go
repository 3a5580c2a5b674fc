package umeeting

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRedirectToAnotherHost: an API (or a man in the middle) answering with
// a redirect to another host must never receive the credentials, whatever
// the method and redirect status; the poll fails with a clear error.
func TestRedirectToAnotherHost(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
			t.Run(fmt.Sprintf("%s %d", method, code), func(t *testing.T) {
				other := newFakeAPI(t, serve(envelope(nil))) // a second real server on 127.0.0.1
				api := newFakeAPI(t, func(_ int, req apiRequest, w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, other.url()+"?echo="+url.QueryEscape(strings.ToLower(url.QueryEscape(testSecret))), code)
				})
				c := newTestClient(t, api.url(), func(c *Config) { c.Method = method })
				err := c.fetchDay(context.Background(), &eventSink{})
				if err == nil || !strings.Contains(err.Error(), "the API redirected to another host (http://"+other.srv.Listener.Addr().String()+")") {
					t.Fatalf("err %v, want a refused redirect", err)
				}
				if n := len(other.requests()); n != 0 {
					t.Errorf("the other host got %d requests", n)
				}
				if fmt.Sprint(c.results) != "[http_error]" {
					t.Errorf("results %v, want one http_error and no retry", c.results)
				}
				for _, text := range []string{err.Error(), c.logs.String()} {
					if strings.Contains(strings.ToLower(text), "s3cr3t") || strings.Contains(text, "echo") {
						t.Errorf("secret or Location query shows in %q", text)
					}
				}
			})
		}
	}
}

// TestRedirectOnTheSameHost is followed (307 keeps the POST body).
func TestRedirectOnTheSameHost(t *testing.T) {
	var api *fakeAPI
	api = newFakeAPI(t, func(_ int, req apiRequest, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/moved" {
			http.Redirect(w, r, api.srv.URL+"/moved", http.StatusTemporaryRedirect)
			return
		}
		if req.params.Get("api_secret") != testSecret {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, envelope([]string{meetingRecord("u1", dayEnd)}))
	})
	c := newTestClient(t, api.url(), nil)
	sink := &eventSink{}
	if err := c.fetchDay(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.uuids(), " "); got != "u1" || len(api.requests()) != 2 {
		t.Errorf("meetings %q after %d requests, want u1 after 2", got, len(api.requests()))
	}
}

// TestEscapedSecretsAreRedacted: an API that echoes the secret in an
// escaped form (JSON \u escapes of either case, percent-encoding of either
// case, + for a space) never gets it into an error or a log line.
func TestEscapedSecretsAreRedacted(t *testing.T) {
	const secret = "S3cr3t-acme x/y+z="
	u := func(s string) string { // every character as a \u escape, .NET style
		var b strings.Builder
		for _, r := range s {
			fmt.Fprintf(&b, `\u%04X`, r)
		}
		return b.String()
	}
	forms := map[string]string{
		"JSON escapes":         strings.ReplaceAll(secret, "-", `\u002d`),
		"JSON escapes, upper":  u(secret),
		"percent, lower":       lowerHex(url.PathEscape(secret)),
		"percent, upper":       url.PathEscape(secret),
		"form encoding":        url.QueryEscape(secret),
		"form, lower percent":  lowerHex(url.QueryEscape(secret)),
		"plus for the space":   strings.ReplaceAll(secret, " ", "+"),
		"JSON escaped percent": strings.ReplaceAll(url.QueryEscape(secret), "%", `\u0025`),
	}
	for name, echo := range forms {
		for _, where := range []string{"HTTP 400 body", "envelope message", "error object"} {
			t.Run(name+" in "+where, func(t *testing.T) {
				api := newFakeAPI(t, func(_ int, _ apiRequest, w http.ResponseWriter, _ *http.Request) {
					switch where {
					case "HTTP 400 body":
						w.WriteHeader(http.StatusBadRequest)
						fmt.Fprintf(w, `{"error": "invalid api_secret %s"}`, echo)
					case "envelope message":
						fmt.Fprintf(w, `{"status": 401, "message": "invalid api_secret %s"}`, echo)
					default:
						fmt.Fprintf(w, `{"error": {"code": 124, "message": "invalid api_secret %s"}}`, echo)
					}
				})
				c := newTestClient(t, api.url(), func(c *Config) { c.APISecret = secret })
				err := c.fetchDay(context.Background(), &eventSink{})
				if err == nil || !strings.Contains(err.Error(), "invalid api_secret <secret>") {
					t.Fatalf("err %v, want the secret shown as <secret>", err)
				}
				for _, text := range []string{err.Error(), c.logs.String()} {
					for _, part := range []string{"S3cr3t", "s3cr3t", "cr3t"} {
						if strings.Contains(text, part) {
							t.Errorf("%q shows in %q", part, text)
						}
					}
				}
			})
		}
	}
}

// lowerHex writes the hex digits of percent escapes in lower case.
func lowerHex(s string) string {
	return regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(s, strings.ToLower)
}

// TestHTTPErrorBodyIsBoundedSnippet: a huge error page is not logged whole.
func TestHTTPErrorBodyIsBoundedSnippet(t *testing.T) {
	api := newFakeAPI(t, func(_ int, _ apiRequest, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"message": "caf\u00e9 `+strings.Repeat("x", 10000)+`"}`)
	})
	c := newTestClient(t, api.url(), nil)
	err := c.fetchDay(context.Background(), &eventSink{})
	if err == nil || !strings.Contains(err.Error(), `HTTP 400 Bad Request: "{\"message\": \"café xxx`) || len(err.Error()) > 300 {
		t.Fatalf("err %v (%d bytes), want a short decoded snippet", err, len(errText(err)))
	}
}

// TestPageBomb: an answer that claims 100,000 pages and ignores page_number
// costs two requests (the second repeats the first), not the daily budget.
func TestPageBomb(t *testing.T) {
	bomb := envelope([]string{meetingRecord("a", dayEnd), meetingRecord("b", dayEnd)}, `"page_count": 100000`)
	api := newFakeAPI(t, serve(bomb))
	c := newTestClient(t, api.url(), nil)
	sink := &eventSink{}
	if err := c.fetchDay(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	if n := len(api.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if !strings.Contains(c.logs.String(), "paging stopped") {
		t.Errorf("no log line says why paging stopped: %s", c.logs.String())
	}
}

// TestTotalRecordsWithoutPaging: an API that sends total_records but
// answers everything at once costs one request.
func TestTotalRecordsWithoutPaging(t *testing.T) {
	all := envelope([]string{meetingRecord("a", dayEnd), meetingRecord("b", dayEnd), meetingRecord("c", dayEnd)},
		`"total_records": 3`, `"page_size": 1`)
	api := newFakeAPI(t, serve(all))
	c := newTestClient(t, api.url(), func(c *Config) { c.PageSize = 1 })
	sink := &eventSink{}
	if err := c.fetchDay(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	if n := len(api.requests()); n != 1 || len(sink.meetings) != 3 {
		t.Errorf("%d requests, %d meetings; want 1 and 3", n, len(sink.meetings))
	}
}

// TestPageCapFollowsTotalRecords: max_pages does not cut an answer whose
// total_records needs more pages (a 1,000,004-record window at 100 a page
// needs 10,001); here 7 records at one a page with a cap of 3.
func TestPageCapFollowsTotalRecords(t *testing.T) {
	api := newFakeAPI(t, pagedAnswer(7, func(int, apiRequest) []string { return []string{`"total_records": 7`} }))
	c := newTestClient(t, api.url(), func(c *Config) { c.MaxPages = 3 })
	sink := &eventSink{}
	if err := c.fetchDay(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	if n := len(api.requests()); n != 7 || len(sink.meetings) != 7 {
		t.Errorf("%d requests, %d meetings; want 7 and 7", n, len(sink.meetings))
	}
}

// TestPagingCountsRecordsReceived: with page_size 500 sent and an API that
// caps pages at 100 without saying so, paging by total_records reads all
// 250 records.
func TestPagingCountsRecordsReceived(t *testing.T) {
	api := newFakeAPI(t, func(_ int, req apiRequest, w http.ResponseWriter, _ *http.Request) {
		var page int
		fmt.Sscan(req.params.Get("page_number"), &page)
		var recs []string
		for i := (page - 1) * 100; i < min(page*100, 250); i++ {
			recs = append(recs, meetingRecord(fmt.Sprint("m", i), dayEnd))
		}
		io.WriteString(w, envelope(recs, `"total_records": 250`))
	})
	c := newTestClient(t, api.url(), func(c *Config) { c.PageSize = 500 })
	sink := &eventSink{}
	if err := c.fetchDay(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	if n := len(api.requests()); n != 3 || len(sink.meetings) != 250 {
		t.Errorf("%d requests, %d meetings; want 3 and 250", n, len(sink.meetings))
	}
}

// TestMaxMeetingLength: records longer than the account's maximum are
// invalid with their own reason, and the requests reach back that far
// before the window, for an API that lists meetings by their start date.
func TestMaxMeetingLength(t *testing.T) {
	from, to := mustTime("2026-11-18T00:00:00Z"), mustTime("2026-11-18T12:00:00Z")
	long := record("uuid", `"long"`, "start_time", `"2026-11-16T12:00:00Z"`, "end_time", `"2026-11-18T10:00:00Z"`) // 46h
	api := newFakeAPI(t, func(_ int, req apiRequest, w http.ResponseWriter, _ *http.Request) {
		var recs []string
		if req.params.Get("from") <= "2026-11-16" { // listed under its start day
			recs = append(recs, long)
		}
		io.WriteString(w, envelope(recs))
	})
	for _, tc := range []struct {
		maxLength time.Duration
		from      string // of the first request
		events    string
	}{
		{0, "2026-11-15", "M long,commit"}, // the default, 48h
		{24 * time.Hour, "2026-11-16", "I too_long,commit"},
	} {
		c := newTestClient(t, api.url(), func(c *Config) { c.MaxLength = tc.maxLength })
		sink := &eventSink{}
		if err := c.Fetch(context.Background(), from, to, sink); err != nil {
			t.Fatal(err)
		}
		reqs := api.requests()
		if got := reqs[len(reqs)-1].params.Get("from"); got != tc.from || strings.Join(sink.events, ",") != tc.events {
			t.Errorf("max length %v: first request from %s, events %v; want %s, %s", tc.maxLength, got, sink.events, tc.from, tc.events)
		}
	}
}
