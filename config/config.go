// Package config holds the exporter's configuration file: its typed shape,
// strict decoding, defaults and validation.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/alecthomas/units"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v2"
)

// DefaultAPIURL is the vendor's hisMeeting endpoint.
const DefaultAPIURL = "https://api.systeccloud.com/umeeting/share/hisMeeting"

// The example config's placeholder credentials, refused so that they are
// never sent to the real API.
const (
	PlaceholderAPIKey    = "YOUR_API_KEY"
	PlaceholderAPISecret = "YOUR_API_SECRET"
)

// Defaults applied to fields the file leaves out, written as the README
// writes them (48h, not 2d).
var (
	DefaultPollInterval = Duration{Duration: model.Duration(5 * time.Minute), text: "5m"}
	DefaultLookback     = Duration{Duration: model.Duration(48 * time.Hour), text: "48h"}
	DefaultBackfill     = Duration{Duration: model.Duration(30 * 24 * time.Hour), text: "30d"}
	DefaultAccount      = Account{
		APIURL:             DefaultAPIURL,
		Method:             "POST",
		Timezone:           "Asia/Shanghai",
		Timeout:            NewDuration(30 * time.Second),
		PageSize:           100,
		MaxRetries:         3,
		DailyRequestBudget: 2000,
		MaxMeetingLength:   NewDuration(48 * time.Hour),
		MaxPages:           10000,
		MaxAnswerSize:      Bytes{Base2Bytes: 256 << 20},
		HTTPClientConfig:   promconfig.DefaultHTTPClientConfig,
	}
	DefaultMaxHosts = 10000
	// DefaultMetrics: 20 user types is far above the handful of licence
	// types an account has, and bounds the series a misbehaving API can
	// create.
	DefaultMetrics = Metrics{PerHost: true, MaxHosts: DefaultMaxHosts, MaxUserTypes: 20}
)

// Config is the whole configuration file.
type Config struct {
	// PollInterval is how often each account is polled.
	PollInterval Duration `yaml:"poll_interval"`
	// PollTimeout bounds one poll, retries and paging included; zero means
	// twice the poll interval, at least 30s.
	PollTimeout Duration `yaml:"poll_timeout"`
	// Lookback: each poll asks for meetings that ended since now-lookback.
	Lookback Duration `yaml:"lookback"`
	// Backfill is how far back the first start reads, once, so that the
	// 7d/30d gauges are right from the start.
	Backfill Duration  `yaml:"backfill"`
	Accounts []Account `yaml:"accounts"`
	Metrics  Metrics   `yaml:"metrics"`
	// Directory joins hosts with the company directory (optional).
	Directory *Directory `yaml:"directory,omitempty"`
	// Tariffs price licences and usage for chargeback (optional).
	Tariffs *Tariffs `yaml:"tariffs,omitempty"`
}

// Account is one UMeeting account to poll.
type Account struct {
	Name          string            `yaml:"name"`
	APIURL        string            `yaml:"api_url"`
	APIKey        string            `yaml:"api_key"`
	APISecret     promconfig.Secret `yaml:"api_secret"`
	APISecretFile string            `yaml:"api_secret_file"`
	Method        string            `yaml:"method"`
	Timezone      string            `yaml:"timezone"`
	// Timeout bounds one HTTP request, body included.
	Timeout  Duration `yaml:"timeout"`
	PageSize int      `yaml:"page_size"`
	// MaxRetries is how often one request is retried within a poll.
	MaxRetries int `yaml:"max_retries"`
	// DailyRequestBudget caps requests in any 24 hours; 0 means no cap.
	DailyRequestBudget int `yaml:"daily_request_budget"`
	// MinRequestInterval spaces requests, for APIs that allow one a minute.
	MinRequestInterval Duration `yaml:"min_request_interval"`
	// ConcurrentMeetingsLimit is the licence's limit of meetings at once,
	// exported for alerting; 0 means not set.
	ConcurrentMeetingsLimit int `yaml:"concurrent_meetings_limit"`
	// MaxMeetingLength: longer records are invalid (too_long), and requests
	// reach this much further back, for an API that lists by start date.
	MaxMeetingLength Duration `yaml:"max_meeting_length"`
	// MaxPages caps the requests of one poll, unless total_records needs more.
	MaxPages int `yaml:"max_pages"`
	// MaxAnswerSize caps one answer's size (e.g. 256MiB).
	MaxAnswerSize    Bytes                       `yaml:"max_answer_size"`
	HTTPClientConfig promconfig.HTTPClientConfig `yaml:"http_client_config"`

	// Location is Timezone, resolved by Load.
	Location *time.Location `yaml:"-"`
	// Secret is the API secret from api_secret or api_secret_file, resolved by Load.
	Secret string `yaml:"-"`
}

