// Package e2e runs the real umeeting_exporter binary against the simulator
// (and, for the dashboards and alerts, against a real Prometheus), all on
// 127.0.0.1.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/testproc"
	"github.com/umeeting/umeeting_exporter/simulator"
)

// exporterBinary is the path of the binary built once by TestMain.
var exporterBinary string

func TestMain(m *testing.M) {
	// Say at which moment of the week the simulators run, so that a failure
	// can be replayed with the same UMEETING_TEST_NOW.
	if v := os.Getenv(simulator.TestNowEnv); v != "" {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			fmt.Fprintf(os.Stderr, "%s=%q: %v\n", simulator.TestNowEnv, v, err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "e2e: the simulators behave as at %s=%s\n", simulator.TestNowEnv, v)
	} else {
		fmt.Fprintf(os.Stderr, "e2e: the simulators run on the real time; to run them as now again: %s=%s\n",
			simulator.TestNowEnv, time.Now().UTC().Format(time.RFC3339))
	}
	dir, err := os.MkdirTemp("", "umeeting-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	exporterBinary = filepath.Join(dir, "umeeting_exporter")
	build := exec.Command("go", "build", "-o", exporterBinary, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the exporter:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t testing.TB) string { return testproc.FreeAddr(t) }

// syncBuffer collects a process's output for later inspection.
type syncBuffer = testproc.Buffer

// exporter is one running exporter process.
type exporter struct {
	t    testing.TB
	cmd  *exec.Cmd
	Addr string // host:port of its web server
	Logs *syncBuffer
	done <-chan struct{}
}

// startExporter runs the binary with args plus --web.listen-address on a free
// port, and waits until /-/ready answers (or asks for credentials). The process is killed when the
// test ends.
func startExporter(t testing.TB, args ...string) *exporter {
	t.Helper()
	return startExporterAt(t, freeAddr(t), args...)
}

// startExporterAt is startExporter listening on addr: a restart at the
// address Prometheus scrapes.
func startExporterAt(t testing.TB, addr string, args ...string) *exporter {
	t.Helper()
	e := &exporter{t: t, Addr: addr, Logs: &syncBuffer{}}
	e.cmd = exec.Command(exporterBinary, append([]string{"--web.listen-address=" + addr}, args...)...)
	e.done = testproc.Start(t, e.cmd, e.Logs)
	testproc.StopAtEnd(t, "exporter", e.Logs, e.Kill)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-e.done:
			t.Fatalf("exporter exited early: %v\n%s", e.cmd.ProcessState, e.Logs.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			// 401: serving, behind the basic auth of a web config.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return e
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("exporter not ready after 20s:\n%s", e.Logs.String())
	return nil
}

// Kill ends the process with SIGKILL, like a crash, and waits for it.
func (e *exporter) Kill() {
	if e.cmd.Process != nil {
		e.cmd.Process.Kill()
	}
	<-e.done
}

// Get fetches a path from the exporter's web server.
func (e *exporter) Get(path string) (int, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.Addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Reload asks the exporter to reload its config (POST /-/reload) and
// returns the answer's status and body.
func (e *exporter) Reload() (int, string) {
	e.t.Helper()
	resp, err := http.Post("http://"+e.Addr+"/-/reload", "", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// MustReload reloads the config and fails the test unless that succeeded.
func (e *exporter) MustReload() {
	e.t.Helper()
	if code, _ := e.Reload(); code != http.StatusOK {
		e.t.Fatalf("reload: HTTP %d", code)
	}
}

// checkConfig runs the binary with --config.check on file.
func checkConfig(file string) ([]byte, error) {
	return exec.Command(exporterBinary, "--config.check", "--config.file="+file).CombinedOutput()
}

// Metrics returns the exposition text of /metrics.
func (e *exporter) Metrics() string {
	e.t.Helper()
	code, body := e.Get("/metrics")
	if code != http.StatusOK {
		e.t.Fatalf("/metrics: HTTP %d: %s", code, body)
	}
	return body
}

// sumMetric adds up every sample of the family name whose label text
// contains all of the given substrings (e.g. `account="demo"`).
func sumMetric(exposition, name string, contains ...string) (float64, bool) {
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		ok := true
		for _, c := range contains {
			if !strings.Contains(rest, c) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(rest[strings.LastIndexByte(rest, ' ')+1:], &v); err == nil {
			sum += v
			found = true
		}
	}
	return sum, found
}

// waitFor polls cond every 100ms until it is true or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}
