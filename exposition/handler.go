package exposition

import (
	"bytes"
	"cmp"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// HandlerOpts configure a Handler, like their promhttp namesakes.
type HandlerOpts struct {
	// ErrorLog receives errors of gathering, encoding or writing the
	// answer, the error as an argument of its own; nil logs nothing.
	ErrorLog promhttp.Logger
	// MaxRequestsInFlight bounds the scrapes served at once; more are
	// answered 503 at once. 0: no limit.
	MaxRequestsInFlight int
}

// Handler serves the cached families and, after them, the families that
// live gathers per scrape, in the format and compression the request
// negotiates as promhttp does (expfmt.NegotiateAccept over Formats; gzip or
// identity), all of them or those named by name[] parameters. The
// families of live must not be cached ones.
type Handler struct {
	cache    *Cache
	live     prometheus.Gatherer
	opts     HandlerOpts
	inFlight chan struct{} // nil: no limit
}

// NewHandler returns a Handler serving cache and live.
func NewHandler(cache *Cache, live prometheus.Gatherer, opts HandlerOpts) *Handler {
	h := &Handler{cache: cache, live: live, opts: opts}
	if opts.MaxRequestsInFlight > 0 {
		h.inFlight = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	return h
}

// bufPool holds the buffers the live families are encoded into.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// zwPool holds the writers of the live part of gzip answers. The live
// part (about 10 KB) is stored, not compressed: compressing it cost a gzip
// scrape at 10,000 hosts a quarter of its time, for 2% of its size.
var zwPool = sync.Pool{New: func() any {
	zw, _ := flate.NewWriter(nil, flate.NoCompression) // the level is valid
	return zw
}}

// gzipHeader is a gzip member header without name, time or extra fields
// (RFC 1952 2.3): ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unknown.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.inFlight != nil {
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", h.opts.MaxRequestsInFlight), http.StatusServiceUnavailable)
			return
		}
	}
	v := h.cache.cur.Load()
	if v.err != nil {
		h.fail(w, "serving cached metrics", v.err)
		return
	}
	mfs, err := h.live.Gather()
	if err != nil {
		h.fail(w, "gathering metrics", err)
		return
	}
	format := expfmt.NegotiateAccept(r.Header, Formats...)
	live := bufPool.Get().(*bytes.Buffer)
	live.Reset()
	defer bufPool.Put(live)
	b := &v.bodies[encodingOf(format)]
	// name[] selects families, as with promhttp.
	var only map[string]bool
	if r.URL != nil {
		for _, n := range r.URL.Query()["name[]"] {
			if only == nil {
				only = map[string]bool{}
			}
			only[n] = true
		}
	}
	enc := expfmt.NewEncoder(live, format, expfmt.WithCreatedLines()) // as the Writer
	for _, mf := range mfs {
		if _, dup := b.spans[mf.GetName()]; dup {
			h.fail(w, "gathering metrics", fmt.Errorf("metric family %s is both cached and gathered live", mf.GetName()))
			return
		}
		if only != nil && !only[mf.GetName()] {
			continue
		}
		if err := enc.Encode(mf); err != nil {
			h.fail(w, "encoding metrics", err)
			return
		}
	}
	if err := enc.(expfmt.Closer).Close(); err != nil { // OpenMetrics' `# EOF`
		h.fail(w, "encoding metrics", err)
		return
	}

	hdr := w.Header()
	hdr.Add("Vary", "Accept")
	hdr.Add("Vary", "Accept-Encoding")
	hdr.Set("Content-Type", string(format))
	gz := acceptsGzip(r.Header.Get("Accept-Encoding"))
	if gz {
		hdr.Set("Content-Encoding", "gzip")
	}
	var out [][]byte
	switch {
	case only != nil:
		// Rare (name[] requests): the selected families, compressed now.
		sel := b.selected(only)
		sel = append(sel, live.Bytes()...)
		if gz {
			sel = gzipped(sel)
		}
		out = [][]byte{sel}
	case !gz:
		out = [][]byte{b.raw, live.Bytes()}
	default:
		// One gzip member: the cached deflate blocks, then the live text
		// in blocks of its own ending with the final block; the trailer's
		// CRC continues the cached text's CRC over the live text.
		z := bufPool.Get().(*bytes.Buffer)
		z.Reset()
		defer bufPool.Put(z)
		zw := zwPool.Get().(*flate.Writer)
		zw.Reset(z)
		zw.Write(live.Bytes()) // writes to a bytes.Buffer do not fail
		zw.Close()
		zwPool.Put(zw)
		z.Write(binary.LittleEndian.AppendUint32(nil, crc32.Update(b.crc, crc32.IEEETable, live.Bytes())))
		z.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(b.raw)+live.Len())))
		out = [][]byte{gzipHeader, b.z, z.Bytes()}
	}
	size := 0
	for _, p := range out {
		size += len(p)
	}
	hdr.Set("Content-Length", strconv.Itoa(size))
	// Few writes: net/http writes the large cached body straight to the
	// connection, past its 4 KB buffer.
	for _, p := range out {
		if _, err := w.Write(p); err != nil {
			h.logError("error writing metrics:", err)
			return
		}
	}
}

// selected returns the text of the families of b named in only, in order.
func (b *body) selected(only map[string]bool) []byte {
	var spans [][2]int
	for n := range only {
		if sp, ok := b.spans[n]; ok {
			spans = append(spans, sp)
		}
	}
	slices.SortFunc(spans, func(x, y [2]int) int { return cmp.Compare(x[0], y[0]) })
	var out []byte
	for _, sp := range spans {
		out = append(out, b.raw[sp[0]:sp[1]]...)
	}
	return out
}

// gzipped returns text as one gzip member.
func gzipped(text []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(text) // writes to a bytes.Buffer do not fail
	zw.Close()
	return out.Bytes()
}

func (h *Handler) logError(what string, err error) {
	if h.opts.ErrorLog != nil {
		h.opts.ErrorLog.Println(what, err)
	}
}

// fail answers 500, as promhttp does with HTTPErrorOnError.
func (h *Handler) fail(w http.ResponseWriter, what string, err error) {
	h.logError("error "+what+":", err)
	http.Error(w, "An error has occurred while "+what+":\n\n"+err.Error(), http.StatusInternalServerError)
}

// acceptsGzip says whether an Accept-Encoding header selects gzip, as
// promhttp negotiates it: of the offers identity and gzip, in this order,
// the one with the highest q, named or matched by `*`.
func acceptsGzip(header string) bool {
	best, bestQ := "identity", -1.0
	for _, offer := range []string{"identity", "gzip"} {
		for _, spec := range strings.Split(header, ",") {
			coding, params, _ := strings.Cut(spec, ";")
			coding = strings.TrimSpace(coding)
			q := 1.0
			if params = strings.TrimSpace(params); params != "" {
				v, ok := strings.CutPrefix(params, "q=")
				f, err := strconv.ParseFloat(v, 64)
				if !ok || err != nil || f < 0 {
					continue
				}
				q = f
			}
			if q > bestQ && (coding == "*" || coding == offer) {
				best, bestQ = offer, q
			}
		}
	}
	return best == "gzip" && bestQ > 0
}
