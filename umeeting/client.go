package umeeting

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Defaults of Config.
const (
	DefaultPageSize     = 100
	DefaultTimeout      = 30 * time.Second
	DefaultMaxRetries   = 3
	DefaultRetryBackoff = time.Second
	DefaultMaxBodyBytes = 256 << 20
	DefaultMaxPages     = 10000

	maxBackoff    = 30 * time.Second
	maxRetryAfter = 10 * time.Minute // a longer Retry-After is not waited for in full
	userAgent     = "umeeting_exporter"
	dateLayout    = "2006-01-02"
)

// Config configures a Client for one account.
type Config struct {
	Account      string              // for log lines and error messages
	URL          string              // full hisMeeting URL
	APIKey       string              // sent as api_key
	APISecret    string              // sent as api_secret; never logged
	Method       string              // http.MethodPost (default; form-encoded body) or http.MethodGet (query string)
	Location     *time.Location      // zone of from/to dates and of record times written without one; nil = Asia/Shanghai
	PageSize     int                 // page_size sent; default 100
	Timeout      time.Duration       // per HTTP request including reading the body; default 30s
	MaxRetries   int                 // retries of one request after the first try; default 3; <0 means 0
	RetryBackoff time.Duration       // first backoff, doubled per retry, capped at 30s; default 1s
	MaxBodyBytes int64               // answer size cap; default 256 MiB
	MaxPages     int                 // requests per Fetch, unless total_records needs more; default 10000
	MaxLength    time.Duration       // longest believable meeting; default 48h
	HTTPClient   *http.Client        // nil = a plain client; redirects to another host are refused
	Budget       Budget              // request budget shared across reloads; nil = unlimited
	Logger       log.Logger          // go-kit; nil = nop; lines carry no account key: pass log.With(l, "account", name)
	OnRequest    func(result string) // called once per HTTP request attempt with one of the Result* constants; may be nil
}

// Budget is what a Client needs of a request budget (budget.Budget): Take
// waits until one request may be sent, or fails when none may.
type Budget interface {
	Take(ctx context.Context) error
}

// Client fetches the meetings of one account from hisMeeting. It is safe
// for concurrent use; each Fetch has its own decoder.
type Client struct {
	cfg      Config
	endpoint *url.URL
	shownURL string // the URL for messages: no credentials, no query
	hide     func(string) string
	sleep    func(ctx context.Context, d time.Duration) error // replaced in tests
}

// shanghai is the zone the service runs in; China has kept UTC+8 without
// daylight saving since 1991, so the fixed zone is right where tzdata is missing.
var shanghai = func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("Asia/Shanghai", 8*3600)
}()

