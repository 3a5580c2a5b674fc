package umeeting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/umeeting/umeeting_exporter/budget"
)

const (
	testKey    = "key-7f3a9c"
	testSecret = "s3cr3t+P/a55=w0rd" // characters that URL-encoding changes
)

// apiRequest is what the fake API received.
type apiRequest struct {
	method, contentType, userAgent, accept string
	rawQuery, body                         string
	params                                 url.Values // query and form together
}

// fakeAPI is a hisMeeting server on 127.0.0.1 answering with respond,
// which gets the 0-based number of the request.
type fakeAPI struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []apiRequest
	respond func(n int, req apiRequest, w http.ResponseWriter, r *http.Request)
}

func newFakeAPI(t *testing.T, respond func(n int, req apiRequest, w http.ResponseWriter, r *http.Request)) *fakeAPI {
	t.Helper()
	api := &fakeAPI{respond: respond}
	api.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := apiRequest{
			method: r.Method, contentType: r.Header.Get("Content-Type"), userAgent: r.UserAgent(),
			accept: r.Header.Get("Accept"), rawQuery: r.URL.RawQuery, body: string(body), params: r.URL.Query(),
		}
		if form, err := url.ParseQuery(string(body)); err == nil {
			for k, v := range form {
				req.params[k] = v
			}
		}
		api.mu.Lock()
		n := len(api.reqs)
		api.reqs = append(api.reqs, req)
		api.mu.Unlock()
		api.respond(n, req, w, r)
	}))
	t.Cleanup(api.srv.Close)
	return api
}

// serve answers every request with the bodies in turn (the last repeats).
func serve(bodies ...string) func(int, apiRequest, http.ResponseWriter, *http.Request) {
	return func(n int, _ apiRequest, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, bodies[min(n, len(bodies)-1)])
	}
}

func (a *fakeAPI) requests() []apiRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]apiRequest(nil), a.reqs...)
}

func (a *fakeAPI) url() string { return a.srv.URL + "/umeeting/share/hisMeeting" }

// testClient is a Client whose retries wait for nothing: the waits are
// recorded instead, and so are the results of its requests.
type testClient struct {
	*Client
	mu      sync.Mutex
	results []string
	waits   []time.Duration
	logs    bytes.Buffer
}