// Metrics chooses the labels of the usage metrics.
type Metrics struct {
	// PerHost false drops the host and email labels everywhere.
	PerHost bool `yaml:"per_host"`
	// HostInclude and HostExclude are anchored regular expressions matched
	// against a host's e-mail and display name; hosts left out are counted
	// in series without host/email labels, so totals stay exact.
	HostInclude *Regexp `yaml:"host_include,omitempty"`
	HostExclude *Regexp `yaml:"host_exclude,omitempty"`
	// MaxHosts caps the hosts that get series of their own (first seen
	// first); the rest are counted without host/email labels. 0: no cap.
	MaxHosts int `yaml:"max_hosts"`
	// MaxUserTypes caps the distinct user_type values (first seen first);
	// meetings of later ones are counted as "other". 0: no cap.
	MaxUserTypes int `yaml:"max_user_types"`
}

// Duration is a Prometheus-style duration (30s, 5m, 2h, 30d). A bad value
// is kept as an error that Validate reports with the field's name.
type Duration struct {
	model.Duration
	text string // as written in the file
	err  error
}

// NewDuration returns d as a Duration.
func NewDuration(d time.Duration) Duration { return Duration{Duration: model.Duration(d)} }

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d.Duration) }

// UnmarshalYAML parses the duration, keeping a parse error for Validate.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	var err error
	if d.Duration, err = model.ParseDuration(s); err != nil {
		d.err = fmt.Errorf("%q is not a duration (use e.g. 30s, 5m, 2h, 30d)", s)
	}
	d.text = s
	return nil
}

// String returns the duration as written in the file (60d, not 1440h0m0s
// nor 8w4d), or in Prometheus units when it was not read from a file.
func (d Duration) String() string {
	if d.text != "" && d.err == nil {
		return d.text
	}
	return d.Duration.String()
}

// check reports a bad value or one below minimum.
func (d Duration) check(field string, minimum time.Duration, why string) error {
	switch {
	case d.err != nil:
		return fmt.Errorf("%s: %w", field, d.err)
	case d.D() < minimum:
		return fmt.Errorf("%s: %s", field, why)
	}
	return nil
}

// Bytes is a size in binary units (512KiB, 256MiB, 1GiB). A bad value is
// kept as an error that Validate reports with the field's name.
type Bytes struct {
	units.Base2Bytes
	err error
}

// UnmarshalYAML parses the size, keeping a parse error for Validate.
func (b *Bytes) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	var err error
	if b.Base2Bytes, err = units.ParseBase2Bytes(s); err != nil {
		b.err = fmt.Errorf("%s", s)
	}
	return nil
}

// Regexp is an anchored regular expression that keeps its source text. A
// bad expression is kept as an error that Validate reports with the
// field's name.
type Regexp struct {
	*regexp.Regexp
	original string
	err      error
}

// UnmarshalYAML compiles the expression, anchored at both ends.
func (r *Regexp) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	re, err := regexp.Compile("^(?:" + s + ")$")
	if err != nil {
		err = fmt.Errorf("invalid regular expression %q: %w", s, err)
	}
	*r = Regexp{Regexp: re, original: s, err: err}
	return nil
}

// check reports a bad expression.
func (r *Regexp) check(field string) error {
	if r != nil && r.err != nil {
		return fmt.Errorf("%s: %w", field, r.err)
	}
	return nil
}

