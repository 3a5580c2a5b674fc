// Package scripts tests the shell scripts the test suite and the
// benchmarks run (the Go commands live in their own folders).
package scripts

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTestDepsSaysWhomItWaitsFor: a run of test-deps.sh that finds the
// Prometheus 3 build lock taken says so at once, naming the holder the lock
// file records; once the holder is done it goes on (here the holder
// finished the build, so nothing is built) and records itself as holder.
func TestTestDepsSaysWhomItWaitsFor(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	const holder = "pid 4242 (started by pid 4241: make test) since 2026-12-07T18:30:00Z"
	fmt.Fprintln(f, holder)

	cmd := exec.Command("./test-deps.sh")
	cmd.Env = append(os.Environ(), "UMEETING_PROM3_DIR="+dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	select {
	case line := <-lines:
		if !strings.Contains(line, "Waiting for another Prometheus") || !strings.Contains(line, holder) {
			t.Fatalf("first line while the lock is held: %q; want the wait and its holder", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("nothing said within 20 s while waiting for the lock")
	}

	// The holder finishes the build and lets go.
	for _, name := range []string{"prometheus", "promtool"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	var rest []string
	timeout := time.After(20 * time.Second)
	for done := false; !done; {
		select {
		case line, ok := <-lines:
			if !ok {
				done = true
				break
			}
			rest = append(rest, line)
		case <-timeout:
			t.Fatalf("test-deps.sh still running 20 s after the lock was released: %q", rest)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("test-deps.sh: %v, said %q", err, rest)
	}
	if len(rest) != 1 || !strings.Contains(rest[0], "The other build finished") {
		t.Errorf("after the wait: %q", rest)
	}
	got, _ := os.ReadFile(lock)
	if want := fmt.Sprintf("pid %d ", cmd.Process.Pid); !strings.HasPrefix(string(got), want) {
		t.Errorf("lock file after the run: %q, want it to start with %q", got, want)
	}
}
