package history

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
)

// gatherer turns the collector's const metrics into metric families. Each
// metric's name, help and type come from a prometheus.Registry's Gather of
// the first metric of its Desc; later metrics of that Desc are written
// directly, without a registry's per-scrape checks and sorting: the
// collector builds every metric of a step from one snapshot.
type gatherer struct {
	descs map[*prometheus.Desc]*dto.MetricFamily // name, help and type of each Desc
}

func newGatherer() *gatherer { return &gatherer{descs: map[*prometheus.Desc]*dto.MetricFamily{}} }

// oneMetric is an unchecked collector of a single metric.
type oneMetric struct{ m prometheus.Metric }

func (oneMetric) Describe(chan<- *prometheus.Desc)      {}
func (o oneMetric) Collect(ch chan<- prometheus.Metric) { ch <- o.m }

// family returns the name, help and type of m's Desc.
func (g *gatherer) family(m prometheus.Metric) (*dto.MetricFamily, error) {
	if f, ok := g.descs[m.Desc()]; ok {
		return f, nil
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(oneMetric{m}); err != nil {
		return nil, fmt.Errorf("gathering %s: %w", m.Desc(), err)
	}
	fams, err := reg.Gather()
	if err != nil || len(fams) != 1 {
		return nil, fmt.Errorf("gathering %s: %w", m.Desc(), err)
	}
	f := &dto.MetricFamily{Name: fams[0].Name, Help: fams[0].Help, Type: fams[0].Type}
	g.descs[m.Desc()] = f
	return f, nil
}

// gather returns the history families of ms, sorted by name.
func (g *gatherer) gather(ms []prometheus.Metric) ([]*dto.MetricFamily, error) {
	byName := map[string]*dto.MetricFamily{}
	for _, m := range ms {
		f, err := g.family(m)
		if err != nil {
			return nil, err
		}
		if skipFamilies[f.GetName()] {
			continue
		}
		dm := &dto.Metric{}
		if err := m.Write(dm); err != nil {
			return nil, fmt.Errorf("%s: %w", f.GetName(), err)
		}
		mf := byName[f.GetName()]
		if mf == nil {
			mf = &dto.MetricFamily{Name: f.Name, Help: f.Help, Type: f.Type}
			byName[f.GetName()] = mf
		}
		mf.Metric = append(mf.Metric, dm)
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, byName[name])
	}
	return out, nil
}

func (g *gatherer) values(ms []prometheus.Metric) (map[string]float64, error) {
	fams, err := g.gather(ms)
	if err != nil {
		return nil, err
	}
	return familyValues(fams), nil
}

// seriesWriter turns metrics into the samples Prometheus stores when it
// scrapes them in OpenMetrics (the exporter's preferred format, negotiated
// by Prometheus 2 and 3): counters under their family name, histograms as
// _bucket (le formatted as OpenMetrics floats, +Inf always present), _sum
// and _count, and every series with the target labels.
type seriesWriter struct {
	w      *blockWriter
	target []labels.Label // sorted; empty values left out
	series map[string]*series
	key    []byte // the key of the series looked up
}

// point is a value of a series.
type point struct {
	s *series
	v float64
}

func newSeriesWriter(w *blockWriter, target map[string]string) *seriesWriter {
	s := &seriesWriter{w: w, series: map[string]*series{}}
	for _, name := range slices.Sorted(maps.Keys(target)) {
		if target[name] != "" { // an empty value is no label
			s.target = append(s.target, labels.Label{Name: name, Value: target[name]})
		}
	}
	return s
}

// points appends the samples of m, a metric of mf whose seriesKey is key,
// to dst.
func (s *seriesWriter) points(dst []point, mf *dto.MetricFamily, key string, m *dto.Metric) ([]point, error) {
	add := func(suffix, le string, v float64) {
		s.key = append(append(append(append(append(s.key[:0], key...), 0), suffix...), 0), le...)
		ser := s.series[string(s.key)]
		if ser == nil {
			ser = &series{lset: s.labels(mf.GetName()+suffix, m, le)}
			s.series[string(s.key)] = ser
		}
		dst = append(dst, point{ser, v})
	}
	switch mf.GetType() {
	case dto.MetricType_COUNTER:
		add("", "", m.GetCounter().GetValue())
	case dto.MetricType_GAUGE:
		add("", "", m.GetGauge().GetValue())
	case dto.MetricType_HISTOGRAM:
		h := m.GetHistogram()
		inf := false
		for _, b := range h.Bucket {
			inf = inf || math.IsInf(b.GetUpperBound(), +1)
			add("_bucket", omFloat(b.GetUpperBound()), float64(b.GetCumulativeCount()))
		}
		if !inf {
			add("_bucket", "+Inf", float64(h.GetSampleCount()))
		}
		add("_sum", "", h.GetSampleSum())
		add("_count", "", float64(h.GetSampleCount()))
	default:
		return dst, fmt.Errorf("%s: a metric type the history does not know", mf.GetName())
	}
	return dst, nil
}

// labels returns the labels of the series name{m's labels, le, target labels}.
func (s *seriesWriter) labels(name string, m *dto.Metric, le string) labels.Labels {
	b := labels.NewScratchBuilder(len(m.Label) + len(s.target) + 2)
	b.Add(labels.MetricName, name)
	for _, lp := range m.Label {
		b.Add(lp.GetName(), lp.GetValue())
	}
	if le != "" {
		b.Add("le", le)
	}
	for _, l := range s.target {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels()
}

// omFloat formats a bucket bound as the OpenMetrics encoder writes it.
func omFloat(f float64) string {
	if math.IsInf(f, +1) {
		return "+Inf"
	}
	if math.IsInf(f, -1) {
		return "-Inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, "e.") && s != "NaN" {
		s += ".0"
	}
	return s
}
