package umeeting

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// escaped matches a JSON string escape (a UTF-16 surrogate pair as one) or
// a run of percent-encoded bytes, hex digits of either case.
var escaped = regexp.MustCompile(`\\(?:u[0-9a-fA-F]{4}(?:\\u[0-9a-fA-F]{4})?|["\\/bfnrt])|(?:%[0-9a-fA-F]{2})+`)

// decodeEscapes undoes the encodings an API may echo a credential in: JSON
// string escapes (\u002d, \u002B, \/) and percent-encoding, twice, since one
// may hide the other.
func decodeEscapes(s string) string {
	for range 2 {
		s = escaped.ReplaceAllStringFunc(s, func(m string) string {
			if m[0] == '%' {
				d, _ := url.PathUnescape(m)
				return d
			}
			b, _ := jsontext.AppendUnquote(nil, `"`+m+`"`)
			return string(b)
		})
	}
	return s
}

// redactor returns a function that decodes a text the API sent (see
// decodeEscapes) and replaces every credential in it with "<secret>". '+'
// and ' ' count as the same character, since a form encodes a space as '+'.
func redactor(creds ...string) func(string) string {
	var keys []string
	for _, c := range creds {
		for _, form := range []string{c, decodeEscapes(c)} {
			if k := strings.ReplaceAll(form, "+", " "); k != "" && !strings.Contains(k, "\x00") {
				keys = append(keys, k)
			}
		}
	}
	return func(s string) string {
		s = decodeEscapes(s)
		fold := strings.ReplaceAll(s, "+", " ")
		for _, k := range keys {
			for i := strings.Index(fold, k); i >= 0; i = strings.Index(fold, k) {
				// fold keeps s's length, with a mark no key holds where s has "<secret>".
				s, fold = s[:i]+"<secret>"+s[i+len(k):], fold[:i]+strings.Repeat("\x00", 8)+fold[i+len(k):]
			}
		}
		return strings.ToValidUTF8(s, "\uFFFD")
	}
}