// String returns the expression as written.
func (r *Regexp) String() string { return r.original }

// defaults is a config of the defaults alone: what an empty file means.
func defaults() Config {
	return Config{PollInterval: DefaultPollInterval, Lookback: DefaultLookback, Backfill: DefaultBackfill, Metrics: DefaultMetrics}
}

// UnmarshalYAML sets defaults, then decodes strictly.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = defaults()
	type plain Config
	return unmarshal((*plain)(c))
}

// UnmarshalYAML sets defaults, then decodes strictly.
func (a *Account) UnmarshalYAML(unmarshal func(any) error) error {
	*a = DefaultAccount
	type plain Account
	return unmarshal((*plain)(a))
}

// UnmarshalYAML sets defaults, then decodes strictly.
func (m *Metrics) UnmarshalYAML(unmarshal func(any) error) error {
	*m = DefaultMetrics
	type plain Metrics
	return unmarshal((*plain)(m))
}

var accountName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Load reads, decodes and validates a config file. Relative file paths in
// it are taken relative to the file's folder.
func Load(path string) (*Config, error) {
	cfg, err := Read(path)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, RedactError(fmt.Errorf("config file %s: %w", path, err))
	}
	return cfg, nil
}

// Read reads and decodes a config file without validating it (for --demo,
// which replaces its accounts before validating).
func Read(path string) (*Config, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	cfg, err := Decode(content, filepath.Dir(path))
	if err != nil {
		// Errors quote URLs, which may carry a password or a secret.
		return nil, RedactError(fmt.Errorf("config file %s: %w", path, err))
	}
	return cfg, nil
}

// Decode decodes config text strictly, without validating it; dir
// resolves relative paths. Its errors name the field path and line.
func Decode(content []byte, dir string) (*Config, error) {
	cfg := defaults() // an empty document (or comments only) never calls UnmarshalYAML
	if err := yaml.UnmarshalStrict(content, &cfg); err != nil {
		return nil, explain(content, err)
	}
	for i := range cfg.Accounts {
		cfg.Accounts[i].HTTPClientConfig.SetDirectory(dir)
		if cfg.Accounts[i].APISecretFile != "" {
			cfg.Accounts[i].APISecretFile = promconfig.JoinDir(dir, cfg.Accounts[i].APISecretFile)
		}
	}
	if cfg.Directory != nil {
		cfg.Directory.setDirectory(dir)
	}
	return &cfg, nil
}

