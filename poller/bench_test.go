package poller

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/exposition"
	"github.com/umeeting/umeeting_exporter/exposition/expositiontest"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

const benchHosts = 10_000

// staticAPI serves one prerendered hisMeeting answer to every request, so
// that a benchmark's CPU time is the exporter's, not the simulator's
// rendering. The answer is rendered by the simulator (the vendor's layout
// and quirks) and refreshed when the test adds meetings.
type staticAPI struct {
	sim *simulator.Simulator
	url string // the simulator's

	mu   sync.Mutex
	body []byte
}

func (a *staticAPI) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	body := a.body
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// refresh renders every meeting that ended in the days around now.
func (a *staticAPI) refresh(tb testing.TB, now time.Time) {
	resp, err := http.PostForm(a.url, url.Values{
		"api_key": {"k"}, "api_secret": {"s"},
		"from": {now.AddDate(0, 0, -4).Format("2006-01-02")}, "to": {now.AddDate(0, 0, 1).Format("2006-01-02")},
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("simulator: HTTP %d %v", resp.StatusCode, err)
	}
	a.mu.Lock()
	a.body = body
	a.mu.Unlock()
}

// steady is one account of benchHosts hosts, each with one meeting in the
// last 20 hours, after its first poll, with a clock that stands still.
type steady struct {
	api   *staticAPI
	m     *Manager
	r     *runner
	inst  *collector.Instruments
	coll  *collector.Collector
	now   time.Time
	added int
}

func newSteady(b *testing.B, hosts int) *steady {
	b.Helper()
	now := time.Now().Truncate(time.Second)
	sim := simulator.New(simulator.Options{APIKey: "k", APISecret: "s", NoGenerated: true, DisablePaging: true})
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sim.Close() })
	ms := make([]umeeting.Meeting, hosts)
	for i := range ms {
		end := now.Add(-time.Duration(i%(20*3600)) * time.Second)
		ms[i] = umeeting.Meeting{UUID: fmt.Sprintf("m%07dXw8NitKXw==", i), Host: fmt.Sprintf("Host %d", i), Email: fmt.Sprintf("host%d@example.com", i),
			UserType: []string{"Corp", "Pro", "Basic", "Edu"}[i%4], Start: end.Add(-time.Duration(5+i%90) * time.Minute), End: end,
			Participants: 1 + i%30, Features: umeeting.Feature(i % 64)}
	}
	sim.Add(ms...)
	s := &steady{api: &staticAPI{sim: sim, url: simURL}, now: now}
	s.api.refresh(b, now)
	srv := httptest.NewServer(s.api)
	b.Cleanup(srv.Close)

	s.coll = collector.New()
	s.inst = collector.NewInstruments(prometheus.NewRegistry())
	s.m = NewManager(b.TempDir(), s.coll, s.inst, log.NewNopLogger())
	s.m.now = func() time.Time { return now }
	b.Cleanup(s.m.Stop)
	cfg, err := config.Decode([]byte(fmt.Sprintf("poll_interval: 1h\nlookback: 48h\nbackfill: 0s\naccounts:\n"+
		"  - {name: bench, api_url: %q, api_key: k, api_secret: s, daily_request_budget: 0}\n", srv.URL)), ".")
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		b.Fatal(err)
	}
	if err := s.m.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for s.polls() < 1 {
		if time.Now().After(deadline) {
			b.Fatal("no first poll in a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.m.mu.Lock()
	s.r = s.m.runners["bench"]
	s.m.mu.Unlock()
	return s
}

func (s *steady) polls() float64 {
	return testutil.ToFloat64(s.inst.Polls.WithLabelValues("bench", collector.PollSuccess))
}

// addMeetings lists n new meetings (of existing hosts) from now on.
func (s *steady) addMeetings(b *testing.B, n int) {
	ms := make([]umeeting.Meeting, n)
	for i := range ms {
		end := s.now.Add(-time.Minute)
		h := s.added % benchHosts
		ms[i] = umeeting.Meeting{UUID: fmt.Sprintf("new%07d", s.added), Host: fmt.Sprintf("Host %d", h), Email: fmt.Sprintf("host%d@example.com", h),
			UserType: []string{"Corp", "Pro", "Basic", "Edu"}[h%4], Start: end.Add(-time.Hour), End: end, Participants: 3}
		s.added++
	}
	s.api.sim.Add(ms...)
	s.api.refresh(b, s.now)
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssBytes is the process's resident set size.
func rssBytes(tb testing.TB) float64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		tb.Skip("no /proc/self/statm:", err)
	}
	fields := strings.Fields(string(data))
	pages, _ := strconv.ParseFloat(fields[1], 64)
	return pages * float64(os.Getpagesize())
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkSteadyPoll measures the CPU time of one poll of an account of
// 10,000 hosts (110,000 series) in the steady state, side by side:
//
//   - nothing_new/cached: a poll that counts nothing (every listed meeting
//     is known), as the exporter does it now: fetch, decode, dedup, save,
//     snapshot, compare; no metric built, nothing encoded.
//   - nothing_new/previous: the same poll plus what the previous design did
//     after it: a snapshot of the store and every usage metric built again
//     from it (BuildUsage), the old set kept alive until replaced.
//   - new_meetings/cached: each poll counts 5 new meetings (of existing
//     hosts), so the account-wide metrics and the blocks of those hosts
//     are rebuilt and re-encoded (text, OpenMetrics, compressed).
//   - new_meetings/full: the same polls, each rebuilding and re-encoding
//     every usage metric of the account, as before blocks: the poll's
//     metrics options differ from the last poll's (HoldFor by 1 ns, which
//     builds the same metrics), which makes the collector build everything.
//
// cpu-ms/poll is the median of the process's CPU time (user+system, all
// threads, the garbage collector's included) over the polls; rss-first-MiB
// is the resident set after the first poll, rss-last-MiB after the last;
// run each sub-benchmark in its own process (-bench with its full name)
// for the resident sets.
func BenchmarkSteadyPoll(b *testing.B) {
	for _, mode := range []string{"nothing_new/cached", "nothing_new/previous", "new_meetings/cached", "new_meetings/full"} {
		b.Run(mode, func(b *testing.B) {
			s := newSteady(b, benchHosts)
			rssFirst := rssBytes(b)
			var kept []prometheus.Metric
			opts := s.r.settings().metrics
			var cpu []time.Duration
			ctx := context.Background()
			for b.Loop() {
				if strings.HasPrefix(mode, "new_meetings") {
					b.StopTimer()
					s.addMeetings(b, 5)
					if strings.HasSuffix(mode, "full") {
						s.r.mu.Lock()
						s.r.set.metrics.HoldFor ^= 1
						s.r.mu.Unlock()
					}
					b.StartTimer()
				}
				start := cpuTime()
				if err := s.r.poll(ctx); err != nil {
					b.Fatal(err)
				}
				if strings.HasSuffix(mode, "previous") {
					kept = collector.BuildUsage("bench", s.r.store.Snapshot(s.now), opts)
				}
				cpu = append(cpu, cpuTime()-start)
			}
			runtime.KeepAlive(kept)
			b.ReportMetric(float64(median(cpu))/1e6, "cpu-ms/poll")
			b.ReportMetric(rssFirst/(1<<20), "rss-first-MiB")
			b.ReportMetric(rssBytes(b)/(1<<20), "rss-last-MiB")
			if strings.HasPrefix(mode, "new_meetings") {
				if want := float64(benchHosts + s.added); meetingsServed(b, s) != want {
					b.Fatalf("served %v meetings, want %v", meetingsServed(b, s), want)
				}
			}
		})
		debug.FreeOSMemory()
	}
}

// meetingsServed sums umeeting_meetings_total as /metrics serves it.
func meetingsServed(tb testing.TB, s *steady) float64 {
	a, err := expositiontest.Scrape(exposition.NewHandler(s.coll.Cache(), prometheus.NewRegistry(), exposition.HandlerOpts{}), "", "")
	if err != nil {
		tb.Fatal(err)
	}
	mfs, err := a.Families()
	if err != nil {
		tb.Fatal(err)
	}
	sum := 0.0
	for _, m := range mfs["umeeting_meetings_total"].GetMetric() {
		sum += m.GetCounter().GetValue()
	}
	return sum
}
