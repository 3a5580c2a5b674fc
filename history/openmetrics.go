package history

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// omWriter writes an OpenMetrics file for `promtool tsdb create-blocks-from
// openmetrics`. OpenMetrics wants every metric family in one block of
// lines, but the replay produces time in order, all families at each
// step: so each family is spooled to a file of its own, and Close joins
// them, with one HELP/TYPE header each, and ends the file with # EOF.
type omWriter struct {
	out     string           // final path
	labels  []*dto.LabelPair // added to every sample
	dir     string           // spool folder
	fams    map[string]*spool
	scratch bytes.Buffer
	samples int64
}

type spool struct {
	f *os.File
	w *bufio.Writer
}

func newOMWriter(out string, labels map[string]string) (*omWriter, error) {
	dir, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".spool-")
	if err != nil {
		return nil, fmt.Errorf("creating a spool folder next to %s: %w", out, err)
	}
	w := &omWriter{out: out, dir: dir, fams: map[string]*spool{}}
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		if labels[name] != "" { // an empty value is no label
			w.labels = append(w.labels, &dto.LabelPair{Name: proto.String(name), Value: proto.String(labels[name])})
		}
	}
	return w, nil
}

// write appends the samples of mf, every metric of which carries its
// timestamp. The family's HELP and TYPE lines are written once.
func (w *omWriter) write(mf *dto.MetricFamily) error {
	if len(mf.Metric) == 0 {
		return nil
	}
	if len(w.labels) > 0 {
		for _, m := range mf.Metric {
			m.Label = append(m.Label, w.labels...)
		}
	}
	w.scratch.Reset()
	if _, err := expfmt.MetricFamilyToOpenMetrics(&w.scratch, mf); err != nil {
		return fmt.Errorf("encoding %s: %w", mf.GetName(), err)
	}
	b := w.scratch.Bytes()
	sp := w.fams[mf.GetName()]
	if sp == nil {
		f, err := os.Create(filepath.Join(w.dir, fmt.Sprintf("%d", len(w.fams))))
		if err != nil {
			return fmt.Errorf("spooling %s: %w", mf.GetName(), err)
		}
		sp = &spool{f: f, w: bufio.NewWriterSize(f, 256<<10)}
		w.fams[mf.GetName()] = sp
	} else {
		// Drop the header lines: they lead the encoder's output.
		for len(b) > 0 && b[0] == '#' {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				b = nil
				break
			}
			b = b[i+1:]
		}
	}
	w.samples += int64(bytes.Count(b, []byte{'\n'}))
	if _, err := sp.w.Write(b); err != nil {
		return fmt.Errorf("spooling %s: %w", mf.GetName(), err)
	}
	return nil
}

// Close joins the families, in name order, into the output file, written
// atomically, and removes the spool.
func (w *omWriter) Close() (err error) {
	defer os.RemoveAll(w.dir)
	defer func() {
		for _, sp := range w.fams {
			sp.f.Close()
		}
	}()
	tmp, err := os.CreateTemp(filepath.Dir(w.out), "."+filepath.Base(w.out)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating %s: %w", w.out, err)
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	names := make([]string, 0, len(w.fams))
	for name := range w.fams {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		sp := w.fams[name]
		if err := sp.w.Flush(); err != nil {
			return fmt.Errorf("spooling %s: %w", name, err)
		}
		if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("spooling %s: %w", name, err)
		}
		if _, err := io.Copy(bw, sp.f); err != nil {
			return fmt.Errorf("writing %s: %w", w.out, err)
		}
	}
	if _, err := expfmt.FinalizeOpenMetrics(bw); err != nil {
		return fmt.Errorf("writing %s: %w", w.out, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", w.out, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", w.out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", w.out, err)
	}
	// promtool may run as another user (the Prometheus container's).
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", w.out, err)
	}
	if err := os.Rename(tmp.Name(), w.out); err != nil {
		return fmt.Errorf("writing %s: %w", w.out, err)
	}
	return nil
}

// abort removes the spool and leaves no output file.
func (w *omWriter) abort() {
	for _, sp := range w.fams {
		sp.f.Close()
	}
	os.RemoveAll(w.dir)
}

// fileSet writes the history to one OpenMetrics file, or, with a split
// period, to one file per period (UTC days since the epoch, so every
// period begins at a midnight): promtool reads a whole file into memory,
// and files of a period each bound what one import needs. A step goes to
// the file of its time, with the samples written with it (a new series' 0
// a step before, the twins after), so a series may have a sample or two in
// the neighbouring file: the blocks of the two imports overlap there, which
// Prometheus (2.39 and later) merges.
type fileSet struct {
	out     string
	labels  map[string]string
	period  time.Duration // 0: one file
	files   map[int64]*omWriter
	samples int64
}

func newFileSet(out string, labels map[string]string, period time.Duration) *fileSet {
	return &fileSet{out: out, labels: labels, period: period, files: map[int64]*omWriter{}}
}

// ParseSplit reads --split: whole days (10d, 2w, 240h) or 0.
func ParseSplit(s string) (time.Duration, error) {
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("--split %q: want whole days (e.g. 10d), or 0 for one file", s)
	}
	return time.Duration(d), CheckSplit(time.Duration(d))
}

// CheckSplit says whether period can be used as --split.
func CheckSplit(period time.Duration) error {
	if period < 0 || period%(24*time.Hour) != 0 {
		return fmt.Errorf("--split %s must be whole days (e.g. 10d), or 0 for one file", period)
	}
	return nil
}

// path is the file of the period that begins at start: OUT-YYYY-MM-DD.EXT.
func (s *fileSet) path(start time.Time) string {
	if s.period == 0 {
		return s.out
	}
	ext := filepath.Ext(s.out)
	return strings.TrimSuffix(s.out, ext) + "-" + start.UTC().Format(time.DateOnly) + ext
}

func (s *fileSet) write(t time.Time, mf *dto.MetricFamily) error {
	var k int64
	if s.period > 0 {
		k = t.UnixMilli() / s.period.Milliseconds()
	}
	w := s.files[k]
	if w == nil {
		var err error
		if w, err = newOMWriter(s.path(time.UnixMilli(k*s.period.Milliseconds())), s.labels); err != nil {
			return err
		}
		s.files[k] = w
	}
	before := w.samples
	err := w.write(mf)
	s.samples += w.samples - before
	return err
}

// Close finishes every file and returns their names in time order.
func (s *fileSet) Close() ([]string, error) {
	var names []string
	var first error
	for _, k := range slices.Sorted(maps.Keys(s.files)) {
		w := s.files[k]
		if err := w.Close(); err != nil && first == nil {
			first = err
		}
		names = append(names, w.out)
	}
	return names, first
}

func (s *fileSet) abort() {
	for _, w := range s.files {
		w.abort()
	}
}
