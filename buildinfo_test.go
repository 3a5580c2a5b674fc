package main

import (
	"runtime/debug"
	"testing"

	"github.com/prometheus/common/version"
)

// TestFillVersion: a build without -ldflags takes its version and date from
// Go's build information; values set by -ldflags are kept.
func TestFillVersion(t *testing.T) {
	saved := []*string{&version.Version, &version.BuildDate}
	old := []string{version.Version, version.BuildDate}
	t.Cleanup(func() {
		for i, p := range saved {
			*p = old[i]
		}
	})
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207193943-bf92cb035a5a"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "bf92cb035a5a548a1b1aa9d84a753df0e47f5354"}, {Key: "vcs.time", Value: "2026-12-07T19:39:43Z"}}}

	version.Version, version.BuildDate = "", ""
	fillVersion(bi, true)
	if version.Version != bi.Main.Version || version.BuildDate != "2026-12-07T19:39:43Z" {
		t.Errorf("without -ldflags: version %q, date %q", version.Version, version.BuildDate)
	}

	version.Version, version.BuildDate = "1.2.0", "20261207-19:00:00"
	fillVersion(bi, true)
	if version.Version != "1.2.0" || version.BuildDate != "20261207-19:00:00" {
		t.Errorf("with -ldflags: version %q, date %q", version.Version, version.BuildDate)
	}

	version.Version, version.BuildDate = "", ""
	fillVersion(nil, false)
	if version.Version != "" || version.BuildDate != "" {
		t.Errorf("without build information: version %q, date %q", version.Version, version.BuildDate)
	}
}
