package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// TestComposeKeepsTheImportedHistory: the compose Prometheus keeps what the
// history profile imports, the demo simulator's 60 days, and the history
// service, which runs as the image's user nobody, can write the new named
// volume it writes to (Docker gives a new volume the owner of the image's
// folder at its mount point).
func TestComposeKeepsTheImportedHistory(t *testing.T) {
	c := loadCompose(t)
	const imported = 60 * 24 * time.Hour // the simulator's history (and --demo's backfill)
	v := flagValue(c.Services["prometheus"].Command, "--storage.tsdb.retention.time")
	d, err := model.ParseDuration(v)
	if err != nil || time.Duration(d) <= imported {
		t.Errorf("prometheus --storage.tsdb.retention.time=%q (%v): want more than the %s the history imports", v, err, imported)
	}

	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	hist := c.Services["history"]
	out := flagValue(hist.Command, "--output")
	mount := ""
	for _, vol := range hist.Volumes {
		if m := regexp.MustCompile(`^[\w-]+:(/[^:]+)$`).FindStringSubmatch(vol); m != nil && strings.HasPrefix(out, m[1]+"/") {
			mount = m[1]
		}
	}
	if mount == "" {
		t.Fatalf("history writes %q, not into a named volume", out)
	}
	if !regexp.MustCompile(`(?m)^COPY --from=build --chown=nobody:nobody \S+ ` + regexp.QuoteMeta(mount) + `$`).Match(dockerfile) {
		t.Errorf("history writes into a named volume at %s, but the image has no %s owned by nobody", mount, mount)
	}
}
