package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/internal/account"
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
	return newFixtureWith(t, hosts, backfill, simulator.Options{})
}

// newFixtureWith is newFixture with simulator options (paging, page sizes).
func newFixtureWith(t testing.TB, hosts int, backfill time.Duration, opts simulator.Options) *fixture {
	t.Helper()
	c := &clock{t: seamAt}
	opts.Seed, opts.Hosts, opts.Now = 7, hosts, c.Now
	opts.HistoryStart = seamAt.Add(-max(60*24*time.Hour, backfill))
	sim := simulator.New(opts)
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
	cfg, err := config.Decode([]byte(text), t.TempDir())
	if err == nil {
		err = cfg.Validate()
	}
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
	f.firstStartOf(t, 0)
}

// firstStartOf makes the first start of the config's i-th account.
func (f *fixture) firstStartOf(t testing.TB, i int) {
	t.Helper()
	a := f.cfg.Accounts[i]
	st, _ := store.Open(f.dir, a.Name)
	st.SetPolicy(account.MetricsOptions(f.cfg.Metrics), seamAt)
	win := st.Window(seamAt, f.cfg.Lookback.D(), f.cfg.Backfill.D())
	if !win.Baseline {
		t.Fatal("the first poll of a fresh state is not the baseline")
	}
	b := st.NewBatch(win)
	client, err := account.NewClient(a, nil, nil, nil)
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
	opts.Output = filepath.Join(t.TempDir(), "blocks")
	opts.Progress = &progress
	if opts.Labels == nil {
		opts.Labels = map[string]string{"job": "umeeting", "instance": "exporter:9861"}
	}
	if err := Run(context.Background(), f.cfg, opts); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	return opts.Output, progress.String()
}

// sample is one sample of the blocks.
type sample struct {
	name, labels string // labels: {a="b",c="d"} without the name
	v            float64
	ts           int64 // ms
}

