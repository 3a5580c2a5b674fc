// Command pollcpu measures, on the real binary, what polls cost in the
// steady state of an account with -hosts hosts and -per-host meetings each
// in the lookback (10,000 and 2 by default: 20,000 meetings listed per
// poll, paged at 100), side by side with the poll floor: the CPU time of a
// poll, and the resident set after the first poll and after the last. The
// poll floor (scripts/pollcpu/floor) sends the same requests with net/http
// and decodes every answer with encoding/json into structs, nothing more:
// what any client of this API pays. Both poll the same simulator every
// -interval and are never scraped; their polls are counted from the API's
// bursts of requests. Run from the repository root:
//
//	go run ./scripts/pollcpu [-hosts 10000] [-per-host 2] [-polls 10] [-new 0] [-rounds 2]
//
// With -rounds N both are measured N times, in turns (the exporter, the
// floor, the exporter, ...), so that both see the same moments of a shared
// machine; each round and the median ratio are printed. With -new N, N
// meetings of existing hosts are added to the simulator every poll
// interval, so that polls count about N meetings each.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/testproc"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

var (
	hosts    = flag.Int("hosts", 10000, "hosts of the account")
	perHost  = flag.Int("per-host", 2, "meetings of each host in the lookback")
	polls    = flag.Int("polls", 10, "polls measured after the first")
	interval = flag.Duration("interval", 3*time.Second, "poll interval")
	newMeets = flag.Int("new", 0, "meetings of existing hosts added every poll interval (0: polls count nothing new)")
	rounds   = flag.Int("rounds", 2, "measure each binary this many times, in turns")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	pages := (*hosts**perHost + 99) / 100
	dir, err := os.MkdirTemp("", "pollcpu")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	current := filepath.Join(dir, "current")
	build(".", current)
	floor := filepath.Join(dir, "floor")
	build("./scripts/pollcpu/floor", floor)

	now := time.Now()
	sim := simulator.New(simulator.Options{APIKey: "pollcpu-key", APISecret: "pollcpu-secret", NoGenerated: true})
	ms := make([]umeeting.Meeting, *hosts**perHost)
	for i := range ms {
		h := i % *hosts
		end := now.Add(-time.Hour - time.Duration(i%(20*3600))*time.Second)
		ms[i] = umeeting.Meeting{UUID: fmt.Sprintf("m%07dXw8NitKXw==", i), Host: fmt.Sprintf("Host %d", h), Email: fmt.Sprintf("host%d@example.com", h),
			UserType: []string{"Corp", "Pro", "Basic", "Edu"}[h%4], Start: end.Add(-time.Duration(5+i%90) * time.Minute), End: end,
			Participants: 1 + i%30, Features: umeeting.Feature(i % 64)}
	}
	sim.Add(ms...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	api := &http.Server{Handler: bursts.wrap(sim)}
	go api.Serve(ln)
	defer api.Close()
	apiURL := "http://" + ln.Addr().String() + simulator.APIPath
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`poll_interval: %s
lookback: 48h
backfill: 48h
accounts:
  - {name: steady, api_url: %q, api_key: pollcpu-key, api_secret: pollcpu-secret, page_size: 100, daily_request_budget: 0}
`, *interval, apiURL)), 0o600)

	what := "nothing new"
	if *newMeets > 0 {
		what = fmt.Sprintf("%d new meetings every %s", *newMeets, *interval)
	}
	fmt.Printf("%d hosts, %d meetings each in the lookback (%d pages a poll), polled every %s; %d polls (%s) measured after the first\n\n",
		*hosts, *perHost, pages, *interval, *polls, what)
	fmt.Printf("| round | binary | CPU per poll, %s | RSS after the first poll | RSS after the last |\n", what)
	fmt.Println("| ---: | --- | ---: | ---: | ---: |")
	binaries := []binary{{name: "this tree", path: current},
		{name: "poll floor: the same requests, decoded with encoding/json", path: floor, args: []string{fmt.Sprint("-pages=", pages)}}}
	var ratios []float64
	for round := 1; round <= *rounds; round++ {
		var cpu [2]float64
		for i, b := range binaries {
			c, first, last := run(b, cfg, filepath.Join(dir, fmt.Sprintf("data%d-%d", round, i)), sim)
			cpu[i] = c
			fmt.Printf("| %d | %s | %.1f ms | %.0f MiB | %.0f MiB |\n", round, b.name, c*1000, first/(1<<20), last/(1<<20))
		}
		ratios = append(ratios, cpu[0]/cpu[1])
	}
	slices.Sort(ratios)
	fmt.Printf("\nCPU per poll, this tree / poll floor, by round (sorted): %.2f; median %.2f\n", ratios, ratios[len(ratios)/2])
}

