package testproc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrNoStatusField is returned by ProcStatus when the field is not in the
// file (a process that has exited has no Vm lines).
var ErrNoStatusField = errors.New("field not in /proc/PID/status")

// ProcStatus reads a "Field: N kB" line (VmRSS, VmHWM) of /proc/PID/status,
// in bytes: the benchmarks and load scripts measure the real binary's
// memory with it.
func ProcStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, ErrNoStatusField)
}
