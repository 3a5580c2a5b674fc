package history

// The replayed counters are made to end at the live starting values: the
// series' keys and values, and the adjuster.

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// familyValues maps every counter-like sample (counter values, histogram
// buckets, sums and counts) to its value.
func familyValues(fams []*dto.MetricFamily) map[string]float64 {
	vals := map[string]float64{}
	for _, mf := range fams {
		for _, m := range mf.Metric {
			key := seriesKey(mf.GetName(), m)
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				vals[key] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.Bucket {
					vals[bucketKey(key, b.GetUpperBound())] = float64(b.GetCumulativeCount())
				}
				vals[key+"/sum"] = h.GetSampleSum()
				vals[key+"/count"] = float64(h.GetSampleCount())
			}
		}
	}
	return vals
}

// seriesKey identifies a series: family name and label pairs (sorted by
// the registry).
func seriesKey(name string, m *dto.Metric) string {
	var b strings.Builder
	b.WriteString(name)
	for _, lp := range m.Label {
		b.WriteByte(0)
		b.WriteString(lp.GetName())
		b.WriteByte(1)
		b.WriteString(lp.GetValue())
	}
	return b.String()
}

func bucketKey(key string, le float64) string { return fmt.Sprintf("%s/le=%g", key, le) }

func zeroValues(m *dto.Metric) {
	if c := m.GetCounter(); c != nil {
		c.Value = proto.Float64(0)
		c.CreatedTimestamp = nil
	}
	if h := m.GetHistogram(); h != nil {
		h.SampleCount, h.SampleSum = proto.Uint64(0), proto.Float64(0)
		for _, b := range h.Bucket {
			b.CumulativeCount = proto.Uint64(0)
		}
		h.CreatedTimestamp = nil
	}
}

// adjuster makes the replayed counters end at the live starting values.
//
// For a series s of the history, target[s] is what the live starting values
// say its total is, and live[s] the starting value of the live series with
// the same labels (0 when the live exporter has no such series: a new
// series starts at 0). A replayed value v is written as
//
//	min(v, target[s]) + live[s] - target[s]
//
// With per-host series the history's series are the live ones, so this is
// min(v, live[s]): meetings the API lists now that the first start had not
// seen yet (listed late, hence counted live after the seam) are not counted
// twice. With per-account series, a host's counts move from the account's
// series (which then ends at the live level of that label set) to its own
// live series, which begins at its starting value: no meeting is counted
// twice and no counter goes down.
type adjuster struct {
	live, target map[string]float64
	// off is each series' count before backfill's start (--since): the
	// replayed value v counts from further back, and v-off is what the
	// formula above reads as v.
	off map[string]float64
}

func (a adjuster) value(key string, v float64) float64 {
	t := a.target[key]
	return min(v-a.off[key], t) + a.live[key] - t
}

func (a adjuster) apply(key string, m *dto.Metric) {
	if c := m.GetCounter(); c != nil {
		c.Value = proto.Float64(a.value(key, c.GetValue()))
		c.CreatedTimestamp = nil
	}
	if h := m.GetHistogram(); h != nil {
		// Histograms have no host labels: their history series are the live
		// ones, and the adjustment only caps them. They begin at backfill's
		// start (replayer.histFrom), where what --since adds before it is
		// taken off: their first point, a step before, is 0, not below it
		// (a negative sum is no histogram, and increase() would read the
		// rise from it as meetings).
		for _, b := range h.Bucket {
			b.CumulativeCount = proto.Uint64(uint64(max(0, a.value(bucketKey(key, b.GetUpperBound()), float64(b.GetCumulativeCount())))))
		}
		h.SampleSum = proto.Float64(max(0, a.value(key+"/sum", h.GetSampleSum())))
		h.SampleCount = proto.Uint64(uint64(max(0, a.value(key+"/count", float64(h.GetSampleCount())))))
		h.CreatedTimestamp = nil
	}
}

// compare reports how the replayed meetings at the seam differ from the
// live starting values: more (listed late) and fewer (no longer served).
func (a adjuster) compare(fams []*dto.MetricFamily) (late, missing float64) {
	const meetings = "umeeting_meetings_total"
	got := map[string]float64{}
	for _, mf := range fams {
		if mf.GetName() != meetings {
			continue
		}
		for _, m := range mf.Metric {
			key := seriesKey(meetings, m)
			got[key] = m.GetCounter().GetValue() - a.off[key]
		}
	}
	for key, v := range got {
		if t := a.target[key]; v > t {
			late += v - t
		}
	}
	for key, t := range a.target {
		if strings.HasPrefix(key, meetings+"\x00") {
			if v := got[key]; v < t {
				missing += t - v
			}
		}
	}
	return late, missing
}

// addMissing adds to fams, at zero, the counter-like series of target
// that fams lacks and want accepts.
func addMissing(fams, target []*dto.MetricFamily, want func(key string) bool) []*dto.MetricFamily {
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range fams {
		byName[mf.GetName()] = mf
	}
	for _, tf := range target {
		if tf.GetType() != dto.MetricType_COUNTER && tf.GetType() != dto.MetricType_HISTOGRAM {
			continue
		}
		rf := byName[tf.GetName()]
		if rf == nil {
			rf = &dto.MetricFamily{Name: tf.Name, Help: tf.Help, Type: tf.Type, Unit: tf.Unit}
			fams = append(fams, rf)
			byName[tf.GetName()] = rf
		}
		have := map[string]bool{}
		for _, m := range rf.Metric {
			have[seriesKey(rf.GetName(), m)] = true
		}
		for _, m := range tf.Metric {
			if key := seriesKey(tf.GetName(), m); !have[key] && want(key) {
				z := proto.Clone(m).(*dto.Metric)
				zeroValues(z)
				rf.Metric = append(rf.Metric, z)
			}
		}
	}
	slices.SortFunc(fams, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return fams
}

// reachTargets raises every counter-like value of the last step to at
// least its target, so that apply writes exactly the live starting level,
// also for series the API no longer serves (their counts then show as an
// increase in the last step).
func (a adjuster) reachTargets(fams []*dto.MetricFamily) {
	for _, rf := range fams {
		for _, m := range rf.Metric {
			key := seriesKey(rf.GetName(), m)
			reach := func(k string) float64 { return a.target[k] + a.off[k] }
			if c := m.GetCounter(); c != nil {
				c.Value = proto.Float64(max(c.GetValue(), reach(key)))
			}
			if h := m.GetHistogram(); h != nil {
				for _, b := range h.Bucket {
					b.CumulativeCount = proto.Uint64(max(b.GetCumulativeCount(), uint64(reach(bucketKey(key, b.GetUpperBound())))))
				}
				h.SampleSum = proto.Float64(max(h.GetSampleSum(), reach(key+"/sum")))
				h.SampleCount = proto.Uint64(max(h.GetSampleCount(), uint64(reach(key+"/count"))))
			}
		}
	}
}
