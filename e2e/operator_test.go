package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/simulator"
)

// TestOneLogStyle reads the real binary's log stream, in both formats, and
// checks that every line (the exporter's own and the exporter toolkit's
// "Listening on") starts with level, ts and caller, carries msg, and has
// nothing of slog's own style.
func TestOneLogStyle(t *testing.T) {
	_, apiURL := newSim(t, simulator.Options{Hosts: 10})
	for _, format := range []string{"logfmt", "json"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeConfig(t, dir, apiURL, retries, "")
			e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"), "--log.format="+format)
			waitFor(t, 20*time.Second, "the first poll and the listener's line", func() bool {
				logs := e.Logs.String()
				return upValue(e, "e2e") == 1 && strings.Contains(logs, "Listening on")
			})
			e.Kill()
			lines := 0
			sc := bufio.NewScanner(strings.NewReader(e.Logs.String()))
			for sc.Scan() {
				line := sc.Text()
				lines++
				var keys []string
				if format == "json" {
					keys = jsonKeys(t, line)
				} else {
					keys = logfmtKeys(line)
				}
				// go-kit's JSON logger sorts the keys; logfmt keeps the order.
				for i, k := range []string{"level", "ts", "caller", "msg"} {
					if !slices.Contains(keys, k) || (format == "logfmt" && i < 3 && keys[i] != k) {
						t.Errorf("line lacks %s or does not start with level, ts, caller: %s", k, line)
					}
				}
				for _, k := range keys {
					if k == "time" || k == "source" {
						t.Errorf("line has slog's %q key: %s", k, line)
					}
				}
			}
			if lines < 3 {
				t.Errorf("only %d log lines", lines)
			}
		})
	}
}

// logfmtKeys returns the keys of a logfmt line in order.
func logfmtKeys(line string) []string {
	var keys []string
	for i := 0; i < len(line); {
		eq := strings.IndexByte(line[i:], '=')
		if eq < 0 {
			break
		}
		keys = append(keys, line[i:i+eq])
		i += eq + 1
		if i < len(line) && line[i] == '"' {
			for i++; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' {
					i++
				}
			}
			i++
		} else {
			for i < len(line) && line[i] != ' ' {
				i++
			}
		}
		for i < len(line) && line[i] == ' ' {
			i++
		}
	}
	return keys
}

// jsonKeys returns the keys of a JSON log line in order.
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Errorf("not a JSON object: %s", line)
		return nil
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Errorf("bad JSON line %s: %v", line, err)
			return keys
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Errorf("bad JSON line %s: %v", line, err)
			return keys
		}
	}
	return keys
}

// TestPprofBehindFlag: without --web.enable-pprof the landing page links no
// profile and /debug/pprof/ is not served; with it both are.
func TestPprofBehindFlag(t *testing.T) {
	_, apiURL := newSim(t, simulator.Options{Hosts: 10})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries, "")

	off := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "off"))
	if code, body := off.Get("/"); code != 200 || strings.Contains(body, "debug/pprof") {
		t.Errorf("landing page without the flag: HTTP %d, links pprof: %v", code, strings.Contains(body, "debug/pprof"))
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap"} {
		if code, _ := off.Get(path); code != 404 {
			t.Errorf("%s without the flag: HTTP %d, want 404", path, code)
		}
	}

	on := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "on"), "--web.enable-pprof")
	code, body := on.Get("/")
	if code != 200 || !strings.Contains(body, "debug/pprof/heap") || !strings.Contains(body, "debug/pprof/profile") {
		t.Errorf("landing page with the flag: HTTP %d, no pprof links", code)
	}
	if code, body := on.Get("/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("/debug/pprof/heap with the flag: HTTP %d", code)
	}
	if code, _ := on.Get("/debug/pprof/profile?seconds=1"); code != 200 {
		t.Errorf("/debug/pprof/profile with the flag: HTTP %d", code)
	}
}

