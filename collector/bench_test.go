package collector

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// scrape serves one /metrics request from reg, as Prometheus would ask.
func scrape(b *testing.B, h http.Handler) int {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("HTTP %d", rec.Code)
	}
	return rec.Body.Len()
}

type constCollector []prometheus.Metric

func (c constCollector) Describe(chan<- *prometheus.Desc) {}
func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}

// BenchmarkScrape compares a scrape of the exporter's collector holding an
// account with 10,000 hosts with a scrape of the same number of prebuilt
// const metrics with the same label sets, the least client_golang can do.
func BenchmarkScrape(b *testing.B) {
	snap := bigSnapshot(b)
	c := New()
	c.SetUsage("bench", snap, Options{PerHost: true})
	c.SetStatus("bench", Status{Up: true})
	n := 0
	ch := make(chan prometheus.Metric, 1<<20)
	c.Collect(ch)
	close(ch)
	baseline := constCollector{}
	desc := prometheus.NewDesc("umeeting_baseline_total", "Baseline.", []string{"account", "host", "email", "user_type", "feature"}, nil)
	for range ch {
		baseline = append(baseline, prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(n),
			"bench", fmt.Sprintf("Host %d", n%benchHosts), fmt.Sprintf("host%d@example.com", n%benchHosts), "Corp", umeeting.FeatureNames[n/benchHosts%6]+fmt.Sprint(n/benchHosts)))
		n++
	}
	for _, bc := range []struct {
		name string
		c    prometheus.Collector
	}{{"exporter", c}, {"const_baseline", baseline}} {
		b.Run(bc.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(bc.c)
			h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
			size := 0
			for b.Loop() {
				size = scrape(b, h)
			}
			b.ReportMetric(float64(n), "series")
			b.ReportMetric(float64(size)/1e6, "MB/scrape")
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
