package store

import (
	"bytes"
	"encoding/gob"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/umeeting/umeeting_exporter/store/storetest"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// savedState returns the bytes of a saved state with non-ASCII labels,
// and invalid records.
func savedState(t testing.TB) []byte {
	t.Helper()
	s, _ := Open(t.TempDir(), "a")
	m1 := mtg("u1", "li@x.cn", time.Hour, 10*time.Minute, 3, umeeting.FeatureVideo)
	m1.Host = "李 雷"
	poll(s, t0, m1, mtg("u2", "b@x", 2*time.Hour, time.Minute, 1, umeeting.FeaturePSTN))
	b := s.NewBatch(s.Window(t0, 48*time.Hour, 0))
	b.Invalid("bad_end_time", []byte(`{"uuid":"x"}`))
	s.Apply(b)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// openBytes writes data as account a's state in a new folder and opens it.
func openBytes(t testing.TB, data []byte) (*Store, OpenInfo) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.state"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return Open(dir, "a")
}

// tamper decodes data, changes the state with f and encodes it again with a
// valid checksum, as an attacker with the storage folder can.
func tamper(t *testing.T, data []byte, f func(*state)) []byte {
	t.Helper()
	st, err := decodeState(data)
	if err != nil {
		t.Fatal(err)
	}
	f(st)
	return encodeState(nil, st)
}

func TestInvalidStateIsSetAside(t *testing.T) {
	good := savedState(t)
	anySeries := func(st *state) (SeriesKey, *series) {
		for k, c := range st.Series {
			return k, c
		}
		panic("no series")
	}
	for name, f := range map[string]func(*state){
		"invalid UTF-8 e-mail": func(st *state) {
			k, c := anySeries(st)
			delete(st.Series, k)
			k.Email = "\xff\xfe"
			st.Series[k] = c
		},
		"invalid UTF-8 user type": func(st *state) { st.Hosts["b@x"].UserType = "Co\xc3rp" },
		"invalid UTF-8 reason":    func(st *state) { st.Invalid["bad\x80"] = 1 },
		"reason not a name":       func(st *state) { st.Invalid[`x",evil="1`] = 1 },
		"end before start": func(st *state) {
			m := st.Meetings["u1"]
			m.End = m.Start - 1
			st.Meetings["u1"] = m
		},
		"year 10000": func(st *state) { st.Hosts["b@x"].LastEnd = 253402300800 },
		"feature above meetings": func(st *state) {
			_, c := anySeries(st)
			c.Features[0] = c.Meetings + 1
		},
		"histogram count": func(st *state) {
			for _, h := range st.Hists {
				h.Duration.Count++
			}
		},
		"invalid UTF-8 department": func(st *state) {
			st.Groups.Departments["R&D \xe2\x82"] = &group{Total: GroupCounters{Counters: Counters{Meetings: 1}}}
		},
		"unpublished above total": func(st *state) {
			st.Groups.CostCenters["CC1"] = &group{Total: GroupCounters{CostMicros: 5}, Held: GroupCounters{CostMicros: 6}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			bad := tamper(t, good, f)
			s, info := openBytes(t, bad)
			if info.LoadError == nil || info.SetAside == "" || !info.Fresh || s.Remembered() != 0 {
				t.Fatalf("tampered state used: %+v", info)
			}
			if kept, _ := os.ReadFile(info.SetAside); string(kept) != string(bad) {
				t.Error("tampered state not kept aside intact")
			}
		})
	}
	t.Run("duplicate key", func(t *testing.T) {
		// Two hosts written under the same e-mail: a map cannot hold
		// that, so the file is edited by hand: rename c@x to b@x.
		bad := tamper(t, good, func(st *state) { st.Hosts["c@x"] = &Host{Host: "C", UserType: "Corp", LastEnd: 1} })
		body := []byte(strings.Replace(string(bad[:len(bad)-4]), "c@x", "b@x", 1))
		_, info := openBytes(t, storetest.WithCRC(body))
		if info.LoadError == nil || !strings.Contains(info.LoadError.Error(), "duplicate host") {
			t.Fatalf("duplicate key accepted: %+v", info)
		}
	})
	// One format: a file of an older release (version 1, kept in
	// testdata), of the one before this or of a later one is set aside,
	// as a corrupt one is, and counting starts afresh.
	v1, err := os.ReadFile("testdata/v1.state")
	if err != nil {
		t.Fatal(err)
	}
	for what, data := range map[string][]byte{"version 1": v1, "the version before": withVersion(good, fileVersion-1), "a later version": withVersion(good, fileVersion+1)} {
		t.Run(what, func(t *testing.T) {
			s, info := openBytes(t, data)
			if info.LoadError == nil || !strings.Contains(info.LoadError.Error(), "is not this release's") ||
				!info.Fresh || info.SetAside == "" || s.Remembered() != 0 {
				t.Fatalf("%s state not set aside: %+v", what, info)
			}
			if aside, err := os.ReadFile(info.SetAside); err != nil || string(aside) != string(data) {
				t.Errorf("set-aside copy %s: %v", info.SetAside, err)
			}
			if err := s.Save(); err != nil {
				t.Errorf("a fresh state in place of a set-aside one does not save: %v", err)
			}
		})
	}

}

// TestSetAsideNamesAreUnique sets three files aside in the same second:
// each keeps its own name and content.
func TestSetAsideNamesAreUnique(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.state")
	now := time.Unix(1_800_000_000, 0)
	var names []string
	for i := range 3 {
		os.WriteFile(path, []byte{byte('0' + i)}, 0o600)
		aside, err := setAside(path, now)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, aside)
	}
	for i, name := range names {
		if b, err := os.ReadFile(name); err != nil || string(b) != string(rune('0'+i)) {
			t.Errorf("%s: %q, %v", name, b, err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file still there: %v", err)
	}
	// Through Open, twice within a second.
	for range 2 {
		os.WriteFile(path, []byte("garbage"), 0o600)
		if _, info := Open(dir, "a"); info.SetAside == "" {
			t.Fatalf("not set aside: %+v", info)
		}
	}
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != 5 {
		t.Errorf("set-aside files %v, want 5", aside)
	}
}

func TestStaleTempFilesAreRemovedAtOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data [1]*") // glob characters in the folder name
	s, _ := Open(dir, "a")
	poll(s, t0, mtg("u1", "a@x", time.Hour, time.Minute, 1, 0))
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	// Crashes between creating the temporary file and the rename leave them.
	for _, name := range []string{"a.state.tmp-123", "a.state.tmp-456", "a.state.seam.tmp-7", "b.state.tmp-1", "ab.state.tmp-1"} {
		os.WriteFile(filepath.Join(dir, name), []byte("uuids and e-mails"), 0o600)
	}
	s2, info := Open(dir, "a")
	if info.LoadError != nil || s2.Remembered() != 1 || len(info.RemovedTemp) != 3 {
		t.Fatalf("info %+v remembered %d", info, s2.Remembered())
	}
	left, _ := os.ReadDir(dir)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	// Other accounts' files are theirs to clean.
	// The first poll keeps its copy at the seam (seam.go).
	if strings.Join(names, " ") != "a.state a.state.seam ab.state.tmp-1 b.state.tmp-1" {
		t.Errorf("left in the folder: %v", names)
	}
}

// TestUnreadableStateIsNotSetAside: a state that cannot be read says
// nothing about its content, so it is neither used, moved, nor overwritten.
// Tests run as root, which reads a 0000-mode file anyway: a folder in the
// file's place gives a real read error (EISDIR) for root too.
func TestUnreadableStateIsNotSetAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.state")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	s, info := Open(dir, "a")
	if info.ReadError == nil || info.SetAside != "" || info.LoadError != nil {
		t.Fatalf("info %+v", info)
	}
	if msg := info.ReadError.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "cannot be read") {
		t.Errorf("unclear error: %v", msg)
	}
	if err := s.Save(); err == nil {
		t.Error("a store over an unreadable file saved")
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Errorf("unreadable file touched: %v", err)
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Errorf("set aside: %v", aside)
	}
}