// New fills in the defaults of cfg and returns a Client. The fields are
// those of a config the config package has validated (URL, method, key).
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse quotes the whole URL, which may carry credentials.
		return nil, fmt.Errorf("account %s: invalid url", cfg.Account)
	}
	cfg.Method = strings.ToUpper(cmp.Or(cfg.Method, http.MethodPost))
	if cfg.Location == nil {
		cfg.Location = shanghai
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	cfg.MaxRetries = max(cfg.MaxRetries, 0)
	orDefault(&cfg.PageSize, DefaultPageSize)
	orDefault(&cfg.MaxPages, DefaultMaxPages)
	orDefault(&cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	orDefault(&cfg.Timeout, DefaultTimeout)
	orDefault(&cfg.RetryBackoff, DefaultRetryBackoff)
	orDefault(&cfg.MaxLength, DefaultMaxMeetingLength)
	if cfg.Logger == nil {
		cfg.Logger = log.NewNopLogger()
	}
	shown := *u
	shown.User, shown.RawQuery, shown.ForceQuery, shown.Fragment, shown.RawFragment = nil, "", false, "", ""
	cfg.HTTPClient = sameHostOnly(cfg.HTTPClient, u)
	return &Client{cfg: cfg, endpoint: u, shownURL: shown.String(), hide: redactor(cfg.APISecret, cfg.APIKey), sleep: sleepCtx}, nil
}

// orDefault sets *v to d when it is not positive.
func orDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// errOtherHost is a redirect to another host (or scheme), which would hand
// the credentials (in a 307/308 body, or a GET query) to whoever it names.
var errOtherHost = errors.New("the API redirected to another host")

// sameHostOnly returns a copy of hc (nil: a plain client) that follows
// redirects only within u's scheme and host.
func sameHostOnly(hc *http.Client, u *url.URL) *http.Client {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != u.Scheme || !strings.EqualFold(req.URL.Host, u.Host) {
			return fmt.Errorf("%w (%s://%s); credentials are only sent to %s://%s", errOtherHost, req.URL.Scheme, req.URL.Host, u.Scheme, u.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return c
}

// Fetch hands sink every meeting that ended in [from, to] while decoding,
// and every invalid record. Its requests reach back MaxLength before from
// (an API may list a meeting under its start day) and a day further on each
// side (the zone and the inclusiveness of `to` are unknown), a month at a
// time, following paging and retrying what may pass. Errors never contain
// the API key or secret.
func (c *Client) Fetch(ctx context.Context, from, to time.Time, sink Sink) error {
	if to.Before(from) {
		return fmt.Errorf("account %s: hisMeeting: to %s is before from %s", c.cfg.Account,
			to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	first := civilDate(from.Add(-c.cfg.MaxLength).In(c.cfg.Location)).AddDate(0, 0, -1)
	last := civilDate(to.In(c.cfg.Location)).AddDate(0, 0, 1)
	dec := newDecoder(c.cfg.Location, c.cfg.MaxLength)
	dec.hide, dec.seen = c.hide, map[uint64]struct{}{}
	pages := 0
	for a := first; ; {
		b := monthEnd(a)
		if b.After(last) {
			b = last
		}
		if err := c.fetchChunk(ctx, dec, a, b, from, to, sink, &pages); err != nil {
			return err
		}
		if !b.Before(last) {
			return nil
		}
		a = b // the next chunk overlaps by a day: `to` may be exclusive
	}
}

// civilDate is t's calendar date as midnight UTC, where AddDate is safe.
func civilDate(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// monthEnd is the last day of the month-long period that starts at a: the
// day before the same day of the next month, clamped to that month's length
// (so from Jan 31 it is Feb 27, never Mar 2 as plain AddDate would give).
func monthEnd(a time.Time) time.Time {
	y, m, d := a.Date()
	dim := time.Date(y, m+2, 0, 0, 0, 0, 0, time.UTC).Day() // days in the next month
	return time.Date(y, m+1, min(d, dim), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
}

// fetchChunk fetches every page of the dates [a, b]. Paging stops at the
// first empty page, a page that brings no element not seen before in the
// chunk (an API that ignores page_number), once total_records elements
// came, or at page_count. pages counts the requests of the whole Fetch
// against MaxPages, which total_records may raise for its chunk. One debug
// line tells what the chunk brought (a line per page would be a hundred a
// poll at 10,000 hosts).
func (c *Client) fetchChunk(ctx context.Context, dec *decoder, a, b, from, to time.Time, sink Sink, pages *int) (err error) {
	params := url.Values{"api_key": {c.cfg.APIKey}, "api_secret": {c.cfg.APISecret}, "from": {a.Format(dateLayout)},
		"to": {b.Format(dateLayout)}, "page_size": {strconv.Itoa(c.cfg.PageSize)}}
	dec.newPeriod()
	token := ""
	received, needed, fetched := 0, 0, 0 // elements so far; pages total_records needs; pages read
	defer func() {
		if err == nil {
			level.Debug(c.cfg.Logger).Log("msg", "hisMeeting period fetched", "request", pageSpan{a: a, b: b},
				"pages", fetched, "records", received)
		}
	}()
	for page := 1; ; page++ {
		span := pageSpan{a, b, page}
		if *pages >= c.cfg.MaxPages && page > needed {
			return fmt.Errorf("%s: the poll needs more than %d pages (max_pages)", c.where(span), c.cfg.MaxPages)
		}
		params.Set("page_number", strconv.Itoa(page))
		if params.Set("next_page_token", token); token == "" {
			params.Del("next_page_token")
		}
		env, err := c.request(ctx, dec, params, span, from, to, sink)
		*pages++
		if err != nil {
			return err
		}
		fetched++
		received += env.Records
		if env.Records == 0 {
			return nil
		}
		if env.Fresh == 0 {
			level.Warn(c.cfg.Logger).Log("msg", "hisMeeting page repeats earlier records; paging stopped", "request", span)
			return nil
		}
		if page == 1 && env.TotalRecords > 0 {
			needed = (env.TotalRecords+env.Records-1)/env.Records + 1
		}
		switch {
		case env.NextPageToken != "":
			if env.NextPageToken == token {
				return c.clean(fmt.Errorf("%s: next_page_token repeats the one just sent", c.where(span)))
			}
			token = env.NextPageToken
		case env.TotalRecords > 0 && received >= env.TotalRecords,
			env.PageCount > 0 && page >= env.PageCount,
			env.TotalRecords <= 0 && env.PageCount <= 0:
			return nil
		}
	}
}

// attemptResult is the outcome of one HTTP request.
type attemptResult struct {
	result     string
	retry      bool
	retryAfter time.Duration // from the server; 0 = use the backoff
}

// pageSpan names a request in log lines and errors: its dates and page
// (0: all the pages of the dates). It is formatted only when a line or an
// error is written.
type pageSpan struct {
	a, b time.Time
	page int
}

func (p pageSpan) String() string {
	dates := p.a.Format(dateLayout) + ".." + p.b.Format(dateLayout)
	if p.page == 0 {
		return dates
	}
	return fmt.Sprintf("%s page %d", dates, p.page)
}

// where is the prefix of the errors of the request span.
func (c *Client) where(span pageSpan) string {
	return fmt.Sprintf("account %s: hisMeeting %s", c.cfg.Account, span)
}

// request sends one request, retrying it as configured.
func (c *Client) request(ctx context.Context, dec *decoder, params url.Values, span pageSpan, from, to time.Time, sink Sink) (Envelope, error) {
	for attempt := 0; ; attempt++ {
		if c.cfg.Budget != nil {
			if err := c.cfg.Budget.Take(ctx); err != nil {
				return Envelope{}, c.clean(fmt.Errorf("%s: %w", c.where(span), err))
			}
		}
		env, res, err := c.attempt(ctx, dec, params, from, to, sink)
		if c.cfg.OnRequest != nil {
			c.cfg.OnRequest(res.result)
		}
		if err == nil {
			sink.CommitPage()
			return env, nil
		}
		if env.Delivered > 0 {
			sink.DiscardPage()
		}
		err = c.clean(fmt.Errorf("%s: %w", c.where(span), err))
		if !res.retry || attempt >= c.cfg.MaxRetries {
			return Envelope{}, err
		}
		wait := res.retryAfter
		if wait <= 0 {
			wait = backoff(c.cfg.RetryBackoff, attempt)
		}
		if deadline, ok := ctx.Deadline(); ok && deadline.Before(time.Now().Add(wait)) {
			return Envelope{}, err
		}
		level.Warn(c.cfg.Logger).Log("msg", "hisMeeting request failed, retrying",
			"request", span, "result", res.result, "attempt", attempt+1, "wait", wait, "err", err)
		if c.sleep(ctx, wait) != nil {
			return Envelope{}, err
		}
	}
}

// backoff is first×2^n, capped.
func backoff(first time.Duration, n int) time.Duration { return min(first<<min(n, 20), maxBackoff) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// attempt sends one HTTP request and decodes its answer into sink.
func (c *Client) attempt(ctx context.Context, dec *decoder, params url.Values, from, to time.Time, sink Sink) (Envelope, attemptResult, error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := c.newRequest(rctx, params)
	if err != nil {
		return Envelope{}, attemptResult{result: ResultNetworkError}, err
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		res, err := c.transportError(ctx, rctx, err)
		return Envelope{}, res, err
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // lets the connection be reused
		resp.Body.Close()
	}()

	status := fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if resp.StatusCode == http.StatusTooManyRequests {
		wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if ok {
			status += fmt.Sprintf(" (retry after %s)", wait)
		}
		return Envelope{}, attemptResult{result: ResultRateLimited, retry: true, retryAfter: wait}, errors.New(status)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if body := c.bodySnippet(resp.Body); body != "" {
			status += ": " + body
		}
		return Envelope{}, attemptResult{result: ResultHTTPError, retry: resp.StatusCode >= 500}, errors.New(status)
	}

	env, err := dec.decode(http.MaxBytesReader(nil, resp.Body, c.cfg.MaxBodyBytes), from, to, sink)
	if err == nil {
		return env, attemptResult{result: ResultSuccess}, nil
	}
	var (
		apiErr  *APIError
		readErr *readError
		tooBig  *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooBig): // the same answer would come again
		return env, attemptResult{result: ResultBadResponse},
			fmt.Errorf("reading answer: the answer is larger than %d bytes (max_answer_size)", tooBig.Limit)
	case errors.As(err, &readErr):
		res, terr := c.transportError(ctx, rctx, readErr.err)
		return env, res, fmt.Errorf("reading answer: %w", terr)
	case errors.As(err, &apiErr):
		switch {
		case !apiErr.ErrorObject && apiErr.Status == http.StatusTooManyRequests:
			return env, attemptResult{result: ResultRateLimited, retry: true}, err
		case !apiErr.ErrorObject && apiErr.Status >= 500:
			return env, attemptResult{result: ResultAPIError, retry: true}, err
		}
		return env, attemptResult{result: ResultAPIError}, err
	}
	// The message may quote the start of the answer.
	return env, attemptResult{result: ResultBadResponse, retry: true}, &badResponse{c.hide(err.Error())}
}

// newRequest builds the request; the credentials travel in the body (POST)
// or the query string (GET).
func (c *Client) newRequest(ctx context.Context, params url.Values) (*http.Request, error) {
	u := *c.endpoint
	var body io.Reader
	if c.cfg.Method == http.MethodGet {
		q := u.Query()
		maps.Copy(q, params)
		u.RawQuery = q.Encode()
	} else {
		body = strings.NewReader(params.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, c.cfg.Method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: building request failed", c.cfg.Method, c.shownURL)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// transportError classifies a failure to get or read an answer, keeping
// *url.Error (whose text holds the full URL, and so the secret of a GET)
// out of the result.
func (c *Client) transportError(ctx, rctx context.Context, err error) (attemptResult, error) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, errOtherHost): // following it would hand over the credentials: never retried
		return attemptResult{result: ResultHTTPError}, fmt.Errorf("%s %s: %w", c.cfg.Method, c.shownURL, err)
	case ctx.Err() != nil: // the caller gave up: no retry
		res := ResultNetworkError
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			res = ResultTimeout
		}
		return attemptResult{result: res}, fmt.Errorf("%s %s: %w", c.cfg.Method, c.shownURL, ctx.Err())
	case errors.Is(rctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()):
		return attemptResult{result: ResultTimeout, retry: true},
			fmt.Errorf("%s %s: no complete answer within %s: %w", c.cfg.Method, c.shownURL, c.cfg.Timeout, err)
	}
	return attemptResult{result: ResultNetworkError, retry: true}, fmt.Errorf("%s %s: %w", c.cfg.Method, c.shownURL, err)
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil && secs >= 0 {
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// bodySnippet returns the start of an error answer for the error text:
// decoded, credentials hidden, cut short; "" for an empty or HTML body.
func (c *Client) bodySnippet(r io.Reader) string {
	const show = 120
	buf := make([]byte, show+1024) // the margin lets a credential cut by the window still be recognised
	n, _ := io.ReadFull(r, buf)
	b := bytes.TrimSpace(buf[:n])
	if len(b) == 0 || b[0] == '<' {
		return ""
	}
	s := c.hide(string(b))
	if len(s) > show {
		s = truncateUTF8(s, show) + "…"
	}
	return strconv.Quote(s)
}

// cleanError is an error whose text has the credentials hidden.
type cleanError struct {
	msg string
	err error
}

func (e *cleanError) Error() string { return e.msg }
func (e *cleanError) Unwrap() error { return e.err }

// clean hides the API key and secret in err's text. The errors it wraps
// are built without credentials already (url.Error is unwrapped, API
// messages and body snippets are cleaned where they are read); this is the
// last guard for the text that gets logged and returned, which it changes
// (decodes) only if it holds a credential in some form.
func (c *Client) clean(err error) error {
	msg := err.Error()
	if hidden := c.hide(msg); strings.Count(hidden, "<secret>") > strings.Count(msg, "<secret>") {
		msg = hidden
	}
	return &cleanError{msg: msg, err: err}
}