// TestHelpDescribesTheProgram: --help starts with a one-line description
// and says how to reload.
func TestHelpDescribesTheProgram(t *testing.T) {
	out, err := exec.Command(exporterBinary, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	lines := strings.Split(string(out), "\n")
	if len(lines) < 3 || lines[1] != "" || !strings.HasPrefix(lines[2], "Serves UMeeting meeting usage") || !strings.HasSuffix(lines[2], ".") {
		t.Errorf("--help does not open with a one-line description:\n%s", out)
	}
	text := strings.Join(strings.Fields(string(out)), " ")
	for _, want := range []string{"SIGHUP", "POST /-/reload", "--config.check", "'serve --help'", "'history --help'"} {
		if !strings.Contains(text, want) {
			t.Errorf("--help lacks %q:\n%s", want, text)
		}
	}
	// The server's own flags, where --help sends the reader.
	out, err = exec.Command(exporterBinary, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("serve --help: %v\n%s", err, out)
	}
	for _, want := range []string{"web.enable-pprof", "--config.file", "--web.listen-address"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("serve --help lacks %q:\n%s", want, out)
		}
	}
}

// TestDockerignore: the build context leaves out history, binaries, state
// and test artefacts, and keeps what the Dockerfile builds from.
func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, strings.TrimPrefix(l, "/"))
		}
	}
	ignored := func(path string) bool {
		for _, p := range patterns {
			// Docker matches a pattern against the path and its parents;
			// "**/" matches any number of folders.
			for q := path; q != "." && q != "/"; q = filepath.Dir(q) {
				if ok, _ := filepath.Match(p, q); ok {
					return true
				}
				if rest, ok := strings.CutPrefix(p, "**/"); ok {
					if ok, _ := filepath.Match(rest, filepath.Base(q)); ok {
						return true
					}
				}
			}
		}
		return false
	}
	for _, p := range []string{".git/HEAD", "umeeting_exporter", "data/demo.state", "data/demo.state.tmp",
		"e2e/e2e.test", "cover.out", "cpu.prof"} {
		if !ignored(p) {
			t.Errorf("%s is sent to the build context", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "main.go", "config.yml", "store/store.go", "umeeting/client.go"} {
		if ignored(p) {
			t.Errorf("%s is left out of the build context, which the Dockerfile needs", p)
		}
	}
}

// TestConfigCheckMessages runs --config.check on files with the mistakes
// people make and pins what it prints and its exit code.
func TestConfigCheckMessages(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml string
		code       int
		want       string
	}{
		{"the example as shipped", "", 1, "config file ../config.yml: accounts[0] (acme): api_key: YOUR_API_KEY is the example's placeholder; put the account's API key here\n" +
			"accounts[0] (acme): api_secret: YOUR_API_SECRET is the example's placeholder; put the account's API secret here (or in api_secret_file)\n"},
		{"an empty file", "# nothing yet\n", 1, "config file FILE: accounts: at least one account is required (or run with --demo)\n"},
		{"no accounts", "accounts: []\n", 1, "config file FILE: accounts: at least one account is required (or run with --demo)\n"},
		{"misspelt key", "accounts:\n  - name: acme\n    api_key: k\n    api_secert: s\n", 1,
			"config file FILE: accounts[0].api_secert (line 4): unknown key; did you mean api_secret?\n"},
		{"wrong indentation", "accounts:\n  - name: acme\n    api_key: k\n   api_secret: s\n", 1,
			"config file FILE: line 4 (after accounts[0].api_key): did not find expected '-' indicator; check the indentation of line 4 against the lines above it (spaces only, no tabs)\n"},
		{"polls over the budget", "poll_interval: 5s\naccounts:\n  - {name: acme, api_key: k, api_secret: s}\n", 0,
			"FILE: warning: accounts[0] (acme): 5s polls with a 48h lookback need about 17280 requests a day (1 a poll for its 7 padded days, more with paging); the budget is 2000: polls will fail once it is spent (raise poll_interval or daily_request_budget)\n" +
				"FILE: OK, 1 account(s)\n"},
		{"min_request_interval over poll_interval", "poll_interval: 30s\naccounts:\n  - {name: acme, api_key: k, api_secret: s, min_request_interval: 1m, daily_request_budget: 0}\n", 0,
			"FILE: warning: accounts[0] (acme): min_request_interval 1m is longer than poll_interval 30s: each poll waits for the previous poll's last request, polls run late, and one fails when that wait would pass poll_timeout 1m\n" +
				"FILE: OK, 1 account(s)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := "../config.yml"
			if tc.yaml != "" {
				file = filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yml")
				if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(exporterBinary, "--config.check", "--config.file="+file)
			out, _ := cmd.CombinedOutput()
			code := cmd.ProcessState.ExitCode()
			if want := strings.ReplaceAll(tc.want, "FILE", file); string(out) != want || code != tc.code {
				t.Errorf("exit %d, output:\n%s\nwant exit %d, output:\n%s", code, out, tc.code, want)
			}
		})
	}
}

