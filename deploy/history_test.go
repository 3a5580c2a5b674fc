package deploy

import (
	"slices"
	"strings"
	"testing"
)

// TestHistoryService checks the one-shot history service: it reads the
// simulator the exporter serves on its own loopback (so it shares the
// exporter's network and address) and its state, evaluates the rule file
// Prometheus loads, and writes its blocks into a new folder of Prometheus's
// data volume, then moves them next to Prometheus's blocks.
func TestHistoryService(t *testing.T) {
	c := loadCompose(t)
	exp, hist, prom := c.Services["umeeting_exporter"], c.Services["history"], c.Services["prometheus"]
	if hist.Build == nil {
		t.Fatal("a service history, built from the repository, is needed")
	}
	if !slices.Equal(hist.Profiles, []string{"history"}) {
		t.Errorf("history: profiles %v, want [history] so that `up` does not run it", hist.Profiles)
	}
	if hist.Restart != "" {
		t.Error("history is a one-shot: no restart policy")
	}
	if hist.NetworkMode != "service:umeeting_exporter" {
		t.Errorf("history: network_mode %q, want service:umeeting_exporter (the demo simulator listens on the exporter's loopback)", hist.NetworkMode)
	}
	if !slices.Equal(hist.Entrypoint, []string{"/bin/sh", "-c"}) || len(hist.Command) != 1 {
		t.Fatalf("history: entrypoint %q command %q, want one shell script", hist.Entrypoint, hist.Command)
	}
	script := strings.Fields(hist.Command[0])
	addr := func(cmd []string) string {
		for _, a := range cmd {
			if v, ok := strings.CutPrefix(a, "--demo.simulator-address="); ok {
				return v
			}
		}
		return ""
	}
	if a := addr(exp.Command); a == "" || a != addr(script) {
		t.Errorf("the exporter's simulator address %q and the history's %q differ", a, addr(script))
	}
	if !slices.Equal(script[:3], []string{"/bin/umeeting_exporter", "history", "--demo"}) {
		t.Errorf("history script %q: want the history subcommand with --demo first", script)
	}
	volume := func(s service, container string) string {
		for _, v := range s.Volumes {
			if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == container {
				return parts[0]
			}
		}
		return ""
	}
	if volume(hist, "/var/lib/umeeting_exporter") != volume(exp, "/var/lib/umeeting_exporter") ||
		!slices.Contains(script, "--storage.path=/var/lib/umeeting_exporter") {
		t.Error("history must read the exporter's state volume")
	}
	if volume(hist, "/prometheus") == "" || volume(hist, "/prometheus") != volume(prom, "/prometheus") {
		t.Error("history must write into Prometheus's data volume")
	}
	if volume(hist, "/etc/prometheus/rules") != volume(prom, "/etc/prometheus/rules") ||
		!slices.Contains(script, "--rules=/etc/prometheus/rules/umeeting.rules.yml") {
		t.Errorf("history must evaluate the rule file Prometheus loads: %q", script)
	}
	// A new folder in the data volume, whose blocks then join Prometheus's.
	for _, want := range []string{"--output=/prometheus/umeeting-history", "mv /prometheus/umeeting-history/* /prometheus/",
		"rmdir /prometheus/umeeting-history"} {
		if !strings.Contains(hist.Command[0], want) {
			t.Errorf("history script %q lacks %q", hist.Command[0], want)
		}
	}
	// The imported series must be the scraped ones: the job and instance
	// labels Prometheus gives the exporter's target.
	var cfg struct {
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus/prometheus.yml", &cfg, false)
	labelled := false
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				labelled = labelled || (slices.Contains(script, "--label=job="+sc.JobName) &&
					slices.Contains(script, "--label=instance="+target) && strings.HasPrefix(target, "umeeting_exporter:"))
			}
		}
	}
	if !labelled {
		t.Errorf("history script %q: its --label job and instance are not the exporter's scrape job and target in prometheus/prometheus.yml", script)
	}
	for name := range c.Services {
		if strings.HasPrefix(name, "history") && name != "history" {
			t.Errorf("service %s: the history needs one service now", name)
		}
	}
}
