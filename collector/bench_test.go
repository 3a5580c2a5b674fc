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

// exporterHandler is /metrics at 10,000 hosts as main serves it: the
// usage families encoded once per publication, and the live families (Go
// runtime, process, poll health and gauges) gathered per scrape.
func exporterHandler(b *testing.B) http.Handler {
	snap := bigSnapshot(b)
	c := New()
	c.SetUsage("bench", snap, Options{PerHost: true})
	c.SetStatus("bench", Status{Up: true})
	live := prometheus.NewRegistry()
	live.MustRegister(collectors.NewGoCollector(), NewProcessCollector(), c.Status())
	return exposition.NewHandler(c.Cache(), live, exposition.HandlerOpts{})
}

// floorHandler is the physical limit of a scrape: a plain net/http
// handler writing bytes encoded beforehand, the answer of h to the same
// request, in one Write.
func floorHandler(b *testing.B, h http.Handler, accept, acceptEncoding string) http.Handler {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", accept)
	req.Header.Set("Accept-Encoding", acceptEncoding)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("HTTP %d", rec.Code)
	}
	body, header := rec.Body.Bytes(), rec.Header().Clone()
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Write(body)
	})
}

// get scrapes url over HTTP with the given headers, reads the answer to
// its end without decompressing it, and returns its size.
func get(b *testing.B, client *http.Client, url, accept, acceptEncoding string) int {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", accept)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("HTTP %d: %v", resp.StatusCode, err)
	}
	return int(n)
}

func medianMs(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2]) / 1e6
}

// BenchmarkScrape times scrapes of an account with 10,000 hosts (110,000
// usage series) over HTTP on 127.0.0.1, in each format and encoding, next
// to the physical limit (floorHandler) in the same run: each iteration
// scrapes each once, in turn, so that noise on the shared machine hits
// both alike. It reports both medians and their ratio.
func BenchmarkScrape(b *testing.B) {
	exporter := exporterHandler(b)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	for _, f := range []struct{ name, accept, encoding string }{
		{"text", "text/plain;version=0.0.4", ""},
		{"text+gzip", "text/plain;version=0.0.4", "gzip"},
		{"openmetrics", "application/openmetrics-text;version=1.0.0", ""},
		{"openmetrics+gzip", "application/openmetrics-text;version=1.0.0", "gzip"},
	} {
		b.Run(f.name, func(b *testing.B) {
			srv := httptest.NewServer(exporter)
			defer srv.Close()
			floor := httptest.NewServer(floorHandler(b, exporter, f.accept, f.encoding))
			defer floor.Close()
			var te, tf []time.Duration
			size := 0
			timed := func(url string, into *[]time.Duration) int {
				start := time.Now()
				n := get(b, client, url, f.accept, f.encoding)
				*into = append(*into, time.Since(start))
				return n
			}
			for b.Loop() {
				size = timed(srv.URL, &te)
				timed(floor.URL, &tf)
			}
			b.ReportMetric(medianMs(te), "exporter-ms")
			b.ReportMetric(medianMs(tf), "floor-ms")
			b.ReportMetric(medianMs(te)/medianMs(tf), "exporter/floor")
			b.ReportMetric(float64(size)/1e6, "MB/scrape")
		})
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
// 127.0.0.1 to 200 clients at once (half asking for gzip, every answer
// read to the end) and reports how far the resident set rose above its
// idle level. The clients run in the same process; their buffers are
// counted too.
func BenchmarkConcurrentScrapes(b *testing.B) {
	for _, bc := range []struct {
		name    string
		h       http.Handler
		clients int
	}{{"clients=200", exporterHandler(b), 200}} {
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
