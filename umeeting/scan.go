package umeeting

import "unicode/utf8"

// A small validating JSON scanner over a byte slice. It finds where one value
// ends without building anything, so the decoder can split the `data` array
// of a streamed answer into raw elements. It accepts exactly what
// encoding/json accepts (RFC 8259, nesting up to maxDepth), except that it
// does not check UTF-8, which encoding/json does not reject either.

// scanStatus tells how a scan of a value ended.
type scanStatus uint8

const (
	scanOK   scanStatus = iota // a complete value; the offset is just past it
	scanMore                   // the slice ended inside the value: more input may complete it
	scanBad                    // a syntax error at the offset
)

// maxDepth is encoding/json's nesting limit, kept so both agree on validity.
const maxDepth = 10000

var (
	// strPlain marks bytes that need no attention inside a string.
	strPlain [256]bool
	// jsonSpace marks JSON white space.
	jsonSpace [256]bool
	// hexVal is the value of a hex digit, or -1.
	hexVal [256]int8
)

func init() {
	for c := 0x20; c < 256; c++ {
		strPlain[c] = true
	}
	strPlain['"'], strPlain['\\'] = false, false
	for _, c := range []byte{' ', '\t', '\n', '\r'} {
		jsonSpace[c] = true
	}
	for c := range hexVal {
		hexVal[c] = -1
	}
	for c := '0'; c <= '9'; c++ {
		hexVal[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		hexVal[c] = int8(c - 'a' + 10)
		hexVal[c-'a'+'A'] = int8(c - 'a' + 10)
	}
}

// skipWS returns the index of the first non-space byte of b at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) && jsonSpace[b[i]] {
		i++
	}
	return i
}

// scanValue scans the value that starts at b[i] (no leading space), which is
// enclosed by depth containers, and returns the offset just past it. atEOF
// says no input follows b, which decides whether a number at the very end is
// complete.
func scanValue(b []byte, i, depth int, atEOF bool) (int, scanStatus) {
	if i >= len(b) {
		return i, scanMore
	}
	switch c := b[i]; {
	case c == '"':
		j, _, st := scanString(b, i)
		return j, st
	case c == '{':
		return scanObject(b, i, depth+1, atEOF, nil)
	case c == '[':
		return scanArray(b, i, depth+1, atEOF)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	case c == '-' || ('0' <= c && c <= '9'):
		return scanNumber(b, i, atEOF)
	}
	return i, scanBad
}

// scanString scans the string whose opening quote is b[i]; esc reports
// whether it holds an escape sequence.
func scanString(b []byte, i int) (end int, esc bool, st scanStatus) {
	j := i + 1
	for {
		for j < len(b) && strPlain[b[j]] {
			j++
		}
		if j >= len(b) {
			return j, esc, scanMore
		}
		switch b[j] {
		case '"':
			return j + 1, esc, scanOK
		case '\\':
			esc = true
			if j+1 >= len(b) {
				return j, esc, scanMore
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				for k := j + 2; k < j+6; k++ {
					if k >= len(b) {
						return k, esc, scanMore
					}
					if hexVal[b[k]] < 0 {
						return k, esc, scanBad
					}
				}
				j += 6
			default:
				return j + 1, esc, scanBad
			}
		default: // a control character
			return j, esc, scanBad
		}
	}
}

