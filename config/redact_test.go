package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		`api_url: "ftp://h/x?api_secret=S3CR3T" is not`:      `api_url: "ftp://h/x?xxxxx" is not`,
		`parse "http://u:S3CR3T@proxy:bad": invalid port`:    `parse "http://xxxxx@proxy:bad": invalid port`,
		`https://u:p@ss:S3CR3T@h:1/p?q#f and http://ok/path`: `https://xxxxx@h:1/p?xxxxx and http://ok/path`,
		"`HTTPS://tok:S3CR3T@h` then text":                   "`HTTPS://xxxxx@h` then text",
		`socks5://h#S3CR3T`:                                  `socks5://h?xxxxx`,
		`no url here: user:pw@host`:                          `no url here: user:pw@host`,
		`url: "https//h/x?api_secret=S3CR3T" is not`:         `url: "https//h/x?xxxxx" is not`,
		`url: "https:/u:S3CR3T@h/x" is not`:                  `url: "xxxxx@h/x" is not`,
		`url: "h:443/x?api_secret=S3CR3T" is not`:            `url: "h:443/x?xxxxx" is not`,
		`url: "ldap:svc:S3CR3T@host" is not`:                 `url: "xxxxx@host" is not`,
		"found `ldap:svc:S3CR3T@host`, want":                 "found `xxxxx@host`, want",
		`"a \"quoted\" ldap:svc:S3CR3T@host"`:                `"xxxxx@host"`,
		`http://h/users/a@b?x`:                               `http://h/users/a@b?xxxxx`,
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	err := RedactError(errors.Join(os.ErrNotExist, errors.New("http://u:S3CR3T@h")))
	if !errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "S3CR3T") {
		t.Errorf("RedactError: %v", err)
	}
}

// unparsedURLs are URLs with a credential, written without "://": none
// parses, and each has a secret in what could be a query or user info.
var unparsedURLs = []string{
	"https//api.example.com/h?api_secret=S3CR3T",
	"https:/u:S3CR3T@api.example.com/h",
	"api.example.com:443/h?api_secret=S3CR3T",
	"ldap:svc:S3CR3T@ldap.example.com",
}

// TestLoadErrorsHideURLCredentials: config errors quote URLs, and Go's URL
// parser quotes them in full; none may carry a password or a query, even
// of a URL written without "://". Parse's errors, which Load wraps, are
// clean already.
func TestLoadErrorsHideURLCredentials(t *testing.T) {
	cases := map[string]string{
		"api_url query":        `api_url: "ftp://api.example.com/h?api_secret=S3CR3T"`,
		"api_url password":     `api_url: "https://u:S3CR3T@api.example.com:bad/h"`,
		"proxy_url password":   `http_client_config: {proxy_url: "http://u:S3CR3T@proxy:bad"}`,
		"proxy_url with other": "timezone: Mars\n    http_client_config: {proxy_url: \"http://u:S3CR3T@proxy:3128\", proxy_from_environment: true}",
	}
	for i, u := range unparsedURLs {
		cases[fmt.Sprintf("unparsed api_url %d", i)] = `api_url: "` + u + `"`
		cases[fmt.Sprintf("unparsed ldap url %d", i)] = "timezone: UTC\ndirectory:\n  ldap: {url: \"" + u + "\", base_dn: dc=x, start_tls: true}"
	}
	for name, account := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yml")
			content := []byte("accounts:\n  - name: a\n    api_key: k\n    api_secret: s\n    " + account + "\n")
			os.WriteFile(path, content, 0o600)
			_, err := Load(path)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "S3CR3T") {
				t.Errorf("secret in the error: %v", err)
			}
			if _, err := parse(content, "."); strings.HasPrefix(name, "unparsed") && strings.Contains(err.Error(), "S3CR3T") {
				t.Errorf("secret in Parse's error: %v", err)
			}
		})
	}
}
