package umeeting

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Envelope is what an answer said besides its records.
type Envelope struct {
	Status        int // envelope status; 0 when absent
	Message       string
	PageCount     int // paging fields; 0 when absent
	PageNumber    int
	PageSize      int
	TotalRecords  int
	NextPageToken string

	HasStatus bool // the answer carried a status
	HasData   bool // the answer carried a data array (or data: null)
	Records   int  // elements in data, whether valid, invalid or filtered out
	Delivered int  // elements handed to the sink (Meeting or Invalid)
}

// APIError is an error the API reported in its answer: an envelope status
// other than 200, or a Zoom-style error object.
type APIError struct {
	Status      int  // envelope status; 0 for an error object
	Code        int  // code of an error object
	ErrorObject bool // the answer was {"error": {...}}
	Message     string
}

func (e *APIError) Error() string {
	if e.ErrorObject {
		return fmt.Sprintf("API error %d: %q", e.Code, e.Message)
	}
	return fmt.Sprintf("API status %d: %q", e.Status, e.Message)
}

// badResponse is an answer that cannot be understood: empty, HTML, not
// JSON, truncated, or without status and data.
type badResponse struct{ msg string }

func (e *badResponse) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badResponse{fmt.Sprintf(format, args...)} }

// readError is a failure to read the answer (connection, time-out, size cap).
type readError struct{ err error }

