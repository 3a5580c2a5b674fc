package deploy

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// TestComposeKeepsTheImportedHistory: the compose Prometheus keeps what the
// history profile imports, the demo simulator's 60 days, and the history
// service writes its blocks into the named volume that Prometheus serves as
// its data folder (both images run as nobody, uid 65534, the owner of the
// prom/prometheus image's /prometheus), so the blocks load on its next start.
func TestComposeKeepsTheImportedHistory(t *testing.T) {
	c := loadCompose(t)
	const imported = 60 * 24 * time.Hour // the simulator's history (and --demo's backfill)
	prom := c.Services["prometheus"]
	v := flagValue(prom.Command, "--storage.tsdb.retention.time")
	d, err := model.ParseDuration(v)
	if err != nil || time.Duration(d) <= imported {
		t.Errorf("prometheus --storage.tsdb.retention.time=%q (%v): want more than the %s the history imports", v, err, imported)
	}
	tsdb := namedMount(prom.Volumes, flagValue(prom.Command, "--storage.tsdb.path"))
	if tsdb == "" {
		t.Fatal("prometheus keeps its --storage.tsdb.path outside a named volume")
	}

	// The history service's command is a shell line: its words are the flags.
	hist := c.Services["history"]
	out := flagValue(strings.Fields(strings.Join(hist.Command, " ")), "--output")
	if got := namedMount(hist.Volumes, out); got != tsdb {
		t.Fatalf("history writes %q into volume %q, not into Prometheus's data volume %q", out, got, tsdb)
	}
}

// namedMount is the named volume of vols ("NAME:/path") whose path holds
// path, or "".
func namedMount(vols []string, path string) string {
	for _, vol := range vols {
		if m := regexp.MustCompile(`^([\w-]+):(/[^:]+)$`).FindStringSubmatch(vol); m != nil &&
			(path == m[2] || strings.HasPrefix(path, m[2]+"/")) {
			return m[1]
		}
	}
	return ""
}
