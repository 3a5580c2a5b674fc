package umeeting

import (
	"bytes"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// kind is the JSON type of a record field as found in the answer.
type kind uint8

const (
	kAbsent kind = iota
	kNull
	kString
	kNumber
	kTrue
	kFalse
	kObject
	kArray
)

func kindOf(c byte) kind {
	switch c {
	case '"':
		return kString
	case '{':
		return kObject
	case '[':
		return kArray
	case 't':
		return kTrue
	case 'f':
		return kFalse
	case 'n':
		return kNull
	}
	return kNumber
}

// field names a record field the parser keeps.
type field uint8

const (
	fUUID field = iota
	fID
	fHost
	fEmail
	fUserType
	fStart
	fEnd
	fDuration
	fParticipants
	fPSTN
	fVoIP
	fThirdPartyAudio
	fVideo
	fScreenShare
	fRecording
	nFields
	fUnknown field = 255
)

func fieldOf(key []byte) field {
	switch string(key) {
	case "uuid":
		return fUUID
	case "id":
		return fID
	case "host":
		return fHost
	case "email":
		return fEmail
	case "user_type":
		return fUserType
	case "start_time":
		return fStart
	case "end_time":
		return fEnd
	case "duration":
		return fDuration
	case "participants":
		return fParticipants
	case "has_pstn":
		return fPSTN
	case "has_voip":
		return fVoIP
	case "has_3rd_party_audio":
		return fThirdPartyAudio
	case "has_video":
		return fVideo
	case "has_screen_share":
		return fScreenShare
	case "recording":
		return fRecording
	}
	return fUnknown
}

// textKinds are the JSON types a text-like field may have: a number stands
// for its own text; null and absence mean "no value".
const textKinds = 1<<kAbsent | 1<<kNull | 1<<kString | 1<<kNumber

// allowedKinds holds, per field, the JSON types that are not malformed.
// id and the flags take anything (what they cannot read counts as 0/false).
var allowedKinds = [nFields]uint16{
	fUUID: textKinds, fID: 0xffff, fHost: textKinds, fEmail: textKinds, fUserType: textKinds,
	fStart: textKinds, fEnd: textKinds, fDuration: textKinds, fParticipants: textKinds,
	fPSTN: 0xffff, fVoIP: 0xffff, fThirdPartyAudio: 0xffff, fVideo: 0xffff, fScreenShare: 0xffff, fRecording: 0xffff,
}

// featureOf maps the flag fields to their Feature.
var featureOf = [...]struct {
	f   field
	bit Feature
}{
	{fVideo, FeatureVideo}, {fScreenShare, FeatureScreenShare}, {fVoIP, FeatureVoIP},
	{fPSTN, FeaturePSTN}, {fThirdPartyAudio, FeatureThirdPartyAudio}, {fRecording, FeatureRecording},
}

// span is where a field's value lies in the element; for a string, its
// content between the quotes.
type span struct {
	kind       kind
	esc        bool // a string with escape sequences
	start, end int
}

// rawRecord is one scanned element: where each known field is.
type rawRecord struct {
	f        [nFields]span
	isObject bool
	keyBuf   []byte
}

// scan scans the element at the start of b (no leading space), noting where
// the known fields are. It validates like scanValue; the element is enclosed
// by the envelope object and the data array.
func (r *rawRecord) scan(b []byte, atEOF bool) (int, scanStatus) {
	r.f = [nFields]span{}
	if len(b) == 0 {
		return 0, scanMore
	}
	if r.isObject = b[0] == '{'; !r.isObject {
		return scanValue(b, 0, 2, atEOF)
	}
	return scanObject(b, 0, 3, atEOF, r)
}

// member implements memberVisitor: it notes where each known field is.
func (r *rawRecord) member(b, key []byte, keyEsc bool, vs, ve int, valEsc bool) {
	if keyEsc {
		r.keyBuf = appendUnescaped(r.keyBuf[:0], key)
		key = r.keyBuf
	}
	fid := fieldOf(key)
	if fid == fUnknown {
		return
	}
	sp := span{kind: kindOf(b[vs]), esc: valEsc, start: vs, end: ve}
	if sp.kind == kString {
		sp.start, sp.end = vs+1, ve-1
	}
	r.f[fid] = sp
}

// parser turns scanned elements into Meetings, reusing its buffers.
type parser struct {
	raw     rawRecord
	in      *interner // nil: allocate every string
	scratch []byte    // unescaped text of the field being read
	lower   []byte    // lower-cased e-mail
}

// ParseRecord validates and normalises one element of the `data` array.
// reason is "" for a valid record, else one of the Reason* constants (and
// m is zero).
func ParseRecord(raw []byte) (m Meeting, reason string) {
	var p parser
	i := skipWS(raw, 0)
	n, st := p.raw.scan(raw[i:], true)
	if st != scanOK || !p.raw.isObject || skipWS(raw, i+n) != len(raw) {
		return Meeting{}, ReasonMalformed
	}
	if reason, _ = p.build(raw[i:i+n], &m, time.Time{}, time.Time{}); reason != "" {
		return Meeting{}, reason
	}
	return m, ""
}

// build fills m from the element b just scanned into p.raw. It returns the
// reason the record is invalid, or "" and whether its end lies in
// [from, to] (a zero bound is open). Strings are made only for kept records.
func (p *parser) build(b []byte, m *Meeting, from, to time.Time) (reason string, keep bool) {
	f := &p.raw.f
	for i := range f {
		if allowedKinds[i]&(1<<f[i].kind) == 0 {
			return ReasonMalformed, false
		}
	}
	if len(p.text(b, fUUID)) == 0 {
		return ReasonMissingUUID, false
	}
	end, ok := parseTime(p.text(b, fEnd))
	if !ok {
		return ReasonBadEndTime, false
	}
	start, ok := parseTime(p.text(b, fStart))
	if ok && start.After(end) {
		return ReasonEndBeforeStart, false
	}
	if !ok {
		d, ok := p.duration(b)
		if !ok {
			return ReasonNoLength, false
		}
		start = end.Add(-d)
	}
	participants, ok := p.count(b)
	if !ok {
		return ReasonBadParticipants, false
	}
	if (!from.IsZero() && end.Before(from)) || (!to.IsZero() && end.After(to)) {
		return "", false
	}
	var features Feature
	for _, fb := range featureOf {
		if p.flag(b, fb.f) {
			features |= fb.bit
		}
	}
	// One text at a time: each may live in p.scratch until the next.
	uuid := p.in.unique(p.text(b, fUUID))
	host := p.in.str(p.text(b, fHost))
	email := p.in.str(p.lowerText(b, fEmail))
	userType := UnknownUserType
	if t := p.text(b, fUserType); len(t) > 0 {
		userType = p.in.str(t)
	}
	*m = Meeting{
		UUID:         uuid,
		ID:           p.id(b),
		Host:         host,
		Email:        email,
		UserType:     userType,
		Start:        start,
		End:          end,
		Participants: participants,
		Features:     features,
	}
	return "", true
}

// text returns the trimmed text of a string or number field, nil for null
// or absent. The result may live in p.scratch: use it before the next call.
func (p *parser) text(b []byte, fid field) []byte {
	sp := p.raw.f[fid]
	switch sp.kind {
	case kString:
		s := b[sp.start:sp.end]
		if sp.esc {
			p.scratch = appendUnescaped(p.scratch[:0], s)
			s = p.scratch
		}
		return trimSpace(s)
	case kNumber:
		return b[sp.start:sp.end]
	}
	return nil
}

// lowerText is text, lower-cased (into p.lower when it must change).
func (p *parser) lowerText(b []byte, fid field) []byte {
	t := p.text(b, fid)
	upper := false
	for _, c := range t {
		if c >= utf8.RuneSelf {
			return bytes.ToLower(t)
		}
		upper = upper || ('A' <= c && c <= 'Z')
	}
	if !upper {
		return t
	}
	p.lower = append(p.lower[:0], t...)
	return lowerASCII(p.lower)
}

// duration reads the duration field: text, or a number of minutes.
func (p *parser) duration(b []byte) (time.Duration, bool) {
	sp := p.raw.f[fDuration]
	switch sp.kind {
	case kString:
		return parseDuration(p.text(b, fDuration))
	case kNumber:
		v, ok := parseNumber(b[sp.start:sp.end])
		if !ok || v < 0 || v*float64(time.Minute) >= math.MaxInt64 {
			return 0, false
		}
		return time.Duration(math.Round(v * float64(time.Minute))), true
	}
	return 0, false
}

// maxParticipants bounds a believable participant count.
const maxParticipants = math.MaxInt32

// count reads participants: a non-negative integer, as a number or a
// numeric string; null or absent is 0.
func (p *parser) count(b []byte) (int, bool) {
	sp := p.raw.f[fParticipants]
	if sp.kind == kAbsent || sp.kind == kNull {
		return 0, true
	}
	t := p.text(b, fParticipants)
	if n, ok := parseUint(t); ok {
		return int(n), n <= maxParticipants
	}
	v, ok := parseNumber(t)
	if !ok || v < 0 || v != math.Trunc(v) || v > maxParticipants {
		return 0, false
	}
	return int(v), true
}

// id reads the meeting number; anything unreadable is 0.
func (p *parser) id(b []byte) int64 {
	sp := p.raw.f[fID]
	if sp.kind != kNumber && sp.kind != kString {
		return 0
	}
	t := p.text(b, fID)
	if n, ok := parseUint(t); ok && n <= math.MaxInt64 {
		return int64(n)
	}
	v, ok := parseNumber(t)
	if !ok || v != math.Trunc(v) || v >= math.MaxInt64 || v < math.MinInt64 {
		return 0
	}
	return int64(v)
}

// flag reads a has_* or recording field: booleans, numbers (non-zero is
// true), and strings true/false/yes/no/numbers in any case. Anything else,
// null and absence are false.
func (p *parser) flag(b []byte, fid field) bool {
	sp := p.raw.f[fid]
	switch sp.kind {
	case kTrue:
		return true
	case kNumber:
		t := b[sp.start:sp.end]
		if len(t) == 1 {
			return t[0] != '0'
		}
		v, ok := parseNumber(t)
		return ok && v != 0
	case kString:
		t := p.text(b, fid)
		var w [5]byte
		if len(t) <= len(w) {
			switch string(lowerASCII(w[:copy(w[:], t)])) {
			case "true", "yes":
				return true
			case "false", "no":
				return false
			}
		}
		v, ok := parseNumber(t)
		return ok && v != 0
	}
	return false
}

// parseUint reads plain decimal digits without overflowing.
func parseUint(t []byte) (uint64, bool) {
	if len(t) == 0 || len(t) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range t {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// parseNumber reads a decimal number (JSON number syntax, with an optional
// '+'); no hex, no infinities, no NaN.
func parseNumber(t []byte) (float64, bool) {
	if len(t) == 0 || len(t) > 64 {
		return 0, false
	}
	digits := false
	for _, c := range t {
		switch {
		case isDigit(c):
			digits = true
		case c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-':
		default:
			return 0, false
		}
	}
	if !digits {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(t), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

// asciiSpace marks ASCII white space.
var asciiSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true, '\v': true, '\f': true}

// trimSpace trims white space, with a fast path for ASCII.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && asciiSpace[b[0]] {
		b = b[1:]
	}
	for len(b) > 0 && asciiSpace[b[len(b)-1]] {
		b = b[:len(b)-1]
	}
	if len(b) > 0 && (b[0] >= utf8.RuneSelf || b[len(b)-1] >= utf8.RuneSelf) {
		return bytes.TrimSpace(b)
	}
	return b
}

// parseTime reads end_time/start_time: RFC 3339 with any offset, or
// "2006-01-02 15:04:05" in UTC. The result is in UTC.
func parseTime(s []byte) (time.Time, bool) {
	if len(s) < len("2006-01-02 15:04:05") {
		return time.Time{}, false
	}
	if s[10] == ' ' {
		if len(s) == 19 {
			return fastTime(s)
		}
		t, err := time.Parse(time.DateTime, string(s))
		return t.UTC(), err == nil
	}
	if len(s) == 20 && s[10] == 'T' && s[19] == 'Z' {
		return fastTime(s)
	}
	t, err := time.Parse(time.RFC3339, string(s))
	return t.UTC(), err == nil
}

// fastTime reads the "2006-01-02T15:04:05" part of s (separator unchecked)
// as UTC, rejecting what time.Parse would reject.
func fastTime(s []byte) (time.Time, bool) {
	if s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// maxInterned bounds the interning table; it is emptied when full.
const (
	maxInterned    = 4096
	maxInternedLen = 128
)

// interner shares the strings of host, e-mail and user type, which repeat
// from record to record, so a record costs one allocation (its uuid).
type interner struct{ m map[string]string }

// str returns t as a valid UTF-8 string (client_golang rejects invalid label
// values), shared when it was seen before.
func (in *interner) str(t []byte) string {
	if len(t) == 0 {
		return ""
	}
	if in == nil || len(t) > maxInternedLen {
		return validString(t)
	}
	if s, ok := in.m[string(t)]; ok {
		return s
	}
	if in.m == nil || len(in.m) >= maxInterned {
		in.m = make(map[string]string, 64)
	}
	s := validString(t)
	in.m[string(t)] = s
	return s
}

// unique returns t as a valid UTF-8 string of its own (uuids do not repeat).
func (in *interner) unique(t []byte) string { return validString(t) }

func validString(t []byte) string {
	if !utf8.Valid(t) {
		return string(bytes.ToValidUTF8(t, []byte(string(utf8.RuneError))))
	}
	return string(t)
}
