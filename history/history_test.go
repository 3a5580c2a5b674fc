package history

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/poller"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// seamAt is the first start of the exporter in these tests: a Wednesday,
// 11:37:20 in Beijing, in the middle of a working day.
var seamAt = time.Date(2024, 3, 20, 3, 37, 20, 0, time.UTC)

// fixture is a simulated account whose exporter started once at seamAt.
type fixture struct {
	sim     *simulator.Simulator
	cfg     *config.Config
	dir     string
	clock   *clock
	account string
}

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

// newFixture serves a company of hosts with 60 days of history and runs
// the exporter's first poll at seamAt, counting all of backfill into the
// starting values, as the store does on a fresh state.
func newFixture(t testing.TB, hosts int, backfill time.Duration) *fixture {
	t.Helper()
	c := &clock{t: seamAt}
	sim := simulator.New(simulator.Options{Seed: 7, Hosts: hosts, Now: c.Now, HistoryStart: seamAt.Add(-60 * 24 * time.Hour)})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	text := fmt.Sprintf(`backfill: %s
accounts:
  - name: acme
    api_url: %s
    api_key: demo-key
    api_secret: demo-secret
    daily_request_budget: 0
`, backfill, srv.URL+simulator.APIPath)
	cfg, err := config.Parse([]byte(text), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{sim: sim, cfg: cfg, dir: t.TempDir(), clock: c, account: "acme"}
	f.firstStart(t)
	return f
}

// firstStart is the exporter's first poll on a fresh state, as the
// poller makes it: the baseline window, a fetch, a commit.
func (f *fixture) firstStart(t testing.TB) {
	t.Helper()
	st, _ := store.Open(f.dir, f.account)
	st.SetPolicy(poller.MetricsOptions(f.cfg.Metrics), seamAt)
	win := st.Window(seamAt, f.cfg.Lookback.D(), f.cfg.Backfill.D())
	if !win.Baseline {
		t.Fatal("the first poll of a fresh state is not the baseline")
	}
	b := st.NewBatch(win)
	client, err := poller.NewClient(f.cfg.Accounts[0], nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Fetch(context.Background(), win.From, seamAt, b); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(b); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) export(t testing.TB, opts Options) (string, string) {
	t.Helper()
	var progress bytes.Buffer
	opts.StorageDir = f.dir
	opts.Output = filepath.Join(t.TempDir(), "history.om")
	if opts.Step == 0 {
		opts.Step = DefaultStep
	}
	opts.Progress = &progress
	if opts.Labels == nil {
		opts.Labels = map[string]string{"job": "umeeting", "instance": "exporter:9861"}
	}
	if err := Run(context.Background(), f.cfg, opts); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	return opts.Output, progress.String()
}

// sample is one line of the file.
type sample struct {
	name, labels string
	v            float64
	ts           int64 // ms
}

func readSamples(t testing.TB, path string) []sample {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []sample
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		j := strings.LastIndexByte(line[:i], ' ')
		ts, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad timestamp in %q", line)
		}
		v, err := strconv.ParseFloat(line[j+1:i], 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		name, labels := line[:j], ""
		if k := strings.IndexByte(name, '{'); k >= 0 {
			name, labels = name[:k], name[k:]
		}
		out = append(out, sample{name: name, labels: labels, v: v, ts: int64(math.Round(ts * 1000))})
	}
	return out
}

// valueAt sums, over the series of name, each series' latest value at or
// before ts (0 for series not born yet).
func valueAt(samples []sample, name string, ts int64) float64 {
	latest := map[string]sample{}
	for _, s := range samples {
		if s.name == name && s.ts <= ts {
			if l, ok := latest[s.labels]; !ok || s.ts >= l.ts {
				latest[s.labels] = s
			}
		}
	}
	var sum float64
	for _, s := range latest {
		sum += s.v
	}
	return sum
}

// TestExportIsValidOpenMetrics decodes the file with the strict OpenMetrics
// 1.0 grammar of prometheus/common: one block per family, # EOF, timestamps.
func TestExportIsValidOpenMetrics(t *testing.T) {
	// The grammar parser is slow: a small file is enough.
	f := newFixture(t, 8, 3*24*time.Hour)
	out, _ := f.export(t, Options{PerHost: true, Step: 2 * time.Hour})
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte("# EOF\n")) {
		t.Fatalf("the file does not end with # EOF")
	}
	dec := expfmt.NewDecoder(bytes.NewReader(b), expfmt.NewFormat(expfmt.TypeOpenMetrics))
	names := map[string]bool{}
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not valid OpenMetrics: %v", err)
		}
		if names[mf.GetName()] {
			t.Errorf("family %s appears twice", mf.GetName())
		}
		names[mf.GetName()] = true
		for _, m := range mf.Metric {
			if m.TimestampMs == nil {
				t.Fatalf("%s: a sample without timestamp", mf.GetName())
			}
		}
	}
	for _, want := range []string{"umeeting_meetings_total", "umeeting_meeting_seconds_total", "umeeting_participants_total",
		"umeeting_participant_seconds_total", "umeeting_meetings_by_feature_total", "umeeting_meeting_duration_seconds",
		"umeeting_meeting_participants", "umeeting_active_hosts", "umeeting_concurrent_meetings_peak",
		"umeeting_concurrent_participants_peak", "umeeting_host_last_meeting_timestamp_seconds"} {
		if !names[want] {
			t.Errorf("family %s missing from the file", want)
		}
	}
	for _, skip := range []string{"umeeting_remembered_meetings", "umeeting_records_invalid_total", "umeeting_up"} {
		if names[skip] {
			t.Errorf("family %s is not history and must not be written", skip)
		}
	}
}

