package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The state file: magic, version, the state as varints and length-prefixed
// strings, and a CRC-32 of all that. A binary format because a state of
// 100,000 remembered meetings must save in well under 100 ms.
const (
	fileMagic   = "UMST"
	fileVersion = 1
)

// OpenInfo says what Open found.
type OpenInfo struct {
	Fresh     bool   // no usable state: counting starts from zero
	SetAside  string // where a corrupt or unreadable state file was moved
	LoadError error  // why the state file was not used
}

// Open loads the state of account from dir. A missing file gives a fresh
// state. A corrupt or unreadable file is moved aside (never deleted) and
// reported in OpenInfo, and a fresh state is returned: the exporter still
// starts. Only when the file cannot be moved aside is the returned Store
// unable to save, so that it never overwrites the evidence.
func Open(dir, account string) (*Store, OpenInfo) {
	path := filepath.Join(dir, account+".state")
	s := &Store{path: path, st: newState()}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, OpenInfo{Fresh: true}
	}
	if err == nil {
		var st *state
		if st, err = decodeState(data); err == nil {
			s.st = st
			return s, OpenInfo{}
		}
	}
	info := OpenInfo{Fresh: true, LoadError: fmt.Errorf("state file %s: %w", path, err)}
	aside := fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())
	if rerr := os.Rename(path, aside); rerr != nil {
		s.saveBlocked = fmt.Errorf("state file %s could not be moved aside (%v), so it is not overwritten", path, rerr)
		return s, info
	}
	info.SetAside = aside
	return s, info
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// Save writes the state durably and atomically: to a temporary file that
// is synced, then renamed over the old one, then the folder is synced. A
// crash leaves either the old or the new file, never a mix.
func (s *Store) Save() error {
	if s.saveBlocked != nil {
		return s.saveBlocked
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	s.buf.Reset()
	encodeState(&s.buf, s.st)
	s.mu.Unlock()
	return writeFileAtomic(s.path, s.buf.Bytes())
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating state folder: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary state file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing state file: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening state folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing state folder: %w", err)
	}
	return nil
}

func hashBytes(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

type encoder struct {
	buf *bytes.Buffer
	tmp [binary.MaxVarintLen64]byte
}

func (e *encoder) uvarint(v uint64) { e.buf.Write(e.tmp[:binary.PutUvarint(e.tmp[:], v)]) }
func (e *encoder) varint(v int64)   { e.buf.Write(e.tmp[:binary.PutVarint(e.tmp[:], v)]) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.buf.WriteString(s) }
func (e *encoder) bool(b bool) {
	if b {
		e.buf.WriteByte(1)
	} else {
		e.buf.WriteByte(0)
	}
}

func (e *encoder) hist(h *Histogram) {
	e.uvarint(uint64(len(h.Buckets)))
	for _, b := range h.Buckets {
		e.uvarint(b)
	}
	e.uvarint(h.Sum)
	e.uvarint(h.Count)
}

func encodeState(buf *bytes.Buffer, st *state) {
	e := &encoder{buf: buf}
	buf.WriteString(fileMagic)
	e.uvarint(fileVersion)
	e.bool(st.Backfilled)
	e.varint(st.CountedThrough)
	e.uvarint(st.NextOrder)
	e.uvarint(uint64(len(st.Meetings)))
	for id, m := range st.Meetings {
		e.str(id)
		e.varint(m.Start)
		e.varint(m.End - m.Start)
		e.uvarint(uint64(m.Participants))
	}
	e.uvarint(uint64(len(st.Series)))
	for k, c := range st.Series {
		e.str(k.Email)
		e.str(k.Host)
		e.str(k.UserType)
		for _, v := range [...]uint64{c.Meetings, c.Seconds, c.Participants, c.ParticipantSeconds} {
			e.uvarint(v)
		}
		for _, v := range c.Features {
			e.uvarint(v)
		}
	}
	e.uvarint(uint64(len(st.Hists)))
	for ut, h := range st.Hists {
		e.str(ut)
		e.hist(h.Duration)
		e.hist(h.Participants)
	}
	e.uvarint(uint64(len(st.Hosts)))
	for email, h := range st.Hosts {
		e.str(email)
		e.str(h.Host)
		e.str(h.UserType)
		e.varint(h.LastEnd)
		e.uvarint(h.Order)
	}
	e.uvarint(uint64(len(st.Invalid)))
	for r, n := range st.Invalid {
		e.str(r)
		e.uvarint(n)
	}
	e.uvarint(uint64(len(st.InvalidSeen)))
	for h, t := range st.InvalidSeen {
		e.uvarint(h)
		e.varint(t)
	}
	buf.Write(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(buf.Bytes())))
}

