package umeeting

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Envelope is what an answer said besides its records.
type Envelope struct {
	Status        int // envelope status; 0 when absent
	Message       string
	PageCount     int // paging fields; 0 when absent
	TotalRecords  int
	NextPageToken string

	HasStatus bool // the answer carried a status
	HasData   bool // the answer carried a data array (or data: null)
	Records   int  // elements in data, whether valid, invalid or filtered out
	Delivered int  // elements handed to the sink (Meeting or Invalid)
	Fresh     int  // elements not seen before in this request period (see Client)
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

// maxValueBytes bounds one record (or other envelope member): the decoder
// never buffers more of the answer. maxMessage bounds an API message kept
// for error texts. headBytes of the answer are seen before parsing, to tell
// HTML, text and a byte order mark whatever the read sizes.
const maxValueBytes, maxMessage, headBytes = 1 << 20, 512, 1024

// jsonOptions accept what encoding/json accepts (duplicate names and
// invalid UTF-8 included), so both agree on what a valid answer is.
var jsonOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

var errValueTooLarge = errors.New("value too large") // a value passed maxValueBytes

// window is the answer's reader as the JSON decoder sees it: it counts the
// bytes, keeps the first read error, and refuses to read past limit, so one
// value cannot fill memory.
type window struct {
	r           io.Reader
	read, limit int64
	err         error  // a read error of r, or errValueTooLarge
	kept        []byte // what was read from offset base on, so the value being read is at hand
	base        int64
}

func (w *window) Read(p []byte) (int, error) {
	if w.err == nil && w.read >= w.limit {
		w.err = errValueTooLarge
	}
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.r.Read(p[:min(int64(len(p)), w.limit-w.read)])
	w.kept = append(w.kept, p[:n]...)
	if w.read += int64(n); err != nil && err != io.EOF {
		w.err = err
	}
	return n, err
}

// decoder reads one answer at a time from a stream with jsontext, holding
// at most one value of it. A Fetch makes one and uses it for its pages.
type decoder struct {
	in   window
	dec  jsontext.Decoder
	p    parser
	hide func(string) string // hides credentials in texts kept for errors
	seed maphash.Seed
	// seen holds the hashes of the elements seen in this request period, so
	// that a page of nothing new (an API that ignores page_number) ends the
	// paging; nil: not tracked.
	seen  map[uint64]struct{}
	added []uint64      // hashes the answer being read added to seen
	br    *bufio.Reader // lets the head be seen before parsing
	bom   int64         // length of a byte order mark skipped
}

func newDecoder(loc *time.Location, maxLength time.Duration) *decoder {
	return &decoder{p: parser{loc: loc, maxLength: maxLength, in: map[string]string{}}, seed: maphash.MakeSeed(),
		br: bufio.NewReaderSize(nil, headBytes), hide: func(s string) string { return s }}
}

// newPeriod starts a request period: no element seen yet.
func (d *decoder) newPeriod() { clear(d.seen) }

// decode reads one hisMeeting answer from r as a stream and hands its
// records to sink while reading: valid records whose end lies in [from, to]
// (a zero bound is open) to sink.Meeting, invalid ones to sink.Invalid with
// a copy of their JSON. The caller commits or discards. Memory use does not
// depend on the answer's size.
//
// It fails for an answer that is empty, HTML, not JSON, truncated, followed
// by garbage, without status and data, or that reports an error (*APIError:
// an envelope status other than 200, or an error object); records after such
// a status or error object are not handed over. When it fails, the answer's
// elements count as not seen, since it will be read again.
func (d *decoder) decode(r io.Reader, from, to time.Time, sink Sink) (Envelope, error) {
	d.added = d.added[:0]
	env, err := d.decodeStream(r, from, to, sink)
	if err != nil {
		for _, h := range d.added {
			delete(d.seen, h)
		}
	}
	return env, err
}

func (d *decoder) decodeStream(r io.Reader, from, to time.Time, sink Sink) (env Envelope, err error) {
	d.in, d.bom = window{r: r, limit: maxValueBytes, kept: d.in.kept[:0]}, 0
	d.br.Reset(&d.in)
	defer func() { d.br.Reset(nil); d.in.r = nil }() // drop the reader
	head, _ := d.br.Peek(headBytes)
	if bytes.HasPrefix(head, []byte("\xef\xbb\xbf")) {
		d.br.Discard(3)
		head, d.bom = head[3:], 3
	}
	start := bytes.TrimLeft(head, " \t\r\n")
	switch {
	case len(start) == 0 && len(head) < headBytes && d.in.err != nil:
		return env, &readError{d.in.err}
	case len(start) == 0 && len(head) < headBytes:
		return env, badf("empty body")
	case len(start) == 0 || start[0] == '{':
	case start[0] == '<':
		return env, badf("HTML page instead of JSON")
	case start[0] == '[':
		return env, badf("answer is a JSON array, not an object")
	default:
		return env, badf("answer is not a JSON object (starts with %q)", d.clip(start, 24))
	}
	d.dec.Reset(d.br, jsonOptions...)
	if _, err := d.dec.ReadToken(); err != nil { // '{', or only white space before more
		return env, d.jsonErr(err)
	}
	var (
		apiErr    *APIError
		badStatus string // the text of a status that is not a number
	)
	for d.mark() && d.dec.PeekKind() != '}' {
		key, err := d.dec.ReadValue()
		if err != nil {
			return env, d.jsonErr(err)
		}
		name := string(d.p.unquote(key))
		d.mark()
		if name == "data" && d.dec.PeekKind() == '[' {
			deliver := apiErr == nil && badStatus == "" && (!env.HasStatus || env.Status == 200)
			if err := d.data(&env, deliver, from, to, sink); err != nil {
				return env, err
			}
			continue
		}
		raw, err := d.dec.ReadValue()
		if err != nil {
			return env, d.jsonErr(err)
		}
		switch name {
		case "data":
			if k := raw.Kind(); k != 'n' {
				return env, badf("data is %s, not an array", map[jsontext.Kind]string{'"': "a string", '0': "a number",
					't': "a boolean", 'f': "a boolean", '{': "an object"}[k])
			}
			env.HasData = true
		case "status":
			n, ok := d.p.integer(raw)
			if env.HasStatus, env.Status, badStatus = raw.Kind() != 'n', n, ""; !ok && env.HasStatus {
				badStatus = d.clip(raw, 64)
			}
		case "message":
			env.Message = d.clip(d.p.text(raw), maxMessage)
		case "page_count":
			env.PageCount, _ = d.p.integer(raw)
		case "total_records":
			env.TotalRecords, _ = d.p.integer(raw)
		case "next_page_token":
			env.NextPageToken = string(d.p.text(raw))
		case "error":
			apiErr = d.errorObject(raw)
		}
	}
	if _, err := d.dec.ReadToken(); err != nil { // '}'
		return env, d.jsonErr(err)
	}
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

// data reads the array of records, one element at a time.
func (d *decoder) data(env *Envelope, deliver bool, from, to time.Time, sink Sink) error {
	env.HasData = true
	if _, err := d.dec.ReadToken(); err != nil {
		return d.jsonErr(err)
	}
	for d.mark() && d.dec.PeekKind() != ']' {
		raw, reason, err := d.element(deliver)
		if err != nil {
			return d.jsonErr(err)
		}
		d.handOver(env, deliver, reason, raw, from, to, sink)
	}
	_, err := d.dec.ReadToken() // ']'
	return d.jsonErr(err)
}

// handOver counts one element of the data array and hands it to sink: raw
// with the reason it is invalid, or the meeting in d.p.m when it ended in
// [from, to].
func (d *decoder) handOver(env *Envelope, deliver bool, reason string, raw []byte, from, to time.Time, sink Sink) {
	env.Records++
	if d.seen != nil {
		if h := maphash.Bytes(d.seed, raw); !has(d.seen, h) {
			d.seen[h] = struct{}{}
			d.added = append(d.added, h)
			env.Fresh++
		}
	}
	switch {
	case !deliver:
	case reason != "":
		env.Delivered++
		sink.Invalid(reason, bytes.Clone(raw))
	case within(d.p.m.End, from, to):
		env.Delivered++
		sink.Meeting(&d.p.m)
	}
}

func has(set map[uint64]struct{}, h uint64) bool {
	_, ok := set[h]
	return ok
}

// within says whether end lies in [from, to], a zero bound being open.
func within(end, from, to time.Time) bool {
	return (from.IsZero() || !end.Before(from)) && (to.IsZero() || !end.After(to))
}

// element reads the next element of the data array, parsing it while it
// is read: raw as written and, when parse, why the record is invalid or ""
// with the meeting in d.p.m.
func (d *decoder) element(parse bool) (raw []byte, reason string, err error) {
	object, start, err := d.p.element(&d.dec, fieldOf)
	if err != nil {
		return nil, "", err
	}
	d.p.resolve(d.in.kept, d.in.base-d.bom, start, d.dec.InputOffset())
	if !parse || !object {
		return d.p.raw, ReasonMalformed, nil
	}
	return d.p.raw, d.p.record(), nil
}

// mark lets the next value be read: at most maxValueBytes from here.
func (d *decoder) mark() bool {
	pos := d.dec.InputOffset() + d.bom
	if drop := pos - d.in.base; drop >= 64<<10 {
		d.in.kept, d.in.base = d.in.kept[:copy(d.in.kept, d.in.kept[drop:])], pos
	}
	d.in.limit = pos + maxValueBytes
	return true
}

// expectEnd checks that only white space follows the answer.
func (d *decoder) expectEnd() error {
	end := d.dec.InputOffset()
	d.mark()
	if _, err := d.dec.ReadToken(); err != io.EOF {
		if d.in.err != nil {
			return d.jsonErr(err)
		}
		return badf("unexpected data after the JSON answer, which ends at byte %d", end)
	}
	return nil
}

// jsonErr turns an error of the JSON decoder into the decoder's own.
func (d *decoder) jsonErr(err error) error {
	var se *jsontext.SyntacticError
	switch {
	case err == nil:
		return nil
	case d.in.err == errValueTooLarge:
		return badf("a value at byte %d is larger than %d bytes", d.dec.InputOffset(), maxValueBytes)
	case d.in.err != nil:
		return &readError{d.in.err}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return badf("truncated JSON: the answer ends after %d bytes", d.in.read)
	case errors.As(err, &se):
		// jsontext's own text may quote a character cut by its buffer.
		return badf("invalid JSON at byte %d", se.ByteOffset)
	}
	return &readError{err}
}

// errorObject reads the value of a top-level "error": a Zoom-style
// {"code": 124, "message": "..."}, or a bare message. null, false, 0, ""
// and {} are not errors (some APIs write "error": 0 on success).
func (d *decoder) errorObject(raw jsontext.Value) *APIError {
	e := &APIError{ErrorObject: true, Message: string(raw)} // true or an array: as written
	switch raw.Kind() {
	case '{':
		dec := jsontext.NewDecoder(bytes.NewReader(raw), jsonOptions...)
		d.p.element(dec, func(name []byte) int { return map[string]int{"code": 1, "message": 2}[string(name)] - 1 })
		d.p.resolve(raw, 0, 0, dec.InputOffset())
		e.Code, _ = d.p.integer(d.p.f[0])
		raw = d.p.f[1]
		fallthrough
	case '"', '0', 'n':
		e.Message = string(d.p.text(raw))
	}
	if n, ok := d.p.number([]byte(e.Message)); e.Code == 0 && (e.Message == "" || e.Message == "false" || ok && n == 0) {
		return nil
	}
	e.Message = d.clip([]byte(e.Message), maxMessage)
	return e
}

// clip returns b as text for an error message, credentials hidden, cut to
// at most n bytes. Hiding comes first: cutting first could leave part of a
// credential that no longer matches.
func (d *decoder) clip(b []byte, n int) string { return truncateUTF8(d.hide(string(b)), n) }

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
