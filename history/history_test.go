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
	f.firstStartOf(t, 0)
}

// firstStartOf makes the first start of the config's i-th account.
func (f *fixture) firstStartOf(t testing.TB, i int) {
	t.Helper()
	a := f.cfg.Accounts[i]
	st, _ := store.Open(f.dir, a.Name)
	st.SetPolicy(poller.MetricsOptions(f.cfg.Metrics), seamAt)
	win := st.Window(seamAt, f.cfg.Lookback.D(), f.cfg.Backfill.D())
	if !win.Baseline {
		t.Fatal("the first poll of a fresh state is not the baseline")
	}
	b := st.NewBatch(win)
	client, err := poller.NewClient(a, nil, nil, nil)
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

// decodeOpenMetrics decodes an exported file with the strict OpenMetrics
// 1.0 grammar of prometheus/common, failing the test on the first error.
func decodeOpenMetrics(t *testing.T, b []byte) []*dto.MetricFamily {
	t.Helper()
	dec := expfmt.NewDecoder(bytes.NewReader(b), expfmt.NewFormat(expfmt.TypeOpenMetrics))
	var mfs []*dto.MetricFamily
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			return mfs
		}
		if err != nil {
			t.Fatalf("not valid OpenMetrics: %v", err)
		}
		mfs = append(mfs, &mf)
	}
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
	names := map[string]bool{}
	for _, mf := range decodeOpenMetrics(t, b) {
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
	opts := Options{StorageDir: f.dir, Output: filepath.Join(t.TempDir(), "h.om"), Step: time.Hour, PerHost: true,
		Labels: map[string]string{"job": "j", "instance": "i"}, MaxRequests: budget, Progress: &progress}
	before := f.sim.Requests()
	err := Run(context.Background(), f.cfg, opts)
	if err == nil || !strings.Contains(err.Error(), "run the same command again later to resume") {
		t.Fatalf("a run beyond its requests: %v", err)
	}
	if n := f.sim.Requests() - before; n > budget {
		t.Errorf("the run made %d requests, its budget was %d", n, budget)
	}
	if _, err := os.Stat(opts.Output); err == nil {
		t.Error("an incomplete run wrote the output file")
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
	last := seamAt.Add(-time.Second).Truncate(DefaultStep)
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

// TestTwoAccounts: one file holds both accounts, each family once (valid
// OpenMetrics), each account's series ending at its own starting values;
// --account exports one of them.
func TestTwoAccounts(t *testing.T) {
	f := newFixture(t, 5, 5*24*time.Hour)
	beta := f.cfg.Accounts[0]
	beta.Name = "beta"
	f.cfg.Accounts = append(f.cfg.Accounts, beta)
	f.firstStartOf(t, 1)
	out, _ := f.export(t, Options{PerHost: true, Step: 6 * time.Hour})
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	accounts := map[string]float64{}
	for _, mf := range decodeOpenMetrics(t, b) {
		if mf.GetName() != "umeeting_meetings_total" {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "account" && m.GetTimestampMs() == seamAt.UnixMilli() {
					accounts[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	for _, name := range []string{"acme", "beta"} {
		st, err := store.ReadSeam(f.dir, name)
		if err != nil {
			t.Fatal(err)
		}
		var live uint64
		for _, s := range st.Snapshot(seamAt).Series {
			live += s.Meetings
		}
		if accounts[name] != float64(live) || live == 0 {
			t.Errorf("account %s ends at %v meetings, its starting value is %d", name, accounts[name], live)
		}
	}
	out, _ = f.export(t, Options{PerHost: true, Step: 6 * time.Hour, Accounts: []string{"beta"}})
	if b, _ := os.ReadFile(out); bytes.Contains(b, []byte(`account="acme"`)) || !bytes.Contains(b, []byte(`account="beta"`)) {
		t.Error("--account beta did not export beta alone")
	}
	if err := Run(context.Background(), f.cfg, Options{StorageDir: f.dir, Output: out, Step: time.Hour,
		Labels: map[string]string{"job": "j", "instance": "i"}, Accounts: []string{"gamma"}}); err == nil || !strings.Contains(err.Error(), `"gamma" is not in the config`) {
		t.Errorf("an unknown --account: %v", err)
	}
}

// TestNeedsTheLiveStart: without a state, or with one whose first start
// kept no copy at the seam (an older release), there is nothing to end at:
// the export says so and writes nothing.
func TestNeedsTheLiveStart(t *testing.T) {
	f := newFixture(t, 3, 2*24*time.Hour)
	opts := Options{StorageDir: t.TempDir(), Output: filepath.Join(t.TempDir(), "h.om"), Step: time.Hour,
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
	if _, err := os.Stat(opts.Output); err == nil {
		t.Error("a failed export wrote its file")
	}
}

// TestRuleTwins: a counter point at a whole hour is written again
// RuleEvalInterval later with the same value when the series changes in the
// following hour (so that the recording rules' increase(...[1h]) finds
// samples at both ends of that hour), and only then; gauges never are;
// nothing is written after the seam; the rules range and the printed
// commands say where the backfill of the rules begins and ends.
func TestRuleTwins(t *testing.T) {
	f := newFixture(t, 4, 2*24*time.Hour)
	rangeFile := filepath.Join(t.TempDir(), "rules-range")
	out, progress := f.export(t, Options{PerHost: true, RulesRangeFile: rangeFile})
	type key struct{ name, labels string }
	at := map[key]map[int64]float64{}
	for _, s := range readSamples(t, out) {
		k := key{s.name, s.labels}
		if at[k] == nil {
			at[k] = map[int64]float64{}
		}
		at[k][s.ts] = s.v
		if s.ts > seamAt.UnixMilli() {
			t.Fatalf("%s%s written at %d, after the seam", s.name, s.labels, s.ts)
		}
	}
	counters := map[string]bool{}
	b, _ := os.ReadFile(out)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
			counters[f[2]] = f[3] == "counter"
		}
	}
	twin, hour := RuleEvalInterval.Milliseconds(), time.Hour.Milliseconds()
	written, left := 0, 0
	for k, samples := range at {
		isCounter := counters[strings.TrimSuffix(k.name, "_total")] || counters[k.name]
		for ts, v := range samples {
			if ts%hour != 0 || ts+twin >= seamAt.UnixMilli() {
				continue
			}
			// The value an hour later (or at the seam).
			var later int64 = -1
			for u := range samples {
				if u <= min(ts+hour, seamAt.UnixMilli()) && u > later {
					later = u
				}
			}
			tv, ok := samples[ts+twin]
			switch {
			case !isCounter && ok:
				t.Errorf("%s%s is not a counter but is repeated after the hour", k.name, k.labels)
			case !isCounter:
			case samples[later] != v && (!ok || tv != v):
				t.Errorf("%s%s changes after %d, but its twin is %v (present %v), not %v", k.name, k.labels, ts, tv, ok, v)
			case samples[later] == v && ok:
				t.Errorf("%s%s is flat for the hour after %d, but has a twin", k.name, k.labels, ts)
			case ok:
				written++
			default:
				left++
			}
		}
	}
	if written < 20 || left < 20 {
		t.Errorf("only %d hour twins written and %d left out", written, left)
	}
	t.Logf("%d hour twins written, %d left out over flat hours", written, left)
	start := seamAt.Add(-2 * 24 * time.Hour).Truncate(DefaultStep)
	want := fmt.Sprintf("--start=%s\n--end=%s\n", start.Format(time.RFC3339), seamAt.Truncate(time.Second).Format(time.RFC3339))
	if got, err := os.ReadFile(rangeFile); err != nil || string(got) != want {
		t.Errorf("rules range file: %q (%v), want %q", got, err, want)
	}
	if !strings.Contains(progress, "rules --url=http://localhost:9090 --eval-interval=1m "+strings.ReplaceAll(strings.TrimSpace(want), "\n", " ")) ||
		!strings.Contains(progress, "openmetrics "+out) {
		t.Errorf("the next commands are not printed:\n%s", progress)
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
				if l, ok := last[s.name+s.labels]; ok && s.ts-l > DefaultStep.Milliseconds() {
					t.Fatalf("%s%s: no sample from %d to %d", s.name, s.labels, l, s.ts)
				}
				last[s.name+s.labels] = s.ts
			}
			negative := false
			for _, s := range samples {
				negative = negative || (s.name == "umeeting_meetings_total" && s.v < 0)
				// Histograms begin at backfill's start (their 0 a step before).
				if s.ts < seamAt.Add(-backfill-DefaultStep).UnixMilli() && strings.HasPrefix(s.name, "umeeting_meeting_duration_seconds") {
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
	opts := Options{StorageDir: f.dir, Output: filepath.Join(t.TempDir(), "h.om"), Step: DefaultStep,
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
	opts := Options{StorageDir: f.dir, Output: filepath.Join(t.TempDir(), "h.om"), Step: time.Hour, PerHost: true,
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

// TestSplit: --split writes one valid file per period, named by its first
// day, and together they hold exactly the samples of the single file.
func TestSplit(t *testing.T) {
	f := newFixture(t, 5, 6*24*time.Hour)
	one, _ := f.export(t, Options{PerHost: true, Step: time.Hour})
	dir := t.TempDir()
	var progress bytes.Buffer
	opts := Options{StorageDir: f.dir, Output: filepath.Join(dir, "h.om"), Step: time.Hour, PerHost: true, Split: 2 * 24 * time.Hour,
		Labels: map[string]string{"job": "umeeting", "instance": "exporter:9861"}, Progress: &progress}
	if err := Run(context.Background(), f.cfg, opts); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "h-*.om"))
	if len(files) != 4 { // 6 days from 03:37 over periods of 2 days since the epoch
		t.Fatalf("files %v, want 4", files)
	}
	key := func(s sample) string { return fmt.Sprintf("%s%s %v %d", s.name, s.labels, s.v, s.ts) }
	want := map[string]bool{}
	for _, s := range readSamples(t, one) {
		want[key(s)] = true
	}
	got := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(b, []byte("# EOF\n")) || !strings.Contains(progress.String(), "openmetrics "+file+" ") {
			t.Errorf("%s: no # EOF, or no import command printed for it", file)
		}
		types := map[string]bool{}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
				if types[f[2]] {
					t.Errorf("%s: family %s twice", file, f[2])
				}
				types[f[2]] = true
			}
		}
		for _, s := range readSamples(t, file) {
			if !want[key(s)] {
				t.Errorf("%s: %s is not in the single file", file, key(s))
			}
			got++
		}
	}
	if got != len(want) {
		t.Errorf("the files hold %d samples, the single file %d", got, len(want))
	}
	for _, bad := range []string{"36h", "x", "-2d"} {
		if _, err := ParseSplit(bad); err == nil {
			t.Errorf("--split %q accepted", bad)
		}
	}
}
