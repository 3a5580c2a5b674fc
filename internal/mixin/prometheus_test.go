package mixin

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTestDepsBuildsThePinnedRelease keeps scripts/test-deps.sh and the
// tests on the same Prometheus 3 version and cache folder.
func TestTestDepsBuildsThePinnedRelease(t *testing.T) {
	script := filepath.Join("..", "..", "scripts", "test-deps.sh")
	for _, env := range [][]string{
		{"HOME=/home/someone"},
		{"HOME=/home/someone", "XDG_CACHE_HOME=/var/cache/ci"},
		{"HOME=/home/someone", "UMEETING_PROM3_DIR=/opt/prom3"},
	} {
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		if !strings.Contains(strings.Join(env, " "), "XDG_CACHE_HOME") {
			t.Setenv("XDG_CACHE_HOME", "")
		}
		if !strings.Contains(strings.Join(env, " "), "UMEETING_PROM3_DIR") {
			t.Setenv("UMEETING_PROM3_DIR", "")
		}
		out, err := exec.Command("bash", script, "--dir").Output()
		if err != nil {
			t.Fatalf("%s --dir: %v", script, err)
		}
		want, err := Prometheus3Dir()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("with %v: test-deps.sh builds into %q, the tests look in %q", env, got, want)
		}
		if !strings.HasSuffix(want, Prometheus3Version) && !strings.Contains(strings.Join(env, " "), "UMEETING_PROM3_DIR") {
			t.Errorf("cache folder %q does not name the version %s", want, Prometheus3Version)
		}
	}
}

func TestPrometheus3Release(t *testing.T) {
	if got := Prometheus3Release(); got != "3.16.0" {
		t.Errorf("Prometheus3Release() = %q for %s, want 3.16.0", got, Prometheus3Version)
	}
}