// TestExportDaysMatchTruth checks the numbers: at every UTC midnight the
// counters' increase over the day is the simulator's truth for that day,
// and the last point is exactly the live starting value of every series.
func TestExportDaysMatchTruth(t *testing.T) {
	const backfill = 20 * 24 * time.Hour
	f := newFixture(t, 30, backfill)
	for _, perHost := range []bool{true, false} {
		t.Run(fmt.Sprintf("per_host=%v", perHost), func(t *testing.T) {
			out, progress := f.export(t, Options{PerHost: perHost})
			t.Log(progress)
			samples := readSamples(t, out)
			start := seamAt.Add(-backfill)
			day := start.Truncate(24 * time.Hour).Add(24 * time.Hour)
			days := 0
			for ; !day.Add(24 * time.Hour).After(seamAt); day = day.Add(24 * time.Hour) {
				truth := simulator.Summarize(f.sim.Truth(day.Add(time.Second), day.Add(24*time.Hour)))
				for _, c := range []struct {
					name string
					want int64
				}{
					{"umeeting_meetings_total", truth.Meetings},
					{"umeeting_meeting_seconds_total", truth.MeetingSeconds},
					{"umeeting_participants_total", truth.Participants},
					{"umeeting_participant_seconds_total", truth.ParticipantSeconds},
				} {
					got := valueAt(samples, c.name, day.Add(24*time.Hour).UnixMilli()) - valueAt(samples, c.name, day.UnixMilli())
					if got != float64(c.want) {
						t.Errorf("%s over %s: %v, truth %d", c.name, day.Format(time.DateOnly), got, c.want)
					}
				}
				days++
			}
			if days < 18 {
				t.Fatalf("only %d whole days checked", days)
			}
			// The seam: every counter ends at the live starting value of
			// its label set: the per-host series at the hosts' counts; the
			// per-account series at that of the series without host labels,
			// 0 here, where every host has a series of its own.
			st, _ := store.Open(f.dir, f.account)
			var liveMeetings uint64
			for _, s := range st.Snapshot(seamAt).Series {
				liveMeetings += s.Meetings
			}
			if !perHost {
				liveMeetings = 0
			}
			if got := valueAt(samples, "umeeting_meetings_total", seamAt.UnixMilli()); got != float64(liveMeetings) {
				t.Errorf("meetings at the seam: %v, live starting value %d", got, liveMeetings)
			}
		})
	}
}

var _ = umeeting.Meeting{}
