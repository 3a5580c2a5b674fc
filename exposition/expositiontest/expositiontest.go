// Package expositiontest scrapes /metrics handlers in tests and compares
// what they serve, family by family.
package expositiontest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// Answer is one scrape's answer.
type Answer struct {
	Code        int
	ContentType string
	Encoding    string // Content-Encoding
	Body        []byte // decompressed
}

// Scrape serves one GET request with the given Accept and Accept-Encoding
// headers (empty: not sent). It checks what every client relies on:
// Content-Length, when set, is the body's length; a gzip body is a single
// member (clients may stop after the first); an OpenMetrics body ends with
// its only `# EOF`.
func Scrape(h http.Handler, accept, acceptEncoding string) (Answer, error) {
	return ScrapeURL(h, "/metrics", accept, acceptEncoding)
}

// ScrapeURL is Scrape of another target, such as "/metrics?name[]=up".
func ScrapeURL(h http.Handler, target, accept, acceptEncoding string) (Answer, error) {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := Answer{Code: rec.Code, ContentType: rec.Header().Get("Content-Type"), Encoding: rec.Header().Get("Content-Encoding"), Body: rec.Body.Bytes()}
	if cl := rec.Header().Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(a.Body)) {
		return a, fmt.Errorf("Content-Length %s, body of %d bytes", cl, len(a.Body))
	}
	if a.Encoding == "gzip" {
		br := bytes.NewReader(a.Body)
		zr, err := gzip.NewReader(br)
		if err != nil {
			return a, fmt.Errorf("gzip answer: %w", err)
		}
		zr.Multistream(false)
		if a.Body, err = io.ReadAll(zr); err != nil {
			return a, fmt.Errorf("gzip answer: %w", err)
		}
		if br.Len() != 0 {
			return a, fmt.Errorf("gzip answer: %d bytes after the first member", br.Len())
		}
	}
	if strings.HasPrefix(a.ContentType, "application/openmetrics-text") {
		if n := bytes.Count(a.Body, []byte("# EOF\n")); n != 1 || !bytes.HasSuffix(a.Body, []byte("# EOF\n")) {
			return a, fmt.Errorf("OpenMetrics answer with %d `# EOF` lines, want one at the end", n)
		}
	}
	return a, nil
}

// Families decodes the answer in its content type, by family name.
func (a Answer) Families() (map[string]*dto.MetricFamily, error) {
	return Decode(a.ContentType, a.Body)
}

// Decode parses an exposition of the given content type, by family name.
// A family name seen twice is an error.
func Decode(contentType string, body []byte) (map[string]*dto.MetricFamily, error) {
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.ResponseFormat(http.Header{"Content-Type": {contentType}}))
	mfs := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return mfs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", contentType, err)
		}
		if _, dup := mfs[mf.GetName()]; dup {
			return nil, fmt.Errorf("family %s twice", mf.GetName())
		}
		mfs[mf.GetName()] = mf
	}
}

// Diff lists the differences between two sets of families, ignoring the
// families for which skip (when not nil) is true.
func Diff(got, want map[string]*dto.MetricFamily, skip func(name string) bool) []string {
	var diffs []string
	names := map[string]bool{}
	for n := range got {
		names[n] = true
	}
	for n := range want {
		names[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if skip != nil && skip(n) {
			continue
		}
		g, w := got[n], want[n]
		switch {
		case g == nil:
			diffs = append(diffs, "missing family "+n)
		case w == nil:
			diffs = append(diffs, "unexpected family "+n)
		case !proto.Equal(sorted(g), sorted(w)):
			diffs = append(diffs, fmt.Sprintf("family %s:\n got %v\nwant %v", n, g, w))
		}
	}
	return diffs
}

// sorted returns a copy of mf with its metrics in the order of their
// labels: the order of metrics within a family carries no meaning, and a
// registry sorts series with fewer labels first, whatever their values.
func sorted(mf *dto.MetricFamily) *dto.MetricFamily {
	c := proto.Clone(mf).(*dto.MetricFamily)
	key := func(m *dto.Metric) string {
		var b strings.Builder
		for _, l := range m.GetLabel() {
			fmt.Fprintf(&b, "%q=%q,", l.GetName(), l.GetValue())
		}
		return b.String()
	}
	slices.SortStableFunc(c.Metric, func(a, b *dto.Metric) int { return strings.Compare(key(a), key(b)) })
	return c
}
