package config

import (
	"strings"
	"testing"
)

// account is a valid account in block style, lines 2-5 of a file that
// starts with "accounts:".
const account = `accounts:
  - name: acme
    api_key: k
    api_secret: s
`

// TestErrorMessages pins the exact text of the errors a person reads from
// --config.check, a failed start or a failed reload: each names the field
// path and its line, and an unknown key comes with the nearest known one.
func TestErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"misspelt account key", account + "    api_secert: s\n",
			"accounts[0].api_secert (line 5): unknown key; did you mean api_secret?"},
		{"misspelt top-level key", "poll_intervall: 5m\n" + account,
			"poll_intervall (line 1): unknown key; did you mean poll_interval?"},
		{"swapped letters", "metrics:\n  max_hsots: 5\n",
			"metrics.max_hsots (line 2): unknown key; did you mean max_hosts?"},
		{"nested http_client_config key", account + "    http_client_config:\n      tls_config:\n        ca_fiel: x\n",
			"accounts[0].http_client_config.tls_config.ca_fiel (line 7): unknown key; did you mean ca_file?"},
		{"unknown key, nothing near", account + "    colour: blue\n",
			"accounts[0].colour (line 5): unknown key; known keys here: api_key, api_secret, api_secret_file, api_url, concurrent_meetings_limit, daily_request_budget, http_client_config, max_answer_size, max_meeting_length, max_pages, max_retries, method, min_request_interval, name, page_size, timeout, timezone"},
		{"key dedented out of its account", "accounts:\n  - name: acme\n    api_key: k\napi_secret: s\n",
			"api_secret (line 4): unknown key here; api_secret is a key of an account (accounts[]): check its indentation"},
		{"key indented into another", "metrics:\n  per_host: true\n  lookback: 48h\n",
			"metrics.lookback (line 3): unknown key here; lookback is a key of the top level: check its indentation"},
		{"wrong indentation, less", "accounts:\n  - name: acme\n    api_key: k\n   api_secret: s\n",
			"line 4 (after accounts[0].api_key): did not find expected '-' indicator; check the indentation of line 4 against the lines above it (spaces only, no tabs)"},
		{"wrong indentation, more", "accounts:\n  - name: acme\n    api_key: k\n      api_secret: s\n",
			"line 4 (after accounts[0].api_key): mapping values are not allowed in this context; check the indentation of line 4 against the lines above it (spaces only, no tabs)"},
		{"wrong indentation at the top", "poll_interval: 5m\n lookback: 48h\n",
			"line 2 (after poll_interval): mapping values are not allowed in this context; check the indentation of line 2 against the lines above it (spaces only, no tabs)"},
		{"not a number", account + "    page_size: many\n",
			`accounts[0].page_size (line 5): expected a whole number, found text "many"`},
		{"not a boolean", "metrics:\n  per_host: perhaps\n",
			`metrics.per_host (line 2): expected true or false, found text "perhaps"`},
		{"a list for a mapping", "metrics: [a, b]\n",
			"metrics (line 1): expected a mapping of keys to values, found a list"},
		{"bad host_include", account + "metrics:\n  host_include: '(a'\n",
			"metrics.host_include: invalid regular expression \"(a\": error parsing regexp: missing closing ): `^(?:(a)$`"},
		{"bad host_exclude", account + "metrics:\n  host_exclude: '*'\n",
			"metrics.host_exclude: invalid regular expression \"*\": error parsing regexp: missing argument to repetition operator: `*`"},
		{"http_client_config checks itself", account + "    http_client_config:\n      bearer_token: a\n      bearer_token_file: b\n",
			"accounts[0].http_client_config (line 5): at most one of bearer_token & bearer_token_file must be configured"},
		{"key set twice", account + "    api_key: k2\n",
			"accounts[0].api_key (line 5): set more than once"},
		{"placeholder key", "accounts:\n  - {name: acme, api_key: YOUR_API_KEY, api_secret: s}\n",
			"accounts[0] (acme): api_key: YOUR_API_KEY is the example's placeholder; put the account's API key here"},
		{"placeholder secret", "accounts:\n  - {name: acme, api_key: k, api_secret: YOUR_API_SECRET}\n",
			"accounts[0] (acme): api_secret: YOUR_API_SECRET is the example's placeholder; put the account's API secret here (or in api_secret_file)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse([]byte(tc.yaml), ".")
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.yaml)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestPlaceholderCredentials: the example config, as shipped, is refused
// for both placeholders.
func TestPlaceholderCredentials(t *testing.T) {
	_, err := Load("../config.yml")
	if err == nil {
		t.Fatal("the example's placeholder credentials were accepted")
	}
	for _, want := range []string{"api_key: YOUR_API_KEY is the example's placeholder", "api_secret: YOUR_API_SECRET is the example's placeholder"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"defaults fit the budget", account, nil},
		{"polls over the budget", "poll_interval: 5s\n" + account, []string{
			"accounts[0] (acme): 5s polls with a 48h lookback need about 17280 requests a day (1 a poll for its 7 padded days, more with paging); the budget is 2000: polls will fail once it is spent (raise poll_interval or daily_request_budget)"}},
		{"a long lookback needs two requests a poll", "poll_interval: 1m\nlookback: 40d\n" + account, []string{
			"accounts[0] (acme): 1m polls with a 40d lookback need about 2880 requests a day (2 a poll for its 45 padded days, more with paging); the budget is 2000: polls will fail once it is spent (raise poll_interval or daily_request_budget)"}},
		{"no budget, no warning", "poll_interval: 5s\n" + account + "    daily_request_budget: 0\n", nil},
		{"min_request_interval over poll_interval", "poll_interval: 30s\n" + account + "    min_request_interval: 1m\n    daily_request_budget: 0\n", []string{
			"accounts[0] (acme): min_request_interval 1m is longer than poll_interval 30s: each poll waits for the previous poll's last request, polls run late, and one fails when that wait would pass poll_timeout 1m"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse([]byte(tc.yaml), ".")
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Warnings()
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestPaddedDays(t *testing.T) {
	// The client asks for the dates from..to, padded by a day on each side.
	for lookback, want := range map[string]int{"1h": 4, "24h": 4, "36h": 5, "48h": 5, "30d": 33} {
		cfg, err := Decode([]byte("lookback: "+lookback+"\n"), ".")
		if err != nil {
			t.Fatal(err)
		}
		if got := PaddedDays(cfg.Lookback.D()); got != want {
			t.Errorf("lookback %s: %d padded days, want %d", lookback, got, want)
		}
	}
}
