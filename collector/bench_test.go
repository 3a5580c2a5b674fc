package collector

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/umeeting/umeeting_exporter/exposition"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

const benchHosts = 10_000

// bigSnapshot is the snapshot of an account with benchHosts hosts, each
// with one meeting in the lookback.
func bigSnapshot(b *testing.B) *store.Snapshot {
	s, _ := store.Open(b.TempDir(), "bench")
	batch := s.NewBatch(s.Window(t0, 48*time.Hour, 0))
	userTypes := []string{"Corp", "Pro", "Basic", "Edu"}
	for i := range benchHosts {
		m := umeeting.Meeting{
			UUID: fmt.Sprintf("u%d", i), Host: fmt.Sprintf("Host %d", i), Email: fmt.Sprintf("host%d@example.com", i),
			UserType: userTypes[i%len(userTypes)], Start: t0.Add(-time.Hour), End: t0.Add(-time.Duration(i) * time.Second),
			Participants: 1 + i%30, Features: umeeting.Feature(i % 64),
		}
		batch.Meeting(&m)
	}
	batch.CommitPage()
	s.Apply(batch)
	return s.Snapshot(t0)
}

// discard is a ResponseWriter that counts what is written and keeps
// nothing, like a socket to a fast client: a recorder's growing buffer
// would cost more than the handlers under test.
type discard struct {
	header http.Header
	code   int
	n      int
}

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) WriteHeader(code int)        { d.code = code }
func (d *discard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// scrape serves one /metrics request from h with the given headers and
// returns the size of the answer as sent.
func scrape(b *testing.B, h http.Handler, accept, acceptEncoding string) int {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", accept)
	req.Header.Set("Accept-Encoding", acceptEncoding)
	w := &discard{header: http.Header{}, code: http.StatusOK}
	h.ServeHTTP(w, req)
	if w.code != http.StatusOK {
		b.Fatalf("HTTP %d", w.code)
	}
	return w.n
}

// scrapeHandlers are /metrics at 10,000 hosts three ways:
//   - cached: this exporter (the usage families encoded once per poll,
//     Go, process and status gathered live);
//   - previous: the previous design, promhttp over the collector's
//     prebuilt usage metrics (a poll's BuildUsage) and the same live ones;
//   - floor: promhttp over the same number of prebuilt const metrics with
//     the same label names, and the same live ones: what client_golang
//     costs at the least per scrape.
func scrapeHandlers(b *testing.B) (cached, previous, floor http.Handler, series int) {
	snap := bigSnapshot(b)
	c := New()
	c.SetUsage("bench", snap, Options{PerHost: true})
	c.SetStatus("bench", Status{Up: true})
	liveColls := func() []prometheus.Collector {
		return []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), c.Status()}
	}
	live := prometheus.NewRegistry()
	live.MustRegister(liveColls()...)
	cached = exposition.NewHandler(c.Cache(), live, exposition.HandlerOpts{})

	usage := BuildUsage("bench", snap, Options{PerHost: true})
	prev := prometheus.NewRegistry()
	prev.MustRegister(append(liveColls(), metrics(usage))...)
	previous = promhttp.HandlerFor(prev, promhttp.HandlerOpts{EnableOpenMetrics: true})

	var baseline metrics
	desc := prometheus.NewDesc("umeeting_baseline_total", "Baseline.", []string{"account", "email", "user_type", "feature"}, nil)
	for n := range usage {
		baseline = append(baseline, prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(n),
			"bench", fmt.Sprintf("host%d@example.com", n%benchHosts), "Corp", umeeting.FeatureNames[n/benchHosts%6]+fmt.Sprint(n/benchHosts)))
	}
	fl := prometheus.NewRegistry()
	fl.MustRegister(append(liveColls(), baseline)...)
	floor = promhttp.HandlerFor(fl, promhttp.HandlerOpts{EnableOpenMetrics: true})
	return cached, previous, floor, len(usage)
}

func medianMs(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2]) / 1e6
}