// checkLoaded fails when an accepted state could not be exported or saved.
func checkLoaded(t *testing.T, s *Store) {
	snap := s.Snapshot(t0)
	labels := []string{}
	for _, x := range snap.Series {
		labels = append(labels, x.Email, x.UserType)
	}
	for _, h := range snap.Hosts {
		labels = append(labels, h.Email, h.Host.Host, h.UserType)
	}
	for ut := range snap.Histograms {
		labels = append(labels, ut)
	}
	for r := range snap.Invalid {
		labels = append(labels, r)
	}
	for _, l := range labels {
		if !utf8.ValidString(l) {
			t.Fatalf("accepted state has label %q", l)
		}
	}
	if st2, err := decodeState(encodeState(nil, s.st)); err != nil || !reflect.DeepEqual(s.st, st2) {
		t.Fatalf("re-decode: %v", err)
	}
}

// FuzzLoadState feeds state bodies, completed with a valid checksum so the
// fuzzer reaches the decoder and validation, to Open: it must never panic,
// and what it accepts must have valid labels and survive a save.
func FuzzLoadState(f *testing.F) {
	v1, err := os.ReadFile("testdata/v1.state")
	if err != nil {
		f.Fatal(err)
	}
	v2 := savedState(f)
	rng := rand.New(rand.NewPCG(7, 7))
	for _, seed := range [][]byte{v1, v2} {
		f.Add(seed[:len(seed)-4])
		for range 20 {
			m := storetest.Mutate(seed, rng)
			f.Add(m[:len(m)-4])
		}
	}
	f.Add([]byte("UMST"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, info := openBytes(t, storetest.WithCRC(body))
		if info.ReadError != nil {
			t.Fatal(info.ReadError)
		}
		if info.LoadError == nil {
			checkLoaded(t, s)
		}
	})
}

