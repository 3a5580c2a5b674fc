package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The state file: magic, version, the state as varints and length-prefixed
// strings, and a CRC-32 of all that. A binary format because a state of
// 100,000 remembered meetings must save in well under 100 ms. There is one
// format: nothing was released before it, so a file of another version is
// set aside like a corrupt one and counting starts afresh.
const (
	fileMagic   = "UMST"
	fileVersion = 6
)

// OpenInfo says what Open found.
type OpenInfo struct {
	Fresh     bool   // no usable state: counting starts from zero
	SetAside  string // where a corrupt or invalid state file was moved
	LoadError error  // why the state file was not used
	// ReadError is set when the state file exists but could not be read
	// (permissions, I/O error, a folder in its place): nothing is known
	// about its content, so it is neither used, moved nor overwritten, and
	// the caller must not start counting for this account.
	ReadError error
	// RemovedTemp are temporary files of saves cut short by a crash,
	// removed by Open.
	RemovedTemp []string
}

// Open loads the state of account from dir. A missing file gives a fresh
// state. A file that was read but is corrupt or fails validation is moved
// aside under a unique name (never deleted, never overwritten) and reported
// in OpenInfo, and a fresh state is returned: the exporter still starts. A
// file that cannot be read is reported in OpenInfo.ReadError. In both
// failure cases where the file stays in place, the returned Store refuses
// to save, so that it never overwrites the evidence or the counts.
func Open(dir, account string) (*Store, OpenInfo) {
	path := filepath.Join(dir, account+".state")
	s := &Store{path: path, st: newState(), policy: DefaultPolicy}
	var info OpenInfo
	info.RemovedTemp = append(removeStaleTemp(path), removeStaleTemp(seamPath(path))...)
	data, err := readFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		info.Fresh = true
		return s, info
	case err != nil && !errors.Is(err, errImplausible): // an implausible file is moved aside below
		info.ReadError = fmt.Errorf("state file %s exists but cannot be read (fix its permissions or the disk, or move it away to start from zero): %w", path, err)
		s.saveBlocked = info.ReadError
		return s, info
	}
	var st *state
	if err == nil {
		st, err = decodeState(data)
	}
	if err == nil {
		s.st, s.restorePoint = st, data
		return s, info
	}
	info.Fresh, info.LoadError = true, fmt.Errorf("state file %s: %w", path, err)
	aside, rerr := setAside(path, time.Now())
	if rerr != nil {
		s.saveBlocked = fmt.Errorf("state file %s could not be moved aside (%v), so it is not overwritten", path, rerr)
		return s, info
	}
	info.SetAside = aside
	return s, info
}

// setAside moves path to a name of its own, path.corrupt-UNIXTIME (with a
// -N suffix when that exists): a hard link, which never replaces an
// existing file, then the removal of path.
func setAside(path string, now time.Time) (string, error) {
	base := fmt.Sprintf("%s.corrupt-%d", path, now.Unix())
	for i := 1; i <= 1000; i++ {
		aside := base
		if i > 1 {
			aside = fmt.Sprintf("%s-%d", base, i)
		}
		err := os.Link(path, aside)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			// No hard links here: rename, which is safe only while
			// nothing has the name yet.
			if _, serr := os.Lstat(aside); !errors.Is(serr, fs.ErrNotExist) {
				continue
			}
			if err := os.Rename(path, aside); err != nil {
				return "", err
			}
			return aside, syncDir(filepath.Dir(path))
		}
		if err := os.Remove(path); err != nil {
			return "", err
		}
		return aside, syncDir(filepath.Dir(path))
	}
	return "", fmt.Errorf("no free name like %s", base)
}

// removeStaleTemp deletes the temporary files that saves of path leave when
// the process dies between creating and renaming them. The storage folder
// is locked by this process and this account's store is not saving yet, so
// none of them is in use. Errors are ignored: a leftover is only litter.
func removeStaleTemp(path string) []string {
	matches, _ := filepath.Glob(globEscape(path) + ".tmp-*")
	var removed []string
	for _, m := range matches {
		if os.Remove(m) == nil {
			removed = append(removed, m)
		}
	}
	return removed
}

// globEscape quotes the glob metacharacters of a literal path.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
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
	data := encodeState(make([]byte, 0, len(s.restorePoint)+4096), s.st)
	atSeam := s.st.atSeam()
	through := s.st.CountedThrough
	s.dirty = false // set again by a change made while writing, or below
	s.mu.Unlock()
	err := s.write(data, atSeam)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.dirty = true
		return err
	}
	s.restorePoint = data // what the file holds now: the state while nothing changes
	s.savedThrough = through
	return nil
}

