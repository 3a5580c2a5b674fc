package umeeting

import (
	"math"
	"regexp"
	"strconv"
	"strings"
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

// Separators are ASCII space, commas, NBSP, the ideographic space and comma.
const durSeparators = " \t\n\v\f\r,\u00a0\u3000\u3001"

var (
	durNumber = regexp.MustCompile(`^\d*\.?\d*$`)
	// durPart is a number, then its unit word: a run of ASCII letters, or of
	// other non-ASCII characters than separators.
	durPart = regexp.MustCompile(`^(\d*\.?\d*)[\t\n\v\f\r ,\x{a0}\x{3000}\x{3001}]*([A-Za-z]+|[^\x00-\x7f\x{a0}\x{3000}\x{3001}]+)[\t\n\v\f\r ,\x{a0}\x{3000}\x{3001}]*`)
)

// ParseDuration reads the `duration` text of a record: Chinese ("9分钟",
// "1小时5分钟", "45秒"), English ("9 minutes", "1 hour 5 minutes", "45 sec"),
// Go-like ("1h5m", "45s") or a bare number of minutes ("9", "2.5"). White
// space (and commas) may appear anywhere; each unit may appear once. It
// reports false for empty, negative or unreadable text.
func ParseDuration(s string) (time.Duration, bool) {
	s = strings.Trim(s, durSeparators)
	number := func(t string) (float64, bool) {
		v, err := strconv.ParseFloat(t, 64)
		return v, strings.ContainsAny(t, "0123456789") && err == nil
	}
	if durNumber.MatchString(s) { // a number without a unit means minutes
		v, ok := number(s)
		return time.Duration(math.Round(v * float64(time.Minute))), ok && v*float64(time.Minute) < math.MaxInt64
	}
	var (
		total float64
		seen  uint8
	)
	for s != "" {
		m := durPart.FindStringSubmatch(s)
		if m == nil {
			return 0, false
		}
		v, ok := number(m[1])
		k, known := durationUnits[strings.ToLower(m[2])]
		if !ok || !known || seen&(1<<k) != 0 {
			return 0, false
		}
		seen |= 1 << k
		total += v * float64(unitLen[k])
		s = s[len(m[0]):]
	}
	if total >= math.MaxInt64 {
		return 0, false
	}
	return time.Duration(math.Round(total)), true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// lowerASCII lower-cases the ASCII letters of b in place.
func lowerASCII(b []byte) []byte {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}