// readSamples reads every sample of the blocks in dir, series by series in
// label order, each in time order.
func readSamples(t testing.TB, dir string) []sample {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	for _, e := range entries {
		b, err := tsdb.OpenBlock(nil, filepath.Join(dir, e.Name()), nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		q, err := tsdb.NewBlockQuerier(b, math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		ss := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
		for ss.Next() {
			lset := ss.At().Labels()
			var pairs []string
			lset.Range(func(l labels.Label) {
				if l.Name != labels.MetricName {
					pairs = append(pairs, fmt.Sprintf("%s=%q", l.Name, l.Value))
				}
			})
			name, ls := lset.Get(labels.MetricName), "{"+strings.Join(pairs, ",")+"}"
			it := ss.At().Iterator(nil)
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				out = append(out, sample{name: name, labels: ls, v: v, ts: ts})
			}
			if it.Err() != nil {
				t.Fatal(it.Err())
			}
		}
		if ss.Err() != nil {
			t.Fatal(ss.Err())
		}
		q.Close()
		b.Close()
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

// TestExportWritesBlocks: the blocks open with Prometheus's own reader,
// hold the exporter's usage families (not its health), histograms as
// OpenMetrics scrapes store them, every series with the target labels and
// a sample at least every Step up to the seam and none after it; the
// files are 0600 and folders 0700, and nothing else is left in the folder.
func TestExportWritesBlocks(t *testing.T) {
	f := newFixture(t, 8, 3*24*time.Hour)
	out, _ := f.export(t, Options{PerHost: true})
	samples := readSamples(t, out)
	names := map[string]bool{}
	last := map[string]int64{}
	for _, s := range samples {
		names[s.name] = true
		if !strings.Contains(s.labels, `instance="exporter:9861"`) || !strings.Contains(s.labels, `job="umeeting"`) {
			t.Fatalf("%s%s: without the target labels", s.name, s.labels)
		}
		if s.ts > seamAt.UnixMilli() {
			t.Fatalf("%s%s written at %d, after the seam", s.name, s.labels, s.ts)
		}
		if l, ok := last[s.name+s.labels]; ok && s.ts-l > Step.Milliseconds() {
			t.Fatalf("%s%s: no sample from %d to %d", s.name, s.labels, l, s.ts)
		}
		last[s.name+s.labels] = s.ts
	}
	for _, want := range []string{"umeeting_meetings_total", "umeeting_meeting_seconds_total", "umeeting_participants_total",
		"umeeting_participant_seconds_total", "umeeting_meetings_by_feature_total", "umeeting_meeting_duration_seconds_bucket",
		"umeeting_meeting_duration_seconds_sum", "umeeting_meeting_duration_seconds_count", "umeeting_meeting_participants_bucket",
		"umeeting_active_hosts", "umeeting_concurrent_meetings_peak",
		"umeeting_concurrent_participants_peak", "umeeting_host_last_meeting_timestamp_seconds"} {
		if !names[want] {
			t.Errorf("series %s missing from the blocks", want)
		}
	}
	for _, skip := range []string{"umeeting_remembered_meetings", "umeeting_records_invalid_total", "umeeting_up"} {
		if names[skip] {
			t.Errorf("family %s is not history and must not be written", skip)
		}
	}
	inf := false
	for _, s := range samples {
		inf = inf || (s.name == "umeeting_meeting_duration_seconds_bucket" && strings.Contains(s.labels, `le="+Inf"`))
		if strings.HasSuffix(s.name, "_bucket") && strings.Contains(s.labels, `le="1"`) {
			t.Fatalf("%s%s: le not as OpenMetrics writes it", s.name, s.labels)
		}
	}
	if !inf {
		t.Error("no +Inf bucket")
	}
	checkModes(t, out)
	checkSpans(t, out)
}

// checkSpans checks that no block reaches past the seam: Prometheus takes a
// block's span as persisted and drops the live samples in it.
func checkSpans(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := tsdb.OpenBlock(nil, filepath.Join(dir, e.Name()), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m := b.Meta(); m.MaxTime > seamAt.UnixMilli()+1 || m.MaxTime-m.MinTime > BlockRange.Milliseconds() {
			t.Errorf("block %s spans %s to %s, past the seam %s or longer than %s", e.Name(),
				time.UnixMilli(m.MinTime).UTC(), time.UnixMilli(m.MaxTime).UTC(), seamAt, BlockRange)
		}
		b.Close()
	}
}

// checkModes checks that every file under dir is 0600, every folder 0700,
// and that dir holds blocks only.
func checkModes(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no block written")
	}
	for _, e := range entries {
		if _, err := ulid.ParseStrict(e.Name()); err != nil {
			t.Errorf("%s in the output folder is not a block", e.Name())
		}
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700 | fs.ModeDir
		}
		if fi.Mode() != want && path != dir {
			t.Errorf("%s: mode %s, want %s", path, fi.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
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
			if days := f.checkDays(t, samples, seamAt.Add(-backfill), perHost); days < 18 {
				t.Fatalf("only %d whole days checked", days)
			}
		})
	}
}

// checkDays compares every whole UTC day's increase of the counters from
// start to the seam with the simulator's truth, and checks that the
// meetings end at the seam at the live starting value of their label set:
// the per-host series at the hosts' counts; the per-account series at that
// of the series without host labels, 0 here, where every host has a series
// of its own. It returns how many days it checked.
func (f *fixture) checkDays(t *testing.T, samples []sample, start time.Time, perHost bool) int {
	t.Helper()
	days := 0
	for day := start.Truncate(24 * time.Hour).Add(24 * time.Hour); !day.Add(24 * time.Hour).After(seamAt); day = day.Add(24 * time.Hour) {
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
	return days
}

func TestCheckLabels(t *testing.T) {
	for _, c := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"job": "umeeting", "instance": "x:9861"}, ""},
		{map[string]string{"job": "umeeting", "instance": ""}, ""}, // relabelled away
		{map[string]string{"job": "umeeting"}, "missing: instance"},
		{nil, "missing: job, instance"},
		{map[string]string{"job": "u", "instance": "i", "1bad": "x"}, "not a valid label name"},
		{map[string]string{"job": "u", "instance": "i", "email": "x"}, "have this label already"},
	} {
		err := CheckLabels(c.labels)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("CheckLabels(%v) = %v, want %q", c.labels, err, c.want)
		}
	}
}

