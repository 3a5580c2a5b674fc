// Command scrapeload measures the exporter's memory (RSS) and scrape
// latency under hostile scrape load, for BENCHMARKS.md: the real binary,
// polling the simulator with -hosts hosts, is hit by -concurrent scrapes at
// once and then by -stalled clients that send GET /metrics and never read.
// Each scenario runs twice in the same run: with the limits off and with the
// default limits, next to the floor (idle RSS, one scrape at a time). It
// stops by itself.
//
//	go run ./scripts/scrapeload
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/testproc"
	"github.com/umeeting/umeeting_exporter/simulator"
)

var (
	hosts      = flag.Int("hosts", 17500, "hosts of the simulated account (17,500 of which about 10,000 have meetings in the lookback: max_hosts, 10,000, get series of their own)")
	concurrent = flag.Int("concurrent", 200, "scrapes sent at once")
	stalled    = flag.Int("stalled", 150, "clients that send GET /metrics and never read")
	hold       = flag.Duration("hold", 10*time.Second, "how long the stalled clients stay")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "scrapeload")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "umeeting_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		log.Fatalf("go build (run from the repository root): %v\n%s", err, out)
	}
	now := time.Now()
	sim := simulator.New(simulator.Options{Seed: 1, Hosts: *hosts, APIKey: "k", APISecret: "s",
		HistoryStart: now.Add(-40 * time.Hour), HistoryEnd: now.Add(-10 * time.Minute),
		DuplicateRate: -1, InvalidRate: -1, MaxPageSize: 1000})
	apiURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`poll_interval: 1h
lookback: 48h
backfill: 48h
accounts:
  - {name: load, api_url: %q, api_key: k, api_secret: s, page_size: 1000, daily_request_budget: 0}
`, apiURL)), 0o600)

	variants := []struct {
		name string
		args []string
	}{
		{"limits off", []string{"--web.max-requests=0", "--web.scrape-timeout=0", "--web.write-timeout=0", "--web.idle-timeout=0"}},
		{"defaults (max-requests 5, scrape-timeout 30s)", nil},
	}
	fmt.Printf("%d simulated hosts, %d concurrent scrapes, %d stalled clients held %s\n\n", *hosts, *concurrent, *stalled, *hold)
	// Each scenario gets a fresh process (RSS does not shrink after a
	// peak); the two of a variant share the state folder.
	var conc, stall []result
	for i, v := range variants {
		data := filepath.Join(dir, fmt.Sprint("data", i))
		conc = append(conc, run(bin, cfg, data, v.args, false))
		stall = append(stall, run(bin, cfg, data, v.args, true))
	}
	r0 := conc[0]
	fmt.Printf("/metrics: %.1f MB, %d series, %d hosts with series of their own\n\n", float64(r0.size)/1e6, r0.series, r0.hostSeries)
	fmt.Printf("%d scrapes at once:\n\n", *concurrent)
	fmt.Println("| limits | idle RSS (floor) | one scrape alone (floor) | peak RSS | answered 200 | 200s: median (p90, max) | answered 503 (median) |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for i, v := range variants {
		r := conc[i]
		fmt.Printf("| %s | %s | %s | %s | %d | %s (%s, %s) | %d (%s) |\n", v.name,
			mb(r.idle), ms(r.single), mb(r.peak), r.ok, ms(r.okMed), ms(r.okP90), ms(r.okMax), r.busy, ms(r.busyMed))
	}
	fmt.Printf("\n%d clients that send GET /metrics and never read, for %s:\n\n", *stalled, *hold)
	fmt.Println("| limits | idle RSS (floor) | one scrape alone (floor) | peak RSS | a scrape meanwhile | RSS after they left |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: |")
	for i, v := range variants {
		r := stall[i]
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", v.name, mb(r.idle), ms(r.single), mb(r.peak), r.during, mb(r.after))
	}
}

type result struct {
	idle, peak, after           int64
	size, series, hostSeries    int
	single, okMed, okP90, okMax time.Duration
	busyMed                     time.Duration
	ok, busy                    int
	during                      string
}

func run(bin, cfg, data string, extra []string, stalledScenario bool) result {
	addr := freeAddr()
	cmd := exec.Command(bin, append([]string{"--config.file=" + cfg, "--storage.path=" + data, "--web.listen-address=" + addr, "--log.level=warn"}, extra...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	base := "http://" + addr + "/metrics"
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if time.Now().After(deadline) {
			log.Fatal("the first poll did not finish in 5 minutes")
		}
		if _, body, err := scrape(base); err == nil && strings.Contains(body, `umeeting_up{account="load"} 1`) {
			break
		}
		time.Sleep(time.Second)
	}
	var r result
	time.Sleep(3 * time.Second)
	r.idle = rss(pid)
	var singles []time.Duration
	for range 5 {
		start := time.Now()
		_, body, err := scrape(base)
		if err != nil {
			log.Fatal(err)
		}
		singles = append(singles, time.Since(start))
		r.size, r.series, r.hostSeries = len(body), 0, 0
		for _, line := range strings.Split(body, "\n") {
			if line != "" && line[0] != '#' {
				r.series++
			}
			if strings.HasPrefix(line, "umeeting_host_last_meeting_timestamp_seconds{") {
				r.hostSeries++
			}
		}
	}
	r.single = median(singles)
	if stalledScenario {
		r.stalled(pid, addr, base)
		return r
	}

	// Scrapes at once, each on its own connection.
	stop := sampleRSS(pid, &r.peak)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var oks, busys []time.Duration
	for range *concurrent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			code, _, err := scrape(base)
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				log.Printf("scrape: %v", err)
			case code == http.StatusOK:
				oks = append(oks, d)
			case code == http.StatusServiceUnavailable:
				busys = append(busys, d)
			}
		}()
	}
	wg.Wait()
	stop()
	r.ok, r.busy = len(oks), len(busys)
	r.okMed, r.okP90, r.okMax = median(oks), quantile(oks, 0.9), quantile(oks, 1)
	r.busyMed = median(busys)
	return r
}

// stalled opens the clients that send GET /metrics and never read.
func (r *result) stalled(pid int, addr, base string) {
	stop := sampleRSS(pid, &r.peak)
	var conns []net.Conn
	for range *stalled {
		if c, err := stalledConn(addr); err == nil {
			conns = append(conns, c)
		}
	}
	time.Sleep(*hold / 2)
	start := time.Now()
	code, _, err := scrape(base)
	r.during = fmt.Sprintf("%d in %s", code, ms(time.Since(start)))
	if err != nil {
		r.during = err.Error()
	}
	time.Sleep(*hold / 2)
	for _, c := range conns {
		c.Close()
	}
	stop()
	time.Sleep(3 * time.Second)
	r.after = rss(pid)
}

// scrape is a scrape as Prometheus sends it (gzip), on a new connection.
func scrape(url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func stalledConn(addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity\r\n\r\n", addr)
	return c, nil
}

// sampleRSS records the peak RSS of pid every 20ms until the returned
// function is called.
func sampleRSS(pid int, peak *int64) func() {
	var done atomic.Bool
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for !done.Load() {
			*peak = max(*peak, rss(pid))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() { done.Store(true); <-finished }
}

// rss reads VmRSS of pid, in bytes; 0 when it cannot.
func rss(pid int) int64 {
	n, _ := testproc.ProcStatus(pid, "VmRSS")
	return n
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func median(ds []time.Duration) time.Duration { return quantile(ds, 0.5) }

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.SortFunc(s, cmp.Compare)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func mb(b int64) string         { return fmt.Sprintf("%d MB", b>>20) }
func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