// TestWarningsLoggedAtStartAndReload: the exporter logs the check's
// warnings when it starts and when a reload brings new ones.
func TestWarningsLoggedAtStartAndReload(t *testing.T) {
	_, apiURL := newSim(t, simulator.Options{Hosts: 10})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries+"\n    min_request_interval: 3s", "")
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	const startWarning = "min_request_interval 3s is longer than poll_interval 2s"
	waitFor(t, 10*time.Second, "the warning at start", func() bool { return strings.Contains(e.Logs.String(), startWarning) })
	if !strings.Contains(e.Logs.String(), `level=warn`) {
		t.Errorf("warning not at warn level:\n%s", e.Logs.String())
	}
	text := strings.Replace(mustRead(t, writeConfig(t, dir, apiURL, retries, "")), "daily_request_budget: 0", "daily_request_budget: 100", 1)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	e.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the warning at reload", func() bool {
		return strings.Contains(e.Logs.String(), "2s polls with a 48h lookback need about 43200 requests a day")
	})
}

// TestReloadInPlace runs the real binary: a reload that changes only
// metrics.* sends no request and shows the new options at once, a new
// daily_request_budget shows at once, and neither resets the status
// metrics.
func TestReloadInPlace(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{Hosts: 30})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries, "")
	slow := func(text string) string { return strings.Replace(text, "poll_interval: 2s", "poll_interval: 1h", 1) }
	if err := os.WriteFile(cfg, []byte(slow(mustRead(t, cfg))), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	waitExact(t, e, sim, "e2e")
	status := []string{"umeeting_up", "umeeting_last_successful_poll_timestamp_seconds",
		"umeeting_state_last_save_timestamp_seconds", "umeeting_poll_duration_seconds"}
	read := func() map[string]float64 {
		text, vals := e.Metrics(), map[string]float64{}
		for _, n := range status {
			vals[n], _ = sumMetric(text, n, `account="e2e"`)
		}
		return vals
	}
	before, requests := read(), sim.Requests()
	reload := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(slow(text)), 0o600); err != nil {
			t.Fatal(err)
		}
		e.MustReload()
	}
	// Fewer hosts than the simulator's window holds, however busy it was.
	hosts := map[string]bool{}
	for _, m := range sim.Truth(time.Time{}, time.Now()) {
		hosts[m.Email] = true
	}
	if len(hosts) < 2 {
		t.Fatalf("the simulator's window holds %d hosts, 2 needed", len(hosts))
	}
	maxHosts := min(4, len(hosts)-1)
	limit := fmt.Sprintf("metrics:\n  max_hosts: %d\n", maxHosts)
	reload(mustRead(t, writeConfig(t, dir, apiURL, retries, limit)))
	text := e.Metrics()
	if n := strings.Count(text, "\numeeting_host_last_meeting_timestamp_seconds{"); n != maxHosts {
		t.Errorf("%s right after the reload: %d host series", limit, n)
	}
	reload(strings.Replace(mustRead(t, writeConfig(t, dir, apiURL, retries, limit)),
		"daily_request_budget: 0", "daily_request_budget: 5", 1))
	// The requests of the first poll (how many depends on the meetings in
	// the window) were made within the day: they count against the budget.
	if v, _ := sumMetric(e.Metrics(), "umeeting_api_request_budget_remaining", `account="e2e"`); v != float64(max(0, 5-requests)) {
		t.Errorf("budget remaining %v right after a reload to 5, %d requests ago: want %d", v, requests, max(0, 5-requests))
	}
	time.Sleep(300 * time.Millisecond)
	if n := sim.Requests() - requests; n != 0 {
		t.Errorf("the reloads sent %d requests", n)
	}
	for n, v := range read() {
		if v != before[n] || v == 0 {
			t.Errorf("%s = %v after the reloads, was %v", n, v, before[n])
		}
	}
}
