package store

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/umeeting/umeeting_exporter/internal/testproc"
)

// implausibleFiles make path a file no storage file can be: a sparse
// 1 TiB file, a link to /dev/zero, a FIFO without a writer.
var implausibleFiles = map[string]func(path string) error{
	"sparse 1 TiB": func(path string) error {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Truncate(1 << 40)
	},
	"link to /dev/zero": func(path string) error { return os.Symlink("/dev/zero", path) },
	"fifo":              func(path string) error { return syscall.Mkfifo(path, 0o600) },
}

// TestImplausibleStorageFilesAreSetAside: a state file or request log
// that is not a regular file of a plausible size is moved aside like a
// corrupt one, at once and without reading it; the tools that only read
// the folder refuse it with a clear error.
func TestImplausibleStorageFilesAreSetAside(t *testing.T) {
	for name, make := range implausibleFiles {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, file := range []string{"acme.state", "acme.requests"} {
				if err := make(filepath.Join(dir, file)); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			testproc.Within(t, "the read", func() { _, err = ReadOnly(dir, "acme") })
			if err == nil || !strings.Contains(err.Error(), "not a storage file") {
				t.Errorf("ReadOnly: %v", err)
			}
			testproc.Within(t, "the read", func() { err = ShareRequestLog(dir, "acme").Spend(recordNothing(nil)) })
			if err == nil || !strings.Contains(err.Error(), "not a storage file") {
				t.Errorf("Spend: %v", err)
			}
			var info OpenInfo
			testproc.Within(t, "the read", func() { _, info = Open(dir, "acme") })
			if info.SetAside == "" || info.LoadError == nil || !strings.Contains(info.LoadError.Error(), "not a storage file") || info.ReadError != nil {
				t.Errorf("Open: %+v", info)
			}
			var rinfo RequestLogInfo
			testproc.Within(t, "the read", func() { _, rinfo, err = OpenRequestLog(dir, "acme") })
			if err != nil || rinfo.SetAside == "" || !strings.Contains(rinfo.LoadError.Error(), "not a storage file") {
				t.Errorf("OpenRequestLog: %v %+v", err, rinfo)
			}
			for _, file := range []string{"acme.state", "acme.requests"} {
				if _, err := os.Lstat(filepath.Join(dir, file)); !os.IsNotExist(err) {
					t.Errorf("%s is still in place: %v", file, err)
				}
			}
		})
	}
}
