package logging

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
)

// brokenPipe returns the error of writing to a 127.0.0.1 connection whose
// peer has gone, as promhttp sees it when a scraper disconnects.
func brokenPipe(t *testing.T) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	peer.Close()
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	t.Fatal("writing to a closed peer never failed")
	return nil
}

func TestScrapeErrorLogLevels(t *testing.T) {
	err := brokenPipe(t)
	if !ClientGone(err) {
		t.Fatalf("%v not recognised as a client that went away", err)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{err, "level=debug"},
		{errors.New("collected metric was collected before"), "level=error"},
	} {
		var buf bytes.Buffer
		ScrapeErrorLog{Logger: log.NewLogfmtLogger(&buf)}.Println("error encoding and sending metric family:", tc.err)
		if !strings.HasPrefix(buf.String(), tc.want) {
			t.Errorf("%v logged as %q, want %s", tc.err, buf.String(), tc.want)
		}
	}
}

func TestSlogLinesInTheExporterStyle(t *testing.T) {
	var buf bytes.Buffer
	logger, slogger := New(&buf, "debug", "logfmt")
	logger.Log("msg", "go-kit")
	slogger.Info("from slog", "address", "127.0.0.1:9861")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	s := lines[1]
	if !strings.HasPrefix(s, "level=info ts=") || !strings.Contains(s, " caller=logging_test.go:") ||
		!strings.Contains(s, `msg="from slog" address=127.0.0.1:9861`) || strings.Contains(s, "time=") {
		t.Errorf("slog line not in the exporter's style: %s", s)
	}
	if !strings.HasPrefix(lines[0], "ts=") {
		t.Errorf("go-kit line: %s", lines[0])
	}
	// The level filter applies to both.
	buf.Reset()
	_, slogger = New(&buf, "warn", "logfmt")
	slogger.Info("hidden")
	if buf.Len() != 0 {
		t.Errorf("info line passed a warn filter: %s", buf.String())
	}
}
