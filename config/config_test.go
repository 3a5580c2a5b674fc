package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v2"
)

func TestExampleConfigLoads(t *testing.T) {
	example, err := os.ReadFile("../config.yml")
	if err != nil {
		t.Fatal(err)
	}
	// The example as shipped is refused for its placeholders (TestPlaceholderCredentials);
	// filled in, it loads.
	filled := strings.NewReplacer(PlaceholderAPIKey, "key", PlaceholderAPISecret, "YOUR_API_SECRET-filled").Replace(string(example))
	cfg, err := parse([]byte(filled), "..")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != 1 || cfg.Accounts[0].Name != "acme" {
		t.Fatalf("accounts = %+v", cfg.Accounts)
	}
	a := cfg.Accounts[0]
	if a.APIURL != DefaultAPIURL || a.Method != "POST" || a.Location.String() != "Asia/Shanghai" || a.Secret != "YOUR_API_SECRET-filled" {
		t.Errorf("account = %+v", a)
	}
	if cfg.PollInterval.D() != 5*time.Minute || cfg.Lookback.D() != 48*time.Hour {
		t.Errorf("intervals = %v %v", cfg.PollInterval, cfg.Lookback)
	}
	if !cfg.Metrics.PerHost || cfg.Metrics.MaxHosts != 10000 {
		t.Errorf("metrics = %+v", cfg.Metrics)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := parse([]byte("accounts:\n- {name: a, api_key: k, api_secret: s}\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Accounts[0]
	if a.MaxMeetingLength.D() != 48*time.Hour || a.MaxPages != 10000 || a.MaxAnswerSize.Base2Bytes != 256<<20 {
		t.Errorf("limits %v %d %v, want 48h, 10000, 256MiB", a.MaxMeetingLength, a.MaxPages, a.MaxAnswerSize)
	}
	if a.PageSize != 100 || a.MaxRetries != 3 || a.DailyRequestBudget != 2000 || a.Timeout.D() != 30*time.Second {
		t.Errorf("account defaults = %+v", a)
	}
	if !a.HTTPClientConfig.FollowRedirects {
		t.Error("http_client_config defaults not applied")
	}
	if got := cfg.EffectivePollTimeout(); got != 10*time.Minute {
		t.Errorf("poll timeout = %v, want 10m", got)
	}
	empty, err := Decode(nil, ".")
	if err != nil {
		t.Fatal(err)
	}
	if empty.PollInterval != DefaultPollInterval || !empty.Metrics.PerHost {
		t.Errorf("empty config defaults = %+v", empty)
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yml")
	os.WriteFile(path, []byte("accounts:\n- {name: a, api_key: k, api_secret_file: secret}\n"), 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Accounts[0].Secret != "s3cr3t" {
		t.Errorf("secret = %q", cfg.Accounts[0].Secret)
	}
}

func TestInvalidConfigs(t *testing.T) {
	const ok = "{name: a, api_key: k, api_secret: s"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "pol_interval: 5m\n", "pol_interval (line 1): unknown key; did you mean poll_interval?"},
		{"unknown account key", "accounts:\n- " + ok + ", api_sekret: x}\n", "accounts[0].api_sekret (line 2): unknown key; did you mean api_secret?"},
		{"missing key", "accounts:\n- {name: a, api_secret: s}\n", "accounts[0] (a): api_key: is required"},
		{"missing secret", "accounts:\n- {name: a, api_key: k}\n", "accounts[0] (a): api_secret or api_secret_file: is required"},
		{"both secrets", "accounts:\n- " + ok + ", api_secret_file: /x}\n", "set only one"},
		{"missing secret file", "accounts:\n- {name: a, api_key: k, api_secret_file: /nonexistent/x}\n", "api_secret_file: open /nonexistent/x"},
		{"missing name", "accounts:\n- {api_key: k, api_secret: s}\n", "accounts[0]: name: is required"},
		{"bad name", "accounts:\n- {name: 'a/b', api_key: k, api_secret: s}\n", `name: "a/b" must start`},
		{"duplicate name", "accounts:\n- " + ok + "}\n- " + ok + "}\n", "accounts[1] (a): name: duplicate of accounts[0]"},
		{"bad duration", "poll_interval: 5 minutes\n", `poll_interval: "5 minutes" is not a duration`},
		{"zero poll interval", "poll_interval: 0s\n", "poll_interval: must be at least 1s"},
		{"short lookback", "lookback: 10m\n", "lookback: must be at least 1h"},
		{"bad url", "accounts:\n- " + ok + ", api_url: 'ftp://x'}\n", `api_url: "ftp://x" is not an absolute http(s) URL`},
		{"relative url", "accounts:\n- " + ok + ", api_url: '/x'}\n", "api_url"},
		{"bad account duration", "accounts:\n- " + ok + ", timeout: soon}\n", `accounts[0] (a): timeout: "soon" is not a duration`},
		{"bad zone", "accounts:\n- " + ok + ", timezone: Mars/Base}\n", `timezone: "Mars/Base" is not a known time zone`},
		{"bad method", "accounts:\n- " + ok + ", method: PUT}\n", `method: "PUT" must be POST or GET`},
		{"bad page size", "accounts:\n- " + ok + ", page_size: 0}\n", "page_size: 0 must be between"},
		{"negative budget", "accounts:\n- " + ok + ", daily_request_budget: -1}\n", "daily_request_budget: must not be negative"},
		{"short max length", "accounts:\n- " + ok + ", max_meeting_length: 30s}\n", "max_meeting_length: must be at least 1m"},
		{"long max length", "accounts:\n- " + ok + ", max_meeting_length: 32d}\n", "max_meeting_length: 32d must be at most 31d"},
		{"no pages", "accounts:\n- " + ok + ", max_pages: 0}\n", "max_pages: 0 must be at least 1"},
		{"tiny answer cap", "accounts:\n- " + ok + ", max_answer_size: 100B}\n", "max_answer_size: 100B must be at least 1KiB"},
		{"bad answer cap", "accounts:\n- " + ok + ", max_answer_size: lots}\n", `max_answer_size: "lots" is not a size like 256MiB`},
		{"bad regexp", "metrics: {host_include: '('}\n", `metrics.host_include: invalid regular expression "("`},
		{"bad http config", "accounts:\n- " + ok + ", http_client_config: {bearer_token: a, bearer_token_file: b}}\n", "at most one of bearer_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse([]byte(tc.yaml), ".")
			if err == nil {
				t.Fatalf("no error for %q", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestRegexpAnchored(t *testing.T) {
	cfg, err := Decode([]byte("metrics: {host_exclude: 'test'}\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	re := cfg.Metrics.HostExclude
	if re.MatchString("mytest") || !re.MatchString("test") || re.String() != "test" {
		t.Errorf("expression not anchored or text lost: %v", re)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	cfg, err := parse([]byte("accounts:\n- {name: a, api_key: k, api_secret: hunter2}\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Accounts[0].APISecret; strings.Contains(string(mustYAML(t, s)), "hunter2") {
		t.Error("secret marshalled in clear")
	}
}

func mustYAML(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAccountsRequired: an empty file, one of comments only, or an empty
// account list fails, so a reload with it cannot remove every account.
func TestAccountsRequired(t *testing.T) {
	for name, text := range map[string]string{
		"empty":         "",
		"comments only": "# nothing yet\n",
		"accounts: []":  "poll_interval: 5m\naccounts: []\n",
		"accounts:":     "accounts:\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yml")
			os.WriteFile(path, []byte(text), 0o600)
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), "accounts: at least one account is required (or run with --demo)") {
				t.Errorf("error %v", err)
			}
		})
	}
}

// parse decodes and validates config text, as Load does a file.
func parse(content []byte, dir string) (*Config, error) {
	cfg, err := Decode(content, dir)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		return nil, err
	}
	return cfg, nil
}
