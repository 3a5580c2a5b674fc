package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Defaults of the directory section.
var (
	DefaultDirectoryRefresh = NewDuration(time.Hour)
	DefaultFileTimeout      = NewDuration(30 * time.Second)
	DefaultMaxDepartments   = 500
	DefaultLDAP             = LDAP{
		PageSize:   500,
		Timeout:    NewDuration(30 * time.Second),
		Filter:     "(mail=*)",
		Attributes: DefaultLDAPAttributes,
	}
	// DefaultLDAPAttributes fit Active Directory; README shows OpenLDAP's.
	DefaultLDAPAttributes = LDAPAttributes{
		Email:      "mail",
		Department: "department",
		Site:       "physicalDeliveryOfficeName",
	}
)

// reservedLabels may not be used as extra column names: they are the
// labels of the directory's own metrics.
var reservedLabels = []string{"account", "email", "host", "department", "cost_center", "site", "licence", "user_type", "instance", "job"}

// Directory is the company directory joined with the API's hosts by
// e-mail: a CSV file, an LDAP directory, or both.
type Directory struct {
	// File is a CSV file with a header; see docs/directory.md.
	File string `yaml:"file,omitempty"`
	// FileTimeout bounds a read of File: a read of a hung network share
	// fails then, and the last good copy stays in use.
	FileTimeout Duration `yaml:"file_timeout"`
	LDAP        *LDAP    `yaml:"ldap,omitempty"`
	// RefreshInterval is how often the sources are read again.
	RefreshInterval Duration `yaml:"refresh_interval"`
	// ExtraColumns are further CSV columns (LDAP attributes) exported as
	// labels of umeeting_directory_host_info.
	ExtraColumns []string `yaml:"extra_columns,omitempty"`
	// MaxDepartments caps the distinct department (and cost centre)
	// values with series of their own; the rest are folded into "(other)".
	MaxDepartments int `yaml:"max_departments"`

	// Embedded, when set, is read instead of File (the --demo directory).
	Embedded []byte `yaml:"-"`
}

// LDAP is an LDAP (or Active Directory) source of the directory.
type LDAP struct {
	// URL is ldap://host[:port] (with start_tls) or ldaps://host[:port].
	URL      string `yaml:"url"`
	StartTLS bool   `yaml:"start_tls"`
	BindDN   string `yaml:"bind_dn"`
	// BindPassword, or BindPasswordFile, authenticates BindDN.
	BindPassword     promconfig.Secret    `yaml:"bind_password,omitempty"`
	BindPasswordFile string               `yaml:"bind_password_file,omitempty"`
	BaseDN           string               `yaml:"base_dn"`
	Filter           string               `yaml:"filter"`
	Attributes       LDAPAttributes       `yaml:"attributes"`
	PageSize         int                  `yaml:"page_size"`
	Timeout          Duration             `yaml:"timeout"`
	TLSConfig        promconfig.TLSConfig `yaml:"tls_config,omitempty"`

	// Password is BindPassword or the content of BindPasswordFile, resolved by Validate.
	Password string `yaml:"-"`
}

// LDAPAttributes name the attributes that hold each field; an empty name
// leaves the field empty.
type LDAPAttributes struct {
	Email      string `yaml:"email"`
	Department string `yaml:"department"`
	CostCenter string `yaml:"cost_center"`
	Site       string `yaml:"site"`
	Licence    string `yaml:"licence"`
	Account    string `yaml:"account"`
}

// Tariffs price licences and usage for the chargeback estimate.
type Tariffs struct {
	// Currency is the value of the `currency` label.
	Currency string `yaml:"currency"`
	// Monthly is the price of one licence a month, by licence type.
	Monthly map[string]float64 `yaml:"monthly,omitempty"`
	// PerMeetingHour and PerPSTNMeeting price usage.
	PerMeetingHour float64 `yaml:"per_meeting_hour,omitempty"`
	PerPSTNMeeting float64 `yaml:"per_pstn_meeting,omitempty"`
}

// MonthlyPrice is the monthly price of a licence type; licence types
// match whatever their case, as licence mismatches do.
func (t *Tariffs) MonthlyPrice(licence string) (float64, bool) {
	if p, ok := t.Monthly[licence]; ok {
		return p, true
	}
	for lt, p := range t.Monthly {
		if strings.EqualFold(lt, licence) {
			return p, true
		}
	}
	return 0, false
}

// UnmarshalYAML sets defaults, then decodes strictly.
func (d *Directory) UnmarshalYAML(unmarshal func(any) error) error {
	*d = Directory{RefreshInterval: DefaultDirectoryRefresh, FileTimeout: DefaultFileTimeout, MaxDepartments: DefaultMaxDepartments}
	type plain Directory
	return unmarshal((*plain)(d))
}

// UnmarshalYAML sets defaults, then decodes strictly.
func (l *LDAP) UnmarshalYAML(unmarshal func(any) error) error {
	*l = DefaultLDAP
	type plain LDAP
	return unmarshal((*plain)(l))
}

