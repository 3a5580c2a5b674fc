package deploy

import (
	"slices"
	"strings"
	"testing"
)

// TestHistoryServices checks the one-shot history services: the export
// reads the simulator the exporter serves on its own loopback (so it shares
// the exporter's network and address) and its state; the import reads the
// export's file and writes into Prometheus's data volume.
func TestHistoryServices(t *testing.T) {
	c := loadCompose(t)
	exp, hist, imp := c.Services["umeeting_exporter"], c.Services["history"], c.Services["history-import"]
	if hist.Build == nil || imp.Image == "" {
		t.Fatal("services history (built from the repository) and history-import (a Prometheus image, for promtool) are needed")
	}
	for name, s := range map[string]service{"history": hist, "history-import": imp} {
		if !slices.Equal(s.Profiles, []string{"history"}) {
			t.Errorf("%s: profiles %v, want [history] so that `up` does not run it", name, s.Profiles)
		}
		if s.Restart != "" {
			t.Errorf("%s is a one-shot: no restart policy", name)
		}
	}
	if hist.NetworkMode != "service:umeeting_exporter" {
		t.Errorf("history: network_mode %q, want service:umeeting_exporter (the demo simulator listens on the exporter's loopback)", hist.NetworkMode)
	}
	addr := func(cmd []string) string {
		for _, a := range cmd {
			if v, ok := strings.CutPrefix(a, "--demo.simulator-address="); ok {
				return v
			}
		}
		return ""
	}
	if a := addr(exp.Command); a == "" || a != addr(hist.Command) {
		t.Errorf("the exporter's simulator address %q and the history's %q differ", a, addr(hist.Command))
	}
	if hist.Command[0] != "history" || !slices.Contains(hist.Command, "--demo") {
		t.Errorf("history command %q: want the history subcommand with --demo", hist.Command)
	}
	volume := func(s service, container string) string {
		for _, v := range s.Volumes {
			if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == container {
				return parts[0]
			}
		}
		return ""
	}
	if volume(hist, "/var/lib/umeeting_exporter") != volume(exp, "/var/lib/umeeting_exporter") {
		t.Error("history must read the exporter's state volume")
	}
	if volume(hist, "/import") == "" || volume(hist, "/import") != volume(imp, "/import") {
		t.Error("history-import must read the volume history writes to")
	}
	if volume(imp, "/prometheus") != volume(c.Services["prometheus"], "/prometheus") {
		t.Error("history-import must write into Prometheus's data volume")
	}
	if !slices.Contains(hist.Command, "--output=/import/history.om") || !slices.Contains(imp.Command, "/import/history.om") {
		t.Errorf("history writes %q, history-import reads %q", hist.Command, imp.Command)
	}
	// The imported series must be the scraped ones: the job and instance
	// labels Prometheus gives the exporter's target.
	var prom struct {
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus/prometheus.yml", &prom, false)
	labelled := false
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				labelled = labelled || (slices.Contains(hist.Command, "--label=job="+sc.JobName) &&
					slices.Contains(hist.Command, "--label=instance="+target) && strings.HasPrefix(target, "umeeting_exporter:"))
			}
		}
	}
	if !labelled {
		t.Errorf("history command %q: its --label job and instance are not the exporter's scrape job and target in prometheus/prometheus.yml", hist.Command)
	}
	if !slices.Contains(imp.Entrypoint, "/bin/promtool") || !slices.Contains(imp.Command, "openmetrics") {
		t.Errorf("history-import: %q %q is not promtool tsdb create-blocks-from openmetrics", imp.Entrypoint, imp.Command)
	}

	// The recording rules over the imported days: promtool against the
	// running Prometheus, over the period the history service wrote, with
	// the rule file Prometheus loads, into its data volume.
	rules := c.Services["history-rules"]
	if !slices.Equal(rules.Profiles, []string{"history"}) || rules.Restart != "" || rules.Image != c.Services["prometheus"].Image {
		t.Errorf("history-rules: profiles %v, restart %q, image %q: want a one-shot of profile history with Prometheus's image", rules.Profiles, rules.Restart, rules.Image)
	}
	script := strings.Join(rules.Command, " ")
	for _, want := range []string{"/bin/promtool tsdb create-blocks-from", " rules ", "--url=http://prometheus:9090", "--eval-interval=1m",
		"$(cat /import/rules-range)", "--output-dir=/prometheus", "/etc/prometheus/rules/umeeting.rules.yml"} {
		if !strings.Contains(script, want) {
			t.Errorf("history-rules command %q lacks %q", script, want)
		}
	}
	if !slices.Contains(hist.Command, "--rules-range-file=/import/rules-range") {
		t.Errorf("history command %q: it must write the rules range history-rules reads", hist.Command)
	}
	if volume(rules, "/import") != volume(hist, "/import") || volume(rules, "/prometheus") != volume(c.Services["prometheus"], "/prometheus") ||
		volume(rules, "/etc/prometheus/rules") != volume(c.Services["prometheus"], "/etc/prometheus/rules") {
		t.Errorf("history-rules volumes %q: want the history's /import, Prometheus's data and its rules", rules.Volumes)
	}
}
