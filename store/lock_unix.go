//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockDir takes an exclusive lock on dir (creating it), so that two
// exporters can never write the same state files; the lock goes with the
// process, even on kill -9. Release it with the returned function.
func LockDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating storage folder: %w", err)
	}
	unlock, err := lock(filepath.Join(dir, ".lock"), syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, fmt.Errorf("storage folder %s is in use by another umeeting_exporter: give each instance its own --storage.path", dir)
	}
	return unlock, err
}

// lockFile takes an exclusive lock on path (creating it), waiting for the
// process that holds it. Release it with the returned function.
func lockFile(path string) (func(), error) { return lock(path, 0) }

func lock(path string, flags int) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|flags)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
