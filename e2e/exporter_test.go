package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

const (
	testKey    = "e2e-key"
	testSecret = "S3CR3T-e2e-4f9a7c" // must never show up in logs or pages
)

// newSim starts a simulator on 127.0.0.1 whose generated history ended ten
// minutes ago and began 40 hours ago, well inside the exporter's lookback: its
// ground truth is then fixed unless the test adds meetings.
func newSim(t *testing.T, opts simulator.Options) (*simulator.Simulator, string) {
	t.Helper()
	now := time.Now()
	opts.Seed = 42
	opts.APIKey, opts.APISecret = testKey, testSecret
	if opts.Hosts == 0 {
		opts.Hosts = 100
	}
	if opts.HistoryStart.IsZero() {
		opts.HistoryStart = now.Add(-40 * time.Hour)
	}
	if opts.HistoryEnd.IsZero() {
		opts.HistoryEnd = now.Add(-10 * time.Minute)
	}
	sim := simulator.New(opts)
	apiURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, apiURL
}

// retries are the account settings of most tests: a failed poll is over quickly.
const retries = "    max_retries: 1\n    timeout: 5s"

// writeConfig writes an exporter config polling apiURL every 2s; extra is
// added to the account, tail after it (more accounts, or a metrics section).
func writeConfig(t *testing.T, dir, apiURL, extra, tail string) string {
	t.Helper()
	cfg := fmt.Sprintf(`poll_interval: 2s
lookback: 48h
accounts:
  - name: e2e
    api_url: %s
    api_key: %s
    api_secret: %s
    page_size: 25
    daily_request_budget: 0
%s
%s
`, apiURL, testKey, testSecret, extra, tail)
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// totals are the usage numbers of an account.
type totals struct {
	Meetings, Seconds, Participants, ParticipantSeconds float64
	Features                                            map[string]float64
}

func truthTotals(sim *simulator.Simulator) totals {
	tt := totals{Features: map[string]float64{}}
	for _, m := range sim.Truth(time.Time{}, time.Now().Add(time.Hour)) {
		tt.add(&m)
	}
	return tt
}

// add counts one meeting the way the exporter's counters do.
func (tt *totals) add(m *umeeting.Meeting) {
	if tt.Features == nil {
		tt.Features = map[string]float64{}
	}
	secs := m.End.Sub(m.Start).Seconds()
	tt.Meetings++
	tt.Seconds += secs
	tt.Participants += float64(m.Participants)
	tt.ParticipantSeconds += secs * float64(m.Participants)
	for i, f := range umeeting.AllFeatures {
		if m.Features&f != 0 {
			tt.Features[umeeting.FeatureNames[i]]++
		}
	}
}

func exportedTotals(exposition, account string) totals {
	return exportedUsage(exposition, "umeeting_", fmt.Sprintf("account=%q", account))
}

// exportedUsage adds up the usage counter families named prefix +
// meetings_total, meeting_seconds_total, ... over the samples whose labels
// contain every matcher.
func exportedUsage(exposition, prefix string, matchers ...string) totals {
	sum := func(name string, extra ...string) float64 {
		v, _ := sumMetric(exposition, prefix+name, append(extra, matchers...)...)
		return v
	}
	tt := totals{Features: map[string]float64{}}
	tt.Meetings = sum("meetings_total")
	tt.Seconds = sum("meeting_seconds_total")
	tt.Participants = sum("participants_total")
	tt.ParticipantSeconds = sum("participant_seconds_total")
	for _, f := range umeeting.FeatureNames {
		if v := sum("meetings_by_feature_total", fmt.Sprintf("feature=%q", f)); v > 0 {
			tt.Features[f] = v
		}
	}
	return tt
}

func (a totals) equal(b totals) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// waitExact waits until the exporter's totals equal the simulator's ground
// truth, and fails if they ever exceed it (a double count).
func waitExact(t *testing.T, e *exporter, sim *simulator.Simulator, account string) string {
	t.Helper()
	want := truthTotals(sim)
	if want.Meetings == 0 {
		t.Fatal("simulator has no meetings")
	}
	var got totals
	var text string
	waitFor(t, 60*time.Second, "exact totals", func() bool {
		text = e.Metrics()
		got = exportedTotals(text, account)
		if got.Meetings > want.Meetings {
			t.Fatalf("double count: exported %v meetings, truth %v", got.Meetings, want.Meetings)
		}
		return got.equal(want)
	})
	return text
}

func upValue(e *exporter, account string) float64 {
	v, _ := sumMetric(e.Metrics(), "umeeting_up", fmt.Sprintf("account=%q", account))
	return v
}

func TestExactTotalsWithPagingAndQuirks(t *testing.T) {
	for _, method := range []string{"POST", "GET"} {
		t.Run(method, func(t *testing.T) {
			sim, apiURL := newSim(t, simulator.Options{DuplicateRate: 0.1, InvalidRate: 0.1})
			dir := t.TempDir()
			cfg := writeConfig(t, dir, apiURL, retries+"\n    method: "+method, "")
			e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
			text := waitExact(t, e, sim, "e2e")

			// Per host: each host's counter equals the truth of its e-mail.
			byEmail := map[string]float64{}
			for _, m := range sim.Truth(time.Time{}, time.Now().Add(time.Hour)) {
				byEmail[m.Email]++
			}
			for email, n := range byEmail {
				if got, _ := sumMetric(text, "umeeting_meetings_total", fmt.Sprintf("email=%q", email)); got != n {
					t.Errorf("host %s: %v meetings, want %v", email, got, n)
				}
			}
			if inv, _ := sumMetric(text, "umeeting_records_invalid_total", `account="e2e"`); inv == 0 {
				t.Error("invalid records of the simulator were not counted")
			}
			if ok, _ := sumMetric(text, "umeeting_api_requests_total", `result="success"`); ok < 2 {
				t.Errorf("paging: only %v successful requests", ok)
			}
			if sim.Requests() < 2 {
				t.Errorf("simulator served %d requests, want paging", sim.Requests())
			}
			// Polls keep overlapping: the totals must not move.
			time.Sleep(5 * time.Second)
			if got := exportedTotals(e.Metrics(), "e2e"); !got.equal(truthTotals(sim)) {
				t.Errorf("totals moved on overlapping polls: %+v", got)
			}
		})
	}
}

func TestPerHostOff(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries, "metrics:\n  per_host: false\n")
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	text := waitExact(t, e, sim, "e2e")
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "umeeting_") && (strings.Contains(line, "host=") || strings.Contains(line, "email=")) {
			t.Fatalf("host label with per_host: false: %s", line)
		}
	}
}

