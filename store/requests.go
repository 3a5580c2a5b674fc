package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The times of an account's API requests, which its daily request budget
// counts, are kept in ACCOUNT.requests beside the state: a header and one
// fixed-size record per request (unix nanoseconds and their CRC-32). A
// request is appended and synced before it is sent, so no restart or crash
// hands out a fresh allowance, at the cost of a few bytes per request
// rather than a save of the whole state. The file is rewritten (atomically)
// with only the requests of the window when it grew to twice that.

const (
	requestsMagic  = "UMRQ\x00\x01\n\x00" // name, version 1, padding
	requestsRecord = 12                   // int64 nanoseconds, CRC-32 of them
)

func requestsPath(dir, account string) string { return filepath.Join(dir, account+".requests") }

// RequestLog is the file of an account's request times. It is not safe for
// concurrent use (the budget calls it under its own lock).
type RequestLog struct {
	path    string
	records int // records in the file; 0: the file must be written whole
}

// RequestLogInfo says what OpenRequestLog found.
type RequestLogInfo struct {
	// Times are the requests in the file, oldest first.
	Times []time.Time
	// LoadError says why the file was not usable (corrupt, or not a request
	// file): it was moved to SetAside, and the daily budget must be taken
	// as spent at SpentAt, the file's last change, since the requests it
	// held are unknown.
	LoadError error
	SetAside  string
	SpentAt   time.Time
}

// OpenRequestLog loads the request times of account from dir. A missing
// file holds none. A file that cannot be read returns an error (the
// account must not poll: nothing is known of its requests); a corrupt one
// is moved aside and reported in RequestLogInfo.
func OpenRequestLog(dir, account string) (*RequestLog, RequestLogInfo, error) {
	l := &RequestLog{path: requestsPath(dir, account)}
	var info RequestLogInfo
	removeStaleTemp(l.path)
	data, err := readFile(l.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return l, info, nil
	case err != nil && !errors.Is(err, errImplausible): // an implausible file is moved aside below
		return nil, info, fmt.Errorf("request budget file %s exists but cannot be read (fix its permissions or the disk, or move it away): %w", l.path, err)
	}
	if err == nil {
		if info.Times, err = l.decode(data); err == nil {
			return l, info, nil
		}
	}
	info.LoadError = fmt.Errorf("request budget file %s: %w", l.path, err)
	info.SpentAt = time.Now()
	if fi, err := os.Stat(l.path); err == nil && fi.ModTime().Before(info.SpentAt) {
		info.SpentAt = fi.ModTime()
	}
	if info.SetAside, err = setAside(l.path, time.Now()); err != nil {
		return nil, info, fmt.Errorf("%w; it could not be moved aside: %v", info.LoadError, err)
	}
	return l, info, nil
}

// ShareRequestLog returns the request log of account in dir for a
// process beside the exporter, such as the history export: nothing is read
// or changed until a request is spent through it (see Spend).
func ShareRequestLog(dir, account string) *RequestLog {
	return &RequestLog{path: requestsPath(dir, account)}
}

// Spend is the ledger of the account's budget (budget.Ledger). Under an
// exclusive lock on ACCOUNT.requests.lock, which every process spending the
// budget takes (the exporter and the history export), it reads the
// requests recorded in the file, lets decide choose, and records the new
// one before the lock goes: no process decides on requests it read before
// another recorded its own. A file that cannot be read refuses the
// request (the exporter moves a corrupt one aside when it starts).
func (l *RequestLog) Spend(decide func(recorded []time.Time) (window []time.Time, ok bool)) error {
	unlock, err := lockFile(l.path + ".lock")
	if err != nil {
		return fmt.Errorf("locking request budget file: %w", err)
	}
	defer unlock()
	data, err := readFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = nil, nil
		l.records = 0
	}
	if err != nil {
		return fmt.Errorf("reading request budget file: %w", err)
	}
	var recorded []time.Time
	if data != nil {
		if recorded, err = l.decode(data); err != nil {
			return fmt.Errorf("request budget file %s: %w", l.path, err)
		}
	}
	window, ok := decide(recorded)
	if !ok {
		return nil
	}
	return l.record(window)
}

// decode reads the file's data and notes how many records it holds; none
// when one was cut short, so that the next request rewrites the file.
func (l *RequestLog) decode(data []byte) ([]time.Time, error) {
	l.records = 0
	if !bytes.HasPrefix(data, []byte(requestsMagic)) {
		return nil, errors.New("not a request budget file of this release (bad header)")
	}
	data = data[len(requestsMagic):]
	// A record cut short is an append that a crash interrupted before its
	// sync returned, so before its request was sent: it is dropped.
	ts := make([]time.Time, 0, len(data)/requestsRecord)
	for i := 0; i+requestsRecord <= len(data); i += requestsRecord {
		r := data[i : i+requestsRecord]
		if crc32.ChecksumIEEE(r[:8]) != binary.BigEndian.Uint32(r[8:]) {
			return nil, fmt.Errorf("record %d fails its checksum", i/requestsRecord+1)
		}
		n := int64(binary.BigEndian.Uint64(r))
		if n < 0 {
			return nil, fmt.Errorf("record %d: time %d out of range", i/requestsRecord+1, n)
		}
		ts = append(ts, time.Unix(0, n))
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	if len(data)%requestsRecord == 0 {
		l.records = len(ts)
	}
	return ts, nil
}

func appendRequest(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[len(b)-8:]))
}

// record makes the latest of times (the requests of the budget's window,
// the newest last) durable before its request is sent: appended and
// synced, or, for a new file or one that grew to twice the window, the
// whole window written atomically.
func (l *RequestLog) record(times []time.Time) error {
	if len(times) == 0 {
		return nil
	}
	if l.records == 0 || l.records >= 2*len(times)+64 {
		return l.Rewrite(times)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("opening request budget file: %w", err)
	}
	_, err = f.Write(appendRequest(make([]byte, 0, requestsRecord), times[len(times)-1]))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// What was appended is unknown: the next request rewrites the file.
		l.records = 0
		return fmt.Errorf("appending to request budget file %s: %w", l.path, err)
	}
	l.records++
	return nil
}

// Rewrite replaces the file with times, atomically and durably.
func (l *RequestLog) Rewrite(times []time.Time) error {
	b := make([]byte, 0, len(requestsMagic)+len(times)*requestsRecord)
	b = append(b, requestsMagic...)
	for _, t := range times {
		b = appendRequest(b, t)
	}
	if err := writeFileAtomic(l.path, b); err != nil {
		l.records = 0
		return fmt.Errorf("request budget file: %w", err)
	}
	l.records = len(times)
	return nil
}
