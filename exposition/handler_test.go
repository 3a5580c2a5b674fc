package exposition

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/umeeting/umeeting_exporter/exposition/expositiontest"
)

// constMetrics is a collector of prebuilt metrics.
type constMetrics []prometheus.Metric

func (c constMetrics) Describe(chan<- *prometheus.Desc) {}
func (c constMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}

var (
	meetingsHelp = "Finished meetings \\ with \"quotes\"\nand a newline."
	meetingsDesc = prometheus.NewDesc("umeeting_meetings_total", meetingsHelp, []string{"account", "host"}, nil)
	durationDesc = prometheus.NewDesc("umeeting_meeting_duration_seconds", "Lengths.", []string{"account"}, nil)
	peakDesc     = prometheus.NewDesc("umeeting_concurrent_meetings_peak", "Peak.", []string{"account"}, nil)
)

// usage returns the usage metrics of an account, scaled by n.
func usage(account string, n float64) []prometheus.Metric {
	return []prometheus.Metric{
		prometheus.MustNewConstMetric(meetingsDesc, prometheus.CounterValue, 3*n, account, "Ann \"A\" \\ N"),
		prometheus.MustNewConstMetric(meetingsDesc, prometheus.CounterValue, n, account, "Bob"),
		prometheus.MustNewConstHistogram(durationDesc, uint64(4*n), 1234.5*n, map[float64]uint64{60: 1, 3600: uint64(3 * n)}, account),
		prometheus.MustNewConstMetric(peakDesc, prometheus.GaugeValue, 0.5*n, account),
	}
}

// written is usage(account, n) written with a Writer.
func written(account string, n float64) []Family {
	w := NewWriter()
	meetings := w.Family("umeeting_meetings_total", meetingsHelp, dto.MetricType_COUNTER, "host", "account")
	meetings.Sample(3*n, time.Time{}, "Ann \"A\" \\ N", account)
	meetings.Sample(n, time.Time{}, "Bob", account)
	w.Family("umeeting_meeting_duration_seconds", "Lengths.", dto.MetricType_HISTOGRAM, "account").
		Histogram([]float64{60, 3600}, []uint64{1, uint64(3 * n)}, uint64(4*n), 1234.5*n, account)
	w.Family("umeeting_concurrent_meetings_peak", "Peak.", dto.MetricType_GAUGE, "account").Sample(0.5*n, time.Time{}, account)
	return w.Families()
}

// gatherOf gathers ms and writes them as they are with a Writer.
func gatherOf(t *testing.T, ms []prometheus.Metric) []Family {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(constMetrics(ms))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var names, values []string
			for _, l := range m.GetLabel() {
				names, values = append(names, l.GetName()), append(values, l.GetValue())
			}
			fw := w.Family(mf.GetName(), mf.GetHelp(), mf.GetType(), names...)
			switch h, c := m.GetHistogram(), m.GetCounter(); {
			case h != nil:
				var bounds []float64
				var cum []uint64
				for _, b := range h.GetBucket() {
					bounds, cum = append(bounds, b.GetUpperBound()), append(cum, b.GetCumulativeCount())
				}
				fw.Histogram(bounds, cum, h.GetSampleCount(), h.GetSampleSum(), values...)
			case c != nil:
				var created time.Time
				if ts := c.GetCreatedTimestamp(); ts != nil {
					created = ts.AsTime()
				}
				fw.Sample(c.GetValue(), created, values...)
			default:
				fw.Sample(m.GetGauge().GetValue(), time.Time{}, values...)
			}
		}
	}
	return w.Families()
}

// fixture is a cache of two accounts, a live registry, and the registry a
// promhttp handler would serve the same metrics from.
type fixture struct {
	cache      *Cache
	live, full *prometheus.Registry
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{cache: NewCache(), live: prometheus.NewRegistry(), full: prometheus.NewRegistry()}
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "umeeting_up", Help: "Up."}, []string{"account"})
	up.WithLabelValues("acme").Set(1)
	up.WithLabelValues("beta").Set(0)
	f.live.MustRegister(up, collectors.NewBuildInfoCollector())
	f.full.MustRegister(up, collectors.NewBuildInfoCollector(), constMetrics(append(usage("acme", 1), usage("beta", 2)...)))
	// One part written from gathered metrics, one written directly.
	f.cache.Apply(Change{Part: "acme", Families: gatherOf(t, usage("acme", 1))}, Change{Part: "beta", Families: written("beta", 2)})
	return f
}

// scrape serves one request and decodes its answer.
func scrape(t *testing.T, h http.Handler, accept, acceptEncoding string) (expositiontest.Answer, map[string]*dto.MetricFamily) {
	t.Helper()
	a, err := expositiontest.Scrape(h, accept, acceptEncoding)
	if err != nil {
		t.Fatal(err)
	}
	if a.Code != http.StatusOK {
		return a, nil
	}
	mfs, err := a.Families()
	if err != nil {
		t.Fatal(err)
	}
	return a, mfs
}