func TestKillAndRestartCountsOnce(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries, "")
	args := []string{"--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, "data")}
	e := startExporter(t, args...)
	waitExact(t, e, sim, "e2e")
	e.Kill() // SIGKILL: no chance to save anything on the way out

	// Meetings that end while the exporter is down are counted after.
	now := time.Now()
	for i := range 5 {
		sim.Add(umeeting.Meeting{
			UUID: fmt.Sprintf("down-%d", i), ID: 1000 + int64(i), Host: "Down Host", Email: "down@example.com", UserType: "Corp",
			Start: now.Add(-time.Duration(30+i) * time.Minute), End: now.Add(-time.Duration(5+i) * time.Minute),
			Participants: 2 + i, Features: umeeting.FeatureVideo,
		})
	}
	e2 := startExporter(t, args...)
	// Right after the restart, before a poll: the counters continue.
	if got := exportedTotals(e2.Metrics(), "e2e"); got.Meetings == 0 {
		t.Error("counters restarted from zero")
	}
	waitExact(t, e2, sim, "e2e")
	time.Sleep(5 * time.Second) // more polls: still exact
	if got := exportedTotals(e2.Metrics(), "e2e"); !got.equal(truthTotals(sim)) {
		t.Errorf("after restart: %+v, want %+v", got, truthTotals(sim))
	}
}