// TestResumesWithinTheBudget runs out of requests midway: the run fails
// saying how to resume, writes no file, keeps the months it fetched, and the
// next run fetches only the others.
func TestResumesWithinTheBudget(t *testing.T) {
	f := newFixture(t, 10, 60*24*time.Hour)
	var progress bytes.Buffer
	const budget = 5 // a month takes about 4 pages of 100 here
	opts := Options{StorageDir: f.dir, Output: filepath.Join(t.TempDir(), "blocks"), PerHost: true,
		Labels: map[string]string{"job": "j", "instance": "i"}, MaxRequests: budget, Progress: &progress}
	before := f.sim.Requests()
	err := Run(context.Background(), f.cfg, opts)
	if err == nil || !strings.Contains(err.Error(), "run the same command again later to resume") {
		t.Fatalf("a run beyond its requests: %v", err)
	}
	if n := f.sim.Requests() - before; n > budget {
		t.Errorf("the run made %d requests, its budget was %d", n, budget)
	}
	if entries, err := os.ReadDir(opts.Output); err != nil || len(entries) > 0 {
		t.Errorf("an incomplete run left %v in the output folder (%v)", entries, err)
	}
	fetched := strings.Count(progress.String(), " meetings, ")
	if fetched < 1 || fetched > 2 {
		t.Fatalf("%d months fetched before the budget ran out:\n%s", fetched, progress.String())
	}
	progress.Reset()
	opts.MaxRequests = 0
	if err := Run(context.Background(), f.cfg, opts); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(progress.String(), "already fetched"); got != fetched {
		t.Errorf("the resumed run reused %d months, %d were fetched:\n%s", got, fetched, progress.String())
	}
	if got := strings.Count(progress.String(), " meetings, "); got != 3-fetched {
		t.Errorf("the resumed run fetched %d months, %d were left:\n%s", got, 3-fetched, progress.String())
	}
}

// TestAPIAnswerChanged: meetings the first start counted that the API no
// longer lists show as an increase in the last step, so every series still
// ends at its starting value; the run says so.
func TestAPIAnswerChanged(t *testing.T) {
	f := newFixture(t, 10, 20*24*time.Hour)
	// The same company on a new server, plus nothing; the first start's
	// answer had two meetings more (made by a second first start below).
	extra := []umeeting.Meeting{
		{UUID: "gone-1", ID: 1, Host: "Gone", Email: "gone@example.com", UserType: "Pro",
			Start: seamAt.Add(-10 * 24 * time.Hour), End: seamAt.Add(-10*24*time.Hour + time.Hour), Participants: 3},
		{UUID: "gone-2", ID: 2, Host: "Gone", Email: "gone@example.com", UserType: "Pro",
			Start: seamAt.Add(-5 * 24 * time.Hour), End: seamAt.Add(-5*24*time.Hour + time.Hour), Participants: 3},
	}
	f.sim.Add(extra...)
	f.dir = t.TempDir()
	f.firstStart(t)
	f.sim = simulator.New(simulator.Options{Seed: 7, Hosts: 10, Now: f.clock.Now, HistoryStart: seamAt.Add(-60 * 24 * time.Hour)})
	srv := httptest.NewServer(f.sim)
	t.Cleanup(srv.Close)
	f.cfg.Accounts[0].APIURL = srv.URL + simulator.APIPath
	out, progress := f.export(t, Options{PerHost: true})
	if !strings.Contains(progress, "no longer lists 2 that it counted") {
		t.Errorf("the run does not report the 2 meetings the API lost:\n%s", progress)
	}
	samples := readSamples(t, out)
	st, err := store.ReadSeam(f.dir, f.account)
	if err != nil {
		t.Fatal(err)
	}
	var live uint64
	for _, s := range st.Snapshot(seamAt).Series {
		live += s.Meetings
	}
	last := seamAt.Add(-time.Second).Truncate(Step)
	if got := valueAt(samples, "umeeting_meetings_total", seamAt.UnixMilli()); got != float64(live) {
		t.Errorf("meetings at the seam: %v, starting value %d", got, live)
	}
	if got := valueAt(samples, "umeeting_meetings_total", seamAt.UnixMilli()) - valueAt(samples, "umeeting_meetings_total", last.UnixMilli()); got < 2 {
		t.Errorf("the last step shows %v meetings, want the 2 lost ones at least", got)
	}
	var gone []sample
	for _, s := range samples {
		if s.name == "umeeting_meetings_total" && strings.Contains(s.labels, "gone@example.com") {
			gone = append(gone, s)
		}
	}
	if len(gone) != 2 || gone[0].v != 0 || gone[1].v != 2 || gone[1].ts != seamAt.UnixMilli() {
		t.Errorf("the lost host's series: %+v, want 0 one step before the seam and 2 at it", gone)
	}
}