// served is what promhttp serves from gs, decoded.
func served(t *testing.T, gs ...prometheus.Gatherer) map[string]*dto.MetricFamily {
	_, mfs := scrape(t, promhttp.HandlerFor(prometheus.Gatherers(gs), promhttp.HandlerOpts{}), "", "")
	return mfs
}

func sameFamilies(t *testing.T, what string, got, want map[string]*dto.MetricFamily) {
	t.Helper()
	for _, d := range expositiontest.Diff(got, want, nil) {
		t.Errorf("%s: %s", what, d)
	}
}

// TestServesWhatPromhttpServes compares every negotiated format and
// encoding with promhttp serving the same metrics from one registry.
func TestServesWhatPromhttpServes(t *testing.T) {
	f := newFixture(t)
	h := NewHandler(f.cache, f.live, HandlerOpts{})
	ref := promhttp.HandlerFor(f.full, promhttp.HandlerOpts{EnableOpenMetrics: true})
	for _, accept := range []string{
		"",
		"text/plain;version=0.0.4;q=1,*/*;q=0.1",
		"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
		"application/openmetrics-text;version=0.0.1",
		"application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
	} {
		for _, enc := range []string{"", "gzip", "gzip, deflate, br", "identity", "gzip;q=0", "*", "gzip;q=0.5, identity;q=0.2", "*;q=0.3, identity;q=0.1"} {
			got, gotMfs := scrape(t, h, accept, enc)
			want, wantMfs := scrape(t, ref, accept, enc)
			what := "Accept " + accept + ", Accept-Encoding " + enc
			if got.Code != 200 || got.ContentType != want.ContentType || got.Encoding != want.Encoding {
				t.Errorf("%s: HTTP %d %q %q, promhttp %d %q %q", what, got.Code, got.ContentType, got.Encoding, want.Code, want.ContentType, want.Encoding)
			}
			sameFamilies(t, what, gotMfs, wantMfs)
		}
	}
}

// TestUpdatesAndDeletes checks replacement, a family kept in several
// parts (one HELP and TYPE, the samples of every part), changes of several
// parts at once, and deletion.
func TestUpdatesAndDeletes(t *testing.T) {
	f := newFixture(t)
	h := NewHandler(f.cache, f.live, HandlerOpts{})
	formats := [][2]string{{"", ""}, {"", "gzip"}, {"application/openmetrics-text;version=1.0.0", ""}, {"application/openmetrics-text;version=1.0.0", "gzip"}}
	check := func(what string, want ...prometheus.Gatherer) {
		t.Helper()
		for _, req := range formats {
			_, got := scrape(t, h, req[0], req[1])
			sameFamilies(t, what+", Accept "+req[0]+", Accept-Encoding "+req[1], got, served(t, want...))
		}
	}
	// acme's usage in two parts, its meetings family in both.
	acme := usage("acme", 1)
	peak := prometheus.MustNewConstMetric(peakDesc, prometheus.GaugeValue, 7, "acme")
	f.cache.Apply(
		Change{Part: "acme", Families: gatherOf(t, acme[:1])},
		Change{Part: "acme 2", Families: gatherOf(t, []prometheus.Metric{acme[1], acme[2], peak})},
	)
	want := prometheus.NewRegistry()
	want.MustRegister(constMetrics(append([]prometheus.Metric{acme[0], acme[1], acme[2], peak}, usage("beta", 2)...)))
	check("a family in two parts", want, f.live)

	// A replacement with fewer families drops the others.
	f.cache.Apply(Change{Part: "acme", Families: gatherOf(t, []prometheus.Metric{peak})}, Change{Part: "acme 2", Delete: true})
	want = prometheus.NewRegistry()
	want.MustRegister(constMetrics(append([]prometheus.Metric{peak}, usage("beta", 2)...)))
	check("replaced", want, f.live)

	f.cache.Apply(Change{Part: "beta", Delete: true}, Change{Part: "acme", Delete: true}, Change{Part: "never there", Delete: true})
	check("deleted", f.live)
}