func TestFaultsKeepNumbersAndRecover(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, "    timeout: 1s\n    max_retries: 0", "")
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	before := exportedTotals(waitExact(t, e, sim, "e2e"), "e2e")
	for _, kind := range []simulator.FaultKind{
		simulator.FaultHTTP500, simulator.FaultEnvelope, simulator.FaultZoomError, simulator.FaultAuth, simulator.FaultRateLimit,
		simulator.FaultGarbage, simulator.FaultHTML, simulator.FaultTruncated, simulator.FaultEmpty, simulator.FaultSlow,
	} {
		sim.SetFault(simulator.Fault{Kind: kind, Delay: 3 * time.Second})
		waitFor(t, 30*time.Second, "umeeting_up 0 under fault "+string(kind), func() bool { return upValue(e, "e2e") == 0 })
		if got := exportedTotals(e.Metrics(), "e2e"); !got.equal(before) {
			t.Fatalf("fault %s changed the numbers: %+v", kind, got)
		}
		sim.SetFault(simulator.Fault{Kind: simulator.FaultNone})
		waitFor(t, 30*time.Second, "recovery from "+string(kind), func() bool { return upValue(e, "e2e") == 1 })
	}
	// New meetings during a fault are counted exactly once after recovery.
	sim.SetFault(simulator.Fault{Kind: simulator.FaultHTTP500})
	now := time.Now()
	sim.Add(umeeting.Meeting{UUID: "late-1", ID: 7, Host: "Late", Email: "late@example.com", UserType: "Pro",
		Start: now.Add(-time.Hour), End: now.Add(-15 * time.Minute), Participants: 4})
	waitFor(t, 30*time.Second, "umeeting_up 0", func() bool { return upValue(e, "e2e") == 0 })
	sim.SetFault(simulator.Fault{Kind: simulator.FaultNone})
	waitExact(t, e, sim, "e2e")
	text := e.Metrics()
	for _, result := range []string{"http_error", "api_error", "bad_response", "rate_limited", "timeout"} {
		if v, _ := sumMetric(text, "umeeting_api_requests_total", `account="e2e"`, fmt.Sprintf("result=%q", result)); v == 0 {
			t.Errorf("no request counted with result %s", result)
		}
	}
}

