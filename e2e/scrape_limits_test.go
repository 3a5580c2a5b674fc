package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// stalledScrape sends GET /metrics without compression from a socket with a
// tiny receive buffer and never reads the answer: the attack that took the
// exporter from 154 MB to 2.95 GB with 150 such clients.
func stalledScrape(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /metrics HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity\r\n\r\n", addr)
	return conn
}

// stallSize is how large an answer must be to stall its writer behind a
// client that never reads: more than the most the kernel queues on the
// sending socket (tcp_wmem's maximum), with as much again for the client's
// receive buffer and the server's own buffers.
func stallSize(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	if err != nil {
		t.Fatalf("the kernel's TCP send buffer sizes: %v", err)
	}
	f := strings.Fields(string(b))
	max, err := strconv.Atoi(f[len(f)-1])
	if err != nil {
		t.Fatalf("tcp_wmem %q: %v", b, err)
	}
	return 2 * max
}

// TestScrapeLimits: scrapes beyond --web.max-requests are answered 503 at
// once, and a client that never reads holds its slot (and its copy of the
// metrics) only until --web.scrape-timeout.
func TestScrapeLimits(t *testing.T) {
	// Hosts of the test's own, enough for /metrics to exceed stallSize
	// whatever the day: each host's series repeat its e-mail and name.
	need := stallSize(t)
	sim, apiURL := newSim(t, simulator.Options{NoGenerated: true})
	const perHost = 1500 // bytes of /metrics per host, at least (checked below)
	hosts := need/perHost + 1
	ms := make([]umeeting.Meeting, hosts)
	for i := range ms {
		local := fmt.Sprintf("stalled-scrape-host-%06d", i)
		ms[i] = countingMeeting("stall-"+local, local, "Stalled Scrape Host "+local, "Corp", time.Hour)
	}
	sim.Add(ms...)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, apiURL, retries, fmt.Sprintf("metrics:\n  max_hosts: %d\n", hosts))
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.max-requests=2", "--web.scrape-timeout=3s")
	var size int
	waitFor(t, 90*time.Second, "every host served", func() bool {
		text := e.Metrics()
		size = len(text)
		return strings.Count(text, "\numeeting_host_info{") == hosts
	})
	t.Logf("/metrics: %d bytes for %d hosts; %d needed to stall a writer", size, hosts, need)
	if size < need {
		t.Fatalf("/metrics is %d bytes for %d hosts (%d a host): too small to stall a writer (%d)", size, hosts, size/hosts, need)
	}
	stalled := []net.Conn{stalledScrape(t, e.Addr), stalledScrape(t, e.Addr)}
	time.Sleep(time.Second) // both are now blocked writing

	start := time.Now()
	code, body := e.Get("/metrics")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "Limit of concurrent requests reached (2)") {
		t.Fatalf("a third scrape while two stall: HTTP %d %.80q", code, body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the 503 took %s", took)
	}
	// The stalled clients are cut off at the scrape timeout: their
	// connections end short of a full answer, and scrapes work again.
	time.Sleep(3 * time.Second)
	for _, c := range stalled {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); (ok && ne.Timeout()) || n >= int64(size) {
			t.Errorf("stalled client: read %d of %d bytes, %v; want a connection closed early", n, size, err)
		}
	}
	if code, _ := e.Get("/metrics"); code != http.StatusOK {
		t.Errorf("after the stalled clients were cut off: HTTP %d", code)
	}
	if v, _ := sumMetric(e.Metrics(), "promhttp_metric_handler_requests_total", `code="503"`); v < 1 {
		t.Error("the 503 is not counted in promhttp_metric_handler_requests_total")
	}
}
