package store

import (
	"errors"
	"fmt"
	"io/fs"
)

// The state as the baseline poll saved it is kept in ACCOUNT.state.seam:
// the counters' starting values, which the history export (package
// history) must end at exactly, however far the live counters moved since.

func seamPath(statePath string) string { return statePath + ".seam" }

// ErrNoSeam is returned by ReadSeam when the state at the seam was not kept
// (it was removed).
var ErrNoSeam = errors.New("no copy of the state at the seam")

// atSeam says whether the state is the one the baseline poll just made.
func (st *state) atSeam() bool { return st.Seam != 0 && st.Seam == st.CountedThrough }

// ReadSeam loads, read-only, the state as the baseline poll saved it: its
// counters are the live series' starting values and Seam() their time.
func ReadSeam(dir, account string) (*Store, error) {
	s, err := ReadOnly(dir, account)
	if err != nil {
		return nil, err
	}
	path := seamPath(s.path)
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (removed since the first start)", path, ErrNoSeam)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the state at the seam: %w", err)
	}
	st, err := decodeState(data)
	if err == nil && !st.atSeam() {
		err = errors.New("it is not the state of a first start")
	}
	if err != nil {
		return nil, fmt.Errorf("state at the seam %s: %w", path, err)
	}
	return &Store{path: path, st: st, saveBlocked: fmt.Errorf("state %s was opened read-only", path)}, nil
}