// TestTwoAccounts: one folder holds both accounts, each account's series
// ending at its own starting values; --account exports one of them.
func TestTwoAccounts(t *testing.T) {
	f := newFixture(t, 5, 5*24*time.Hour)
	beta := f.cfg.Accounts[0]
	beta.Name = "beta"
	f.cfg.Accounts = append(f.cfg.Accounts, beta)
	f.firstStartOf(t, 1)
	out, _ := f.export(t, Options{PerHost: true})
	samples := readSamples(t, out)
	for _, name := range []string{"acme", "beta"} {
		st, err := store.ReadSeam(f.dir, name)
		if err != nil {
			t.Fatal(err)
		}
		var live uint64
		for _, s := range st.Snapshot(seamAt).Series {
			live += s.Meetings
		}
		var got float64
		for _, s := range samples {
			if s.name == "umeeting_meetings_total" && s.ts == seamAt.UnixMilli() && strings.Contains(s.labels, fmt.Sprintf("account=%q", name)) {
				got += s.v
			}
		}
		if got != float64(live) || live == 0 {
			t.Errorf("account %s ends at %v meetings, its starting value is %d", name, got, live)
		}
	}
	out, _ = f.export(t, Options{PerHost: true, Accounts: []string{"beta"}})
	acme, beta2 := false, false
	for _, s := range readSamples(t, out) {
		acme = acme || strings.Contains(s.labels, `account="acme"`)
		beta2 = beta2 || strings.Contains(s.labels, `account="beta"`)
	}
	if acme || !beta2 {
		t.Error("--account beta did not export beta alone")
	}
	if err := Run(context.Background(), f.cfg, Options{StorageDir: f.dir, Output: t.TempDir(),
		Labels: map[string]string{"job": "j", "instance": "i"}, Accounts: []string{"gamma"}}); err == nil || !strings.Contains(err.Error(), `"gamma" is not in the config`) {
		t.Errorf("an unknown --account: %v", err)
	}
}

// TestNeedsTheLiveStart: without a state, or with one whose first start
// kept no copy at the seam (an older release), there is nothing to end at:
// the export says so and writes nothing.
func TestNeedsTheLiveStart(t *testing.T) {
	f := newFixture(t, 3, 2*24*time.Hour)
	opts := Options{StorageDir: t.TempDir(), Output: filepath.Join(t.TempDir(), "blocks"),
		Labels: map[string]string{"job": "j", "instance": "i"}}
	if err := Run(context.Background(), f.cfg, opts); err == nil || !strings.Contains(err.Error(), "start the exporter first") {
		t.Errorf("without a state: %v", err)
	}
	opts.StorageDir = f.dir
	if err := os.Remove(filepath.Join(f.dir, "acme.state.seam")); err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), f.cfg, opts); err == nil || !errors.Is(err, store.ErrNoSeam) {
		t.Errorf("without the copy at the seam: %v", err)
	}
	if entries, err := os.ReadDir(opts.Output); err != nil || len(entries) > 0 {
		t.Errorf("a failed export left %v in the output folder (%v)", entries, err)
	}
}

