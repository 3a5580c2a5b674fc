package main

import (
	"runtime/debug"

	"github.com/prometheus/common/version"
)

// Builds without the Makefile's -ldflags (go run, go install, a plain go
// build) still tell which code they are, in --version, the start line and
// umeeting_exporter_build_info.
func init() { fillVersion(debug.ReadBuildInfo()) }

// fillVersion sets what -ldflags left empty from the build information Go
// records: the module version ("(devel)" in a checkout, the tag with go
// install ...@vX.Y.Z) and the commit's time as build date, which Go records
// with the commit (go build in a git checkout, go run -buildvcs=true).
// prometheus/common/version reads the revision from it itself.
func fillVersion(bi *debug.BuildInfo, ok bool) {
	if !ok {
		return
	}
	if version.Version == "" {
		version.Version = bi.Main.Version
	}
	if version.BuildDate != "" {
		return
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.time" {
			version.BuildDate = s.Value
		}
	}
}