func newTestClient(t *testing.T, rawURL string, change func(*Config)) *testClient {
	t.Helper()
	tc := &testClient{}
	cfg := Config{
		Account: "acme", URL: rawURL, APIKey: testKey, APISecret: testSecret,
		Location: time.UTC, Timeout: 5 * time.Second, MaxRetries: 2, RetryBackoff: time.Millisecond,
		MaxLength: time.Hour, // the period of fetchDay stays 2026-11-19..2026-11-21
		Logger:    log.NewLogfmtLogger(log.NewSyncWriter(&tc.logs)),
		OnRequest: func(result string) {
			tc.mu.Lock()
			defer tc.mu.Unlock()
			tc.results = append(tc.results, result)
		},
	}
	if change != nil {
		change(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		tc.mu.Lock()
		defer tc.mu.Unlock()
		tc.waits = append(tc.waits, d)
		return ctx.Err()
	}
	tc.Client = c
	return tc
}

// fetchDay fetches 2026-11-20 10:00..12:00 UTC: one request for
// 2026-11-19..2026-11-21.
func (tc *testClient) fetchDay(ctx context.Context, sink Sink) error {
	return tc.Fetch(ctx, mustTime("2026-11-20T10:00:00Z"), mustTime("2026-11-20T12:00:00Z"), sink)
}

var dayEnd = mustTime("2026-11-20T11:00:00Z") // inside fetchDay's period

const dayPrefix = "account acme: hisMeeting 2026-11-19..2026-11-21 page 1: "

func TestNewValidates(t *testing.T) {
	base := Config{Account: "acme", URL: "https://api.example.com/umeeting/share/hisMeeting", APIKey: "k", APISecret: "s"}
	tests := []struct {
		name   string
		change func(*Config)
		err    string
	}{
		{"unparsable URL", func(c *Config) { c.URL = "http://exa mple.com/%zz?api_secret=s" }, "invalid url"},
	}
	for _, tc := range tests {
		cfg := base
		tc.change(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "account acme: ") {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
		}
	}
	c, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	got := c.cfg
	if got.Method != http.MethodPost || got.Location.String() != "Asia/Shanghai" || got.PageSize != 100 ||
		got.Timeout != 30*time.Second || got.MaxRetries != 3 || got.RetryBackoff != time.Second ||
		got.MaxBodyBytes != 256<<20 || got.HTTPClient == nil || got.Logger == nil {
		t.Errorf("defaults not applied: %+v", got)
	}
	for _, m := range []string{"get", "GET"} {
		cfg := base
		cfg.Method, cfg.MaxRetries = m, -1
		if c, err := New(cfg); err != nil || c.cfg.Method != http.MethodGet || c.cfg.MaxRetries != 0 {
			t.Errorf("method %q, retries -1: %v %+v", m, err, c)
		}
	}
}

func TestFetchSendsParameters(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			api := newFakeAPI(t, serve(envelope([]string{meetingRecord("u1", dayEnd)})))
			c := newTestClient(t, api.url()+"?tenant=7", func(c *Config) { c.Method = method; c.PageSize = 50 })
			sink := &eventSink{}
			if err := c.fetchDay(context.Background(), sink); err != nil {
				t.Fatal(err)
			}
			reqs := api.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			want := map[string]string{
				"api_key": testKey, "api_secret": testSecret, "from": "2026-11-19", "to": "2026-11-21",
				"page_size": "50", "page_number": "1", "tenant": "7", "next_page_token": "",
			}
			for k, v := range want {
				if got := r.params.Get(k); got != v {
					t.Errorf("parameter %s = %q, want %q", k, got, v)
				}
			}
			if r.method != method || r.userAgent != "umeeting_exporter" || r.accept != "application/json" {
				t.Errorf("method %s, User-Agent %q, Accept %q", r.method, r.userAgent, r.accept)
			}
			secretInQuery := strings.Contains(r.rawQuery, "api_secret")
			secretInBody := strings.Contains(r.body, "api_secret")
			if method == http.MethodPost {
				if secretInQuery || !secretInBody || r.contentType != "application/x-www-form-urlencoded" {
					t.Errorf("POST: query %q, body %q, content type %q", r.rawQuery, r.body, r.contentType)
				}
			} else if !secretInQuery || r.body != "" {
				t.Errorf("GET: query %q, body %q", r.rawQuery, r.body)
			}
			if strings.Join(sink.events, ",") != "M u1,commit" {
				t.Errorf("events %v", sink.events)
			}
		})
	}
}

func TestFetchDatesAndFilter(t *testing.T) {
	tests := []struct {
		name             string
		loc              *time.Location
		from, to         string
		wantFrom, wantTo string
	}{
		// 15:30 UTC is 23:30 in Shanghai; 16:30 UTC is 00:30 the next day.
		{"Shanghai", nil, "2026-11-20T15:30:00Z", "2026-11-20T16:30:00Z", "2026-11-19", "2026-11-22"},
		{"UTC", time.UTC, "2026-11-20T15:30:00Z", "2026-11-20T16:30:00Z", "2026-11-19", "2026-11-21"},
		{"Shanghai, same day", nil, "2026-11-20T01:00:00Z", "2026-11-20T02:00:00Z", "2026-11-19", "2026-11-21"},
		{"year boundary", time.UTC, "2026-12-31T10:00:00Z", "2027-01-01T00:00:00Z", "2026-12-30", "2027-01-02"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from, to := mustTime(tc.from), mustTime(tc.to)
			records := []string{
				meetingRecord("before", from.Add(-time.Second)),
				meetingRecord("at-from", from),
				meetingRecord("inside", from.Add(time.Minute)),
				meetingRecord("at-to", to),
				meetingRecord("after", to.Add(time.Second)),
				record("uuid", `"no-end"`, "end_time", del),
			}
			api := newFakeAPI(t, serve(envelope(records)))
			c := newTestClient(t, api.url(), func(c *Config) { c.Location = tc.loc })
			sink := &eventSink{}
			if err := c.Fetch(context.Background(), from, to, sink); err != nil {
				t.Fatal(err)
			}
			reqs := api.requests()
			if len(reqs) != 1 || reqs[0].params.Get("from") != tc.wantFrom || reqs[0].params.Get("to") != tc.wantTo {
				t.Fatalf("requests %+v, want one for %s..%s", reqs, tc.wantFrom, tc.wantTo)
			}
			if got, want := strings.Join(sink.events, ","), "M at-from,M inside,M at-to,I bad_end_time,commit"; got != want {
				t.Errorf("events %s, want %s", got, want)
			}
		})
	}
}

