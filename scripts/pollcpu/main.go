// Command pollcpu measures, on the real binaries, what polls cost in the
// steady state of an account with 10,000 hosts (110,000 series), for this
// tree and for the previous design side by side (issue #12): the CPU time
// of a poll that counts nothing new, and the resident set after the first
// poll and after 20 more. Both binaries poll the same simulator (one
// meeting per host in the lookback, paged at 100) every few seconds and
// are never scraped. Run from the repository root:
//
//	go run ./scripts/pollcpu [-previous 2f8324b] [-polls 20] [-budget 0] [-rounds 1]
//
// A third program, the HTTP floor (scripts/pollcpu/floor), sends the same
// requests with the same HTTP client and only reads the answers: no poll
// can cost less. With -rounds N the three are measured N times each, in
// turns (this tree, the previous design, the floor, this tree, ...), so
// that all see the same moments of a shared machine; each round and the
// median ratios are printed. -warmup N leaves N polls after the first out
// of the measure: the steady state comes after them.
//
// With -new N, N meetings of existing hosts are added to the simulator
// every poll interval, so that polls count about N meetings each (a poll
// that counts a few meetings; compare with -previous set to the revision
// before the incremental publication, b0761a8).
//
// -budget sets daily_request_budget (0: none; the default of the config is
// 2000), so that what keeping the budget's request times durable costs is
// measured too; each poll takes hosts/100 requests, so -polls must leave
// the budget enough for them. -cpuprofile profiles this tree's binary over
// the measured polls (and does not run the others).
//
// It stops by itself (about 3 minutes a round).
package main

