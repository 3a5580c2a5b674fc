package store

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func recordAll(t *testing.T, l *RequestLog, times []time.Time) {
	t.Helper()
	for i := range times {
		if err := l.record(times[:i+1]); err != nil {
			t.Fatal(err)
		}
	}
}

func sameTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func TestRequestLogSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	l, info, err := OpenRequestLog(dir, "a")
	if err != nil || info.LoadError != nil || len(info.Times) != 0 {
		t.Fatalf("fresh log: %v %+v", err, info)
	}
	var times []time.Time
	for i := range 7 {
		times = append(times, t0.Add(time.Duration(i)*time.Minute+time.Duration(i)))
	}
	recordAll(t, l, times)
	_, info, err = OpenRequestLog(dir, "a")
	if err != nil || info.LoadError != nil || !sameTimes(info.Times, times) {
		t.Fatalf("reopened: %v %+v, want %v", err, info, times)
	}
	var shared []time.Time
	if err := ShareRequestLog(dir, "a").Spend(recordNothing(&shared)); err != nil || !sameTimes(shared, times) {
		t.Errorf("shared: %v %v", shared, err)
	}
}

// recordNothing is a Spend decision that keeps the requests recorded in
// *got (when got is not nil) and spends none.
func recordNothing(got *[]time.Time) func([]time.Time) ([]time.Time, bool) {
	return func(recorded []time.Time) ([]time.Time, bool) {
		if got != nil {
			*got = recorded
		}
		return nil, false
	}
}

// TestRequestLogStaysSmall: appends until the file holds twice the window
// (plus a margin), then one atomic rewrite of the window only.
func TestRequestLogStaysSmall(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := OpenRequestLog(dir, "a")
	window := []time.Time{}
	for i := range 1000 {
		window = append(window, t0.Add(time.Duration(i)*time.Second))
		if len(window) > 5 {
			window = window[1:] // a window of 5 requests
		}
		if err := l.record(window); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(requestsPath(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if max := int64(len(requestsMagic) + (2*5+64)*requestsRecord); fi.Size() > max {
		t.Errorf("log of a 5-request window is %d bytes after 1000 requests, want at most %d", fi.Size(), max)
	}
	_, info, err := OpenRequestLog(dir, "a")
	got := info.Times
	if err != nil || !sameTimes(got[len(got)-5:], window) {
		t.Errorf("log ends with %v, want %v (%v)", got, window, err)
	}
}

// TestRequestLogTornAppend: a crash during an append (before its sync
// returned, so before the request was sent) leaves a record cut short; it
// is dropped and the next request rewrites the file whole.
func TestRequestLogTornAppend(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := OpenRequestLog(dir, "a")
	times := []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute)}
	recordAll(t, l, times)
	path := requestsPath(dir, "a")
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)-5], 0o600)
	l, info, err := OpenRequestLog(dir, "a")
	if err != nil || info.LoadError != nil || !sameTimes(info.Times, times[:2]) {
		t.Fatalf("torn log: %v %+v", err, info)
	}
	next := append(times[:2:2], t0.Add(3*time.Minute))
	if err := l.record(next); err != nil {
		t.Fatal(err)
	}
	var got []time.Time
	if err := ShareRequestLog(dir, "a").Spend(recordNothing(&got)); err != nil || !sameTimes(got, next) {
		t.Errorf("after the next request: %v %v, want %v", got, err, next)
	}
}

// TestRequestLogCorrupt: a file that fails its checksum or is not a
// request log is moved aside (never deleted) and reported with the time
// the budget must count as used up; a process beside the exporter refuses it.
func TestRequestLogCorrupt(t *testing.T) {
	for name, damage := range map[string]func([]byte) []byte{
		"flipped bit":  func(b []byte) []byte { b[len(requestsMagic)+3] ^= 4; return b },
		"other file":   func([]byte) []byte { return []byte("2026-11-20T00:00:00Z\n") },
		"bad checksum": func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l, _, _ := OpenRequestLog(dir, "a")
			recordAll(t, l, []time.Time{t0, t0.Add(time.Minute)})
			path := requestsPath(dir, "a")
			data, _ := os.ReadFile(path)
			written := damage(data)
			os.WriteFile(path, written, 0o600)
			mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
			os.Chtimes(path, mtime, mtime)
			if err := ShareRequestLog(dir, "a").Spend(recordNothing(nil)); err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("a process beside the exporter: %v", err)
			}
			_, info, err := OpenRequestLog(dir, "a")
			if err != nil || info.LoadError == nil || !strings.Contains(info.LoadError.Error(), path) {
				t.Fatalf("corrupt log: %v %+v", err, info)
			}
			if !info.SpentAt.Equal(mtime) || len(info.Times) != 0 {
				t.Errorf("spent at %v, want the file's last change %v; times %v", info.SpentAt, mtime, info.Times)
			}
			if kept, err := os.ReadFile(info.SetAside); err != nil || string(kept) != string(written) {
				t.Errorf("set aside %q: %v", info.SetAside, err)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("corrupt log still in place: %v", err)
			}
		})
	}
}

// TestRequestLogUnreadable: a log that exists but cannot be read is an
// error: nothing is known of the account's requests.
func TestRequestLogUnreadable(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "a.requests"), 0o700)
	if _, _, err := OpenRequestLog(dir, "a"); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("a folder in place of the log: %v", err)
	}
}

// BenchmarkRequestLogRecord makes one request durable, as the daily budget
// does before each request, with a window of up to 2,000 requests (the
// default budget); cpu-us/op is the process's CPU time (user and system)
// per request, the sync included.
func BenchmarkRequestLogRecord(b *testing.B) {
	l, _, err := OpenRequestLog(b.TempDir(), "a")
	if err != nil {
		b.Fatal(err)
	}
	var times []time.Time
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	for i := 0; b.Loop(); i++ {
		if times = append(times, t0.Add(time.Duration(i)*time.Second)); len(times) > 2000 {
			times = times[1:]
		}
		if err := l.record(times); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpu()-start)/float64(b.N)/1e3, "cpu-us/op")
}