// TestCRCValidMutationsAreSetAside is the attack of issue #7: thousands of
// tampered states with valid checksums. Each is either accepted with
// exportable labels or set aside; none panics.
func TestCRCValidMutationsAreSetAside(t *testing.T) {
	good := savedState(t)
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	path := filepath.Join(dir, "a.state")
	var accepted, setAside int
	for range 3000 {
		os.WriteFile(path, storetest.Mutate(good, rng), 0o600)
		s, info := Open(dir, "a")
		switch {
		case info.ReadError != nil:
			t.Fatal(info.ReadError)
		case info.LoadError == nil:
			checkLoaded(t, s)
			accepted++
		case info.SetAside == "":
			t.Fatalf("not set aside: %+v", info)
		default:
			os.Remove(info.SetAside)
			setAside++
		}
	}
	t.Logf("%d mutations accepted, %d set aside", accepted, setAside)
}

// withVersion returns data, a state file, with its version set to v and a
// valid checksum.
func withVersion(data []byte, v byte) []byte {
	body := append([]byte(nil), data[:len(data)-4]...)
	body[len(fileMagic)] = v
	return storetest.WithCRC(body)
}

// TestHugeCountsAllocateLittle: a tampered state whose map claims 4 million
// entries in a few bytes is set aside without allocating for them (gob
// sizes a map it makes by the count it reads).
func TestHugeCountsAllocateLittle(t *testing.T) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(struct{ Sizes map[string]int }{map[string]int{"x": 1}}); err != nil {
		t.Fatal(err)
	}
	// The value message ends: length, type id (2 bytes), field 1, count 1,
	// "x", 1, end of struct. The count becomes 1<<22, four bytes longer.
	b := buf.Bytes()
	n := len(b)
	tail := []byte{8, b[n-8], b[n-7], 1, 1, 1, 'x', 2, 0}
	if !bytes.Equal(b[n-9:], tail) {
		t.Fatalf("unexpected gob encoding % x", b)
	}
	body := append([]byte(fileMagic+string(rune(fileVersion))), b[:n-9]...)
	body = append(body, 12, b[n-8], b[n-7], 1, 0xfc, 0x00, 0x40, 0x00, 0x00, 1, 'x', 2, 0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, info := openBytes(t, storetest.WithCRC(body))
	runtime.ReadMemStats(&after)
	if info.LoadError == nil || info.SetAside == "" {
		t.Fatalf("tampered state used: %+v", info)
	}
	if mib := (after.TotalAlloc - before.TotalAlloc) >> 20; mib > 32 {
		t.Errorf("opening a state that claims 4 million entries allocated %d MiB", mib)
	}
}