func TestSecretNeverLeaks(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	// GET puts the secret in the URL; the account below points at a closed
	// port, so the HTTP client's errors (which quote URLs) are exercised.
	closed := "http://" + freeAddr(t) + "/umeeting/share/hisMeeting"
	cfg := writeConfig(t, dir, apiURL, retries+"\n    method: GET", fmt.Sprintf(`  - name: closed
    api_url: %s
    api_key: %s
    api_secret: %s
    method: GET
    max_retries: 0
`, closed, testKey, testSecret))
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"), "--log.level=debug")
	waitExact(t, e, sim, "e2e")
	waitFor(t, 20*time.Second, "failed polls of the closed account", func() bool {
		return strings.Contains(e.Logs.String(), `account=closed`) && upValue(e, "closed") == 0 && strings.Contains(e.Logs.String(), "Poll failed")
	})
	sim.SetFault(simulator.Fault{Kind: simulator.FaultAuth})
	waitFor(t, 20*time.Second, "auth error", func() bool { return upValue(e, "e2e") == 0 })
	pages := e.Logs.String()
	for _, p := range []string{"/metrics", "/", "/-/healthy", "/-/ready"} {
		_, body := e.Get(p)
		pages += body
	}
	if strings.Contains(pages, testSecret) {
		t.Fatalf("the API secret leaked into logs or pages:\n%s", pages)
	}
	// The check of a bad config does not print it either.
	out, _ := checkConfig(cfg)
	if strings.Contains(string(out), testSecret) {
		t.Fatalf("--config.check printed the secret: %s", out)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReloadKeepsCounts(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries, "")
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	waitExact(t, e, sim, "e2e")

	// A broken file: the reload fails, the old config keeps running.
	os.WriteFile(cfg, []byte("poll_interval: soon\n"), 0o600)
	if code, _ := e.Reload(); code != http.StatusInternalServerError {
		t.Errorf("reload of a bad config: HTTP %d", code)
	}
	if v, _ := sumMetric(e.Metrics(), "umeeting_config_last_reload_successful"); v != 0 {
		t.Error("umeeting_config_last_reload_successful not 0 after a failed reload")
	}
	// A changed account (GET instead of POST) by SIGHUP: counts stay exact.
	writeConfig(t, dir, apiURL, retries+"\n    method: GET", "")
	e.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "reload", func() bool {
		v, _ := sumMetric(e.Metrics(), "umeeting_config_last_reload_successful")
		return v == 1
	})
	text := waitExact(t, e, sim, "e2e")
	others := func(text string) float64 {
		v, _ := sumMetric(text, "umeeting_meetings_total", `{account="e2e",user_type=`)
		return v
	}
	before := others(text)

	// A lower max_hosts by POST /-/reload takes effect with the next poll.
	// The hosts that lose their series take no history into the series
	// without host labels, which would be an increase of meetings never
	// held: that series stays as it was.
	writeConfig(t, dir, apiURL, retries+"\n    method: GET", "metrics:\n  max_hosts: 5\n")
	e.Reload()
	hosts := 0
	waitFor(t, 10*time.Second, "5 host series after max_hosts: 5", func() bool {
		text = e.Metrics()
		hosts = strings.Count(text, "\numeeting_host_last_meeting_timestamp_seconds{")
		return hosts == 5
	})
	if got := others(text); got != before {
		t.Errorf("series without host labels went from %v to %v when hosts left the per-host set", before, got)
	}
	if n := strings.Count(text, "\numeeting_meetings_total{account=\"e2e\",email="); n > 5 {
		t.Errorf("%d per-host meetings series with max_hosts 5", n)
	}
}

func TestCorruptStateIsKeptAsideAndExporterStarts(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o750)
	os.WriteFile(filepath.Join(data, "e2e.state"), []byte("this is not a state file"), 0o600)
	cfg := writeConfig(t, dir, apiURL, retries, "")
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+data)
	waitExact(t, e, sim, "e2e")
	aside, _ := filepath.Glob(filepath.Join(data, "e2e.state.corrupt-*"))
	if len(aside) != 1 || mustRead(t, aside[0]) != "this is not a state file" {
		t.Errorf("corrupt state not kept aside: %v", aside)
	}
	if !strings.Contains(e.Logs.String(), "State file unusable") {
		t.Error("corrupt state not reported in the log")
	}
}

// TestImplausibleStorageFilesAreSetAside: a sparse 1 TiB state file, a
// request log linked to /dev/zero, neither crashes nor hangs a start:
// both are moved aside and counting starts from zero.
func TestImplausibleStorageFilesAreSetAside(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o750)
	f, err := os.Create(filepath.Join(data, "e2e.state"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 40)
	f.Close()
	if err := os.Symlink("/dev/zero", filepath.Join(data, "e2e.requests")); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, apiURL, retries, "")
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+data)
	waitExact(t, e, sim, "e2e")
	for _, file := range []string{"e2e.state", "e2e.requests"} {
		if aside, _ := filepath.Glob(filepath.Join(data, file+".corrupt-*")); len(aside) != 1 {
			t.Errorf("%s not moved aside: %v", file, aside)
		}
	}
	if !strings.Contains(e.Logs.String(), "not a storage file") {
		t.Errorf("the log does not say why:\n%s", e.Logs.String())
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("accounts:\n- {name: a, api_key: k, api_secret: s, timezone: Mars/Base}\n"), 0o600)
	out, err := checkConfig(bad)
	if err == nil || !strings.Contains(string(out), `accounts[0] (a): timezone: "Mars/Base" is not a known time zone`) {
		t.Errorf("bad config: err=%v out=%s", err, out)
	}
	// The example as shipped holds placeholder credentials: refused (TestConfigCheckMessages).
	good := filepath.Join(dir, "good.yml")
	os.WriteFile(good, []byte("accounts:\n- {name: a, api_key: k, api_secret: s}\n"), 0o600)
	out, err = checkConfig(good)
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Errorf("good config: err=%v out=%s", err, out)
	}
	// A bad config stops the start with the same message.
	out, err = exec.Command(exporterBinary, "--config.file="+bad, "--storage.path="+filepath.Join(dir, "data"), "--web.listen-address="+freeAddr(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "timezone") {
		t.Errorf("start with a bad config: err=%v out=%s", err, out)
	}
}

func TestDemoServesFullMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (make test-deps)")
	}
	dir := t.TempDir()
	e := startExporter(t, "--demo", "--storage.path="+dir, "--config.file="+filepath.Join(dir, "none.yml"))
	var text string
	waitFor(t, 30*time.Second, "demo metrics", func() bool {
		text = e.Metrics()
		n, _ := sumMetric(text, "umeeting_meetings_total", `account="demo"`)
		return upValue(e, "demo") == 1 && n > 0 && strings.Contains(text, `window="30d"`)
	})
	for _, name := range []string{
		"umeeting_meetings_total", "umeeting_meeting_seconds_total", "umeeting_participants_total",
		"umeeting_participant_seconds_total", "umeeting_meetings_by_feature_total", "umeeting_meeting_duration_seconds_bucket",
		"umeeting_meeting_participants_bucket", "umeeting_host_last_meeting_timestamp_seconds", "umeeting_active_hosts",
		"umeeting_concurrent_meetings_peak", "umeeting_concurrent_participants_peak", "umeeting_up",
		"umeeting_last_successful_poll_timestamp_seconds", "umeeting_poll_duration_seconds", "umeeting_api_requests_total",
		"umeeting_records_invalid_total", "umeeting_state_save_failures_total", "umeeting_config_last_reload_successful",
		"umeeting_exporter_build_info", "go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("demo /metrics lacks %s", name)
		}
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(text)
	if out, err := check.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("promtool check metrics: err=%v\n%s", err, out)
	}
	// OpenMetrics is served too, and no two families clash once _total is stripped.
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.Addr+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") || resp.StatusCode != 200 {
		t.Errorf("OpenMetrics: HTTP %d %s", resp.StatusCode, ct)
	}
	// The landing page and the JSON-free health endpoints answer.
	if code, body := e.Get("/"); code != 200 || !strings.Contains(body, "/metrics") {
		t.Errorf("landing page: %d", code)
	}
}

func TestStorageFolderIsNotShared(t *testing.T) {
	_, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries, "")
	data := filepath.Join(dir, "data")
	startExporter(t, "--config.file="+cfg, "--storage.path="+data)
	out, err := exec.Command(exporterBinary, "--config.file="+cfg, "--storage.path="+data, "--web.listen-address="+freeAddr(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another umeeting_exporter") {
		t.Errorf("second exporter on the same storage: err=%v\n%s", err, out)
	}
}

func TestWebConfigBasicAuth(t *testing.T) {
	dir := t.TempDir()
	webCfg := filepath.Join(dir, "web.yml")
	// bcrypt of "e2e-password", as the exporter-toolkit's web config wants.
	os.WriteFile(webCfg, []byte("basic_auth_users:\n  prometheus: $2a$10$bZyuILH/ZoXeOS37HoLWWO34HxXdWTYIjy91HOUvpdOFms2enExl2\n"), 0o600)
	e := startExporter(t, "--demo", "--storage.path="+filepath.Join(dir, "data"), "--config.file="+filepath.Join(dir, "none.yml"), "--web.config.file="+webCfg)
	if code, _ := e.Get("/metrics"); code != http.StatusUnauthorized {
		t.Errorf("/metrics without credentials: HTTP %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.Addr+"/metrics", nil)
	req.SetBasicAuth("prometheus", "e2e-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics with credentials: HTTP %d", resp.StatusCode)
	}
}
