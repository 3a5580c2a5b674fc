//go:build !unix

package store

import (
	"fmt"
	"os"
)

// LockDir creates dir; on this platform it cannot lock it, so keeping
// each instance's --storage.path apart is up to the operator.
func LockDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating storage folder: %w", err)
	}
	return func() {}, nil
}

// lockFile cannot lock on this platform: processes sharing a request log
// (the exporter, the history export) are not kept apart.
func lockFile(string) (func(), error) { return func() {}, nil }
