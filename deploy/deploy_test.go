// Package deploy holds a docker-compose demo stack of umeeting_exporter
// (exporter in --demo, Prometheus with the alert rules, Alertmanager,
// Grafana with the dashboards). Docker cannot run in the test environment,
// so this test validates what can be validated without it: every YAML file
// parses, every mounted path exists, the Prometheus configuration passes
// `promtool check config` with the rule files mounted where the container
// sees them, and the services refer to each other by the right names.
package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/umeeting/umeeting_exporter/internal/mixin"

	"go.yaml.in/yaml/v2"
)

type service struct {
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   []string          `yaml:"depends_on"`
	Restart     string            `yaml:"restart"`
	// The one-shot history services.
	Profiles    []string `yaml:"profiles"`
	NetworkMode string   `yaml:"network_mode"`
	Entrypoint  []string `yaml:"entrypoint"`
}

type compose struct {
	Name     string             `yaml:"name"`
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

// mount is one bind mount of a service: a host path (relative to deploy/)
// seen at a container path.
type mount struct{ host, container string }

// staticConfig is a static_configs entry of prometheus.yml.
type staticConfig struct {
	Targets []string `yaml:"targets"`
}

// scrapeConfig is the part of a scrape_configs entry of prometheus.yml
// that the tests read.
type scrapeConfig struct {
	JobName       string         `yaml:"job_name"`
	StaticConfigs []staticConfig `yaml:"static_configs"`
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	readYAML(t, "docker-compose.yml", &c, true)
	for _, name := range []string{"umeeting_exporter", "prometheus", "alertmanager", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("docker-compose.yml: service %q missing", name)
		}
	}
	return c
}

func readYAML(t *testing.T, path string, v any, strict bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unmarshal := yaml.Unmarshal
	if strict {
		unmarshal = yaml.UnmarshalStrict
	}
	if err := unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// binds returns the bind mounts of a service; named volumes are checked
// against the top-level volumes instead.
func binds(t *testing.T, c compose, svc string) []mount {
	t.Helper()
	var out []mount
	for _, v := range c.Services[svc].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 || !strings.HasPrefix(parts[1], "/") {
			t.Errorf("%s: volume %q is not source:/container/path[:mode]", svc, v)
			continue
		}
		if !strings.HasPrefix(parts[0], ".") && !strings.HasPrefix(parts[0], "/") {
			if _, ok := c.Volumes[parts[0]]; !ok {
				t.Errorf("%s: named volume %q not declared under volumes", svc, parts[0])
			}
			continue
		}
		out = append(out, mount{host: parts[0], container: parts[1]})
	}
	return out
}

// hostPath maps a container path of a service to the host path mounted
// there (longest mount prefix wins), "" when nothing is mounted.
func hostPath(t *testing.T, c compose, svc, container string) string {
	t.Helper()
	best, bestLen := "", -1
	for _, m := range binds(t, c, svc) {
		if (container == m.container || strings.HasPrefix(container, m.container+"/")) && len(m.container) > bestLen {
			best = filepath.Join(m.host, strings.TrimPrefix(container, m.container))
			bestLen = len(m.container)
		}
	}
	return best
}

