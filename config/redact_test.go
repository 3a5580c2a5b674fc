package config

import (
	"errors"
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

// TestLoadErrorsHideURLCredentials: config errors quote URLs, and Go's URL
// parser quotes them in full; none may carry a password or a query.
func TestLoadErrorsHideURLCredentials(t *testing.T) {
	for name, account := range map[string]string{
		"api_url query":        `api_url: "ftp://api.example.com/h?api_secret=S3CR3T"`,
		"api_url password":     `api_url: "https://u:S3CR3T@api.example.com:bad/h"`,
		"proxy_url password":   `http_client_config: {proxy_url: "http://u:S3CR3T@proxy:bad"}`,
		"proxy_url with other": "timezone: Mars\n    http_client_config: {proxy_url: \"http://u:S3CR3T@proxy:3128\", proxy_from_environment: true}",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yml")
			os.WriteFile(path, []byte("accounts:\n  - name: a\n    api_key: k\n    api_secret: s\n    "+account+"\n"), 0o600)
			_, err := Load(path)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "S3CR3T") {
				t.Errorf("secret in the error: %v", err)
			}
		})
	}
}