// TestSince: --since reads further back than backfill: the older months are
// counted too, every series lowered so that it still ends at its live
// starting value; every day's increase is the truth on the extra days as
// on the others. Reaching past what the API serves, the history stops at
// the first empty month, and says so.
func TestSince(t *testing.T) {
	const backfill = 10 * 24 * time.Hour
	f := newFixture(t, 12, backfill) // the simulator serves 60 days
	for _, c := range []struct {
		since   Since
		perHost bool
		from    time.Time // where the history begins
	}{
		{Since{Before: 40 * 24 * time.Hour}, true, seamAt.Add(-40 * 24 * time.Hour)},
		{Since{Before: 40 * 24 * time.Hour}, false, seamAt.Add(-40 * 24 * time.Hour)},
		{Since{Date: seamAt.AddDate(0, 0, -150).Truncate(24 * time.Hour)}, true, seamAt.Add(-60 * 24 * time.Hour)},
	} {
		t.Run(fmt.Sprintf("since=%v/per_host=%v", c.since, c.perHost), func(t *testing.T) {
			out, progress := f.export(t, Options{PerHost: c.perHost, Since: c.since})
			samples := readSamples(t, out)
			if days := f.checkDays(t, samples, c.from, c.perHost); days < 38 {
				t.Errorf("only %d whole days checked", days)
			}
			// Once written, a series is written at every step (Prometheus
			// forgets a series 5 minutes after its last sample: a gap would
			// make its next sample a birth, whose increase it extrapolates).
			last := map[string]int64{}
			for _, s := range samples {
				if l, ok := last[s.name+s.labels]; ok && s.ts-l > Step.Milliseconds() {
					t.Fatalf("%s%s: no sample from %d to %d", s.name, s.labels, l, s.ts)
				}
				last[s.name+s.labels] = s.ts
			}
			negative := false
			for _, s := range samples {
				negative = negative || (s.name == "umeeting_meetings_total" && s.v < 0)
				// Histograms begin at backfill's start (their 0 a step before).
				if s.ts < seamAt.Add(-backfill-Step).UnixMilli() && strings.HasPrefix(s.name, "umeeting_meeting_duration_seconds") {
					t.Fatalf("a histogram sample before backfill: %v", s)
				}
			}
			if !negative {
				t.Error("no counter below zero before backfill: the older months were not lowered")
			}
			if !c.since.Date.IsZero() && !strings.Contains(progress, "the API serves nothing in") {
				t.Errorf("reaching past the API's history, the export did not say where it stopped:\n%s", progress)
			}
		})
	}
	for _, bad := range []string{"10x", "-5d", "2024-13-01"} {
		if _, err := ParseSince(bad); err == nil {
			t.Errorf("--since %q accepted", bad)
		}
	}
	if s, err := ParseSince("90d"); err != nil || s.Before != 90*24*time.Hour {
		t.Errorf("--since 90d: %v %v", s, err)
	}
	opts := Options{StorageDir: f.dir, Output: filepath.Join(t.TempDir(), "blocks"),
		Labels: map[string]string{"job": "j", "instance": "i"}, Since: Since{Before: 5 * 24 * time.Hour}}
	if err := Run(context.Background(), f.cfg, opts); err == nil || !strings.Contains(err.Error(), "start of backfill") {
		t.Errorf("--since shorter than backfill: %v", err)
	}
}

// TestSinceResumes: the months --since adds are fetched within the same
// request budget, and a run stopped by it resumes where it stopped.
func TestSinceResumes(t *testing.T) {
	f := newFixture(t, 10, 10*24*time.Hour) // the simulator serves 60 days
	var progress bytes.Buffer
	opts := Options{StorageDir: f.dir, Output: filepath.Join(t.TempDir(), "blocks"), PerHost: true,
		Labels: map[string]string{"job": "j", "instance": "i"}, Progress: &progress, Since: Since{Before: 55 * 24 * time.Hour}}
	// The 10 days take one request (and a page or two); the older months
	// about 4 pages of 100 each.
	opts.MaxRequests = 6
	before := f.sim.Requests()
	err := Run(context.Background(), f.cfg, opts)
	if err == nil || !strings.Contains(err.Error(), "run the same command again later to resume") {
		t.Fatalf("a run beyond its requests: %v\n%s", err, progress.String())
	}
	if n := f.sim.Requests() - before; n > opts.MaxRequests {
		t.Errorf("the run made %d requests, its budget was %d", n, opts.MaxRequests)
	}
	fetched := strings.Count(progress.String(), " meetings, ")
	if !strings.Contains(progress.String(), "before backfill: ") {
		t.Errorf("the budget ran out before any older month: make it larger\n%s", progress.String())
	}
	progress.Reset()
	opts.MaxRequests = 0
	if err := Run(context.Background(), f.cfg, opts); err != nil {
		t.Fatal(err)
	}
	reused := strings.Count(progress.String(), "already fetched")
	if reused != fetched || fetched == 0 {
		t.Errorf("the resumed run reused %d months, %d were fetched:\n%s", reused, fetched, progress.String())
	}
	if !strings.Contains(progress.String(), "before backfill") {
		t.Errorf("no month before backfill:\n%s", progress.String())
	}
}

