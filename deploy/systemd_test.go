package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const unitFile = "systemd/umeeting_exporter.service"

// TestSystemdUnit: the shipped unit passes `systemd-analyze verify` without
// a word, keeps the hardening the runbook promises, and starts the binary
// with flags it knows. verify requires ExecStart's binary to exist, so the
// unit is verified as a copy that starts a freshly built binary; the only
// difference is that path.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is not in PATH (%v): run scripts/test-deps.sh (make test does), which installs Debian's systemd", err)
	}
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=umeeting_exporter", "ProtectSystem=strict",
		"NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(text, "\n"+want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "umeeting_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("building the exporter: %v\n%s", err, out)
	}
	const shipped = "ExecStart=/usr/local/bin/umeeting_exporter "
	if !strings.Contains(text, shipped) {
		t.Fatalf("the unit does not start /usr/local/bin/umeeting_exporter")
	}
	copyPath := filepath.Join(dir, "umeeting_exporter.service")
	if err := os.WriteFile(copyPath, []byte(strings.Replace(text, shipped, "ExecStart="+bin+" ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// ExecStart's flags, with the config and storage paths moved to the
	// test's folder, pass the binary's own --config.check.
	m := regexp.MustCompile(`(?s)\nExecStart=\S+((?:[^\n]*\\\n)*[^\n]*)`).FindStringSubmatch(text)
	args := strings.Fields(strings.ReplaceAll(m[1], "\\\n", " "))
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte("accounts: [{name: acme, api_key: k, api_secret_file: secret}]\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("s\n"), 0o600)
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--config.file="):
			args[i] = "--config.file=" + cfg
		case strings.HasPrefix(a, "--storage.path="):
			args[i] = "--storage.path=" + filepath.Join(dir, "data")
		}
	}
	if out, err := exec.Command(bin, append(args, "--config.check")...).CombinedOutput(); err != nil {
		t.Errorf("ExecStart's flags %q: %v\n%s", args, err, out)
	}
}