// setDirectory resolves relative paths against the config file's folder.
func (d *Directory) setDirectory(dir string) {
	if d.File != "" {
		d.File = promconfig.JoinDir(dir, d.File)
	}
	if d.LDAP != nil {
		d.LDAP.TLSConfig.SetDirectory(dir)
		if d.LDAP.BindPasswordFile != "" {
			d.LDAP.BindPasswordFile = promconfig.JoinDir(dir, d.LDAP.BindPasswordFile)
		}
	}
}

// validate checks the directory section; errors name the field.
func (d *Directory) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("directory: "+format, args...)) }
	if d.File == "" && d.LDAP == nil && d.Embedded == nil {
		add("set file, ldap or both")
	}
	if err := d.RefreshInterval.check("refresh_interval", time.Second, "must be at least 1s"); err != nil {
		add("%w", err)
	}
	if err := d.FileTimeout.check("file_timeout", time.Millisecond, "must be positive"); err != nil {
		add("%w", err)
	}
	if d.MaxDepartments < 1 {
		add("max_departments: must be at least 1")
	}
	seen := map[string]bool{}
	for i, c := range d.ExtraColumns {
		name := strings.ToLower(strings.TrimSpace(c))
		switch {
		case !model.LegacyValidation.IsValidLabelName(name):
			add("extra_columns[%d]: %q is not a valid label name (letters, digits and _; not starting with a digit)", i, c)
		case slices.Contains(reservedLabels, name) || strings.HasPrefix(name, "__"):
			add("extra_columns[%d]: %q is reserved", i, c)
		case seen[name]:
			add("extra_columns[%d]: %q is listed twice", i, c)
		}
		seen[name] = true
		d.ExtraColumns[i] = name
	}
	if d.LDAP != nil {
		for _, err := range d.LDAP.validate() {
			add("ldap: %w", err)
		}
	}
	return errs
}

func (l *LDAP) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	u, err := url.Parse(l.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "ldap" && u.Scheme != "ldaps"):
		add("url: %q is not an ldap:// or ldaps:// URL with a host", RedactValue(l.URL))
	case u.Scheme == "ldaps" && l.StartTLS:
		add("start_tls: not with ldaps:// (already TLS)")
	case u.Scheme == "ldap" && !l.StartTLS && !isLoopback(u.Hostname()):
		add("url: %q would send the bind password in clear text: use ldaps:// or start_tls: true", RedactValue(l.URL))
	}
	if strings.TrimSpace(l.BaseDN) == "" {
		add("base_dn: is required")
	}
	if _, err := ldap.CompileFilter(l.Filter); err != nil {
		add("filter: %q is not an LDAP filter (e.g. (mail=*)): %w", l.Filter, err)
	}
	if strings.TrimSpace(l.Attributes.Email) == "" {
		add("attributes.email: is required")
	}
	if l.PageSize < 1 || l.PageSize > math.MaxInt32 {
		add("page_size: %d must be positive", l.PageSize)
	}
	if err := l.Timeout.check("timeout", time.Millisecond, "must be positive"); err != nil {
		errs = append(errs, err)
	}
	switch {
	case l.BindPassword != "" && l.BindPasswordFile != "":
		add("bind_password and bind_password_file: set only one")
	case l.BindPasswordFile != "":
		b, err := os.ReadFile(l.BindPasswordFile)
		if err != nil {
			add("bind_password_file: %w", err)
		} else if l.Password = strings.TrimRight(string(b), "\r\n"); l.Password == "" {
			add("bind_password_file: %s is empty", l.BindPasswordFile)
		}
	default:
		l.Password = string(l.BindPassword)
	}
	if l.BindDN == "" && l.Password != "" {
		add("bind_dn: is required with a password")
	}
	if l.BindDN != "" && l.BindPassword == "" && l.BindPasswordFile == "" { // a bad file is reported above
		add("bind_password or bind_password_file: is required with bind_dn (an empty password would be an unauthenticated bind)")
	}
	if err := l.TLSConfig.Validate(); err != nil {
		add("tls_config: %w", err)
	}
	return errs
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// validate checks the tariffs; errors name the field.
func (t *Tariffs) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("tariffs: "+format, args...)) }
	if strings.TrimSpace(t.Currency) == "" {
		add("currency: is required (e.g. EUR, CNY)")
	}
	price := func(field string, p float64) {
		if p < 0 || math.IsNaN(p) || math.IsInf(p, 0) {
			add("%s: %v must be a non-negative price", field, p)
		}
	}
	licences := slices.Sorted(maps.Keys(t.Monthly)) // errors in a stable order
	for _, lt := range licences {
		price("monthly["+lt+"]", t.Monthly[lt])
	}
	price("per_meeting_hour", t.PerMeetingHour)
	price("per_pstn_meeting", t.PerPSTNMeeting)
	if t.Currency != "" && len(t.Monthly) == 0 && t.PerMeetingHour == 0 && t.PerPSTNMeeting == 0 {
		add("set at least one of monthly, per_meeting_hour, per_pstn_meeting")
	}
	if slices.ContainsFunc(licences, func(k string) bool { return strings.TrimSpace(k) == "" }) {
		add("monthly: an empty licence type")
	}
	return errs
}

// errNoDirectory is returned by tariffs without a directory.
var errNoDirectory = errors.New("tariffs: need a directory section (costs are attributed to departments)")
