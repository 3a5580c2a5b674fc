package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// maxFileSize bounds every file read from the storage folder: far above
// the state of a million remembered meetings, far below what a sparse
// file can claim.
const maxFileSize = 1 << 30

// errImplausible is the error of a storage file that is not a regular file
// of a plausible size; such a file is moved aside like a corrupt one.
var errImplausible = errors.New("not a storage file")

// readFile reads a file of the storage folder, only when it is a regular
// file of at most maxFileSize bytes: whoever can write the folder cannot
// make a start run out of memory (a sparse 1 TB file, a link to /dev/zero)
// or hang (a FIFO, which is opened without waiting for a writer).
func readFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, err
	case fi.IsDir(): // unreadable, as os.ReadFile says: not moved aside
		return nil, &fs.PathError{Op: "read", Path: path, Err: syscall.EISDIR}
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s: %w: a %s, not a regular file", path, errImplausible, fi.Mode().Type())
	case fi.Size() > maxFileSize:
		return nil, fmt.Errorf("%s: %w: %d bytes, more than %d MiB", path, errImplausible, fi.Size(), maxFileSize>>20)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err == nil && len(data) > maxFileSize {
		err = fmt.Errorf("%s: %w: grew past %d MiB while read", path, errImplausible, maxFileSize>>20)
	}
	return data, err
}