func TestYAMLFilesParse(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yml" || ext == ".yaml") {
			n++
			var v any
			readYAML(t, path, &v, false)
			if v == nil {
				t.Errorf("%s is empty", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Errorf("found %d YAML files, want compose, prometheus, alertmanager and two grafana provisioning files", n)
	}
}

func TestComposeMountsExist(t *testing.T) {
	c := loadCompose(t)
	for name := range c.Services {
		for _, m := range binds(t, c, name) {
			if _, err := os.Stat(m.host); err != nil {
				t.Errorf("%s: mounted path %s does not exist: %v", name, m.host, err)
			}
		}
	}
}

func TestExporterService(t *testing.T) {
	c := loadCompose(t)
	s := c.Services["umeeting_exporter"]
	if s.Build == nil {
		t.Fatal("umeeting_exporter must be built from the repository")
	}
	dockerfile := s.Build.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if _, err := os.Stat(filepath.Join(s.Build.Context, dockerfile)); err != nil {
		t.Errorf("build context %s has no %s: %v", s.Build.Context, dockerfile, err)
	}
	if _, err := os.Stat(filepath.Join(s.Build.Context, "go.mod")); err != nil {
		t.Errorf("build context %s is not the repository root: %v", s.Build.Context, err)
	}
	for _, want := range []string{"--demo", "--web.listen-address=:9861"} {
		if !slices.Contains(s.Command, want) {
			t.Errorf("exporter command %q lacks %s", s.Command, want)
		}
	}
}

// TestPrometheusConfig runs promtool check config on prometheus.yml laid out
// as the container sees it: the directories mounted under /etc/prometheus
// are linked next to a copy of the file, so the relative rule_files glob
// resolves to the repository's alerts/ and the rules are checked too.
// It runs with the promtool of every release the project is tested with.
func TestPrometheusConfig(t *testing.T) {
	releases, err := mixin.PrometheusReleases()
	if err != nil {
		t.Fatal(err)
	}
	c := loadCompose(t)
	s := c.Services["prometheus"]
	cfgPath := flagValue(s.Command, "--config.file")
	if cfgPath == "" {
		t.Fatal("prometheus command has no --config.file")
	}
	etc := filepath.Dir(cfgPath)
	dir := t.TempDir()
	for _, m := range binds(t, c, "prometheus") {
		rel, err := filepath.Rel(etc, m.container)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // storage and the like
		}
		abs, err := filepath.Abs(m.host)
		if err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, link); err != nil {
			t.Fatal(err)
		}
	}
	ruleFiles, err := mixin.RuleFiles(filepath.Join("..", "alerts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range releases {
		out, err := exec.Command(rel.Promtool, "check", "config", filepath.Join(dir, filepath.Base(cfgPath))).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s check config: %v\n%s", rel.Name, err, out)
		}
		if !strings.Contains(string(out), fmt.Sprintf("SUCCESS: %d rule files found", len(ruleFiles))) || !strings.Contains(string(out), "rules found") {
			t.Errorf("promtool %s check config did not find and check the rule file:\n%s", rel.Name, out)
		}
	}

	var cfg struct {
		Alerting struct {
			Alertmanagers []struct {
				StaticConfigs []staticConfig `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
	}
	readYAML(t, hostPath(t, c, "prometheus", cfgPath), &cfg, false)
	var amTargets []string
	for _, am := range cfg.Alerting.Alertmanagers {
		for _, sc := range am.StaticConfigs {
			amTargets = append(amTargets, sc.Targets...)
		}
	}
	if !slices.Equal(amTargets, []string{"alertmanager:9093"}) {
		t.Errorf("alertmanager targets = %v, want the alertmanager service", amTargets)
	}
	found := false
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != "umeeting" {
			continue
		}
		for _, st := range sc.StaticConfigs {
			found = found || slices.Contains(st.Targets, "umeeting_exporter:9861")
		}
	}
	if !found {
		t.Error(`no job "umeeting" (the job UMeetingExporterDown watches) scraping umeeting_exporter:9861`)
	}
}

// TestPrometheusImage pins the stack's Prometheus to the 3.x release the
// tests run against.
func TestPrometheusImage(t *testing.T) {
	c := loadCompose(t)
	if got, want := c.Services["prometheus"].Image, "prom/prometheus:v"+mixin.Prometheus3Release(); got != want {
		t.Errorf("prometheus image = %q, want %q (the release make test runs)", got, want)
	}
}

func TestAlertmanagerConfig(t *testing.T) {
	c := loadCompose(t)
	path := hostPath(t, c, "alertmanager", flagValue(c.Services["alertmanager"].Command, "--config.file"))
	if path == "" {
		t.Fatal("alertmanager's --config.file is not mounted from the repository")
	}
	var cfg struct {
		Route struct {
			Receiver string `yaml:"receiver"`
		} `yaml:"route"`
		Receivers []struct {
			Name string `yaml:"name"`
		} `yaml:"receivers"`
	}
	readYAML(t, path, &cfg, false)
	names := map[string]bool{}
	for _, r := range cfg.Receivers {
		names[r.Name] = true
	}
	if cfg.Route.Receiver == "" || !names[cfg.Route.Receiver] {
		t.Errorf("route receiver %q is not among the receivers %v", cfg.Route.Receiver, names)
	}
	if amtool, err := exec.LookPath("amtool"); err == nil {
		if out, err := exec.Command(amtool, "check-config", path).CombinedOutput(); err != nil {
			t.Errorf("amtool check-config: %v\n%s", err, out)
		}
	} else {
		t.Log("amtool not installed: alertmanager.yml checked for structure only")
	}
}

// TestInhibitRulesTieSourceToTarget checks every inhibition of the demo's
// alertmanager.yml: it has `equal` labels, and each of them is carried by
// every alert it matches, as the promtool tests of alerts/ show them firing
// (an equal label one side lacks would make the inhibition never hold).
func TestInhibitRulesTieSourceToTarget(t *testing.T) {
	var am struct {
		InhibitRules []struct {
			SourceMatchers []string `yaml:"source_matchers"`
			TargetMatchers []string `yaml:"target_matchers"`
			Equal          []string `yaml:"equal"`
		} `yaml:"inhibit_rules"`
	}
	readYAML(t, filepath.Join("alertmanager", "alertmanager.yml"), &am, false)
	if len(am.InhibitRules) == 0 {
		t.Fatal("no inhibit_rules")
	}

	// Label names of each alert in every firing case of the rule tests.
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				ExpAlerts []struct {
					ExpLabels map[string]string `yaml:"exp_labels"`
				} `yaml:"exp_alerts"`
				Alertname string `yaml:"alertname"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join("..", "alerts", "umeeting.rules_test.yml"), &tests, false)
	labels := map[string][]map[string]string{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertRuleTest {
			for _, a := range at.ExpAlerts {
				labels[at.Alertname] = append(labels[at.Alertname], a.ExpLabels)
			}
		}
	}

	matcher := regexp.MustCompile(`^alertname\s*(=~|=)\s*"([^"]*)"$`)
	alerts := func(ms []string) []string {
		var out []string
		for _, m := range ms {
			sub := matcher.FindStringSubmatch(m)
			if sub == nil {
				t.Fatalf("matcher %q: want alertname = or =~", m)
			}
			re := regexp.MustCompile("^(?:" + sub[2] + ")$")
			if sub[1] == "=" {
				re = regexp.MustCompile("^" + regexp.QuoteMeta(sub[2]) + "$")
			}
			n := 0
			for name := range labels {
				if re.MatchString(name) {
					out = append(out, name)
					n++
				}
			}
			if n == 0 {
				t.Errorf("matcher %q matches no alert tested in alerts/umeeting.rules_test.yml", m)
			}
		}
		return out
	}
	for i, r := range am.InhibitRules {
		if len(r.Equal) == 0 {
			t.Errorf("inhibit rule %d (%v): no equal labels", i, r.SourceMatchers)
		}
		for _, name := range append(alerts(r.SourceMatchers), alerts(r.TargetMatchers)...) {
			for _, ls := range labels[name] {
				for _, l := range r.Equal {
					if _, ok := ls[l]; !ok {
						t.Errorf("inhibit rule %d: equal label %q missing from %s %v", i, l, name, ls)
					}
				}
			}
		}
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	c := loadCompose(t)
	prov := hostPath(t, c, "grafana", "/etc/grafana/provisioning")
	if prov == "" {
		t.Fatal("nothing mounted at /etc/grafana/provisioning")
	}

	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name      string `yaml:"name"`
			Type      string `yaml:"type"`
			URL       string `yaml:"url"`
			IsDefault bool   `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(prov, "datasources", "prometheus.yml"), &ds, false)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
		t.Fatalf("datasources provisioning: %+v, want apiVersion 1 and one datasource", ds)
	}
	if d := ds.Datasources[0]; d.Type != "prometheus" || d.URL != "http://prometheus:9090" || !d.IsDefault {
		t.Errorf("datasource %+v, want the default prometheus datasource at the prometheus service", d)
	}

	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(prov, "dashboards", "umeeting.yml"), &dp, false)
	if dp.APIVersion != 1 || len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
		t.Fatalf("dashboards provisioning: %+v, want one file provider", dp)
	}
	dir := hostPath(t, c, "grafana", dp.Providers[0].Options.Path)
	if dir == "" {
		t.Fatalf("dashboard path %s is not mounted into grafana", dp.Providers[0].Options.Path)
	}
	for _, f := range []string{"umeeting-usage.json", "umeeting-hosts.json", "umeeting-exporter-health.json", "umeeting-departments.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("dashboard %s not in the provisioned directory: %v", f, err)
		}
	}
	if home := c.Services["grafana"].Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		if p := hostPath(t, c, "grafana", home); p == "" {
			t.Errorf("home dashboard %s is not mounted", home)
		} else if _, err := os.Stat(p); err != nil {
			t.Errorf("home dashboard: %v", err)
		}
	}
}

// flagValue returns the value of --name=value in a command, "" if absent.
func flagValue(cmd []string, name string) string {
	for _, a := range cmd {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}
