package poller

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/internal/testproc"
	"github.com/umeeting/umeeting_exporter/store"
)

// runOnce starts a Manager on dir with cfg, waits for its first poll to
// end (either way) and stops it, as a restart would.
func (f *fixture) runOnce(dir, accounts string) *testproc.Buffer {
	f.t.Helper()
	coll := collector.New()
	inst, reg := serve(coll)
	logs := &testproc.Buffer{}
	m := NewManager(dir, coll, inst, log.NewLogfmtLogger(logs))
	defer m.Stop()
	if err := m.Apply(f.config(accounts)); err != nil {
		f.t.Fatal(err)
	}
	g := &fixture{t: f.t, reg: reg}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if n, _ := g.value("umeeting_polls_total", "a"); n >= 1 {
			return logs
		}
	}
	f.t.Fatal("no poll in 20s")
	return nil
}

// budgeted is account a with a daily request budget of n.
func (f *fixture) budgeted(n int, extra string) string {
	return strings.Replace(f.account("a", extra), "daily_request_budget: 0", fmt.Sprint("daily_request_budget: ", n), 1)
}

// TestBudgetLogAcrossRestarts: the budget's requests are kept in their own
// log, durable before each request: 10 restarts with a budget of 3 send 3
// requests.
func TestBudgetLogAcrossRestarts(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	for range 10 {
		f.runOnce(dir, f.budgeted(3, ", page_size: 10"))
	}
	if n := f.sim.Requests(); n != 3 {
		t.Errorf("10 restarts with a budget of 3 sent %d requests", n)
	}
	_, info, err := store.OpenRequestLog(dir, "a")
	if logged := info.Times; err != nil || len(logged) != 3 {
		t.Errorf("request log holds %v (%v), want 3 requests", logged, err)
	}
}

// TestBudgetLogCorrupt: a corrupt request log is moved aside, said so in
// the log, and the budget counts as used up when it was last written,
// across restarts too.
func TestBudgetLogCorrupt(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "a.requests")
	os.WriteFile(path, []byte("garbage"), 0o600)
	logs := f.runOnce(dir, f.budgeted(3, ""))
	if text := logs.String(); !strings.Contains(text, "Request budget file unusable") || !strings.Contains(text, "next_request_after=") {
		t.Errorf("no clear log line for a corrupt request log:\n%s", logs)
	}
	if asides, _ := filepath.Glob(path + ".corrupt-*"); len(asides) != 1 {
		t.Errorf("corrupt log not kept aside: %v", asides)
	}
	f.runOnce(dir, f.budgeted(3, ""))
	if n := f.sim.Requests(); n != 0 {
		t.Errorf("with a corrupt request log, two starts sent %d requests", n)
	}
}
