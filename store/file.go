package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The state file: magic, a version byte, the state encoded with
// encoding/gob, and a CRC-32 of all that, so a file damaged or cut short is
// told from a good one. There is one format: a file of another version is
// set aside like a corrupt one and counting starts afresh. gob is not
// hardened against hostile input: the file is at most maxFileSize, gob
// decodes it into maps made beforehand, and what it decodes is validated
// (docs/security.md).
const (
	fileMagic   = "UMST"
	fileVersion = 7
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
	entries, _ := os.ReadDir(filepath.Dir(path))
	var removed []string
	for _, e := range entries {
		m := filepath.Join(filepath.Dir(path), e.Name())
		if strings.HasPrefix(e.Name(), filepath.Base(path)+".tmp-") && os.Remove(m) == nil {
			removed = append(removed, m)
		}
	}
	return removed
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

// file is the first gob message of the state file, after its version.
// The remembered meetings follow as messages of up to meetingsPerMessage
// savedMeetings: gob encodes a slice four times faster than a map's
// entries, and a message is built whole in a buffer of gob's own, which
// grows by copying.
type file struct {
	Header header // not in State: gob leaves out an embedded unexported type
	State  *state // without its Meetings
	// Sizes are the lengths of State's maps, by what they hold: a file
	// whose maps decode shorter held a key twice, which a save never writes.
	Sizes map[string]int
}

const meetingsPerMessage = 4096

// savedMeeting is one remembered meeting in the state file.
type savedMeeting struct {
	ID            string
	Start, Length int64
	Participants  uint32
}

// sizes are the lengths of st's maps.
func (st *state) sizes() map[string]int {
	return map[string]int{
		"meeting": len(st.Meetings), "series": len(st.Series), "histogram": len(st.Hists),
		"host": len(st.Hosts), "invalid reason": len(st.Invalid), "invalid record": len(st.InvalidSeen),
		"department": len(st.Groups.Departments), "cost centre": len(st.Groups.CostCenters),
	}
}

// encodeState appends the state file of st to dst.
func encodeState(dst []byte, st *state) []byte {
	buf := bytes.NewBuffer(append(append(dst, fileMagic...), fileVersion))
	enc := gob.NewEncoder(buf)
	rest := *st
	rest.Meetings = nil
	err := enc.Encode(file{Header: st.header, State: &rest, Sizes: st.sizes()})
	chunk := make([]savedMeeting, 0, meetingsPerMessage)
	for id, m := range st.Meetings {
		chunk = append(chunk, savedMeeting{id, m.Start, m.End - m.Start, m.Participants})
		if len(chunk) == cap(chunk) {
			err, chunk = cmp.Or(err, enc.Encode(chunk)), chunk[:0]
		}
	}
	if len(chunk) > 0 {
		err = cmp.Or(err, enc.Encode(chunk))
	}
	if err != nil {
		panic("store: encoding the state: " + err.Error()) // only a nil pointer in a map fails, a bug
	}
	return binary.LittleEndian.AppendUint32(buf.Bytes(), crc32.ChecksumIEEE(buf.Bytes()[len(dst):]))
}

// decodeState reads a state file and checks that what it holds is
// plausible (validate).
func decodeState(data []byte) (*state, error) {
	if len(data) < len(fileMagic)+5 || string(data[:len(fileMagic)]) != fileMagic {
		return nil, errors.New("not a state file (bad magic)")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("checksum mismatch: the file is damaged or was cut short")
	}
	if v := body[len(fileMagic)]; v != fileVersion {
		return nil, fmt.Errorf("state format version %d is not this release's (%d)", v, fileVersion)
	}
	// Every map is made before the decode: gob makes a missing one of the
	// size the file claims, however few entries follow.
	st := newState()
	f := file{State: st, Sizes: map[string]int{}}
	dec := gob.NewDecoder(bytes.NewReader(body[len(fileMagic)+1:]))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decoding state: %w", err)
	}
	for {
		var chunk []savedMeeting
		if err := dec.Decode(&chunk); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decoding state's meetings: %w", err)
		}
		for _, m := range chunk {
			st.Meetings[m.ID] = meeting{m.Start, m.Start + m.Length, m.Participants}
		}
	}
	st.header = f.Header
	for what, n := range st.sizes() {
		if f.Sizes[what] != n {
			return nil, fmt.Errorf("decoding state: duplicate %s keys: %d written, %d distinct", what, f.Sizes[what], n)
		}
	}
	st.indexUserTypes()
	return st, st.validate()
}
