package exposition

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Family is one part's share of a metric family, encoded in every
// encoding: its HELP/TYPE lines (the same in every part) and its samples,
// in pieces.
type Family struct {
	name    string
	head    [numEncodings][]byte
	samples [numEncodings][][]byte
}

// Writer writes the families of a part sample by sample in both
// encodings, as expfmt writes them. What it buys: an account's usage
// metrics (120,000 series at 10,000 hosts) are published without a
// prometheus.Metric and a dto.Metric per series, garbage that let the
// resident set grow to 1.7× its first size over 50 counting polls.
type Writer struct {
	families map[string]*Family
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{families: map[string]*Family{}}
}

// Families returns the families written, sorted by name.
func (w *Writer) Families() []Family {
	fs := make([]Family, 0, len(w.families))
	for _, name := range slices.Sorted(maps.Keys(w.families)) {
		fs = append(fs, *w.families[name])
	}
	return fs
}

// FamilyWriter writes the samples of one family with one set of label
// names (a family may have several, such as with and without email).
type FamilyWriter struct {
	f     *Family
	typ   dto.MetricType
	names []string // label names, sorted, as a registry sorts them
	order []int    // order[i]: the index of names[i] in the caller's order
}

// Family returns the writer of the family name (a legacy metric name) with
// labels in the order the caller passes their values. Counters' names end
// in _total.
func (w *Writer) Family(name, help string, typ dto.MetricType, labels ...string) FamilyWriter {
	f := w.families[name]
	if f == nil {
		f = &Family{name: name}
		om, kind := name, strings.ToLower(typ.String())
		if typ == dto.MetricType_COUNTER {
			om = strings.TrimSuffix(name, "_total")
		}
		f.head[encText] = fmt.Appendf(nil, "# HELP %s %s\n# TYPE %s %s\n", name, helpEscaper.Replace(help), name, kind)
		f.head[encOpenMetrics] = fmt.Appendf(nil, "# HELP %s %s\n# TYPE %s %s\n", om, valueEscaper.Replace(help), om, kind)
		w.families[name] = f
	}
	fw := FamilyWriter{f: f, typ: typ, names: slices.Sorted(slices.Values(labels))}
	for _, n := range fw.names {
		fw.order = append(fw.order, slices.Index(labels, n))
	}
	return fw
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// Sample writes a counter's or gauge's sample; created, when not zero, is
// a counter's created timestamp (OpenMetrics' _created line).
func (fw FamilyWriter) Sample(v float64, created time.Time, values ...string) {
	fw.line("", "", 0, v, values)
	if !created.IsZero() {
		b := fw.f.room(encOpenMetrics)
		*b = append(append(*b, strings.TrimSuffix(fw.f.name, "_total")...), "_created"...)
		*b = fw.labels(*b, encOpenMetrics, "", 0, values)
		*b = appendFloat(append(*b, ' '), encOpenMetrics, float64(created.UnixNano())/1e9)
		*b = append(*b, '\n')
	}
}

// Histogram writes a histogram's samples: cumulative[i] is the count of
// bucket bounds[i]; the +Inf bucket is count.
func (fw FamilyWriter) Histogram(bounds []float64, cumulative []uint64, count uint64, sum float64, values ...string) {
	for i, b := range bounds {
		fw.line("_bucket", "le", b, float64(cumulative[i]), values)
	}
	fw.line("_bucket", "le", math.Inf(1), float64(count), values)
	fw.line("_sum", "", 0, sum, values)
	fw.line("_count", "", 0, float64(count), values)
}

// line writes one sample line in each encoding, with an extra label (le)
// when extra is set. OpenMetrics writes bucket and count values as
// integers.
func (fw FamilyWriter) line(suffix, extra string, extraValue, v float64, values []string) {
	for e := range numEncodings {
		b := fw.f.room(e)
		*b = fw.labels(append(append(*b, fw.f.name...), suffix...), e, extra, extraValue, values)
		*b = append(*b, ' ')
		if e == encOpenMetrics && (suffix == "_bucket" || suffix == "_count") {
			*b = strconv.AppendUint(*b, uint64(v), 10)
		} else {
			*b = appendFloat(*b, e, v)
		}
		*b = append(*b, '\n')
	}
}

// room returns the last piece of the samples of e, with room for a line
// at least: pieces of a fixed size are allocated once, where one growing
// buffer would be copied at every growth (five times the size in all).
func (f *Family) room(e encoding) *[]byte {
	const piece, line = 64 << 10, 1 << 10
	s := &f.samples[e]
	if n := len(*s); n == 0 || cap((*s)[n-1])-len((*s)[n-1]) < line {
		*s = append(*s, make([]byte, 0, piece))
	}
	return &(*s)[len(*s)-1]
}

// labels appends the label pairs of values, and extra, to b.
func (fw FamilyWriter) labels(b []byte, e encoding, extra string, extraValue float64, values []string) []byte {
	sep := byte('{')
	for i, n := range fw.names {
		b = append(append(append(b, sep), n...), `="`...)
		b = appendEscaped(b, values[fw.order[i]])
		b, sep = append(b, '"'), ','
	}
	if extra != "" {
		b = append(append(append(b, sep), extra...), `="`...)
		b, sep = append(appendFloat(b, e, extraValue), '"'), ','
	}
	if sep == ',' {
		b = append(b, '}')
	}
	return b
}

// appendEscaped appends a label value, escaped as expfmt escapes it.
func appendEscaped(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "\\\n\"") {
		return append(b, s...)
	}
	return append(b, valueEscaper.Replace(s)...)
}

// appendFloat appends f as expfmt writes it: OpenMetrics writes whole
// numbers with ".0".
func appendFloat(b []byte, e encoding, f float64) []byte {
	from := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if e == encOpenMetrics && !math.IsInf(f, 0) && !math.IsNaN(f) && !bytes.ContainsAny(b[from:], "e.") {
		b = append(b, ".0"...)
	}
	return b
}