func (e *readError) Error() string { return "reading answer: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

const (
	initialBuffer = 64 << 10
	// maxValueBytes bounds one record (or other top-level value): the
	// decoder holds at most one in memory.
	maxValueBytes = 1 << 20
	// minRead is how much a refill tries to add, so a value split over
	// many small reads is not rescanned for every byte.
	minRead = 4 << 10
	// maxMessage bounds the API message kept for error texts.
	maxMessage = 512
)

// decoder reads one answer at a time from a stream, holding at most one
// value of it. A Client keeps one across the pages of a Fetch.
type decoder struct {
	r        io.Reader
	buf      []byte
	pos, end int   // buf[pos:end] is read but not consumed
	base     int64 // stream offset of buf[0]
	eof      bool
	rerr     error
	p        parser
	m        Meeting
	key      []byte
	hide     *strings.Replacer // hides credentials in texts kept for errors; may be nil
}

func newDecoder() *decoder {
	return &decoder{buf: make([]byte, initialBuffer), p: parser{in: &interner{}}}
}

// Decode reads one hisMeeting answer from r as a stream and hands its
// records to sink while reading: valid records whose end lies in [from, to]
// (a zero bound is open) to sink.Meeting, invalid ones to sink.Invalid with
// a copy of their raw JSON. It neither commits nor discards: the caller does,
// seeing Envelope.Delivered. Memory use does not depend on the answer's size.
//
// It returns an error for an answer that is not a usable envelope: empty,
// HTML, not JSON, truncated, trailing garbage, an envelope status other than
// 200 or a Zoom-style error object (*APIError), or neither status nor data.
// Records that come after a bad status or an error object are not handed over.
func Decode(r io.Reader, from, to time.Time, sink Sink) (Envelope, error) {
	return newDecoder().decode(r, from, to, sink)
}

func (d *decoder) decode(r io.Reader, from, to time.Time, sink Sink) (env Envelope, err error) {
	d.r, d.pos, d.end, d.base, d.eof, d.rerr = r, 0, 0, 0, false, nil
	defer func() { d.r = nil }()

	c, err := d.peek("empty body")
	if err != nil {
		return env, err
	}
	if c == 0xef { // a UTF-8 byte order mark
		if err := d.want(3); err != nil {
			return env, err
		}
		if bytes.HasPrefix(d.buf[d.pos:d.end], []byte("\xef\xbb\xbf")) {
			d.pos += 3
			if c, err = d.peek("empty body"); err != nil {
				return env, err
			}
		}
	}
	switch c {
	case '{':
	case '<':
		return env, badf("HTML page instead of JSON")
	case '[':
		return env, badf("answer is a JSON array, not an object")
	default:
		return env, badf("answer is not a JSON object (starts with %q)", d.snippet(24))
	}
	d.pos++

	var (
		apiErr    *APIError
		badStatus string // the text of a status that is not a number
	)
	if c, err = d.peek(""); err != nil {
		return env, err
	}
	for c != '}' {
		if c != '"' {
			return env, d.syntaxErr()
		}
		raw, err := d.value(false)
		if err != nil {
			return env, err
		}
		key := d.unquote(raw)
		if c, err = d.peek(""); err != nil {
			return env, err
		}
		if c != ':' {
			return env, d.syntaxErr()
		}
		d.pos++
		if _, err = d.peek(""); err != nil {
			return env, err
		}
		if key == "data" {
			deliver := apiErr == nil && badStatus == "" && (!env.HasStatus || env.Status == 200)
			if err := d.data(&env, deliver, from, to, sink); err != nil {
				return env, err
			}
		} else {
			raw, err := d.value(false)
			if err != nil {
				return env, err
			}
			switch key {
			case "status":
				if kindOf(raw[0]) != kNull {
					env.HasStatus = true
					n, ok := jsonInt(raw)
					env.Status, badStatus = n, ""
					if !ok {
						badStatus = d.clip(raw, 64)
					}
				}
			case "message":
				env.Message = d.clip(jsonText(raw), maxMessage)
			case "page_count":
				env.PageCount, _ = jsonInt(raw)
			case "page_number":
				env.PageNumber, _ = jsonInt(raw)
			case "page_size":
				env.PageSize, _ = jsonInt(raw)
			case "total_records":
				env.TotalRecords, _ = jsonInt(raw)
			case "next_page_token":
				env.NextPageToken = string(jsonText(raw))
			case "error":
				apiErr = d.errorObject(raw)
			}
		}
		if c, err = d.peek(""); err != nil {
			return env, err
		}
		switch c {
		case ',':
			d.pos++
			if c, err = d.peek(""); err != nil {
				return env, err
			}
			if c == '}' {
				return env, d.syntaxErr()
			}
		case '}':
		default:
			return env, d.syntaxErr()
		}
	}
	d.pos++
	if err := d.expectEnd(); err != nil {
		return env, err
	}

	switch {
	case apiErr != nil:
		return env, apiErr
	case badStatus != "":
		return env, badf("envelope status %s is not a number", badStatus)
	case !env.HasStatus && !env.HasData:
		return env, badf("answer has neither status nor data")
	case env.HasStatus && env.Status != 200:
		return env, &APIError{Status: env.Status, Message: env.Message}
	}
	return env, nil
}

// data reads the value of "data": an array of records, or null.
func (d *decoder) data(env *Envelope, deliver bool, from, to time.Time, sink Sink) error {
	if d.buf[d.pos] != '[' {
		raw, err := d.value(false)
		if err != nil {
			return err
		}
		if k := kindOf(raw[0]); k != kNull {
			return badf("data is %s, not an array", kindNames[k])
		}
		env.HasData = true
		return nil
	}
	env.HasData = true
	d.pos++
	c, err := d.peek("")
	if err != nil {
		return err
	}
	if c == ']' {
		d.pos++
		return nil
	}
	for {
		raw, err := d.value(true)
		if err != nil {
			return err
		}
		env.Records++
		if deliver {
			d.deliver(raw, env, from, to, sink)
		}
		if c, err = d.peek(""); err != nil {
			return err
		}
		switch c {
		case ',':
			d.pos++
			if _, err = d.peek(""); err != nil {
				return err
			}
		case ']':
			d.pos++
			return nil
		default:
			return d.syntaxErr()
		}
	}
}

// deliver hands one scanned element to the sink.
func (d *decoder) deliver(raw []byte, env *Envelope, from, to time.Time, sink Sink) {
	reason := ReasonMalformed
	if d.p.raw.isObject {
		var keep bool
		if reason, keep = d.p.build(raw, &d.m, from, to); reason == "" {
			if keep {
				env.Delivered++
				sink.Meeting(&d.m)
			}
			return
		}
	}
	env.Delivered++
	sink.Invalid(reason, bytes.Clone(raw))
}

var kindNames = [...]string{kAbsent: "absent", kNull: "null", kString: "a string", kNumber: "a number",
	kTrue: "a boolean", kFalse: "a boolean", kObject: "an object", kArray: "an array"}

// peek skips white space and returns the next byte without consuming it.
// At the end of input it returns an error: empty (a badResponse with that
// text) when given, else a truncation.
func (d *decoder) peek(empty string) (byte, error) {
	for {
		d.pos = skipWS(d.buf[:d.end], d.pos)
		if d.pos < d.end {
			return d.buf[d.pos], nil
		}
		if !d.fill() {
			if d.rerr != nil {
				return 0, &readError{d.rerr}
			}
			if empty != "" {
				return 0, badf("%s", empty)
			}
			return 0, d.truncated()
		}
	}
}

// expectEnd checks that only white space follows the answer.
func (d *decoder) expectEnd() error {
	for {
		if d.pos = skipWS(d.buf[:d.end], d.pos); d.pos < d.end {
			return badf("unexpected data after the JSON answer at byte %d", d.offset())
		}
		if !d.fill() {
			if d.rerr != nil {
				return &readError{d.rerr}
			}
			return nil
		}
	}
}

// want makes n bytes available at d.pos if the input has them.
func (d *decoder) want(n int) error {
	for d.end-d.pos < n && d.fill() {
	}
	if d.rerr != nil {
		return &readError{d.rerr}
	}
	return nil
}

// value scans the value at d.pos (a record when record is set), reading
// more input as needed, and consumes it. The slice is valid until the next
// read.
func (d *decoder) value(record bool) ([]byte, error) {
	for {
		b := d.buf[d.pos:d.end]
		var (
			n  int
			st scanStatus
		)
		if record {
			n, st = d.p.raw.scan(b, d.eof)
		} else {
			n, st = scanValue(b, 0, 1, d.eof)
		}
		switch st {
		case scanOK:
			if n > maxValueBytes { // whether or not it came in one read
				return nil, d.tooLarge()
			}
			d.pos += n
			return b[:n], nil
		case scanBad:
			d.pos += n
			return nil, d.syntaxErr()
		}
		if d.end-d.pos > maxValueBytes {
			return nil, d.tooLarge()
		}
		if !d.fill() {
			if d.rerr != nil {
				return nil, &readError{d.rerr}
			}
			return nil, d.truncated()
		}
	}
}

// fill reads more input, keeping buf[pos:end]; false at EOF or on error.
func (d *decoder) fill() bool {
	if d.eof || d.rerr != nil {
		return false
	}
	if d.pos > 0 {
		n := copy(d.buf, d.buf[d.pos:d.end])
		d.base += int64(d.pos)
		d.pos, d.end = 0, n
	}
	want := max(minRead, d.end) // at least double a long partial value
	if len(d.buf)-d.end < want {
		nb := make([]byte, max(2*len(d.buf), d.end+want))
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	got := 0
	for empty := 0; got < want; {
		n, err := d.r.Read(d.buf[d.end:])
		d.end += n
		got += n
		switch {
		case err == io.EOF:
			d.eof = true
			return got > 0
		case err != nil:
			d.rerr = err
			return got > 0
		case n == 0:
			if empty++; empty > 100 {
				d.rerr = io.ErrNoProgress
				return got > 0
			}
		}
	}
	return true
}

func (d *decoder) tooLarge() error {
	return badf("a value at byte %d is larger than %d bytes", d.offset(), maxValueBytes)
}

func (d *decoder) offset() int64 { return d.base + int64(d.pos) }

func (d *decoder) syntaxErr() error {
	if d.pos < d.end {
		return badf("invalid JSON at byte %d: unexpected %q", d.offset(), d.buf[d.pos:d.pos+1])
	}
	return d.truncated()
}

func (d *decoder) truncated() error {
	return badf("truncated JSON: the answer ends after %d bytes", d.base+int64(d.end))
}

// snippet returns the text of up to n bytes at d.pos, for error texts.
func (d *decoder) snippet(n int) string {
	_ = d.want(n + clipMargin)
	return d.clip(d.buf[d.pos:min(d.end, d.pos+n+clipMargin)], n)
}

// clipMargin is how much more than it shows clip should see, so that a
// credential cut by the window is still recognised and hidden.
const clipMargin = 1024

// clip returns b as text for an error message, credentials hidden, cut to
// at most n bytes. Hiding comes first: cutting first could leave part of a
// credential that no longer matches.
func (d *decoder) clip(b []byte, n int) string {
	s := string(b)
	if d.hide != nil {
		s = d.hide.Replace(s)
	}
	return string(truncateUTF8([]byte(s), n))
}

// unquote returns the text of a scanned string token.
func (d *decoder) unquote(raw []byte) string {
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		d.key = appendUnescaped(d.key[:0], s)
		s = d.key
	}
	return string(s)
}

// jsonText is the text of a string value, or the raw text of any other.
func jsonText(raw []byte) []byte {
	switch kindOf(raw[0]) {
	case kString:
		s := raw[1 : len(raw)-1]
		if bytes.IndexByte(s, '\\') >= 0 {
			return appendUnescaped(nil, s)
		}
		return s
	case kNull:
		return nil
	}
	return raw
}

// jsonInt reads an integer given as a number or a numeric string.
func jsonInt(raw []byte) (int, bool) {
	t := trimSpace(jsonText(raw))
	if n, ok := parseUint(t); ok && n <= 1<<31 {
		return int(n), true
	}
	v, ok := parseNumber(t)
	if !ok || v > 1<<31 || v < -(1<<31) || v != math.Trunc(v) {
		return 0, false
	}
	return int(v), true
}

// errorObject reads the value of a top-level "error": a Zoom-style
// {"code": 124, "message": "..."}, or a bare message. null, false, "" and
// {} are not errors.
func (d *decoder) errorObject(raw []byte) *APIError {
	e := &APIError{ErrorObject: true}
	switch kindOf(raw[0]) {
	case kNull, kFalse:
		return nil
	case kObject:
		walkObject(raw, func(key string, val []byte) {
			switch key {
			case "code":
				e.Code, _ = jsonInt(val)
			case "message":
				e.Message = d.clip(jsonText(val), maxMessage)
			}
		})
		if e.Code == 0 && e.Message == "" {
			return nil
		}
	default:
		if e.Message = d.clip(jsonText(raw), maxMessage); e.Message == "" {
			return nil
		}
	}
	return e
}

// walkObject calls fn for each member of a scanned, valid object.
func walkObject(raw []byte, fn func(key string, val []byte)) {
	j := skipWS(raw, 1)
	for j < len(raw) && raw[j] == '"' {
		ks := j
		j, _, _ = scanString(raw, j)
		key := string(jsonText(raw[ks:j]))
		j = skipWS(raw, skipWS(raw, j)+1)
		vs := j
		j, _ = scanValue(raw, j, 1, true)
		fn(key, raw[vs:j])
		j = skipWS(raw, j)
		if j < len(raw) && raw[j] == ',' {
			j = skipWS(raw, j+1)
		}
	}
}

// truncateUTF8 cuts b to at most n bytes without splitting a character.
func truncateUTF8(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return b[:n]
}

// errBodyTooLarge is returned by a capped body once it passes the cap.
var errBodyTooLarge = errors.New("answer too large")

// cappedReader reads at most n bytes and fails, rather than truncating
// silently, when the stream has more.
type cappedReader struct {
	r     io.Reader
	n     int64 // bytes still allowed
	limit int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %s", errBodyTooLarge, formatBytes(c.limit))
		}
		return 0, err
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// formatBytes writes a size in the largest binary unit that divides it.
func formatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
