package history

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/oklog/ulid/v2"
)

// tmpPrefix names the folder a run writes into, inside the output folder:
// a run that was killed leaves one, which the next run removes.
const tmpPrefix = ".umeeting-history-"

// output is a run's output folder and the temporary folder inside it where
// the blocks are written before they are moved into place. Both are 0700
// and every file 0600: the blocks hold the hosts' e-mail addresses.
type output struct {
	dir    string
	tmp    string // dir/.umeeting-history-XXXX
	blocks string // tmp/blocks: the blocks written so far
	heads  int
}

// openOutput checks the output folder and makes the run's temporary folder
// in it. The folder must be new (its parent exists) or empty but for what
// killed runs left: a device, a file, a symlink or a folder with something
// else in it (blocks of an earlier run not moved yet) are refused, so that
// nothing is overwritten or written where the path leads elsewhere.
func openOutput(dir string) (*output, error) {
	if dir == "" {
		return nil, errors.New("--output: give a folder for the blocks")
	}
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, fmt.Errorf("--output: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("--output: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("--output %s is a symbolic link: give the folder itself, new or empty", dir)
	case !fi.IsDir():
		return nil, fmt.Errorf("--output %s is not a folder (%s): give a new or empty folder for the blocks", dir, kind(fi.Mode()))
	default:
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("--output: %w", err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), tmpPrefix) {
				return nil, fmt.Errorf("--output %s is not empty (it holds %s): move its blocks into Prometheus first, or give a new folder", dir, e.Name())
			}
		}
		for _, e := range entries { // left by killed runs
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("--output: removing what a killed run left: %w", err)
			}
		}
	}
	tmp, err := os.MkdirTemp(dir, tmpPrefix)
	if err != nil {
		return nil, fmt.Errorf("--output: %w", err)
	}
	o := &output{dir: dir, tmp: tmp, blocks: filepath.Join(tmp, "blocks")}
	if err := os.Mkdir(o.blocks, 0o700); err != nil {
		o.remove()
		return nil, fmt.Errorf("--output: %w", err)
	}
	return o, nil
}

// kind names a file mode for an error message.
func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsRegular():
		return "a file"
	}
	return m.Type().String()
}

// blockWriter returns a writer of blocks into the temporary folder.
func (o *output) blockWriter() (*blockWriter, error) {
	o.heads++
	scratch := filepath.Join(o.tmp, fmt.Sprintf("head-%d", o.heads))
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return nil, fmt.Errorf("--output: %w", err)
	}
	return newBlockWriter(o.blocks, scratch)
}

// finish makes every file written 0600 and every folder 0700, then moves
// the blocks into the output folder, and returns how many there are.
func (o *output) finish() (int, error) {
	err := filepath.WalkDir(o.blocks, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o600)
		if d.IsDir() {
			mode = 0o700
		}
		return os.Chmod(path, mode)
	})
	if err != nil {
		return 0, fmt.Errorf("--output: %w", err)
	}
	entries, err := os.ReadDir(o.blocks)
	if err != nil {
		return 0, fmt.Errorf("--output: %w", err)
	}
	n := 0
	for _, e := range entries {
		if _, err := ulid.ParseStrict(e.Name()); err != nil || !e.IsDir() {
			continue // not a block (a compactor's leftover)
		}
		if err := os.Rename(filepath.Join(o.blocks, e.Name()), filepath.Join(o.dir, e.Name())); err != nil {
			return n, fmt.Errorf("--output: %w", err)
		}
		n++
	}
	return n, nil
}

// remove removes the temporary folder and what is left in it.
func (o *output) remove() { os.RemoveAll(o.tmp) }
