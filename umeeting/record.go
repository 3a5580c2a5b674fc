package umeeting

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// DefaultMaxMeetingLength is the default longest believable meeting.
const DefaultMaxMeetingLength = 48 * time.Hour

// MaxParticipants is the largest believable participant count (the biggest
// hosted webinars hold tens of thousands); with the longest believable
// length it also keeps participants × seconds far from wrapping a counter.
const MaxParticipants = 100_000

// fieldNames are the record members the parser reads; the flags come last,
// in the order of AllFeatures.
// (The meeting number, "id", is not read: nothing counts by it.)
var fieldNames = [...]string{"uuid", "host", "email", "user_type", "start_time", "end_time", "duration",
	"participants", "has_video", "has_screen_share", "has_voip", "has_pstn", "has_3rd_party_audio", "recording"}

// Indexes into fieldNames.
const fUUID, fHost, fEmail, fUserType, fStart, fEnd, fDuration, fParticipants, fFeatures, nFields = 0, 1, 2, 3, 4, 5, 6, 7, 8, len(fieldNames)

// fieldOf returns the index of the field a record member names, or -1.
func fieldOf(name []byte) int { return slices.Index(fieldNames[:], string(name)) }

// parser turns elements of the data array into Meetings, reusing its buffers.
type parser struct {
	loc       *time.Location // zone of times written without one
	maxLength time.Duration
	raw       []byte                  // the element just read, as written
	at        [nFields][2]int64       // decoder offsets of each field's value
	f         [nFields]jsontext.Value // each field's value; nil when absent
	m         Meeting
	in        map[string]string // shared strings of host, e-mail and user type
	key, low  []byte            // unescaped and lower-cased text
}

// element reads the next value from dec; start is its decoder offset
// (white space and a comma before it included). An object is read member
// by member, noting where the members that field names lie (the last of
// duplicates wins); resolve then finds them.
func (p *parser) element(dec *jsontext.Decoder, field func(name []byte) int) (object bool, start int64, err error) {
	p.at, start = [nFields][2]int64{}, dec.InputOffset()
	if dec.PeekKind() != '{' {
		_, err := dec.ReadValue()
		return false, start, err
	}
	_, err = dec.ReadToken()
	for err == nil && dec.PeekKind() == '"' {
		var name, val jsontext.Value
		if name, err = dec.ReadValue(); err == nil {
			i := field(p.unquote(name))
			if val, err = dec.ReadValue(); err == nil && i >= 0 {
				p.at[i] = [2]int64{dec.InputOffset() - int64(len(val)), dec.InputOffset()}
			}
		}
	}
	if err == nil {
		_, err = dec.ReadToken()
	}
	return err == nil, start, err
}

// resolve points p.raw at the element just read, which ends at decoder
// offset end, and p.f at its fields' values, in src, the input from decoder
// offset base on. They stay valid until src changes.
func (p *parser) resolve(src []byte, base, start, end int64) {
	p.raw = bytes.TrimLeft(src[start-base:end-base], " \t\r\n,")
	for i, at := range p.at {
		p.f[i] = nil
		if at[1] > 0 {
			p.f[i] = src[at[0]-base : at[1]-base]
		}
	}
}

// unquote returns the text of a JSON string: a part of v, or in p.key
// when it has escapes.
func (p *parser) unquote(v []byte) []byte {
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1]
	}
	p.key, _ = jsontext.AppendUnquote(p.key[:0], v)
	return p.key
}

// record fills p.m from the fields of the object element just read, or
// returns the reason the record is invalid.
func (p *parser) record() (reason string) {
	for _, v := range p.f[:fFeatures] { // text: a string or a number; null or absent: no value
		if k := v.Kind(); k != 0 && k != 'n' && k != '"' && k != '0' {
			return ReasonMalformed
		}
	}
	if len(p.text(p.f[fUUID])) == 0 {
		return ReasonMissingUUID
	}
	end, ok := p.time(p.text(p.f[fEnd]))
	if !ok {
		return ReasonBadEndTime
	}
	start, ok := p.time(p.text(p.f[fStart]))
	if ok && start.After(end) {
		return ReasonEndBeforeStart
	}
	if !ok {
		d, ok := p.duration(p.f[fDuration])
		if !ok {
			return ReasonNoLength
		}
		start = end.Add(-d)
	}
	if end.Sub(start) > p.maxLength || start.Before(end.Add(-p.maxLength)) { // Sub saturates
		return ReasonTooLong
	}
	participants := 0.0
	if k := p.f[fParticipants].Kind(); k != 0 && k != 'n' {
		v, ok := p.number(p.text(p.f[fParticipants]))
		switch {
		case !ok || v < 0 || v != math.Trunc(v):
			return ReasonBadParticipants
		case v > MaxParticipants:
			return ReasonTooManyParticipants
		}
		participants = v
	}
	var features Feature
	for i, f := range AllFeatures {
		if p.flag(p.f[fFeatures+i]) {
			features |= f
		}
	}
	// One text at a time: each may live in p.key until the next.
	p.m = Meeting{UUID: validString(p.text(p.f[fUUID])), Host: p.intern(p.text(p.f[fHost])),
		Email: p.intern(p.lower(p.text(p.f[fEmail]))), UserType: p.intern(p.text(p.f[fUserType])),
		Start: start, End: end, Participants: int(participants), Features: features}
	if p.m.UserType == "" {
		p.m.UserType = UnknownUserType
	}
	return ""
}

