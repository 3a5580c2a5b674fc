package config

import (
	"regexp"
	"strconv"
	"strings"
)

// urlInText finds URLs in a message: a scheme, "://", and everything up to
// white space or a quote.
var urlInText = regexp.MustCompile("(?i)[a-z][a-z0-9+.-]*://[^\\s\"'`<>]*")

// quotedInText finds the values a message quotes: Go-quoted ("...", as %q
// and url.Error write them) or back-quoted (as YAML errors write them).
var quotedInText = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`")

// Redact returns msg with the credentials of every URL in it removed: the
// user info (user:password@) becomes "xxxxx@" and the query and fragment
// (api_url?api_secret=...) become "?xxxxx". It works on text, so it also
// covers URLs that do not parse, which Go's url.Error quotes in full, and
// quoted values meant as URLs but written without "://" (see RedactValue).
func Redact(msg string) string {
	msg = quotedInText.ReplaceAllStringFunc(msg, func(q string) string {
		if q[0] == '`' {
			return "`" + RedactValue(q[1:len(q)-1]) + "`"
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return `"` + RedactValue(q[1:len(q)-1]) + `"`
		}
		return strconv.Quote(RedactValue(v))
	})
	return urlInText.ReplaceAllStringFunc(msg, RedactValue)
}

// RedactValue returns a configured string meant as a URL without what
// could be a credential, whether or not it parses: the query and fragment
// become "?xxxxx", and the user info becomes "xxxxx@": in "scheme://"
// URLs the authority's, otherwise whatever precedes the last '@'
// ("svc:password@" of "ldap:svc:password@host").
func RedactValue(s string) string {
	rest := ""
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s, rest = s[:i], "?xxxxx"
	}
	prefix := ""
	if scheme, tail, ok := strings.Cut(s, "://"); ok {
		authority, path, _ := strings.Cut(tail, "/")
		prefix, s = scheme+"://", authority
		if len(tail) > len(authority) {
			rest = "/" + path + rest
		}
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = "xxxxx" + s[i:]
	}
	return prefix + s + rest
}

// RedactError returns err with its message passed through Redact; errors.Is
// and errors.As still see err.
func RedactError(err error) error {
	if err == nil {
		return nil
	}
	return redacted{err}
}

type redacted struct{ err error }

func (r redacted) Error() string { return Redact(r.err.Error()) }
func (r redacted) Unwrap() error { return r.err }