func scanLiteral(b []byte, i int, lit string) (int, scanStatus) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) {
			return i + k, scanMore
		}
		if b[i+k] != lit[k] {
			return i + k, scanBad
		}
	}
	return i + len(lit), scanOK
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber scans a number. A number that reaches the end of b is complete
// only at EOF: otherwise more digits may follow.
func scanNumber(b []byte, i int, atEOF bool) (int, scanStatus) {
	end := scanMore
	if atEOF {
		end = scanOK
	}
	j := i
	if b[j] == '-' {
		j++
		if j >= len(b) {
			return j, scanMore
		}
	}
	switch {
	case b[j] == '0':
		j++
	case isDigit(b[j]):
		for j < len(b) && isDigit(b[j]) {
			j++
		}
	default:
		return j, scanBad
	}
	if j >= len(b) {
		return j, end
	}
	if b[j] == '.' {
		j++
		if j >= len(b) {
			return j, scanMore
		}
		if !isDigit(b[j]) {
			return j, scanBad
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if j >= len(b) {
			return j, end
		}
	}
	if b[j] == 'e' || b[j] == 'E' {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if j >= len(b) {
			return j, scanMore
		}
		if !isDigit(b[j]) {
			return j, scanBad
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if j >= len(b) {
			return j, end
		}
	}
	return j, scanOK
}

// memberVisitor is told of each member of an object scanObject scans: its
// key (escapes not undone; keyEsc says whether there are any) and its value
// b[vs:ve], with valEsc saying whether a string value holds an escape.
type memberVisitor interface {
	member(b, key []byte, keyEsc bool, vs, ve int, valEsc bool)
}

// scanObject scans the object whose '{' is b[i]; depth counts it. A non-nil
// v sees every member.
func scanObject(b []byte, i, depth int, atEOF bool, v memberVisitor) (int, scanStatus) {
	if depth > maxDepth {
		return i, scanBad
	}
	j := skipWS(b, i+1)
	if j >= len(b) {
		return j, scanMore
	}
	if b[j] == '}' {
		return j + 1, scanOK
	}
	for {
		if b[j] != '"' {
			return j, scanBad
		}
		ks := j
		var (
			keyEsc, valEsc bool
			st             scanStatus
		)
		if j, keyEsc, st = scanString(b, j); st != scanOK {
			return j, st
		}
		key := b[ks+1 : j-1]
		if j = skipWS(b, j); j >= len(b) {
			return j, scanMore
		}
		if b[j] != ':' {
			return j, scanBad
		}
		if j = skipWS(b, j+1); j >= len(b) {
			return j, scanMore
		}
		vs := j
		if b[j] == '"' {
			j, valEsc, st = scanString(b, j)
		} else {
			j, st = scanValue(b, j, depth, atEOF)
		}
		if st != scanOK {
			return j, st
		}
		if v != nil {
			v.member(b, key, keyEsc, vs, j, valEsc)
		}
		if j = skipWS(b, j); j >= len(b) {
			return j, scanMore
		}
		switch b[j] {
		case ',':
			if j = skipWS(b, j+1); j >= len(b) {
				return j, scanMore
			}
		case '}':
			return j + 1, scanOK
		default:
			return j, scanBad
		}
	}
}

// scanArray scans the array whose '[' is b[i]; depth counts it.
func scanArray(b []byte, i, depth int, atEOF bool) (int, scanStatus) {
	if depth > maxDepth {
		return i, scanBad
	}
	j := skipWS(b, i+1)
	if j >= len(b) {
		return j, scanMore
	}
	if b[j] == ']' {
		return j + 1, scanOK
	}
	for {
		var st scanStatus
		if j, st = scanValue(b, j, depth, atEOF); st != scanOK {
			return j, st
		}
		if j = skipWS(b, j); j >= len(b) {
			return j, scanMore
		}
		switch b[j] {
		case ',':
			if j = skipWS(b, j+1); j >= len(b) {
				return j, scanMore
			}
		case ']':
			return j + 1, scanOK
		default:
			return j, scanBad
		}
	}
}

// appendUnescaped appends the decoded content of a scanned string (without
// its quotes) to dst. Invalid surrogates become U+FFFD, as in encoding/json.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(s) { // cannot happen in a scanned string
			return dst
		}
		switch e := s[i+1]; e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return dst
			}
			i += 6
			if utf16IsSurrogate(r) {
				r2, ok2 := rune(-1), false
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2, ok2 = hex4(s, i+2)
				}
				if dec := utf16Decode(r, r2); ok2 && dec != utf8.RuneError {
					i += 6
					r = dec
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
		i += 2
	}
	return dst
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		v := hexVal[c]
		if v < 0 {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

func utf16IsSurrogate(r rune) bool { return 0xd800 <= r && r < 0xe000 }

// utf16Decode joins a surrogate pair, or returns U+FFFD.
func utf16Decode(r1, r2 rune) rune {
	if 0xd800 <= r1 && r1 < 0xdc00 && 0xdc00 <= r2 && r2 < 0xe000 {
		return (r1-0xd800)<<10 | (r2 - 0xdc00) + 0x10000
	}
	return utf8.RuneError
}