var errTruncated = errors.New("truncated")

type decoder struct {
	b   []byte
	err error
}

// readVarint reads one value with read (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](d *decoder, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 { return readVarint(d, binary.Uvarint) }
func (d *decoder) varint() int64   { return readVarint(d, binary.Varint) }

// count reads a length and checks that the rest of the file can hold that
// many items of at least min bytes, so a bad length cannot allocate much.
func (d *decoder) count(minBytes int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/minBytes) {
		d.err = fmt.Errorf("item count %d larger than the file", n)
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.count(1)
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) bool() bool {
	if d.err != nil || len(d.b) == 0 {
		d.err = errTruncated
		return false
	}
	v := d.b[0]
	d.b = d.b[1:]
	if v > 1 {
		d.err = fmt.Errorf("bad boolean %d", v)
	}
	return v == 1
}

func (d *decoder) hist(bounds []float64) *Histogram {
	n := d.count(1)
	if d.err == nil && n != len(bounds)+1 {
		d.err = fmt.Errorf("histogram has %d buckets, want %d", n, len(bounds)+1)
	}
	if d.err != nil {
		return newHistogram(bounds)
	}
	h := newHistogram(bounds)
	for i := range h.Buckets {
		h.Buckets[i] = d.uvarint()
	}
	h.Sum = d.uvarint()
	h.Count = d.uvarint()
	return h
}

func decodeState(data []byte) (*state, error) {
	if len(data) < len(fileMagic)+4 || string(data[:len(fileMagic)]) != fileMagic {
		return nil, errors.New("not a state file (bad magic)")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("checksum mismatch: the file is damaged or was cut short")
	}
	d := &decoder{b: body[len(fileMagic):]}
	if v := d.uvarint(); d.err == nil && v != fileVersion {
		return nil, fmt.Errorf("unsupported state version %d", v)
	}
	st := newState()
	st.Backfilled = d.bool()
	st.CountedThrough = d.varint()
	st.NextOrder = d.uvarint()
	for range d.count(4) {
		id := d.str()
		start := d.varint()
		st.Meetings[id] = meeting{Start: start, End: start + d.varint(), Participants: uint32(d.uvarint())}
	}
	for range d.count(13) {
		k := SeriesKey{Email: d.str(), Host: d.str(), UserType: d.str()}
		c := &Counters{Meetings: d.uvarint(), Seconds: d.uvarint(), Participants: d.uvarint(), ParticipantSeconds: d.uvarint()}
		for i := range c.Features {
			c.Features[i] = d.uvarint()
		}
		st.Series[k] = c
	}
	for range d.count(3) {
		ut := d.str()
		st.Hists[ut] = &Histograms{Duration: d.hist(DurationBuckets), Participants: d.hist(ParticipantBuckets)}
	}
	for range d.count(5) {
		email := d.str()
		st.Hosts[email] = &Host{Host: d.str(), UserType: d.str(), LastEnd: d.varint(), Order: d.uvarint()}
	}
	for range d.count(2) {
		r := d.str()
		st.Invalid[r] = d.uvarint()
	}
	for range d.count(2) {
		h := d.uvarint()
		st.InvalidSeen[h] = d.varint()
	}
	if d.err != nil {
		return nil, fmt.Errorf("decoding state: %w", d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("decoding state: %d unexpected trailing bytes", len(d.b))
	}
	return st, nil
}