// write writes data, the encoded state, first as the state at the seam
// when atSeam: when that fails, the baseline poll is undone and done again
// (see seam.go).
func (s *Store) write(data []byte, atSeam bool) error {
	if atSeam {
		if err := writeFileAtomic(seamPath(s.path), data); err != nil {
			return fmt.Errorf("keeping the state at the seam: %w", err)
		}
	}
	return writeFileAtomic(s.path, data)
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating state folder: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file beside %s: %w", path, err)
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
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
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

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bool(b bool) {
	if b {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
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

func (e *encoder) counters(c *Counters) {
	for _, v := range [...]uint64{c.Meetings, c.Seconds, c.Participants, c.ParticipantSeconds} {
		e.uvarint(v)
	}
	for _, v := range c.Features {
		e.uvarint(v)
	}
}

// Flags of a series in the state file.
const (
	seriesExposed = 1 << iota
	seriesHeld
)

// encodeState appends the state file of st to dst.
func encodeState(dst []byte, st *state) []byte {
	e := &encoder{b: append(dst, fileMagic...)}
	e.uvarint(fileVersion)
	e.bool(st.Backfilled)
	e.varint(st.CountedThrough)
	e.uvarint(st.NextOrder)
	e.varint(st.Horizon)
	e.varint(st.Seam)
	e.varint(st.MaxEnd)
	e.uvarint(st.Folded)
	e.uvarint(uint64(len(st.Meetings)))
	for id, m := range st.Meetings {
		e.str(id)
		e.varint(m.Start)
		e.varint(m.End - m.Start)
		e.uvarint(uint64(m.Participants))
	}
	e.uvarint(uint64(len(st.Series)))
	for k, x := range st.Series {
		e.str(k.Email)
		e.str(k.UserType)
		e.counters(&x.Counters)
		e.varint(x.Created)
		e.varint(x.Since)
		var flags uint64
		if x.Exposed {
			flags |= seriesExposed
		}
		if x.Held != nil {
			flags |= seriesHeld
		}
		e.uvarint(flags)
		if x.Held != nil {
			e.counters(x.Held)
		}
	}
	e.uvarint(uint64(len(st.Hists)))
	for ut, h := range st.Hists {
		e.str(ut)
		e.hist(h.Duration)
		e.hist(h.Participants)
		e.bool(h.New)
		e.varint(h.Since)
	}
	e.uvarint(uint64(len(st.Hosts)))
	for email, h := range st.Hosts {
		e.str(email)
		e.str(h.Host)
		e.str(h.UserType)
		e.varint(h.LastEnd)
		e.uvarint(h.Order)
		e.bool(h.Admitted)
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
	encodeGroups(e, st.Groups)
	return binary.LittleEndian.AppendUint32(e.b, crc32.ChecksumIEEE(e.b[len(dst):]))
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

// uint32 reads a value that must fit 32 bits.
func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if d.err == nil && v > math.MaxUint32 {
		d.err = fmt.Errorf("value %d out of range", v)
	}
	return uint32(v)
}

// distinct fails the decode when a map holds fewer items than were read:
// a writer never writes a key twice.
func (d *decoder) distinct(got, read int, what string) {
	if d.err == nil && got != read {
		d.err = fmt.Errorf("%d duplicate %s keys", read-got, what)
	}
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

func (d *decoder) counters() Counters {
	c := Counters{Meetings: d.uvarint(), Seconds: d.uvarint(), Participants: d.uvarint(), ParticipantSeconds: d.uvarint()}
	for i := range c.Features {
		c.Features[i] = d.uvarint()
	}
	return c
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

// decodeState reads a state file and checks that what it holds is
// plausible (validate).
func decodeState(data []byte) (*state, error) {
	if len(data) < len(fileMagic)+4 || string(data[:len(fileMagic)]) != fileMagic {
		return nil, errors.New("not a state file (bad magic)")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("checksum mismatch: the file is damaged or was cut short")
	}
	d := &decoder{b: body[len(fileMagic):]}
	version := d.uvarint()
	if d.err == nil && version != fileVersion {
		return nil, fmt.Errorf("state format version %d is not this release's (%d)", version, fileVersion)
	}
	st := newState()
	st.Backfilled = d.bool()
	st.CountedThrough = d.varint()
	st.NextOrder = d.uvarint()
	st.Horizon, st.Seam, st.MaxEnd, st.Folded = d.varint(), d.varint(), d.varint(), d.uvarint()
	n := d.count(4)
	for range n {
		id := d.str()
		start := d.varint()
		st.Meetings[id] = meeting{Start: start, End: start + d.varint(), Participants: d.uint32()}
	}
	d.distinct(len(st.Meetings), n, "meeting")
	n = d.count(12)
	for range n {
		k := SeriesKey{Email: d.str(), UserType: d.str()}
		x := &series{Counters: d.counters(), Created: d.varint(), Since: d.varint()}
		flags := d.uvarint()
		x.Exposed = flags&seriesExposed != 0
		if flags&seriesHeld != 0 {
			held := d.counters()
			x.Held = &held
		}
		st.Series[k] = x
	}
	d.distinct(len(st.Series), n, "series")
	n = d.count(3)
	for range n {
		ut := d.str()
		h := &Histograms{Duration: d.hist(DurationBuckets), Participants: d.hist(ParticipantBuckets), New: d.bool(), Since: d.varint()}
		st.Hists[ut] = h
	}
	d.distinct(len(st.Hists), n, "histogram")
	n = d.count(5)
	for range n {
		email := d.str()
		h := &Host{Host: d.str(), UserType: d.str(), LastEnd: d.varint(), Order: d.uvarint(), Admitted: d.bool()}
		st.Hosts[email] = h
	}
	d.distinct(len(st.Hosts), n, "host")
	n = d.count(2)
	for range n {
		r := d.str()
		st.Invalid[r] = d.uvarint()
	}
	d.distinct(len(st.Invalid), n, "invalid reason")
	n = d.count(2)
	for range n {
		h := d.uvarint()
		st.InvalidSeen[h] = d.varint()
	}
	d.distinct(len(st.InvalidSeen), n, "invalid record")
	st.Groups = decodeGroups(d)
	if d.err != nil {
		return nil, fmt.Errorf("decoding state: %w", d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("decoding state: %d unexpected trailing bytes", len(d.b))
	}
	st.indexUserTypes()
	return st, st.validate()
}
