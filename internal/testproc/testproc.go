// Package testproc holds the small helpers that tests share to run real
// processes and servers on 127.0.0.1, and to measure them: a free port, a
// process's memory from /proc, and a log buffer that several goroutines
// write to.
package testproc

import (
	"bytes"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Buffer collects the output of a process or logger written from several
// goroutines, for later inspection. The zero value keeps everything.
type Buffer struct {
	// Max, when positive, is the size beyond which further writes are
	// dropped (and reported as written), so a chatty process cannot fill
	// the test's memory.
	Max int

	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Max > 0 && b.buf.Len() > b.Max {
		return len(p), nil
	}
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start starts cmd with its output in logs, failing the test if it cannot,
// and returns a channel closed once the process has exited and been waited
// for.
func Start(t testing.TB, cmd *exec.Cmd, logs *Buffer) <-chan struct{} {
	t.Helper()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	return done
}

// StopAtEnd calls stop when the test ends and then, if the test failed,
// logs what the process named name wrote to logs.
func StopAtEnd(t testing.TB, name string, logs *Buffer, stop func()) {
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, logs.String())
		}
	})
}

// Within fails the test if f does not return within 10 seconds: for calls
// that must never hang (a read of a FIFO, a stuck directory source).
func Within(t testing.TB, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return within 10s", what)
	}
}
