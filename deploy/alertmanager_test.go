package deploy

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestInhibitionsInAlertmanager loads the demo's alertmanager.yml into a
// real Alertmanager (Debian's prometheus-alertmanager), sends it alerts as
// Prometheus would and reads back which are inhibited: an outage pages
// once, and only the alerts it explains are silenced, not those of another
// exporter or account.
func TestInhibitionsInAlertmanager(t *testing.T) {
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if bin, err = exec.LookPath("alertmanager"); err != nil {
			t.Fatalf("alertmanager is not in PATH (%v): run scripts/test-deps.sh (make test does), which installs Debian's prometheus-alertmanager", err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join("alertmanager", "alertmanager.yml"),
		"--storage.path="+t.TempDir(), "--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager logs:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	ready := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !ready; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(base + "/-/ready"); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
		}
	}
	if !ready {
		t.Fatalf("alertmanager not ready after 20s:\n%s", logs.String())
	}

	// Exporter a (job umeeting) is down; its account acme fails polls, so
	// do the polls of account other on exporter b; account quiet on
	// exporter b is stale and silent.
	type alert map[string]string
	alerts := []alert{
		{"alertname": "UMeetingExporterDown", "job": "umeeting", "instance": "a:9861"},
		{"alertname": "UMeetingPollsFailing", "job": "umeeting", "instance": "a:9861", "account": "acme"},
		{"alertname": "UMeetingDataStale", "job": "umeeting", "instance": "a:9861", "account": "acme"},
		{"alertname": "UMeetingPollsFailing", "job": "umeeting", "instance": "b:9861", "account": "other"},
		{"alertname": "UMeetingNoMeetings", "account": "other"},
		{"alertname": "UMeetingDataStale", "job": "umeeting", "instance": "b:9861", "account": "quiet"},
		{"alertname": "UMeetingNoMeetings", "account": "quiet"},
	}
	wantInhibited := map[string]bool{
		"UMeetingPollsFailing/a:9861/acme": true, // exporter a down
		"UMeetingDataStale/a:9861/acme":    true, // exporter a down, and acme's polls fail
		"UMeetingNoMeetings//other":        true, // other's polls fail
	}
	key := func(a map[string]string) string { return a["alertname"] + "/" + a["instance"] + "/" + a["account"] }

	var post []map[string]any
	now := time.Now().UTC()
	for _, a := range alerts {
		a["severity"] = "warning"
		post = append(post, map[string]any{"labels": a, "startsAt": now.Format(time.RFC3339), "endsAt": now.Add(time.Hour).Format(time.RFC3339)})
	}
	body, _ := json.Marshal(post)
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: HTTP %d", resp.StatusCode)
	}

	resp, err = http.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			State       string   `json:"state"`
			InhibitedBy []string `json:"inhibitedBy"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, a := range got {
		k := key(a.Labels)
		seen = append(seen, k)
		if inhibited := len(a.Status.InhibitedBy) > 0; inhibited != wantInhibited[k] {
			t.Errorf("%s: inhibited %v (state %s), want %v", k, inhibited, a.Status.State, wantInhibited[k])
		}
	}
	if len(seen) != len(alerts) {
		t.Errorf("alertmanager holds %d alerts %v, want %d", len(seen), seen, len(alerts))
	}
	for k := range wantInhibited {
		if !slices.Contains(seen, k) {
			t.Errorf("%s missing from alertmanager", k)
		}
	}
}
