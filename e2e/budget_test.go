package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/store"
)

// TestBudgetSurvivesRestarts: the daily request budget was kept in memory
// only, so 10 start/stop cycles with daily_request_budget: 5 sent 20
// requests. The request times are now made durable in ACCOUNT.requests
// before each request is sent: across graceful stops and kill -9 alike, the simulator
// sees at most 5 requests.
func TestBudgetSurvivesRestarts(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{Hosts: 5})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries, "")
	text := strings.Replace(mustRead(t, cfg), "daily_request_budget: 0", "daily_request_budget: 5", 1)
	text = strings.Replace(text, "page_size: 25", "page_size: 100", 1)
	os.WriteFile(cfg, []byte(text), 0o600)
	args := []string{"--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, "data")}
	for cycle := range 10 {
		e := startExporter(t, args...)
		waitFor(t, 30*time.Second, "a finished poll", func() bool {
			n, _ := sumMetric(e.Metrics(), "umeeting_polls_total", `account="e2e"`)
			return n >= 1
		})
		if cycle%2 == 0 {
			e.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-e.done:
			case <-time.After(20 * time.Second):
				t.Fatal("no exit 20s after SIGTERM")
			}
		} else {
			e.Kill()
		}
	}
	if n := sim.Requests(); n > 5 || n == 0 {
		t.Errorf("10 start/stop cycles sent %d requests with daily_request_budget: 5", n)
	}
	t.Logf("%d requests in 10 cycles", sim.Requests())
}

// TestFailedStartSendsNoRequest: the listener is bound (and the web config
// checked) before the first poll, so a start that cannot serve sends
// nothing.
func TestFailedStartSendsNoRequest(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries, "")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	badWeb := filepath.Join(dir, "web.yml")
	os.WriteFile(badWeb, []byte("basic_auth_users: [not, a, map]\n"), 0o600)
	for name, extra := range map[string][]string{
		"port taken":     {"--web.listen-address=" + taken.Addr().String()},
		"bad web config": {"--web.listen-address=" + freeAddr(t), "--web.config.file=" + badWeb},
	} {
		args := append([]string{"--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, "data")}, extra...)
		out, err := runBounded(t, exec.Command(exporterBinary, args...))
		if err == nil || !strings.Contains(out, "Cannot serve HTTP") {
			t.Errorf("%s: err=%v\n%s", name, err, out)
		}
		time.Sleep(500 * time.Millisecond) // a poll started by mistake would have reached the simulator
		if n := sim.Requests(); n != 0 {
			t.Fatalf("%s: a failed start sent %d requests", name, n)
		}
	}
}

// TestHistorySharesTheBudget: `history` did not spend the account's request
// budget: with daily_request_budget: 12, the exporter and three history
// runs sent 36 requests, and min_request_interval held within each process
// only. Two history runs beside a running exporter now send, with it, no
// more than the budget, each request recorded in the request log at least
// the interval after the one before.
func TestHistorySharesTheBudget(t *testing.T) {
	const budget, interval = 10, 200 * time.Millisecond
	sim, apiURL := newSim(t, simulator.Options{Hosts: 5})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, "    min_request_interval: 200ms", "backfill: 40d")
	text := strings.Replace(mustRead(t, cfg), "daily_request_budget: 0", fmt.Sprint("daily_request_budget: ", budget), 1)
	os.WriteFile(cfg, []byte(strings.Replace(text, "page_size: 25", "page_size: 100", 1)), 0o600)
	data := filepath.Join(dir, "data")
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+data)
	waitFor(t, 30*time.Second, "a finished poll", func() bool {
		n, _ := sumMetric(e.Metrics(), "umeeting_polls_total", `account="e2e"`)
		return n >= 1
	})
	for range 2 {
		out, err := runBounded(t, exec.Command(exporterBinary, "history", "--config.file="+cfg, "--storage.path="+data,
			"--output="+filepath.Join(t.TempDir(), "h.om"), "--label=job=umeeting", "--label=instance=x"))
		if err != nil && !strings.Contains(out, "daily request budget exhausted") {
			t.Fatalf("history: %v\n%s", err, out)
		}
	}
	// The exporter polls every 2s until the budget is spent.
	waitFor(t, 40*time.Second, "the budget spent", func() bool { return sim.Requests() >= budget })
	time.Sleep(3 * time.Second) // a poll beyond the budget would have come
	if n := sim.Requests(); n > budget {
		t.Errorf("the exporter and two history runs sent %d requests with daily_request_budget: %d", n, budget)
	}
	var logged []time.Time
	// Read as the history export reads it beside a running exporter.
	err := store.ShareRequestLog(data, "e2e").Spend(func(recorded []time.Time) ([]time.Time, bool) {
		logged = recorded
		return nil, false
	})
	if err != nil || len(logged) != sim.Requests() {
		t.Fatalf("the request log holds %d requests (%v), the API saw %d", len(logged), err, sim.Requests())
	}
	for i := 1; i < len(logged); i++ {
		if d := logged[i].Sub(logged[i-1]); d < interval {
			t.Errorf("requests %d and %d recorded %s apart, min_request_interval is %s", i, i+1, d, interval)
		}
	}
}
