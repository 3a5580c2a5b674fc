package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/simulator"
)

// urlSecret is a password or query secret written into URLs of the config.
const urlSecret = "URLS3CR3T-7d1e"

// TestConfigErrorsHideURLCredentials: URLs with a password (proxy_url
// user:password@) or a secret in the query (api_url?api_secret=) are never
// printed in full by --config.check, the /-/reload answer or the log, even
// when they do not parse (Go's URL errors quote the whole text), nor by
// failed polls of a valid such URL.
func TestConfigErrorsHideURLCredentials(t *testing.T) {
	_, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	closed := "http://user:" + urlSecret + "@" + freeAddr(t) + "/h?api_secret=" + urlSecret
	good := writeConfig(t, dir, apiURL, retries, `  - name: closed
    api_url: `+closed+`
    api_key: k
    api_secret: s
    max_retries: 0
    http_client_config: {proxy_url: "http://proxyuser:`+urlSecret+`@`+freeAddr(t)+`"}
`)
	goodText := mustRead(t, good)
	e := startExporter(t, "--config.file="+good, "--storage.path="+filepath.Join(dir, "data"))
	waitFor(t, 20*time.Second, "a failed poll of the closed account", func() bool {
		return upValue(e, "closed") == 0 && strings.Contains(e.Logs.String(), "account=closed")
	})

	cases := map[string]string{
		"api_url query":      `api_url: "ftp://api.example.com/h?api_secret=` + urlSecret + `"`,
		"api_url password":   `api_url: "https://u:` + urlSecret + `@api.example.com:bad/h"`,
		"proxy_url password": `http_client_config: {proxy_url: "http://u:` + urlSecret + `@proxy:bad"}`,
	}
	// URLs written without "://" do not parse: nothing says where their
	// credentials are, but they may be in a query or before an '@'.
	for _, u := range []string{
		"https//api.example.com/h?api_secret=" + urlSecret,
		"https:/u:" + urlSecret + "@api.example.com/h",
		"api.example.com:443/h?api_secret=" + urlSecret,
		"ldap:svc:" + urlSecret + "@ldap.example.com",
	} {
		cases["api_url "+u] = `api_url: "` + u + `"`
		cases["ldap url "+u] = "timezone: UTC\ndirectory:\n  ldap: {url: \"" + u + "\", base_dn: dc=x, start_tls: true}"
	}
	for name, account := range cases {
		bad := "accounts:\n  - name: a\n    api_key: k\n    api_secret: s\n    " + account + "\n"
		os.WriteFile(good, []byte(bad), 0o600)
		out, err := checkConfig(good)
		if err == nil || strings.Contains(string(out), urlSecret) {
			t.Errorf("%s: --config.check: err=%v\n%s", name, err, out)
		}
		code, body := e.Reload()
		if code != http.StatusInternalServerError || strings.Contains(body, urlSecret) {
			t.Errorf("%s: reload answered %d: %s", name, code, body)
		}
	}
	os.WriteFile(good, []byte(goodText), 0o600)
	if strings.Contains(e.Logs.String(), urlSecret) {
		t.Errorf("a URL's secret is in the log:\n%s", e.Logs.String())
	}
	for _, p := range []string{"/metrics", "/"} {
		if _, body := e.Get(p); strings.Contains(body, urlSecret) {
			t.Errorf("a URL's secret is on %s", p)
		}
	}
}