func TestFetchRejectsReversedPeriod(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1/x", nil)
	err := c.Fetch(context.Background(), dayEnd, dayEnd.Add(-time.Hour), &eventSink{})
	if err == nil || !strings.Contains(err.Error(), "is before from") {
		t.Errorf("err %v", err)
	}
}

func TestFetchSplitsMonths(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		want     []string // from..to of each request
	}{
		{"45 days", "2026-01-10T12:00:00Z", "2026-02-24T12:00:00Z",
			[]string{"2026-01-09..2026-02-08", "2026-02-08..2026-02-25"}},
		{"from the 31st", "2026-02-01T12:00:00Z", "2026-03-20T12:00:00Z",
			[]string{"2026-01-31..2026-02-27", "2026-02-27..2026-03-21"}},
		{"exactly a month", "2026-03-02T12:00:00Z", "2026-03-30T12:00:00Z",
			[]string{"2026-03-01..2026-03-31"}},
		{"100 days", "2026-01-01T00:00:00Z", "2026-04-11T00:00:00Z",
			// The reach goes back MaxLength (an hour here) before from.
			[]string{"2025-12-30..2026-01-29", "2026-01-29..2026-02-27", "2026-02-27..2026-03-26", "2026-03-26..2026-04-12"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t, serve(envelope(nil)))
			c := newTestClient(t, api.url(), nil)
			if err := c.Fetch(context.Background(), mustTime(tc.from), mustTime(tc.to), &eventSink{}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, r := range api.requests() {
				a, _ := time.Parse(dateLayout, r.params.Get("from"))
				b, _ := time.Parse(dateLayout, r.params.Get("to"))
				if b.After(a.AddDate(0, 1, -1)) || b.After(a.AddDate(0, 0, 30)) {
					t.Errorf("request %d spans %s..%s: more than a month", i, a.Format(dateLayout), b.Format(dateLayout))
				}
				got = append(got, r.params.Get("from")+".."+r.params.Get("to"))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("requests %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMonthEnd(t *testing.T) {
	for from, want := range map[string]string{
		"2026-01-01": "2026-01-31", "2026-01-15": "2026-02-14", "2026-01-30": "2026-02-27",
		"2026-01-31": "2026-02-27", "2028-01-31": "2028-02-28", "2026-02-28": "2026-03-27",
		"2026-12-15": "2027-01-14", "2026-03-31": "2026-04-29",
	} {
		a, _ := time.Parse(dateLayout, from)
		if got := monthEnd(a).Format(dateLayout); got != want {
			t.Errorf("monthEnd(%s) = %s, want %s", from, got, want)
		}
	}
}

// pagedAnswer answers page n (1-based) with one record "p<n>" and the extra
// members extra(n); pages past last are empty.
func pagedAnswer(last int, extra func(page int, req apiRequest) []string) func(int, apiRequest, http.ResponseWriter, *http.Request) {
	return func(_ int, req apiRequest, w http.ResponseWriter, _ *http.Request) {
		var page int
		fmt.Sscan(req.params.Get("page_number"), &page)
		var recs []string
		if page <= last {
			recs = []string{meetingRecord(fmt.Sprintf("p%d", page), dayEnd)}
		}
		io.WriteString(w, envelope(recs, extra(page, req)...))
	}
}

func TestFetchPaging(t *testing.T) {
	tests := []struct {
		name     string
		pageSize int
		maxPages int
		respond  func(int, apiRequest, http.ResponseWriter, *http.Request)
		requests int
		meetings string
		tokens   string // next_page_token sent, per request
		err      string
	}{
		{name: "page_count", respond: pagedAnswer(3, func(int, apiRequest) []string { return []string{`"page_count": 3`} }),
			requests: 3, meetings: "p1 p2 p3"},
		{name: "page_count as string", respond: pagedAnswer(2, func(int, apiRequest) []string { return []string{`"page_count": "2"`} }),
			requests: 2, meetings: "p1 p2"},
		// Paging by total_records counts the records received, whatever
		// page_size says: one record a page here, so it reads to the empty page.
		{name: "total_records with page_size", respond: pagedAnswer(3, func(int, apiRequest) []string {
			return []string{`"total_records": 250`, `"page_size": 100`}
		}), requests: 4, meetings: "p1 p2 p3"},
		{name: "total_records with our page size", pageSize: 2, respond: pagedAnswer(3, func(int, apiRequest) []string {
			return []string{`"total_records": 5`}
		}), requests: 4, meetings: "p1 p2 p3"},
		{name: "total_records reached", respond: pagedAnswer(5, func(int, apiRequest) []string {
			return []string{`"total_records": 3`, `"page_count": 5`}
		}), requests: 3, meetings: "p1 p2 p3"},
		{name: "next_page_token", respond: pagedAnswer(3, func(page int, _ apiRequest) []string {
			if page < 3 {
				return []string{fmt.Sprintf(`"next_page_token": "tok%d"`, page)}
			}
			return []string{`"next_page_token": ""`}
		}), requests: 3, meetings: "p1 p2 p3", tokens: ",tok1,tok2"},
		{name: "empty page stops", respond: pagedAnswer(2, func(int, apiRequest) []string { return []string{`"page_count": 9`} }),
			requests: 3, meetings: "p1 p2"},
		{name: "no paging fields", respond: pagedAnswer(5, func(int, apiRequest) []string { return nil }),
			requests: 1, meetings: "p1"},
		{name: "repeated token", respond: pagedAnswer(5, func(int, apiRequest) []string {
			return []string{`"next_page_token": "same"`}
		}), requests: 2, meetings: "p1 p2", tokens: ",same", err: "page 2: next_page_token repeats the one just sent"},
		{name: "page cap", maxPages: 4, respond: pagedAnswer(100, func(int, apiRequest) []string {
			return []string{`"page_count": 100`}
		}), requests: 4, meetings: "p1 p2 p3 p4", err: "page 5: the poll needs more than 4 pages (max_pages)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t, tc.respond)
			c := newTestClient(t, api.url(), func(c *Config) { c.PageSize = tc.pageSize })
			if tc.maxPages > 0 {
				c.cfg.MaxPages = tc.maxPages
			}
			sink := &eventSink{}
			err := c.fetchDay(context.Background(), sink)
			if tc.err == "" && err != nil {
				t.Fatal(err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
			reqs := api.requests()
			var tokens []string
			for i, r := range reqs {
				if got := r.params.Get("page_number"); got != fmt.Sprint(i+1) {
					t.Errorf("request %d: page_number %s", i, got)
				}
				tokens = append(tokens, r.params.Get("next_page_token"))
			}
			if len(reqs) != tc.requests || strings.Join(sink.uuids(), " ") != tc.meetings {
				t.Errorf("%d requests, meetings %v; want %d, %s", len(reqs), sink.uuids(), tc.requests, tc.meetings)
			}
			if tc.tokens != "" && strings.Join(tokens, ",") != tc.tokens {
				t.Errorf("tokens sent %q, want %q", strings.Join(tokens, ","), tc.tokens)
			}
		})
	}
}

// stall keeps a request open until the client gives up.
func stall(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

// closedURL is a URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/umeeting/share/hisMeeting"
}

func TestFetchErrors(t *testing.T) {
	rec := meetingRecord("u1", dayEnd)
	write := func(status int, header map[string]string, body string) func(int, apiRequest, http.ResponseWriter, *http.Request) {
		return func(_ int, _ apiRequest, w http.ResponseWriter, _ *http.Request) {
			for k, v := range header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	retried := []string{"", "", ""} // three attempts: MaxRetries is 2
	tests := []struct {
		name     string
		respond  func(int, apiRequest, http.ResponseWriter, *http.Request)
		url      func(t *testing.T) string // instead of the fake API
		change   func(*Config)
		err      string
		result   string
		attempts []string
	}{
		{name: "envelope status", respond: serve(`{"status": 401, "message": "Invalid api_key"}`),
			err: `API status 401: "Invalid api_key"`, result: ResultAPIError, attempts: []string{""}},
		{name: "envelope status as text, server fault", respond: serve(`{"status": "500", "message": "db down", "data": null}`),
			err: `API status 500: "db down"`, result: ResultAPIError, attempts: retried},
		{name: "envelope rate limit", respond: serve(`{"status": 429, "message": "too frequent"}`),
			err: `API status 429: "too frequent"`, result: ResultRateLimited, attempts: retried},
		{name: "Zoom error object", respond: serve(`{"error": {"code": 124, "message": "Invalid api key."}}`),
			err: `API error 124: "Invalid api key."`, result: ResultAPIError, attempts: []string{""}},
		{name: "neither status nor data", respond: serve(`{"message": "OK", "result": []}`),
			err: "answer has neither status nor data", result: ResultBadResponse, attempts: retried},
		{name: "HTTP 404", respond: write(404, nil, "no such endpoint"),
			err: `HTTP 404 Not Found: "no such endpoint"`, result: ResultHTTPError, attempts: []string{""}},
		{name: "HTTP 503", respond: write(503, nil, ""),
			err: "HTTP 503 Service Unavailable", result: ResultHTTPError, attempts: retried},
		{name: "HTTP 502 HTML", respond: write(502, nil, "<html><body>Bad Gateway</body></html>"),
			err: "HTTP 502 Bad Gateway", result: ResultHTTPError, attempts: retried},
		{name: "HTTP 429", respond: write(429, nil, ""),
			err: "HTTP 429 Too Many Requests", result: ResultRateLimited, attempts: retried},
		{name: "empty body", respond: serve(""),
			err: "empty body", result: ResultBadResponse, attempts: retried},
		{name: "HTML body", respond: serve("<!DOCTYPE html>\n<html><title>Maintenance</title></html>"),
			err: "HTML page instead of JSON", result: ResultBadResponse, attempts: retried},
		{name: "truncated", respond: serve(`{"status": 200, "data": [` + rec[:50]),
			err: "truncated JSON: the answer ends after", result: ResultBadResponse, attempts: retried},
		{name: "garbage", respond: serve(`{"status": 200, "data": [` + rec + `, ~~~`),
			err: "invalid JSON at byte", result: ResultBadResponse, attempts: retried},
		{name: "too large", respond: serve(envelope([]string{rec, rec, rec})), change: func(c *Config) { c.MaxBodyBytes = 1000 },
			err: "reading answer: the answer is larger than 1000 bytes (max_answer_size)", result: ResultBadResponse, attempts: []string{""}},
		{name: "timeout", respond: func(_ int, _ apiRequest, w http.ResponseWriter, r *http.Request) { stall(w, r) },
			change: func(c *Config) { c.Timeout = 50 * time.Millisecond },
			err:    "no complete answer within 50ms", result: ResultTimeout, attempts: retried},
		{name: "timeout in the body", respond: func(_ int, _ apiRequest, w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"status": 200, "data": [`+rec+`, `)
			w.(http.Flusher).Flush()
			stall(w, r)
		}, change: func(c *Config) { c.Timeout = 50 * time.Millisecond },
			err: "reading answer: POST http://", result: ResultTimeout, attempts: retried},
		{name: "connection cut in the body", respond: func(_ int, _ apiRequest, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "100000")
			io.WriteString(w, `{"status": 200, "data": [`)
		}, err: "reading answer: POST http://", result: ResultNetworkError, attempts: retried},
		{name: "connection refused", url: closedURL,
			err: "connect: connection refused", result: ResultNetworkError, attempts: retried},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var target string
			if tc.url != nil {
				target = tc.url(t)
			} else {
				target = newFakeAPI(t, tc.respond).url()
			}
			c := newTestClient(t, target, tc.change)
			err := c.fetchDay(context.Background(), &eventSink{})
			if err == nil || !strings.HasPrefix(err.Error(), dayPrefix) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v\nwant %q after %q", err, tc.err, dayPrefix)
			}
			var want []string
			for range tc.attempts {
				want = append(want, tc.result)
			}
			if strings.Join(c.results, ",") != strings.Join(want, ",") {
				t.Errorf("results %v, want %v", c.results, want)
			}
			if len(c.waits) != len(tc.attempts)-1 {
				t.Errorf("waited %v between %d attempts", c.waits, len(tc.attempts))
			}
		})
	}
}

func TestFetchRetriesWithBackoff(t *testing.T) {
	api := newFakeAPI(t, func(n int, _ apiRequest, w http.ResponseWriter, _ *http.Request) {
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, envelope([]string{meetingRecord("u1", dayEnd)}))
	})
	c := newTestClient(t, api.url(), func(c *Config) { c.MaxRetries = 3; c.RetryBackoff = 5 * time.Millisecond })
	sink := &eventSink{}
	if err := c.fetchDay(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	wantWaits := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}
	if fmt.Sprint(c.waits) != fmt.Sprint(wantWaits) {
		t.Errorf("waits %v, want %v", c.waits, wantWaits)
	}
	if got := strings.Join(c.results, ","); got != "http_error,http_error,http_error,success" {
		t.Errorf("results %s", got)
	}
	if strings.Join(sink.events, ",") != "M u1,commit" {
		t.Errorf("events %v", sink.events)
	}
	if !strings.Contains(c.logs.String(), "hisMeeting request failed, retrying") {
		t.Errorf("no retry logged: %s", c.logs.String())
	}
}

func TestBackoffCap(t *testing.T) {
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second} {
		if got := backoff(time.Second, n); got != want {
			t.Errorf("backoff(1s, %d) = %v, want %v", n, got, want)
		}
	}
	if got := backoff(time.Second, 1000); got != 30*time.Second {
		t.Errorf("backoff(1s, 1000) = %v", got)
	}
}

func TestFetchHonoursRetryAfter(t *testing.T) {
	api := newFakeAPI(t, func(n int, _ apiRequest, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, envelope(nil))
	})
	c := newTestClient(t, api.url(), nil)
	if err := c.fetchDay(context.Background(), &eventSink{}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.waits) != "[2s]" || strings.Join(c.results, ",") != "rate_limited,success" {
		t.Errorf("waits %v, results %v; want [2s], rate_limited then success", c.waits, c.results)
	}
}

func TestRetryAfter(t *testing.T) {
	now := mustTime("2026-11-20T10:00:00Z")
	tests := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"86400", maxRetryAfter, true},
		{"Fri, 20 Nov 2026 10:00:05 GMT", 5 * time.Second, true},
		{"Fri, 20 Nov 2026 09:00:00 GMT", 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range tests {
		if got, ok := retryAfter(tc.header, now); got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

// TestFetchRealWaits runs retries with the real sleep, a few milliseconds.
func TestFetchRealWaits(t *testing.T) {
	api := newFakeAPI(t, func(n int, _ apiRequest, w http.ResponseWriter, _ *http.Request) {
		if n < 2 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		io.WriteString(w, envelope(nil))
	})
	c := newTestClient(t, api.url(), nil)
	c.sleep = sleepCtx
	if err := c.fetchDay(context.Background(), &eventSink{}); err != nil {
		t.Fatal(err)
	}
	if len(api.requests()) != 3 {
		t.Errorf("%d requests, want 3", len(api.requests()))
	}
}

func TestFetchGivesUpBeforeDeadline(t *testing.T) {
	api := newFakeAPI(t, func(_ int, _ apiRequest, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	c := newTestClient(t, api.url(), func(c *Config) { c.RetryBackoff = time.Hour })
	c.sleep = sleepCtx
	// The backoff (capped at 30s) ends after the deadline: no wait at all.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.fetchDay(ctx, &eventSink{})
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") || len(api.requests()) != 1 {
		t.Errorf("err %v after %d requests; want the 503 at once", err, len(api.requests()))
	}
	// A cancelled context ends the wait too.
	c = newTestClient(t, api.url(), func(c *Config) { c.RetryBackoff = time.Hour })
	c.sleep = sleepCtx
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if err := c.fetchDay(ctx, &eventSink{}); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Errorf("cancelled: %v", err)
	}
}

func TestFetchCommitAndDiscard(t *testing.T) {
	r := func(uuid string) string { return meetingRecord(uuid, dayEnd) }
	answers := []string{
		// Records first, then a bad status: they were handed over and must be discarded.
		`{"data": [` + r("a") + `, ` + r("b") + `], "status": 500, "message": "oops"}`,
		// Cut after a record.
		`{"status": 200, "data": [` + r("a") + `, `,
		// A bad status first: nothing is handed over, nothing to discard.
		`{"status": 503, "data": [` + r("a") + `]}`,
		// Good page 1 of 2.
		`{"status": 200, "page_count": 2, "data": [` + r("a") + `, ` + record("uuid", del) + `]}`,
		// Page 2 fails once, then succeeds.
		`{"data": [` + r("c") + `], "status": 502}`,
		`{"status": 200, "page_count": 2, "data": [` + r("c") + `]}`,
	}
	api := newFakeAPI(t, serve(answers...))
	c := newTestClient(t, api.url(), func(c *Config) { c.MaxRetries = 3 })
	sink := &eventSink{}
	if err := c.fetchDay(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	want := "M a,M b,discard,M a,discard,M a,I missing_uuid,commit,M c,discard,M c,commit"
	if got := strings.Join(sink.events, ","); got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
}

func TestFetchBudget(t *testing.T) {
	api := newFakeAPI(t, serve(envelope(nil)))
	c := newTestClient(t, api.url(), func(c *Config) { c.Budget = budget.New(2, 0) })
	for i := range 2 {
		if err := c.fetchDay(context.Background(), &eventSink{}); err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
	}
	err := c.fetchDay(context.Background(), &eventSink{})
	if !errors.Is(err, budget.ErrExhausted) || !strings.HasPrefix(err.Error(), dayPrefix+"daily request budget exhausted") {
		t.Errorf("third fetch: %v", err)
	}
	if n := len(api.requests()); n != 2 {
		t.Errorf("%d requests reached the API, want 2", n)
	}
	if len(c.results) != 2 {
		t.Errorf("results %v: a refused request is no attempt", c.results)
	}
}

// TestSecretsNeverShow makes GET requests (the secret in the URL) fail in
// every way and looks for the key and secret in errors, their chains and logs.
func TestSecretsNeverShow(t *testing.T) {
	echo := "bad credentials api_key=" + testKey + " api_secret=" + testSecret + " (" + url.QueryEscape(testSecret) + ")"
	tests := []struct {
		name    string
		respond func(int, apiRequest, http.ResponseWriter, *http.Request)
		url     func(t *testing.T) string
		timeout time.Duration
	}{
		{name: "connection refused", url: closedURL},
		{name: "timeout", respond: func(_ int, _ apiRequest, w http.ResponseWriter, r *http.Request) { stall(w, r) },
			timeout: 50 * time.Millisecond},
		{name: "envelope error echoing the secret", respond: serve(fmt.Sprintf(`{"status": 401, "message": %q}`, echo))},
		{name: "Zoom error echoing the secret", respond: serve(fmt.Sprintf(`{"error": {"code": 124, "message": %q}}`, echo))},
		{name: "HTTP error echoing the query", respond: func(_ int, req apiRequest, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "bad request: "+req.rawQuery)
		}},
		{name: "plain text echoing the secret", respond: serve(testSecret + " is wrong")},
		// The secret straddles where each text is cut for the message.
		{name: "plain text cut in the secret", respond: serve(strings.Repeat("y", 20) + testSecret)},
		{name: "long message cut in the secret",
			respond: serve(fmt.Sprintf(`{"status": 403, "message": %q}`, strings.Repeat("x", maxMessage-4)+testSecret))},
		{name: "HTTP error body cut in the secret", respond: func(_ int, _ apiRequest, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, strings.Repeat("z", 117)+testSecret)
		}},
		{name: "JSON-escaped secret in a non-JSON body",
			respond: serve("denied: " + strings.ReplaceAll(testSecret, "/", `\/`))},
		{name: "JSON-escaped secret in a message",
			respond: serve(`{"status": 401, "message": "bad ` + strings.ReplaceAll(testSecret, "/", `\/`) + `"}`)},
		{name: "redirect loop", respond: func(_ int, req apiRequest, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusFound)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := ""
			if tc.url != nil {
				target = tc.url(t)
			} else {
				target = newFakeAPI(t, tc.respond).url()
			}
			c := newTestClient(t, target, func(c *Config) {
				c.Method = http.MethodGet
				if tc.timeout > 0 {
					c.Timeout = tc.timeout
				}
			})
			err := c.fetchDay(context.Background(), &eventSink{})
			if err == nil {
				t.Fatal("no error")
			}
			texts := []string{c.logs.String()}
			for e := err; e != nil; e = errors.Unwrap(e) {
				texts = append(texts, e.Error())
			}
			for _, text := range texts {
				// Prefixes too: a cut text must not keep part of a credential.
				for _, s := range []string{testSecret[:6], url.QueryEscape(testSecret)[:6], testKey[:6]} {
					if strings.Contains(text, s) {
						t.Errorf("%q shows in %q", s, text)
					}
				}
				if strings.Contains(text, "?") && strings.Contains(text, "api_") {
					t.Errorf("a query string shows in %q", text)
				}
			}
			t.Log(err)
		})
	}
}

// TestAnswerCutAfterItsRecordsIsReadAgainWhole: an answer that breaks off
// after its last record is retried; the records it brought before breaking
// off are not "seen before" when the whole answer comes, so paging goes
// on to the next page instead of stopping as if the API repeated a page.
func TestAnswerCutAfterItsRecordsIsReadAgainWhole(t *testing.T) {
	page := func(n int) string {
		return envelope([]string{meetingRecord(fmt.Sprint("p", n, "a"), dayEnd), meetingRecord(fmt.Sprint("p", n, "b"), dayEnd)}, `"page_count": 2`)
	}
	api := newFakeAPI(t, func(n int, req apiRequest, w http.ResponseWriter, _ *http.Request) {
		b := page(1)
		if req.params.Get("page_number") == "2" {
			b = page(2)
		}
		if n == 0 {
			b = b[:len(b)-2] // every record, then the connection drops
		}
		io.WriteString(w, b)
	})
	c := newTestClient(t, api.url(), nil)
	sink := &eventSink{}
	if err := c.fetchDay(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	// The first, cut answer was handed over and discarded.
	if got, want := sink.uuids(), []string{"p1a", "p1b", "p1a", "p1b", "p2a", "p2b"}; !slices.Equal(got, want) {
		t.Errorf("meetings %v, want %v", got, want)
	}
}

// TestOneDebugLinePerPeriod: a request period's pages are summed up in one
// debug line, not one line each.
func TestOneDebugLinePerPeriod(t *testing.T) {
	api := newFakeAPI(t, pagedAnswer(3, func(int, apiRequest) []string { return []string{`"page_count": 3`} }))
	c := newTestClient(t, api.url(), nil)
	if err := c.fetchDay(context.Background(), &eventSink{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(c.logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `msg="hisMeeting period fetched" request=2026-11-19..2026-11-21 pages=3 records=`) {
		t.Errorf("log lines: %q", lines)
	}
}
