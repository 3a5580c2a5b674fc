package umeeting

import (
	"math"
	"time"
)

// durationUnits maps the unit words the vendor may write, lower-cased, to an
// index into unitLen. Chinese forms come first in the vendor's answers
// ("9分钟", "1小时5分钟", "45秒"); English and Go-style forms are tolerated too.
var durationUnits = map[string]uint8{
	"天": 0, "d": 0, "day": 0, "days": 0,
	"小时": 1, "小時": 1, "时": 1, "時": 1, "钟头": 1,
	"h": 1, "hr": 1, "hrs": 1, "hour": 1, "hours": 1,
	"分钟": 2, "分鐘": 2, "分": 2,
	"m": 2, "min": 2, "mins": 2, "minute": 2, "minutes": 2,
	"秒": 3, "秒钟": 3, "秒鐘": 3,
	"s": 3, "sec": 3, "secs": 3, "second": 3, "seconds": 3,
}

var unitLen = [...]time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second}

// ParseDuration reads the `duration` text of a record: Chinese ("9分钟",
// "1小时5分钟", "45秒"), English ("9 minutes", "1 hour 5 minutes", "45 sec"),
// Go-like ("1h5m", "45s") or a bare number of minutes ("9", "2.5"). White
// space (and commas) may appear anywhere; each unit may appear once. It
// reports false for empty, negative or unreadable text.
func ParseDuration(s string) (time.Duration, bool) { return parseDuration(s) }

func parseDuration[T string | []byte](s T) (time.Duration, bool) {
	var (
		total float64
		seen  uint8
		word  [16]byte
	)
	i := skipDurSpace(s, 0)
	if i >= len(s) {
		return 0, false
	}
	for first := true; i < len(s); first = false {
		v, j, ok := durNumber(s, i)
		if !ok {
			return 0, false
		}
		i = skipDurSpace(s, j)
		j = durUnit(s, i)
		if j == i {
			// A number without a unit means minutes, but only on its own.
			if !first || i < len(s) {
				return 0, false
			}
			total = v * float64(time.Minute)
			break
		}
		if j-i > len(word) {
			return 0, false
		}
		n := copy(word[:], s[i:j])
		k, known := durationUnits[string(lowerASCII(word[:n]))]
		if !known || seen&(1<<k) != 0 {
			return 0, false
		}
		seen |= 1 << k
		total += v * float64(unitLen[k])
		i = skipDurSpace(s, j)
	}
	if total >= math.MaxInt64 {
		return 0, false
	}
	return time.Duration(math.Round(total)), true
}

// durNumber reads digits with an optional fraction at s[i:].
func durNumber[T string | []byte](s T, i int) (float64, int, bool) {
	var v float64
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		v = v*10 + float64(s[i]-'0')
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		scale := 0.1
		for i < len(s) && isDigit(s[i]) {
			v += float64(s[i]-'0') * scale
			scale /= 10
			i++
			digits++
		}
	}
	return v, i, digits > 0 && !math.IsInf(v, 0)
}

// durUnit returns the end of the unit word at s[i:]: a run of ASCII
// letters, or of non-ASCII bytes that are not separators.
func durUnit[T string | []byte](s T, i int) int {
	j := i
	if j < len(s) && isASCIILetter(s[j]) {
		for j < len(s) && isASCIILetter(s[j]) {
			j++
		}
		return j
	}
	for j < len(s) && s[j] >= 0x80 && durSpaceLen(s, j) == 0 {
		j++
	}
	return j
}

func isASCIILetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// lowerASCII lower-cases the ASCII letters of b in place.
func lowerASCII(b []byte) []byte {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

func skipDurSpace[T string | []byte](s T, i int) int {
	for i < len(s) {
		n := durSpaceLen(s, i)
		if n == 0 {
			return i
		}
		i += n
	}
	return i
}

// durSpaceLen is the length of the separator at s[i]: ASCII space, a comma,
// NBSP, the ideographic space or the ideographic comma; 0 for anything else.
func durSpaceLen[T string | []byte](s T, i int) int {
	switch c := s[i]; {
	case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == ',':
		return 1
	case c == 0xc2 && i+1 < len(s) && s[i+1] == 0xa0: // U+00A0
		return 2
	case c == 0xe3 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0x80 || s[i+2] == 0x81): // U+3000, U+3001
		return 3
	}
	return 0
}