// TestErrorsAnswer500 checks that a family both cached and live and
// inconsistent help fail the scrape, as promhttp fails on inconsistent
// gathers.
func TestErrorsAnswer500(t *testing.T) {
	f := newFixture(t)
	live := prometheus.NewRegistry()
	live.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "umeeting_concurrent_meetings_peak", Help: "Peak."}))
	if a, _ := scrape(t, NewHandler(f.cache, live, HandlerOpts{}), "", ""); a.Code != 500 || !strings.Contains(string(a.Body), "both cached and gathered live") {
		t.Errorf("duplicate family: HTTP %d %s", a.Code, a.Body)
	}
	h := NewHandler(f.cache, f.live, HandlerOpts{})
	other := prometheus.NewDesc("umeeting_concurrent_meetings_peak", "Another help.", []string{"account"}, nil)
	f.cache.Apply(Change{Part: "beta", Families: gatherOf(t, []prometheus.Metric{prometheus.MustNewConstMetric(other, prometheus.GaugeValue, 1, "beta")})})
	if a, _ := scrape(t, h, "", ""); a.Code != 500 || !strings.Contains(string(a.Body), "different help or type") {
		t.Errorf("inconsistent help: HTTP %d %s", a.Code, a.Body)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                         false,
		"gzip":                     true,
		"gzip, deflate":            true,
		"deflate, br":              false,
		"*":                        false,
		"gzip;q=0":                 false,
		"gzip;q=0.5, identity":     false,
		"gzip, identity":           false,
		"gzip;q=0.5, identity;q=0": true,
		"*;q=0.2, identity;q=0.1":  false,
		"identity":                 false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

// blockedWriter is a client that does not read: its first Write blocks
// until release is closed.
type blockedWriter struct {
	*httptest.ResponseRecorder
	once             sync.Once
	started, release chan struct{}
}

func (w *blockedWriter) Write(b []byte) (int, error) {
	w.once.Do(func() { close(w.started); <-w.release })
	return w.ResponseRecorder.Write(b)
}

func TestMaxRequestsInFlight(t *testing.T) {
	f := newFixture(t)
	h := NewHandler(f.cache, f.live, HandlerOpts{MaxRequestsInFlight: 1})
	w := &blockedWriter{ResponseRecorder: httptest.NewRecorder(), started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		close(done)
	}()
	<-w.started
	if a, _ := scrape(t, h, "", ""); a.Code != http.StatusServiceUnavailable {
		t.Errorf("second scrape while one is in flight: HTTP %d, want 503", a.Code)
	}
	close(w.release)
	<-done
	if a, _ := scrape(t, h, "", ""); a.Code != http.StatusOK {
		t.Errorf("scrape after the first ended: HTTP %d", a.Code)
	}
}

// TestOpenMetricsCreatedLines: a counter's created timestamp is served as
// OpenMetrics _created, from the cache and live alike, so that Prometheus 3
// with created-timestamp-zero-ingestion can start a series at 0 it never
// scraped (e2e TestCreatedTimestampZeroIngestion); the text format has no
// such line.
func TestOpenMetricsCreatedLines(t *testing.T) {
	created := time.Unix(1700000000, 0)
	c := NewCache()
	cached := prometheus.MustNewConstMetricWithCreatedTimestamp(meetingsDesc, prometheus.CounterValue, 2, created, "acme", "Ann")
	w := NewWriter()
	w.Family("umeeting_meetings_total", meetingsHelp, dto.MetricType_COUNTER, "account", "host").Sample(2, created, "beta", "Ann")
	c.Apply(Change{Part: "acme", Families: gatherOf(t, []prometheus.Metric{cached})}, Change{Part: "beta", Families: w.Families()})
	live := prometheus.NewRegistry()
	polls := prometheus.NewCounter(prometheus.CounterOpts{Name: "umeeting_polls_total", Help: "Polls."})
	live.MustRegister(polls)
	h := NewHandler(c, live, HandlerOpts{})

	om, _ := scrape(t, h, "application/openmetrics-text;version=1.0.0", "")
	for _, want := range []string{`umeeting_meetings_created{account="acme",host="Ann"} 1.7e+09`, `umeeting_meetings_created{account="beta",host="Ann"} 1.7e+09`, "umeeting_polls_created "} {
		if !strings.Contains(string(om.Body), want) {
			t.Errorf("OpenMetrics answer lacks %q:\n%s", want, om.Body)
		}
	}
	text, _ := scrape(t, h, "text/plain;version=0.0.4", "")
	if strings.Contains(string(text.Body), "_created") {
		t.Errorf("text answer has _created lines:\n%s", text.Body)
	}
}

// TestNameFilter: name[] selects cached and live families, as promhttp's.
func TestNameFilter(t *testing.T) {
	f := newFixture(t)
	h := NewHandler(f.cache, f.live, HandlerOpts{})
	ref := promhttp.HandlerFor(f.full, promhttp.HandlerOpts{EnableOpenMetrics: true})
	target := "/metrics?name[]=umeeting_up&name[]=umeeting_meetings_total&name[]=umeeting_meeting_duration_seconds&name[]=nothing"
	for _, enc := range []string{"", "gzip"} {
		got, err := expositiontest.ScrapeURL(h, target, "", enc)
		if err != nil {
			t.Fatal(err)
		}
		want, err := expositiontest.ScrapeURL(ref, target, "", enc)
		if err != nil {
			t.Fatal(err)
		}
		gotMfs, err := got.Families()
		if err != nil {
			t.Fatal(err)
		}
		wantMfs, err := want.Families()
		if err != nil {
			t.Fatal(err)
		}
		if len(wantMfs) != 3 {
			t.Fatalf("promhttp served %d families, want 3", len(wantMfs))
		}
		sameFamilies(t, "name[] with Accept-Encoding "+enc, gotMfs, wantMfs)
	}
}