// text returns the trimmed text of a string or number value, nil for any
// other. The result may live in p.key: use it before the next call.
func (p *parser) text(v jsontext.Value) []byte {
	switch v.Kind() {
	case '"':
		return bytes.TrimSpace(p.unquote(v))
	case '0':
		return v
	}
	return nil
}

// number reads a decimal number given as a number or a numeric string:
// digits, sign, point and exponent only (ParseFloat also takes hex, "inf").
func (p *parser) number(t []byte) (float64, bool) {
	if len(t) == 1 && isDigit(t[0]) {
		return float64(t[0] - '0'), true
	}
	if len(t) == 0 || len(t) > 64 || len(bytes.Trim(t, "0123456789.eE+-")) > 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(t), 64)
	return v, err == nil && !math.IsInf(v, 0)
}

// integer reads an integer given as a number or a numeric string.
func (p *parser) integer(v jsontext.Value) (int, bool) {
	f, ok := p.number(p.text(v))
	return int(f), ok && f == math.Trunc(f) && math.Abs(f) <= 1<<31
}

// time reads end_time/start_time: RFC 3339 with a zone or offset, or
// "2006-01-02 15:04:05" / "2006-01-02T15:04:05" (fractional seconds
// allowed) in p.loc. The result is in UTC.
func (p *parser) time(b []byte) (time.Time, bool) {
	if len(b) < len(time.DateTime) || (b[10] != 'T' && b[10] != ' ') {
		return time.Time{}, false
	}
	layout, zoned := "2006-01-02T15:04:05", "2006-01-02T15:04:05Z07:00"
	if b[10] == ' ' {
		layout, zoned = time.DateTime, "2006-01-02 15:04:05Z07:00"
	}
	if tail := b[19:]; bytes.HasSuffix(tail, []byte("Z")) || bytes.ContainsAny(tail, "+-") {
		layout = zoned
	}
	t, err := time.ParseInLocation(layout, string(b), p.loc)
	return t.UTC(), err == nil
}

// duration reads the duration field: text, or a number of minutes.
func (p *parser) duration(v jsontext.Value) (time.Duration, bool) {
	switch v.Kind() {
	case '"':
		return ParseDuration(string(p.text(v)))
	case '0':
		m, ok := p.number(v)
		return time.Duration(math.Round(m * float64(time.Minute))), ok && m >= 0 && m*float64(time.Minute) < math.MaxInt64
	}
	return 0, false
}

// flag reads a has_* or recording field: booleans, numbers (non-zero is
// true), and strings true/false/yes/no/numbers in any case. Anything else,
// null and absence are false.
func (p *parser) flag(v jsontext.Value) bool {
	switch v.Kind() {
	case 't':
		return true
	case '0', '"':
		t := p.lower(p.text(v))
		n, ok := p.number(t)
		return string(t) == "true" || string(t) == "yes" || (ok && n != 0)
	}
	return false
}

// lower returns t lower-cased, in p.low (or a new slice for non-ASCII text).
func (p *parser) lower(t []byte) []byte {
	if bytes.IndexFunc(t, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0 {
		return bytes.ToLower(t)
	}
	p.low = lowerASCII(append(p.low[:0], t...))
	return p.low
}

// intern returns t as a valid UTF-8 string, shared with earlier records
// (host, e-mail and user type repeat from record to record); the table is
// emptied when it holds 4,096.
func (p *parser) intern(t []byte) string {
	if s, ok := p.in[string(t)]; ok || len(t) == 0 {
		return s
	}
	if len(p.in) >= 4096 {
		clear(p.in)
	}
	s := validString(t)
	p.in[s] = s
	return s
}

// validString copies t into a string, invalid UTF-8 replaced (client_golang
// rejects invalid label values).
func validString(t []byte) string {
	if utf8.Valid(t) {
		return string(t)
	}
	return string(bytes.ToValidUTF8(t, []byte("\uFFFD")))
}
