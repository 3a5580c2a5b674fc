package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// ErrNoState is returned by ReadOnly when the account has no state file.
var ErrNoState = errors.New("no state file")

// ReadOnly loads the state of account from dir without changing anything
// in the folder: no temporary file is removed and nothing is moved aside,
// because the exporter that owns the folder may be running. It is for
// tools beside the exporter, such as the history export. The returned
// Store never saves.
func ReadOnly(dir, account string) (*Store, error) {
	path := filepath.Join(dir, account+".state")
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoState)
	}
	if err != nil {
		return nil, fmt.Errorf("reading state file: %w", err)
	}
	st, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return &Store{path: path, st: st, policy: DefaultPolicy, saveBlocked: fmt.Errorf("state %s was opened read-only", path)}, nil
}
