package history

import (
	"context"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// TestQuietStepsEqualRebuilds: a step builds only the series that changed
// (none but the gauges that move with time when it gives the store no
// meeting) and writes the others again; its samples equal those of a
// replay that builds every series of every step from a whole Snapshot,
// over nights, weekends, midnights, hosts leaving the active windows, a
// host renamed and given another licence, and --since's start of the
// histograms.
func TestQuietStepsEqualRebuilds(t *testing.T) {
	f := newFixture(t, 12, 10*24*time.Hour)
	var renamed []umeeting.Meeting
	for i, name := range []string{"Before", "After"} {
		end := seamAt.Add(time.Duration(i-8) * 24 * time.Hour)
		renamed = append(renamed, umeeting.Meeting{UUID: name, ID: 1, Host: name, Email: "renamed@example.com",
			UserType: name, Start: end.Add(-time.Hour), End: end, Participants: 2})
	}
	f.sim.Add(renamed...)
	f.dir = t.TempDir()
	f.firstStart(t)
	for _, opts := range []Options{
		{PerHost: true},
		{PerHost: true, Since: Since{Before: 14 * 24 * time.Hour}},
		{PerHost: false, Since: Since{Before: 14 * 24 * time.Hour}},
	} {
		t.Run(fmt.Sprintf("per_host=%v/since=%v", opts.PerHost, opts.Since.Before), func(t *testing.T) {
			opts.StorageDir, opts.Progress, opts.Logger, opts.MaxRequests = f.dir, io.Discard, log.NewNopLogger(), DefaultMaxRequests
			in, err := prepare(context.Background(), f.cfg, f.cfg.Accounts[0], opts)
			if err != nil {
				t.Fatal(err)
			}
			labels := map[string]string{"job": "umeeting", "instance": "exporter:9861"}
			var dirs [2]string
			var writers [2]*blockWriter
			var rs [2]*replayer
			for i := range rs {
				dirs[i] = t.TempDir()
				if writers[i], err = newBlockWriter(dirs[i], filepath.Join(t.TempDir(), "head")); err != nil {
					t.Fatal(err)
				}
				if rs[i], err = newReplayer(newSeriesWriter(writers[i], labels), in, Step); err != nil {
					t.Fatal(err)
				}
			}
			quiet := 0
			_, steps, err := in.walk(Step, in.seam, false, func(st *store.Store, at, prev time.Time, final, changed bool) error {
				if !changed {
					quiet++
				}
				if err := rs[0].step(st, at, prev, final, changed); err != nil {
					return err
				}
				rs[1].built = false // builds every series from a whole Snapshot
				return rs[1].step(st, at, prev, final, true)
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range writers {
				if err := w.close(); err != nil {
					t.Fatal(err)
				}
			}
			if quiet < steps/2 {
				t.Fatalf("%d quiet steps of %d", quiet, steps)
			}
			got, want := readSamples(t, dirs[0]), readSamples(t, dirs[1])
			if len(want) == 0 || !reflect.DeepEqual(got, want) {
				t.Fatalf("%d samples with quiet steps, %d when every step is built", len(got), len(want))
			}
			// The renamed host's info under its former labels ends with the
			// step that renamed it.
			seen := map[string]int64{}
			for _, s := range got {
				if s.name == "umeeting_host_info" && strings.Contains(s.labels, "renamed@") {
					seen[s.labels] = max(seen[s.labels], s.ts)
				}
			}
			if opts.PerHost && (len(seen) != 2 || slices.Min(slices.Collect(maps.Values(seen))) > renamed[1].End.Add(Step).UnixMilli()) {
				t.Fatalf("host_info of the renamed host, latest samples: %v", seen)
			}
		})
	}
}
