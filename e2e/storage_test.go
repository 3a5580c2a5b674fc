package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/store/storetest"
)

// TestUnreadableStateStopsTheStart: a state file that cannot be read
// (here a folder in its place: tests run as root, which reads a 0000-mode
// file anyway) stops the start with a clear error, before any request, and
// is left as it is.
func TestUnreadableStateStopsTheStart(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	state := filepath.Join(data, "e2e.state")
	if err := os.MkdirAll(state, 0o750); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, apiURL, retries, "")
	cmd := exec.Command(exporterBinary, "--config.file="+cfg, "--storage.path="+data, "--web.listen-address="+freeAddr(t))
	out, err := runBounded(t, cmd)
	if err == nil || !strings.Contains(out, "e2e.state exists but cannot be read") {
		t.Fatalf("start with an unreadable state: err=%v\n%s", err, out)
	}
	if fi, err := os.Stat(state); err != nil || !fi.IsDir() {
		t.Errorf("unreadable state touched: %v", err)
	}
	if aside, _ := filepath.Glob(state + ".corrupt-*"); len(aside) != 0 {
		t.Errorf("unreadable state set aside: %v", aside)
	}
	if n := sim.Requests(); n != 0 {
		t.Errorf("%d requests sent by a start that failed", n)
	}
}

// runBounded runs cmd to its end, killing it after 30s.
func runBounded(t *testing.T, cmd *exec.Cmd) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.String(), err
}

// TestTamperedStateIsSetAsideAtStart: a state with a valid checksum and a
// label that is not UTF-8 made every start panic. It is now set aside like
// a corrupt file, and the exporter counts from zero, exactly; the
// temporary files of saves cut short by a crash are removed at start.
func TestTamperedStateIsSetAsideAtStart(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := writeConfig(t, dir, apiURL, retries, "")
	args := []string{"--config.file=" + cfg, "--storage.path=" + data}
	e := startExporter(t, args...)
	waitExact(t, e, sim, "e2e")
	e.Kill()

	state := filepath.Join(data, "e2e.state")
	good, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	// A host's e-mail, found whole: a single '@' may be a byte of a number.
	email := sim.Truth(time.Time{}, time.Now())[0].Email
	at := bytes.Index(good, []byte(email))
	if at < 0 {
		t.Fatalf("%s is not in the state", email)
	}
	body := append([]byte(nil), good[:len(good)-4]...)
	body[at] = 0xff // an e-mail label that is not UTF-8
	tampered := storetest.WithCRC(body)
	os.WriteFile(state, tampered, 0o600)
	stale := []string{filepath.Join(data, "e2e.state.tmp-1234"), filepath.Join(data, "e2e.state.tmp-99")}
	for _, p := range stale {
		os.WriteFile(p, []byte("uuids and e-mails of a save cut short"), 0o600)
	}

	e2 := startExporter(t, args...)
	waitExact(t, e2, sim, "e2e")
	aside, _ := filepath.Glob(state + ".corrupt-*")
	if len(aside) != 1 || mustRead(t, aside[0]) != string(tampered) {
		t.Errorf("tampered state not kept aside: %v", aside)
	}
	if !strings.Contains(e2.Logs.String(), "not valid UTF-8") {
		t.Errorf("the reason is not logged:\n%s", e2.Logs.String())
	}
	for _, p := range stale {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("stale %s not removed", p)
		}
	}
}
