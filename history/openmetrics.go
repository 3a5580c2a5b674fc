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

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
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
