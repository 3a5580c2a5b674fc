// Package exposition serves /metrics from bytes encoded once per change:
// the usage families of every account change only when a poll counts
// something, while Prometheus scrapes every 15–60 s, often from two
// servers. A Cache keeps those families encoded in every served format
// (and deflate-compressed), in parts (such as one account's usage) that
// are replaced independently; a Handler writes them out per scrape and
// adds the few families gathered live (Go runtime, process, poll health,
// instrumentation).
package exposition

import (
	"bytes"
	"cmp"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Formats are the exposition formats served, in order of preference, as
// promhttp offers them with OpenMetrics enabled, less protobuf.
var Formats = []expfmt.Format{expfmt.FmtOpenMetrics_1_0_0, expfmt.FmtOpenMetrics_0_0_1, expfmt.FmtText}

// encoding is one of the two text encodings a Format maps to.
type encoding int

const (
	encText encoding = iota
	encOpenMetrics
	numEncodings
)

// encodingOf maps a negotiated Format to its encoding; both OpenMetrics
// versions are written alike by expfmt.
func encodingOf(f expfmt.Format) encoding {
	if f.FormatType() == expfmt.TypeOpenMetrics {
		return encOpenMetrics
	}
	return encText
}

// formatOf is the Format the cache encodes an encoding with. Without
// escaping: names that need none come out the same under every escaping
// scheme, and checking each sample's labels for it doubled the cost of
// encoding. Metric names must therefore be legacy names (the exporter's
// all are); Update checks family names.
var formatOf = [numEncodings]expfmt.Format{
	encText:        expfmt.FmtText + "; escaping=" + model.AllowUTF8,
	encOpenMetrics: expfmt.FmtOpenMetrics_1_0_0 + "; escaping=" + model.AllowUTF8,
}

// chunk is a piece of exposition text and the same text as deflate blocks
// ending in a sync flush (byte-aligned, not final), so the compressed
// chunks of a view concatenate into one deflate stream.
type chunk struct {
	raw []byte
	z   []byte
}

// family is one part's share of a metric family: its HELP/TYPE lines (the
// same in every part) and its sample lines.
type family struct {
	head, samples [numEncodings]chunk
}

// stream is one encoding of a view: chunks in the order they are written.
type stream struct {
	chunks []*chunk
	size   int

	crcOnce sync.Once
	crc     uint32
}

// span is the chunks [from, to) of a stream.
type span struct{ from, to int }

// filter returns the part of s with the families in names, in order.
func (v *view) filter(s *stream, names map[string]bool) *stream {
	var spans []span
	for n := range names {
		if sp, ok := v.names[n]; ok {
			spans = append(spans, sp)
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.from, b.from) })
	out := &stream{}
	for _, sp := range spans {
		out.chunks = append(out.chunks, s.chunks[sp.from:sp.to]...)
	}
	out.sum()
	return out
}

// sum sets the size of the stream's chunks.
func (s *stream) sum() {
	for _, ch := range s.chunks {
		s.size += len(ch.raw)
	}
}

// checksum returns the CRC-32 of the stream's text, for the gzip trailer.
// The first gzip scrape of a view computes it (about 1 ms for 14 MB):
// publishing does not, as a view's encodings are not all asked for
// compressed, nor every view scraped.
func (s *stream) checksum() uint32 {
	s.crcOnce.Do(func() {
		for _, ch := range s.chunks {
			s.crc = crc32.Update(s.crc, crc32.IEEETable, ch.raw)
		}
	})
	return s.crc
}

// view is what scrapes read: immutable once published.
type view struct {
	streams [numEncodings]stream
	names   map[string]span // the chunks of each family, alike in every stream
	err     error           // families that cannot be served together
}

// Cache holds the encoded families of every part. Updates are serialised;
// scrapes read the latest view without locking, so a scrape sees all of an
// update or none of it.
type Cache struct {
	mu     sync.Mutex
	parts  map[string]map[string]*family // part → family name → encoded
	failed map[string]error              // parts whose last update failed
	zw     *flate.Writer

	cur       atomic.Pointer[view]
	publishes atomic.Uint64
}

// NewCache returns an empty Cache.
func NewCache() *Cache {
	// The default level: parts are compressed apart (a change recompresses
	// only its parts), and small parts compress a third worse at
	// BestSpeed; a poll compresses only the few parts it changed.
	zw, _ := flate.NewWriter(nil, flate.DefaultCompression) // the level is valid
	c := &Cache{parts: map[string]map[string]*family{}, failed: map[string]error{}, zw: zw}
	c.cur.Store(&view{names: map[string]span{}})
	return c
}

// Change replaces the families of one part with Families, or with Delete
// forgets the part. Families must be gathered (consistent, sorted); they
// are not retained. Err, when set, says the part's metrics could not be
// gathered: scrapes then fail with it (as promhttp's do on a gathering
// error) until the part's next successful change or its deletion.
//
// Parts are served in the order of their names, each family's samples
// part after part: a large family can be kept in several parts (blocks of
// its series) so that a change of a few series re-encodes one block.
type Change struct {
	Part     string
	Families []*dto.MetricFamily
	Delete   bool
	Err      error
}

// Apply makes the changes in one publication, so that a scrape sees all of
// them or none (an account's usage and directory metrics of one poll).
// Nothing is published when every part's encoded text stays the same. A
// part that cannot be encoded is failed, and its error returned.
func (c *Cache) Apply(changes ...Change) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	var errs []error
	for _, ch := range changes {
		_, had := c.parts[ch.Part]
		_, failed := c.failed[ch.Part]
		if ch.Delete {
			delete(c.parts, ch.Part)
			delete(c.failed, ch.Part)
			changed = changed || had || failed
			continue
		}
		encoded, err := c.encodeAll(ch)
		if err != nil {
			errs = append(errs, err)
			c.failed[ch.Part] = err
			changed = true
			continue
		}
		if !failed && had && sameText(c.parts[ch.Part], encoded) {
			continue
		}
		c.parts[ch.Part] = encoded
		delete(c.failed, ch.Part)
		changed = true
	}
	if changed {
		c.publish()
	}
	return errors.Join(errs...)
}

