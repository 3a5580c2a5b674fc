package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDirectorySection(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ldap.pw"), []byte("pa55-ldap\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parse([]byte(`
accounts: [{name: a, api_key: k, api_secret: s}]
directory:
  file: people.csv
  extra_columns: [Manager, title]
  ldap:
    url: ldaps://ad.example.com
    bind_dn: CN=svc,DC=example,DC=com
    bind_password_file: ldap.pw
    base_dn: DC=example,DC=com
    tls_config: {ca_file: ca.pem}
tariffs:
  currency: EUR
  monthly: {Pro: 14.5, Corp: 19}
  per_meeting_hour: 0.1
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Directory
	if d.File != filepath.Join(dir, "people.csv") || d.RefreshInterval.D() != time.Hour || d.MaxDepartments != DefaultMaxDepartments {
		t.Errorf("directory = %+v", d)
	}
	if d.ExtraColumns[0] != "manager" {
		t.Errorf("extra columns = %v", d.ExtraColumns)
	}
	l := d.LDAP
	if l.Password != "pa55-ldap" || l.PageSize != 500 || l.Attributes.Email != "mail" || l.Attributes.Department != "department" || l.Filter != "(mail=*)" {
		t.Errorf("ldap = %+v", l)
	}
	if l.TLSConfig.CAFile != filepath.Join(dir, "ca.pem") {
		t.Errorf("ca_file not resolved: %q", l.TLSConfig.CAFile)
	}
	if cfg.Tariffs.Monthly["Pro"] != 14.5 || cfg.Tariffs.Currency != "EUR" {
		t.Errorf("tariffs = %+v", cfg.Tariffs)
	}
}

func TestDirectoryErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"directory: {}", "directory: set file, ldap or both"},
		{"directory: {file: a.csv, refresh_interval: 1x}", "directory: refresh_interval:"},
		{"directory: {file: a.csv, max_departments: 0}", "directory: max_departments: must be at least 1"},
		{"directory: {file: a.csv, extra_columns: [department]}", `extra_columns[0]: "department" is reserved`},
		{"directory: {file: a.csv, extra_columns: [2x]}", `extra_columns[0]: "2x" is not a valid label name`},
		{"directory: {file: a.csv, fle: b}", "unknown key; did you mean file?"},
		{"directory: {ldap: {url: 'http://x', base_dn: b}}", `ldap: url: "http://x" is not an ldap:// or ldaps:// URL`},
		{"directory: {ldap: {url: 'ldap://ad.example.com', base_dn: b}}", "would send the bind password in clear text"},
		{"directory: {ldap: {url: 'ldaps://ad.example.com', start_tls: true, base_dn: b}}", "start_tls: not with ldaps://"},
		{"directory: {ldap: {url: 'ldaps://ad', base_dn: b, filter: 'mail=*'}}", `filter: "mail=*" is not an LDAP filter`},
		{"directory: {ldap: {url: 'ldaps://ad', base_dn: ''}}", "base_dn: is required"},
		{"directory: {ldap: {url: 'ldaps://ad', base_dn: b, bind_dn: cn=x}}", "bind_password or bind_password_file: is required with bind_dn"},
		{"directory: {ldap: {url: 'ldaps://ad', base_dn: b, bind_dn: cn=x, bind_password: p, bind_password_file: f}}", "set only one"},
		{"directory: {ldap: {url: 'ldaps://ad', base_dn: b, bind_dn: cn=x, bind_password_file: /nonexistent/pw}}", "bind_password_file: open /nonexistent/pw"},
		{"directory: {ldap: {url: 'ldaps://ad', base_dn: b, attributes: {email: ''}}}", "attributes.email: is required"},
		{"tariffs: {currency: EUR, monthly: {Pro: 1}}", "tariffs: need a directory section"},
		{"directory: {file: a.csv}\ntariffs: {monthly: {Pro: 1}}", "tariffs: currency: is required"},
		{"directory: {file: a.csv}\ntariffs: {currency: EUR, monthly: {Pro: -1}}", "tariffs: monthly[Pro]: -1 must be a non-negative price"},
		{"directory: {file: a.csv}\ntariffs: {currency: EUR}", "tariffs: set at least one of"},
	} {
		_, err := parse([]byte(tc.yaml), ".")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %q", tc.yaml, err, tc.want)
		}
	}
}

// TestBadPasswordFileIsOneError: a bind_password_file that cannot be read
// or is empty is one mistake, reported once, not also as a missing password.
func TestBadPasswordFileIsOneError(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.pw")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"/nonexistent/pw", empty} {
		_, err := parse([]byte("accounts: [{name: a, api_key: k, api_secret: s}]\ndirectory: {ldap: {url: 'ldaps://ad', base_dn: b, bind_dn: cn=x, bind_password_file: "+file+"}}"), ".")
		if err == nil || strings.Count(err.Error(), "bind_password") != 1 {
			t.Errorf("bind_password_file %s: %v; want one error about it", file, err)
		}
	}
}

func TestLDAPPasswordNeverPrinted(t *testing.T) {
	cfg, err := parse([]byte("accounts: [{name: a, api_key: k, api_secret: s}]\ndirectory: {ldap: {url: 'ldaps://ad', base_dn: b, bind_dn: cn=x, bind_password: Sup3r-s3cret}}"), ".")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Directory.LDAP.Password != "Sup3r-s3cret" {
		t.Fatal("password not resolved")
	}
	if out := string(mustYAML(t, cfg)); strings.Contains(out, "Sup3r-s3cret") {
		t.Errorf("password printed:\n%s", out)
	}
}