// BenchmarkScrape times scrapes of an account with 10,000 hosts (110,000
// usage series) in each format and encoding, the three handlers of
// scrapeHandlers side by side: each iteration scrapes each once, in turn,
// so that noise on the shared machine hits all three alike. It reports
// each one's median and the floor's median over the cached one's.
func BenchmarkScrape(b *testing.B) {
	cached, previous, floor, series := scrapeHandlers(b)
	for _, f := range []struct{ name, accept, encoding string }{
		{"text", "text/plain;version=0.0.4", ""},
		{"text+gzip", "text/plain;version=0.0.4", "gzip"},
		{"openmetrics", "application/openmetrics-text;version=1.0.0", ""},
		{"openmetrics+gzip", "application/openmetrics-text;version=1.0.0", "gzip"},
	} {
		b.Run(f.name, func(b *testing.B) {
			var tc, tp, tf []time.Duration
			size := 0
			timed := func(h http.Handler, into *[]time.Duration) int {
				start := time.Now()
				n := scrape(b, h, f.accept, f.encoding)
				*into = append(*into, time.Since(start))
				return n
			}
			for b.Loop() {
				size = timed(cached, &tc)
				timed(previous, &tp)
				timed(floor, &tf)
			}
			b.ReportMetric(medianMs(tc), "cached-ms")
			b.ReportMetric(medianMs(tp), "previous-ms")
			b.ReportMetric(medianMs(tf), "floor-ms")
			b.ReportMetric(medianMs(tf)/medianMs(tc), "floor/cached")
			b.ReportMetric(float64(size)/1e6, "MB/scrape")
			b.ReportMetric(float64(series), "series")
		})
	}
}

// BenchmarkBuildUsage measures what each poll adds: building the const
// metrics of 10,000 hosts from a snapshot.
func BenchmarkBuildUsage(b *testing.B) {
	snap := bigSnapshot(b)
	for b.Loop() {
		BuildUsage("bench", snap, Options{PerHost: true})
	}
}

// rssBytes is the process's resident set size.
func rssBytes(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Skip("no /proc/self/statm:", err)
	}
	pages, _ := strconv.ParseFloat(strings.Fields(string(data))[1], 64)
	return pages * float64(os.Getpagesize())
}

// BenchmarkConcurrentScrapes serves /metrics at 10,000 hosts over HTTP on
// 127.0.0.1 to many clients at once (half asking for gzip, every answer
// read to the end) and reports how far the resident set rose above its
// idle level: cached with 200 clients at once, previous (see
// scrapeHandlers) with 10, more being out of reach of a small machine.
// The clients run in the same process; their buffers are counted too.
func BenchmarkConcurrentScrapes(b *testing.B) {
	cached, previous, _, _ := scrapeHandlers(b)
	for _, bc := range []struct {
		name    string
		h       http.Handler
		clients int
	}{{"cached/clients=200", cached, 200}, {"previous/clients=10", previous, 10}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(bc.h)
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: bc.clients, DisableCompression: true}}
			defer client.CloseIdleConnections()
			var growth float64
			for b.Loop() {
				b.StopTimer()
				debug.FreeOSMemory()
				idle := rssBytes(b)
				b.StartTimer()
				peak := idle
				stop := make(chan struct{})
				sampled := make(chan struct{})
				go func() {
					defer close(sampled)
					for {
						peak = max(peak, rssBytes(b))
						select {
						case <-stop:
							return
						case <-time.After(2 * time.Millisecond):
						}
					}
				}()
				var wg sync.WaitGroup
				errs := make(chan error, bc.clients)
				for i := range bc.clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
						if i%2 == 1 {
							req.Header.Set("Accept-Encoding", "gzip")
						}
						resp, err := client.Do(req)
						if err != nil {
							errs <- err
							return
						}
						defer resp.Body.Close()
						n, err := io.Copy(io.Discard, resp.Body)
						if err != nil || resp.StatusCode != http.StatusOK || n < 500_000 {
							errs <- fmt.Errorf("HTTP %d, %d bytes: %v", resp.StatusCode, n, err)
						}
					}()
				}
				wg.Wait()
				close(stop)
				<-sampled
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				growth = max(growth, peak-idle)
			}
			b.ReportMetric(growth/(1<<20), "rss-growth-MiB")
			b.ReportMetric(growth/(1<<20)/float64(bc.clients), "MiB/client")
		})
	}
}
