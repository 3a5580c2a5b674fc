package mixin

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Prometheus3Version is the Go module version of the Prometheus 3.x release
// the tests run against besides Debian's 2.42 (v0.3XX.Y is 3.XX.Y).
// scripts/test-deps.sh builds the same version (checked by a test).
const Prometheus3Version = "v0.316.0"

// PrometheusRelease is one Prometheus release the tests run against.
type PrometheusRelease struct {
	Name       string // release, e.g. "2.42" or "3.16"
	Major      int    // 2 or 3
	Prometheus string // path of the prometheus binary
	Promtool   string // path of its promtool
}

// Prometheus3Dir is where scripts/test-deps.sh puts the Prometheus 3.x
// binaries: $UMEETING_PROM3_DIR, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/umeeting-prom3/VERSION.
func Prometheus3Dir() (string, error) {
	if d := os.Getenv("UMEETING_PROM3_DIR"); d != "" {
		return d, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("locating the Prometheus 3 cache: %w", err)
	}
	return filepath.Join(cache, "umeeting-prom3", Prometheus3Version), nil
}

var debianVersion = regexp.MustCompile(`^prometheus, version (2)\.(\d+)\.`)

// PrometheusReleases returns the releases every Prometheus-backed test runs
// on: Debian's 2.x from PATH and the pinned 3.x from Prometheus3Dir. A
// missing or unexpected binary is an error that says how to get it: the
// tests fail rather than quietly test one release.
func PrometheusReleases() ([]PrometheusRelease, error) {
	const hint = "run scripts/test-deps.sh (make test does)"
	prom2, err := exec.LookPath("prometheus")
	if err != nil {
		return nil, fmt.Errorf("prometheus 2.x is not in PATH (%v): %s", err, hint)
	}
	tool2, err := exec.LookPath("promtool")
	if err != nil {
		return nil, fmt.Errorf("promtool 2.x is not in PATH (%v): %s", err, hint)
	}
	out, err := exec.Command(prom2, "--version").CombinedOutput()
	m := debianVersion.FindStringSubmatch(string(out))
	if first, _, _ := strings.Cut(string(out), "\n"); err != nil || m == nil {
		return nil, fmt.Errorf("%s --version: want a Prometheus 2.x, got %q (%v)", prom2, first, err)
	}
	releases := []PrometheusRelease{{Name: m[1] + "." + m[2], Major: 2, Prometheus: prom2, Promtool: tool2}}

	dir, err := Prometheus3Dir()
	if err != nil {
		return nil, err
	}
	r3 := PrometheusRelease{Major: 3, Prometheus: filepath.Join(dir, "prometheus"), Promtool: filepath.Join(dir, "promtool")}
	for _, bin := range []string{r3.Prometheus, r3.Promtool} {
		// Built by go install without version ldflags: the module version
		// in the binary's build information says which release it is.
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("reading the build information of the Prometheus 3 binary %s: %w: %s", bin, err, hint)
		}
		if info.Main.Path != "github.com/prometheus/prometheus" || info.Main.Version != Prometheus3Version {
			return nil, fmt.Errorf("%s is %s %s, want github.com/prometheus/prometheus %s: %s",
				bin, info.Main.Path, info.Main.Version, Prometheus3Version, hint)
		}
	}
	major, minor, _ := strings.Cut(Prometheus3Release(), ".")
	minor, _, _ = strings.Cut(minor, ".")
	r3.Name = major + "." + minor
	return append(releases, r3), nil
}

// Prometheus3Release is the release Prometheus3Version stands for:
// "3.16.0" for v0.316.0.
func Prometheus3Release() string {
	parts := strings.SplitN(strings.TrimPrefix(Prometheus3Version, "v"), ".", 3)
	return "3." + strings.TrimLeft(strings.TrimPrefix(parts[1], "3"), "0") + "." + parts[2]
}
