package dashboards

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestFilesAreGenerated: the committed JSON is exactly what the generator
// writes, so that a hand edit of a file (lost at the next go generate) or
// a change of the Go code without regenerating fails here.
func TestFilesAreGenerated(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	committed, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	if names := slices.Sorted(maps.Keys(files)); !slices.Equal(names, committed) {
		t.Errorf("generator writes %v, committed are %v", names, committed)
	}
	for name, want := range files {
		got, err := os.ReadFile(name)
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("dashboards/%s is not what the generator writes (%s). Edit the Go code in dashboards/ (a file per dashboard) and run `go generate ./dashboards`; do not edit the JSON by hand.",
				name, firstDifference(got, want))
		}
	}
}

// firstDifference names the first line where got and want differ.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		gl, wl := "<end of file>", "<end of file>"
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d is %q, the generator writes %q", i+1, strings.TrimSpace(gl), strings.TrimSpace(wl))
		}
	}
	return "same lines"
}

func TestFirstDifference(t *testing.T) {
	if got := firstDifference([]byte("a\nb\n"), []byte("a\nc\n")); !strings.Contains(got, "line 2") {
		t.Errorf("firstDifference = %q, want line 2", got)
	}
	if got := firstDifference([]byte("a"), []byte("a\nb")); !strings.Contains(got, "line 2") || !strings.Contains(got, "<end of file>") {
		t.Errorf("firstDifference = %q, want line 2 at the end of the file", got)
	}
}

// countRead matches what turns counters into counts over a window, and the
// recorded ones: a query without it reads gauges.
var countRead = regexp.MustCompile(`\b(increase|rate|changes)\(|:increase1h\b`)

// TestGaugeGraphsReadTheLatestSample: a graph of gauges reads each point
// from the latest sample within Prometheus's 5-minute lookback, which the
// history's samples (at least one every 5 minutes) and live scrapes always
// hold, so its lines have no gaps over imported days. A window function
// (max_over_time(…[$__interval])) would have none at a step shorter than the
// samples' spacing; connecting gaps (spanNulls) would hide that the
// exporter was not scraped.
func TestGaugeGraphsReadTheLatestSample(t *testing.T) {
	n := 0
	for _, l := range loadDashboards(t) {
		for _, p := range allPanels(l.d.Panels) {
			if p.Type != "timeseries" {
				continue
			}
			gauge := true
			for _, tg := range p.Targets {
				gauge = gauge && !countRead.MatchString(tg.Expr)
			}
			if !gauge {
				continue
			}
			n++
			name := fmt.Sprintf("%s: panel %q", l.file, p.Title)
			if p.Interval != "" {
				t.Errorf("%s: gauges with a minimum interval %q", name, p.Interval)
			}
			if p.FieldConfig.Defaults.Custom.SpanNulls != false {
				t.Errorf("%s: spanNulls %v: a gap must show that no sample was scraped", name, p.FieldConfig.Defaults.Custom.SpanNulls)
			}
			for _, tg := range p.Targets {
				if strings.Contains(tg.Expr, "_over_time(") || strings.Contains(tg.Expr, "[") {
					t.Errorf("%s %s: a window over gauges: %s", name, tg.RefID, tg.Expr)
				}
			}
		}
	}
	if n < 8 {
		t.Errorf("found %d graphs of gauges, want the usage, concurrency and health ones", n)
	}
}
