package testproc

import (
	"errors"
	"os"
	"testing"
)

func TestProcStatus(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc:", err)
	}
	rss, err := ProcStatus(os.Getpid(), "VmRSS")
	if err != nil || rss < 1<<20 {
		t.Errorf("VmRSS of this test = %d, %v; want at least 1 MiB", rss, err)
	}
	hwm, err := ProcStatus(os.Getpid(), "VmHWM")
	if err != nil || hwm < rss {
		t.Errorf("VmHWM = %d, %v; want at least VmRSS %d", hwm, err, rss)
	}
	if _, err := ProcStatus(os.Getpid(), "NoSuchField"); !errors.Is(err, ErrNoStatusField) {
		t.Errorf("missing field: err = %v, want ErrNoStatusField", err)
	}
}
