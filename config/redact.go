package config

import (
	"regexp"
	"strings"
)

// urlInText finds URLs in a message: a scheme, "://", and everything up to
// white space or a quote.
var urlInText = regexp.MustCompile("(?i)[a-z][a-z0-9+.-]*://[^\\s\"'`<>]*")

// Redact returns msg with the credentials of every URL in it removed: the
// user info (user:password@) becomes "xxxxx@" and the query and fragment
// (api_url?api_secret=...) become "?xxxxx". It works on text, so it also
// covers URLs that do not parse, which Go's url.Error quotes in full.
func Redact(msg string) string {
	return urlInText.ReplaceAllStringFunc(msg, func(u string) string {
		rest := ""
		if i := strings.IndexAny(u, "?#"); i >= 0 {
			u, rest = u[:i], "?xxxxx"
		}
		scheme, tail, _ := strings.Cut(u, "://")
		authority, path, slash := strings.Cut(tail, "/")
		if i := strings.LastIndexByte(authority, '@'); i >= 0 {
			authority = "xxxxx" + authority[i:]
		}
		if slash {
			path = "/" + path
		}
		return scheme + "://" + authority + path + rest
	})
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
