package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umeeting/umeeting_exporter/simulator"
)

// TestNoAccountsIsRefused: an empty config file (or accounts: []) passed
// --config.check, and a reload with it removed every account's series,
// umeeting_up included, so no alert could fire. Both now fail with a clear
// message and the running accounts keep polling.
func TestNoAccountsIsRefused(t *testing.T) {
	_, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries, "")
	goodText := mustRead(t, cfg)
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	const want = "accounts: at least one account is required (or run with --demo)"
	for name, text := range map[string]string{"empty file": "", "accounts: []": "poll_interval: 1m\naccounts: []\n"} {
		os.WriteFile(cfg, []byte(text), 0o600)
		out, err := checkConfig(cfg)
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("%s: --config.check: err=%v\n%s", name, err, out)
		}
		code, body := e.Reload()
		if code != http.StatusInternalServerError || !strings.Contains(body, want) {
			t.Errorf("%s: reload answered %d: %s", name, code, body)
		}
		if _, found := sumMetric(e.Metrics(), "umeeting_up", `account="e2e"`); !found {
			t.Fatalf("%s: the reload removed the account", name)
		}
	}
	os.WriteFile(cfg, []byte(goodText), 0o600)
}