// Validate checks every field and resolves zones and secrets. Each error
// names the field it is about.
func (c *Config) Validate() error {
	errs := []error{
		c.PollInterval.check("poll_interval", time.Second, "must be at least 1s"),
		c.PollTimeout.check("poll_timeout", 0, "must not be negative"),
		c.Lookback.check("lookback", time.Hour, "must be at least 1h, since meetings are listed minutes after they end"),
		c.Backfill.check("backfill", 0, "must not be negative"),
	}
	errs = append(errs, c.Metrics.HostInclude.check("metrics.host_include"), c.Metrics.HostExclude.check("metrics.host_exclude"))
	if c.Metrics.MaxHosts < 0 {
		errs = append(errs, errors.New("metrics.max_hosts: must not be negative"))
	}
	if c.Metrics.MaxUserTypes < 0 {
		errs = append(errs, errors.New("metrics.max_user_types: must not be negative (0 means no cap)"))
	}
	if c.Directory != nil {
		errs = append(errs, c.Directory.validate()...)
	}
	if c.Tariffs != nil {
		errs = append(errs, c.Tariffs.validate()...)
		if c.Directory == nil {
			errs = append(errs, errNoDirectory)
		}
	}
	if len(c.Accounts) == 0 {
		// Without this, an empty file passes and a reload with it removes
		// every account's series, umeeting_up included: no alert can fire.
		errs = append(errs, errors.New("accounts: at least one account is required (or run with --demo)"))
	}
	seen := map[string]int{}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		field := fmt.Sprintf("accounts[%d]", i)
		if a.Name != "" {
			field += " (" + a.Name + ")"
		}
		if j, dup := seen[a.Name]; dup && a.Name != "" {
			errs = append(errs, fmt.Errorf("%s: name: duplicate of accounts[%d]", field, j))
		}
		seen[a.Name] = i
		for _, err := range a.validate() {
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", field, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (a *Account) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case a.Name == "":
		add("name: is required")
	case !accountName.MatchString(a.Name):
		add("name: %q must start with a letter or digit and hold only letters, digits, '_', '.', '-'", a.Name)
	}
	if u, err := url.Parse(a.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("api_url: %q is not an absolute http(s) URL", RedactValue(a.APIURL))
	}
	switch key := strings.TrimSpace(a.APIKey); {
	case key == "":
		add("api_key: is required")
	case key == PlaceholderAPIKey:
		add("api_key: %s is the example's placeholder; put the account's API key here", PlaceholderAPIKey)
	}
	switch {
	case a.APISecret != "" && a.APISecretFile != "":
		add("api_secret and api_secret_file: set only one")
	case a.APISecretFile != "":
		b, err := os.ReadFile(a.APISecretFile)
		if err != nil {
			add("api_secret_file: %w", err)
		} else if a.Secret = strings.TrimSpace(string(b)); a.Secret == "" {
			add("api_secret_file: %s is empty", a.APISecretFile)
		}
	case strings.TrimSpace(string(a.APISecret)) == "":
		add("api_secret or api_secret_file: is required")
	default:
		a.Secret = strings.TrimSpace(string(a.APISecret))
	}
	if a.Secret == PlaceholderAPISecret {
		add("api_secret: %s is the example's placeholder; put the account's API secret here (or in api_secret_file)", PlaceholderAPISecret)
	}
	a.Method = strings.ToUpper(a.Method)
	if a.Method != "POST" && a.Method != "GET" {
		add("method: %q must be POST or GET", a.Method)
	}
	loc, err := time.LoadLocation(a.Timezone)
	if err != nil || a.Timezone == "" {
		add("timezone: %q is not a known time zone", a.Timezone)
	}
	a.Location = loc
	errs = append(errs, a.Timeout.check("timeout", time.Millisecond, "must be positive"),
		a.MinRequestInterval.check("min_request_interval", 0, "must not be negative"))
	if a.PageSize < 1 || a.PageSize > 1000 {
		add("page_size: %d must be between 1 and 1000", a.PageSize)
	}
	if a.MaxRetries < 0 {
		add("max_retries: must not be negative")
	}
	if a.DailyRequestBudget < 0 {
		add("daily_request_budget: must not be negative (0 means no cap)")
	}
	if a.ConcurrentMeetingsLimit < 0 {
		add("concurrent_meetings_limit: must not be negative")
	}
	// A month bounds the length: it is what one request covers, and it keeps
	// length × participants far from wrapping a counter.
	errs = append(errs, a.MaxMeetingLength.check("max_meeting_length", time.Minute, "must be at least 1m"))
	if a.MaxMeetingLength.D() > 31*24*time.Hour {
		add("max_meeting_length: %s must be at most 31d", a.MaxMeetingLength.Duration)
	}
	if a.MaxPages < 1 {
		add("max_pages: %d must be at least 1", a.MaxPages)
	}
	switch {
	case a.MaxAnswerSize.err != nil:
		add("max_answer_size: %q is not a size like 256MiB", a.MaxAnswerSize.err.Error())
	case a.MaxAnswerSize.Base2Bytes < 1<<10:
		add("max_answer_size: %s must be at least 1KiB", a.MaxAnswerSize.Base2Bytes)
	}
	if err := a.HTTPClientConfig.Validate(); err != nil {
		add("http_client_config: %w", err)
	}
	return errs
}

// EffectivePollTimeout is the bound of one poll.
func (c *Config) EffectivePollTimeout() time.Duration {
	if c.PollTimeout.D() > 0 {
		return c.PollTimeout.D()
	}
	return max(2*c.PollInterval.D(), 30*time.Second)
}