// TestUnsafeOutput: an output that is not a new or empty folder is refused
// before anything is fetched, and left as it was; what a killed run left
// in the folder is removed by the next run.
func TestUnsafeOutput(t *testing.T) {
	f := newFixture(t, 3, 2*24*time.Hour)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(filepath.Join(full, "01ARZ3NDEKTSV4RRFFQ69G5FAV"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A device: /dev/null as root (which could replace it), a named pipe
	// otherwise (not a folder either).
	device, want := "/dev/null", "a device"
	if os.Geteuid() != 0 {
		device, want = filepath.Join(dir, "fifo"), "a named pipe"
		if err := syscall.Mkfifo(device, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := f.sim.Requests()
	for _, c := range []struct{ out, want string }{
		{file, "is not a folder (a file)"},
		{device, "is not a folder (" + want + ")"},
		{link, "is a symbolic link"},
		{full, "is not empty (it holds 01ARZ3NDEKTSV4RRFFQ69G5FAV)"},
		{filepath.Join(dir, "no", "such"), "no such file or directory"},
	} {
		err := Run(context.Background(), f.cfg, Options{StorageDir: f.dir, Output: c.out, PerHost: true,
			Labels: map[string]string{"job": "j", "instance": "i"}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--output %s: %v, want an error saying %q", c.out, err, c.want)
		}
	}
	if n := f.sim.Requests() - before; n > 0 {
		t.Errorf("refused outputs sent %d requests", n)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep" {
		t.Errorf("the file was changed: %q %v", b, err)
	}
	if fi, err := os.Lstat(device); err != nil || fi.Mode().IsRegular() || fi.IsDir() {
		t.Errorf("%s was replaced: %v %v", device, fi, err)
	}
	if entries, _ := os.ReadDir(target); len(entries) > 0 {
		t.Errorf("written through the symlink: %v", entries)
	}
	// A killed run's temporary folder, with a block half written.
	out := filepath.Join(dir, "out")
	left := filepath.Join(out, tmpPrefix+"123", "blocks", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
	if err := os.MkdirAll(left, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(left, "index"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), f.cfg, Options{StorageDir: f.dir, Output: out, PerHost: true,
		Labels: map[string]string{"job": "j", "instance": "i"}}); err != nil {
		t.Fatal(err)
	}
	checkModes(t, out) // blocks only: the leftovers are gone
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o755 && fi.Mode().Perm() != 0o700 {
		t.Errorf("output folder: %v %v", fi, err)
	}
}

// TestRules: the recording rules are evaluated at every minute of the
// history up to the seam (excluded) with Prometheus's engine: each value is
// the engine's instant evaluation of the rule over the blocks, a rule
// reading a rule above it sees its results, and the per-hour series summed
// over a day lie within increase()'s extrapolation of the day's meetings.
func TestRules(t *testing.T) {
	const backfill = 3 * 24 * time.Hour
	f := newFixture(t, 6, backfill)
	out, progress := f.export(t, Options{PerHost: true, RuleFiles: []string{"../alerts/umeeting.rules.yml", "../alerts/umeeting-directory.rules.yml"}})
	t.Log(progress)
	at := map[string]map[int64]float64{} // rule series -> time -> value
	for _, s := range readSamples(t, out) {
		if !strings.Contains(s.name, ":") {
			continue
		}
		if s.ts >= seamAt.UnixMilli() {
			t.Fatalf("%s%s evaluated at %d, at or after the seam", s.name, s.labels, s.ts)
		}
		if at[s.name+s.labels] == nil {
			at[s.name+s.labels] = map[int64]float64{}
		}
		at[s.name+s.labels][s.ts] = s.v
	}
	// Every minute, for a series present from the start.
	start, end := seamAt.Add(-backfill), seamAt
	active := at["umeeting:business_hours:active{}"]
	for ts := ceil(start, time.Minute); ts.Before(end); ts = ts.Add(time.Minute) {
		if _, ok := active[ts.UnixMilli()]; !ok {
			t.Fatalf("umeeting:business_hours:active not evaluated at %s", ts)
		}
	}
	// Rules reading rules: elapsed reads active.
	elapsed := at["umeeting:business_hours:elapsed_seconds{}"]
	busy := 0
	for ts, v := range active {
		beijing := time.UnixMilli(ts).UTC().Add(8 * time.Hour)
		want := 0.0
		if v == 1 {
			want = float64(beijing.Unix()%86400 - 10*3600)
			busy++
		}
		if got, ok := elapsed[ts]; !ok || got != want {
			t.Fatalf("elapsed_seconds at %s: %v (%v), want %v", beijing, got, ok, want)
		}
	}
	if busy == 0 {
		t.Fatal("never business hours")
	}
	checkSpans(t, out)
	// Per-hour meetings per day: each hour's evaluation at the hour reads
	// the samples of its last 55 minutes (a range is left-open) and
	// stretches them to the hour.
	hourly := map[int64]float64{}
	for key, vals := range at {
		if strings.HasPrefix(key, "umeeting:meetings:increase1h{") {
			for ts, v := range vals {
				hourly[ts] += v
			}
		}
	}
	days := 0
	for day := start.Truncate(24 * time.Hour).Add(24 * time.Hour); !day.Add(24 * time.Hour).After(end); day = day.Add(24 * time.Hour) {
		var sum, lost float64
		for h := day.Add(time.Hour); !h.After(day.Add(24 * time.Hour)); h = h.Add(time.Hour) {
			sum += hourly[h.UnixMilli()]
			lost += float64(len(f.sim.Truth(h.Add(-time.Hour+time.Second), h.Add(-time.Hour+Step))))
		}
		truth := float64(len(f.sim.Truth(day.Add(time.Second), day.Add(24*time.Hour))))
		lo, hi := truth-lost, truth*float64(time.Hour)/float64(time.Hour-Step)
		if sum < lo-1e-9 || sum > hi+1e-9 || truth == 0 {
			t.Errorf("per-hour meetings summed over %s: %v, truth %v (allowed %v to %v)", day.Format(time.DateOnly), sum, truth, lo, hi)
		}
		days++
	}
	if days < 2 {
		t.Errorf("only %d days checked", days)
	}
	checkInstant(t, out, at)
}

// checkInstant evaluates every recording rule at every whole hour with
// Prometheus's engine over all the blocks in dir, as an instant query, and
// compares the result with the values written at that time.
func checkInstant(t *testing.T, dir string, at map[string]map[int64]float64) {
	t.Helper()
	groups, err := loadRules([]string{"../alerts/umeeting.rules.yml"}, DefaultEvalInterval)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []tsdb.BlockReader
	for _, e := range entries {
		b, err := tsdb.OpenBlock(nil, filepath.Join(dir, e.Name()), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		blocks = append(blocks, b)
	}
	queryable := storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		var qs []storage.Querier
		for _, b := range blocks {
			q, err := tsdb.NewBlockQuerier(b, mint, maxt)
			if err != nil {
				return nil, err
			}
			qs = append(qs, q)
		}
		return storage.NewMergeQuerier(qs, nil, storage.ChainedSeriesMerge), nil
	})
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e9, Timeout: time.Minute})
	checked := 0
	for h := seamAt.Add(-3 * 24 * time.Hour).Truncate(time.Hour).Add(time.Hour); h.Before(seamAt); h = h.Add(time.Hour) {
		for _, g := range groups {
			for _, r := range g.rules {
				q, err := engine.NewInstantQuery(context.Background(), queryable, nil, r.Query().String(), h)
				if err != nil {
					t.Fatal(err)
				}
				vec, err := q.Exec(context.Background()).Vector()
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range vec {
					lb := labels.NewBuilder(s.Metric)
					lb.Del(labels.MetricName)
					var pairs []string
					lb.Labels().Range(func(l labels.Label) { pairs = append(pairs, fmt.Sprintf("%s=%q", l.Name, l.Value)) })
					key := r.Name() + "{" + strings.Join(pairs, ",") + "}"
					if got, ok := at[key][h.UnixMilli()]; !ok || math.Abs(got-s.F) > 1e-9*math.Max(1, math.Abs(s.F)) {
						t.Fatalf("%s at %s: written %v (%v), the engine says %v", key, h, got, ok, s.F)
					}
					checked++
				}
				q.Close()
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d rule values checked", checked)
	}
}