// binary is a program measured: the exporter, or the HTTP floor.
type binary struct {
	name, path string
	args       []string
}

// burstCounter counts the bursts of API requests: a request more than a
// third of the poll interval (at most a second) after the one before
// starts a burst, the requests of one poll.
type burstCounter struct {
	mu   sync.Mutex
	last time.Time
	n    int64
}

var bursts burstCounter

func (b *burstCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		now := time.Now()
		if now.Sub(b.last) > min(time.Second, *interval/3) {
			b.n++
		}
		b.last = now
		b.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (b *burstCounter) load() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

func build(src, out string) {
	abs, _ := filepath.Abs(out)
	cmd := exec.Command("go", "build", "-o", abs, ".")
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("go build in %s: %v\n%s", src, err, b)
	}
}

// run starts bin, waits for its first poll, then for polls more, and
// returns the CPU seconds per poll after the first and the resident sets.
// Every burst of requests but the one going on is a poll finished; the
// exporter's first poll (a baseline) also logs a line when it is.
func run(b binary, cfg, data string, sim *simulator.Simulator) (cpuPerPoll, rssFirst, rssLast float64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(b.path, append([]string{"--config.file=" + cfg, "--storage.path=" + data, "--web.listen-address=" + addr, "--log.level=info"}, b.args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var logged atomic.Int64
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, `msg="Poll finished"`) {
				logged.Add(1)
			} else if strings.Contains(line, "level=error") {
				log.Printf("%s: %s", filepath.Base(b.path), line)
			}
		}
	}()
	pid := cmd.Process.Pid
	base := bursts.load()
	finished := func() int64 { return max(logged.Load(), bursts.load()-base-1) }
	waitPolls := func(n int64) {
		deadline := time.Now().Add(10 * time.Minute)
		for finished() < n {
			if time.Now().After(deadline) {
				log.Fatalf("%s: %d polls after 10 minutes, want %d", b.path, finished(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitPolls(1)
	time.Sleep(time.Second) // the first poll's publication
	rssFirst = rss(pid)
	if *newMeets > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go addMeetings(sim, stop)
	}
	start, from := cpuSeconds(pid), finished()
	waitPolls(from + int64(*polls))
	cpuPerPoll = (cpuSeconds(pid) - start) / float64(finished()-from)
	rssLast = rss(pid)
	return cpuPerPoll, rssFirst, rssLast
}

// addMeetings adds -new meetings of existing hosts, ended a minute ago,
// every poll interval until stop is closed.
func addMeetings(sim *simulator.Simulator, stop <-chan struct{}) {
	t := time.NewTicker(*interval)
	defer t.Stop()
	for n := 0; ; {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		end := time.Now().Add(-time.Minute)
		ms := make([]umeeting.Meeting, *newMeets)
		for i := range ms {
			h := n % *hosts
			ms[i] = umeeting.Meeting{UUID: fmt.Sprintf("new%d-%d", time.Now().UnixNano(), n), Host: fmt.Sprintf("Host %d", h), Email: fmt.Sprintf("host%d@example.com", h),
				UserType: []string{"Corp", "Pro", "Basic", "Edu"}[h%4], Start: end.Add(-time.Hour), End: end, Participants: 3}
			n++
		}
		sim.Add(ms...)
	}
}

// rss is a process's resident set in bytes.
func rss(pid int) float64 {
	n, err := testproc.ProcStatus(pid, "VmRSS")
	if err != nil {
		log.Fatal(err)
	}
	return float64(n)
}

// cpuSeconds is a process's user and system CPU time (/proc/PID/stat).
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	// Fields after the command (in parentheses): utime and stime are the
	// 14th and 15th fields of the line.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}
