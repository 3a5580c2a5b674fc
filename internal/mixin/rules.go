// Package mixin reads the rule files shipped in alerts/, for the tests of
// the dashboards and of the rules against a real Prometheus.
package mixin

import (
	"fmt"
	"os"
	"path/filepath"

	yaml "go.yaml.in/yaml/v2"
)

// Rule is one recording or alerting rule.
type Rule struct {
	Record string `yaml:"record"`
	Alert  string `yaml:"alert"`
	Expr   string `yaml:"expr"`
}

// RuleFiles lists the *.rules.yml files of dir.
func RuleFiles(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.rules.yml"))
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no *.rules.yml in %s", dir)
	}
	return files, err
}

// LoadRules returns every rule of the given rule files, in file order.
func LoadRules(files []string) ([]Rule, error) {
	var rules []Rule
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var rf struct {
			Groups []struct {
				Rules []Rule `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(b, &rf); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, g := range rf.Groups {
			rules = append(rules, g.Rules...)
		}
	}
	return rules, nil
}
