// Package exposition serves /metrics from bodies encoded and compressed once per publication, followed by the few families gathered live per scrape.
package exposition

import (
	"bytes"
	"compress/flate"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/common/expfmt"
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

// body is one encoding of a view: the text of every cached family, the
// same text as deflate blocks ending in a sync flush (byte-aligned, not
// final: a scrape appends the live families and ends the stream), and the
// text's CRC-32 and family spans.
type body struct {
	raw   []byte
	z     []byte
	crc   uint32
	spans map[string][2]int // family name → [from, to) in raw
}

// view is what scrapes read: immutable once published.
type view struct {
	bodies [numEncodings]body
	err    error // families that cannot be served together
}

// Cache holds the encoded families of every part (such as one account's
// usage metrics) and the bodies assembled from them. Changes are
// serialised; scrapes read the latest view without locking, so a scrape
// sees all of a publication or none of it.
type Cache struct {
	mu    sync.Mutex
	parts map[string][]Family // by part name, each sorted by name
	zw    *flate.Writer
	cur   atomic.Pointer[view]
}

// NewCache returns an empty Cache.
func NewCache() *Cache {
	// The default level, as promhttp's gzip: the body is compressed once
	// per publication, and scraped many times.
	zw, _ := flate.NewWriter(nil, flate.DefaultCompression) // the level is valid
	c := &Cache{parts: map[string][]Family{}, zw: zw}
	c.cur.Store(&view{})
	return c
}

// Change replaces the families of one part with Families (from a
// Writer), or with Delete forgets the part. Parts are served in the order
// of their names, each family's samples part after part under one HELP
// and TYPE.
type Change struct {
	Part     string
	Families []Family
	Delete   bool
}

// Apply makes the changes and publishes them in one view, so that a scrape
// sees all of them or none (an account's usage and directory metrics of
// one poll).
func (c *Cache) Apply(changes ...Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range changes {
		if ch.Delete {
			delete(c.parts, ch.Part)
		} else {
			c.parts[ch.Part] = ch.Families
		}
	}
	c.publish()
}

// publish assembles the parts into a new view: families by name, each with
// one HELP/TYPE head and then every part's samples in the order of the
// parts' names, compressed once. Called with mu held.
func (c *Cache) publish() {
	v := &view{}
	byName := map[string][]*Family{}
	for _, name := range slices.Sorted(maps.Keys(c.parts)) {
		fs := c.parts[name]
		for i := range fs {
			f := &fs[i]
			byName[f.name] = append(byName[f.name], f)
		}
	}
	names := slices.Sorted(maps.Keys(byName))
	for e := range numEncodings {
		size := 0
		for _, fs := range byName {
			size += len(fs[0].head[e])
			for _, f := range fs {
				for _, p := range f.samples[e] {
					size += len(p)
				}
			}
		}
		b := &v.bodies[e]
		b.raw, b.spans = make([]byte, 0, size), make(map[string][2]int, len(names))
		for _, name := range names {
			fs := byName[name]
			from := len(b.raw)
			b.raw = append(b.raw, fs[0].head[e]...)
			for _, f := range fs {
				if !bytes.Equal(f.head[e], fs[0].head[e]) && v.err == nil {
					v.err = fmt.Errorf("metric family %s has a different help or type in two parts", name)
				}
				start := len(b.raw)
				for _, p := range f.samples[e] {
					b.raw = append(b.raw, p...)
				}
				// The part keeps its samples in the body, immutable,
				// rather than a copy of them: one copy stays resident.
				f.samples[e] = [][]byte{b.raw[start:len(b.raw):len(b.raw)]}
			}
			b.spans[name] = [2]int{from, len(b.raw)}
		}
		b.z, b.crc = c.deflate(b.raw), crc32.ChecksumIEEE(b.raw)
	}
	c.cur.Store(v)
}

// deflate compresses raw into deflate blocks ending in a sync flush.
// Called with mu held (zw is shared).
func (c *Cache) deflate(raw []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(raw)/8 + 64)
	c.zw.Reset(&out)
	c.zw.Write(raw) // writes to a bytes.Buffer do not fail
	c.zw.Flush()
	return out.Bytes()
}