import (
	"bufio"
	"errors"
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
	previous = flag.String("previous", "2f8324b", "git revision of the previous design, before the exposition cache")
	hosts    = flag.Int("hosts", 10000, "hosts of the account, each with one meeting in the lookback")
	polls    = flag.Int("polls", 20, "polls measured after the first and the warm-up")
	warmup   = flag.Int("warmup", 0, "polls after the first that are not measured (the steady state comes after them)")
	interval = flag.Duration("interval", 3*time.Second, "poll interval")
	newMeets = flag.Int("new", 0, "meetings of existing hosts added every poll interval (0: polls count nothing new)")
	budget   = flag.Int("budget", 0, "daily_request_budget of the account (0: none)")
	logLevel = flag.String("log.level", "debug", "the exporters' --log.level; below debug, polls are counted from the API's bursts of requests, as polls that count nothing log no line then")
	profile  = flag.String("cpuprofile", "", "write a CPU profile of this tree's binary over the measured polls to this file (the previous design is not run)")
	rounds   = flag.Int("rounds", 1, "measure each binary this many times, in turns")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	if pages := (*hosts + 99) / 100; *budget > 0 && (*polls+2)*pages > *budget {
		log.Fatalf("-budget %d does not allow %d polls of %d requests (-polls counts after the first)", *budget, *polls+2, pages)
	}
	dir, err := os.MkdirTemp("", "pollcpu")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	current := filepath.Join(dir, "current")
	build(".", current)
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	if out, err := exec.Command("sh", "-c", fmt.Sprintf("git archive %s | tar -x -C %s", *previous, src)).CombinedOutput(); err != nil {
		log.Fatalf("git archive %s: %v\n%s", *previous, err, out)
	}
	prev := filepath.Join(dir, "previous")
	build(src, prev)
	floor := filepath.Join(dir, "floor")
	build("./scripts/pollcpu/floor", floor)

	now := time.Now()
	sim := simulator.New(simulator.Options{APIKey: "k", APISecret: "s", NoGenerated: true})
	ms := make([]umeeting.Meeting, *hosts)
	for i := range ms {
		end := now.Add(-time.Hour - time.Duration(i%(20*3600))*time.Second)
		ms[i] = umeeting.Meeting{UUID: fmt.Sprintf("m%07dXw8NitKXw==", i), Host: fmt.Sprintf("Host %d", i), Email: fmt.Sprintf("host%d@example.com", i),
			UserType: []string{"Corp", "Pro", "Basic", "Edu"}[i%4], Start: end.Add(-time.Duration(5+i%90) * time.Minute), End: end,
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
  - {name: steady, api_url: %q, api_key: k, api_secret: s, page_size: 100, daily_request_budget: %d}
`, *interval, apiURL, *budget)), 0o600)

	what := "nothing new"
	if *newMeets > 0 {
		what = fmt.Sprintf("%d new meetings every %s", *newMeets, *interval)
	}
	fmt.Printf("%d hosts, one meeting each in the lookback, polled every %s, daily_request_budget %d; %d polls (%s) measured after the first and %d more\n\n",
		*hosts, *interval, *budget, *polls, what, *warmup)
	fmt.Printf("| round | binary | CPU per poll, %s | RSS after the first poll | RSS after the last | ratio |\n", what)
	fmt.Println("| ---: | --- | ---: | ---: | ---: | ---: |")
	binaries := []binary{{name: "this tree", path: current}, {name: "previous design (" + *previous + ")", path: prev},
		{name: "HTTP floor: the same requests, answers read and dropped", path: floor,
			args: []string{fmt.Sprint("-pages=", (*hosts+99)/100)}, floor: true}}
	var ratios, floors []float64
	for round := 1; round <= *rounds; round++ {
		var cpu [3]float64
		for i, b := range binaries {
			prof := ""
			if i == 0 {
				prof = *profile
			}
			if i > 0 && *profile != "" {
				break // a profiled run is no measure: the profiler costs CPU too
			}
			c, first, last := run(b, cfg, filepath.Join(dir, fmt.Sprintf("data%d-%d", round, i)), sim, prof)
			cpu[i] = c
			fmt.Printf("| %d | %s | %.1f ms | %.0f MiB | %.0f MiB | %.2f |\n", round, b.name, c*1000, first/(1<<20), last/(1<<20), last/first)
		}
		ratios = append(ratios, 100*cpu[0]/cpu[1])
		floors = append(floors, 100*cpu[2]/cpu[1])
	}
	slices.Sort(ratios)
	slices.Sort(floors)
	fmt.Printf("\nCPU per poll, this tree / previous design, by round (sorted): %.1f%%; median %.1f%%\n", ratios, ratios[len(ratios)/2])
	fmt.Printf("HTTP floor / previous design, by round (sorted): %.1f%%; median %.1f%%\n", floors, floors[len(floors)/2])
}

// binary is a program measured: an exporter, or the HTTP floor (which
// logs no line: its polls are counted from the API's bursts of requests).
type binary struct {
	name, path string
	args       []string
	floor      bool
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
// Polls are counted from the debug log line each poll writes (both designs
// do): reading /metrics would cost the previous design a full gather.
func run(b binary, cfg, data string, sim *simulator.Simulator, prof string) (cpuPerPoll, rssFirst, rssLast float64) {
	bin := b.path
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, append([]string{"--config.file=" + cfg, "--storage.path=" + data, "--web.listen-address=" + addr, "--log.level=" + *logLevel}, b.args...)...)
	if prof != "" {
		cmd.Args = append(cmd.Args, "--web.enable-pprof")
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var done atomic.Int64
	base := bursts.load()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, `msg="Poll finished"`) {
				done.Add(1)
			} else if strings.Contains(line, "level=error") {
				log.Printf("%s: %s", filepath.Base(bin), line)
			}
		}
	}()
	pid := cmd.Process.Pid
	// Polls finished: at debug, each logs a line; otherwise every burst of
	// requests but the one going on is a poll finished (the first poll, a
	// baseline, logs its line at info).
	finished := done.Load
	if *logLevel != "debug" || b.floor {
		finished = func() int64 { return max(done.Load(), bursts.load()-base-1) }
	}
	waitPolls := func(n int64) {
		deadline := time.Now().Add(10 * time.Minute)
		for finished() < n {
			if time.Now().After(deadline) {
				log.Fatalf("%s: %d polls after 10 minutes, want %d", bin, finished(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitPolls(1)
	time.Sleep(time.Second) // the first poll's publication
	rssFirst = procStatus(pid, "VmRSS")
	if *newMeets > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go addMeetings(sim, stop)
	}
	waitPolls(1 + int64(*warmup))
	start, from := cpuSeconds(pid), finished()
	profiled := make(chan struct{})
	if prof != "" {
		// Over most of the measured polls; the profiler's own cost is small.
		secs := int((time.Duration(*polls-1) * *interval).Seconds())
		go func() {
			defer close(profiled)
			resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
			if err != nil {
				log.Printf("profile: %v", err)
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(prof)
			if err == nil {
				_, err = io.Copy(f, resp.Body)
				f.Close()
			}
			if err != nil {
				log.Printf("profile: %v", err)
			}
		}()
	} else {
		close(profiled)
	}
	waitPolls(from + int64(*polls))
	<-profiled
	cpuPerPoll = (cpuSeconds(pid) - start) / float64(finished()-from)
	rssLast = procStatus(pid, "VmRSS")
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

// procStatus reads a Vm field of pid's /proc status in bytes; 0 when the
// field is missing.
func procStatus(pid int, field string) float64 {
	n, err := testproc.ProcStatus(pid, field)
	if err != nil && !errors.Is(err, testproc.ErrNoStatusField) {
		log.Fatal(err)
	}
	return float64(n)
}