// encodeAll encodes the families of a change. Called with mu held.
func (c *Cache) encodeAll(ch Change) (map[string]*family, error) {
	if ch.Err != nil {
		return nil, fmt.Errorf("%s: %w", ch.Part, ch.Err)
	}
	encoded := make(map[string]*family, len(ch.Families))
	for _, mf := range ch.Families {
		if !model.LegacyValidation.IsValidMetricName(mf.GetName()) {
			return nil, fmt.Errorf("%s: metric name %q needs escaping, which the cache does not do", ch.Part, mf.GetName())
		}
		f, err := c.encode(mf)
		if err != nil {
			return nil, fmt.Errorf("%s: encoding %s: %w", ch.Part, mf.GetName(), err)
		}
		encoded[mf.GetName()] = f
	}
	return encoded, nil
}

// Update replaces the families of a part (see Change).
func (c *Cache) Update(part string, mfs []*dto.MetricFamily) error {
	return c.Apply(Change{Part: part, Families: mfs})
}

// sameText says whether two encodings of a part hold the same text.
func sameText(a, b map[string]*family) bool {
	return maps.EqualFunc(a, b, func(x, y *family) bool {
		return x == y || bytes.Equal(x.head[encOpenMetrics].raw, y.head[encOpenMetrics].raw) &&
			bytes.Equal(x.samples[encOpenMetrics].raw, y.samples[encOpenMetrics].raw) &&
			bytes.Equal(x.head[encText].raw, y.head[encText].raw) &&
			bytes.Equal(x.samples[encText].raw, y.samples[encText].raw)
	})
}

// Fail records that the metrics of a part could not be gathered (see
// Change.Err).
func (c *Cache) Fail(part string, err error) {
	c.Apply(Change{Part: part, Err: err})
}

// Delete forgets a part.
func (c *Cache) Delete(part string) {
	c.Apply(Change{Part: part, Delete: true})
}

// Publishes counts the views published: every Apply that changed
// something makes one, and nothing else re-encodes or reassembles.
func (c *Cache) Publishes() uint64 { return c.publishes.Load() }

// Names returns the names of the cached families.
func (c *Cache) Names() []string {
	return slices.Sorted(maps.Keys(c.cur.Load().names))
}

// encode writes one family in every encoding with expfmt's encoders and
// compresses the pieces. Encoders are not closed: the OpenMetrics `# EOF`
// is written once, after the live families. Called with mu held.
func (c *Cache) encode(mf *dto.MetricFamily) (*family, error) {
	f := &family{}
	for e := range numEncodings {
		var buf bytes.Buffer
		// OpenMetrics carries counters' created timestamps (_created): Prometheus 3
		// with created-timestamp-zero-ingestion starts a series it never saw at 0
		// from them; 2.x and 3.x without the feature store nothing for them.
		if err := expfmt.NewEncoder(&buf, formatOf[e], expfmt.WithCreatedLines()).Encode(mf); err != nil {
			return nil, err
		}
		head, samples := splitHead(buf.Bytes())
		f.head[e] = chunk{raw: head, z: c.deflate(head)}
		f.samples[e] = chunk{raw: samples, z: c.deflate(samples)}
	}
	return f, nil
}

// splitHead splits an encoded family into its comment lines (HELP, TYPE,
// UNIT) and its samples; a sample line never starts with '#'.
func splitHead(b []byte) (head, samples []byte) {
	i := 0
	for i < len(b) && b[i] == '#' {
		n := bytes.IndexByte(b[i:], '\n')
		if n < 0 {
			return b, nil
		}
		i += n + 1
	}
	return b[:i:i], b[i:]
}

// deflate compresses raw into deflate blocks ending in a sync flush.
// Called with mu held (zw is shared).
func (c *Cache) deflate(raw []byte) []byte {
	var out bytes.Buffer
	c.zw.Reset(&out)
	c.zw.Write(raw) // writes to a bytes.Buffer do not fail
	c.zw.Flush()
	return bytes.Clone(out.Bytes())
}

// publish assembles the parts' families into a new view: families by
// name, each with one HELP/TYPE head and then every part's samples in the
// order of the parts' names. Called with mu held.
func (c *Cache) publish() {
	v := &view{names: map[string]span{}}
	byName := map[string][]*family{}
	for _, part := range slices.Sorted(maps.Keys(c.parts)) {
		for name, f := range c.parts[part] {
			byName[name] = append(byName[name], f)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		fs := byName[name]
		v.names[name] = span{len(v.streams[0].chunks), len(v.streams[0].chunks) + 1 + len(fs)}
		for _, f := range fs[1:] {
			if v.err == nil && !bytes.Equal(f.head[encText].raw, fs[0].head[encText].raw) {
				v.err = fmt.Errorf("metric family %s has a different help or type in two parts", name)
			}
		}
		for e := range numEncodings {
			s := &v.streams[e]
			s.chunks = append(s.chunks, &fs[0].head[e])
			for _, f := range fs {
				s.chunks = append(s.chunks, &f.samples[e])
			}
		}
	}
	for e := range numEncodings {
		v.streams[e].sum()
	}
	for _, part := range slices.Sorted(maps.Keys(c.failed)) {
		v.err = cmp.Or(v.err, c.failed[part])
	}
	c.cur.Store(v)
	c.publishes.Add(1)
}
