// Command historybench measures, on the real binaries, what bringing an
// account's past into Prometheus costs (issue #19), for this tree and for
// the previous route side by side in one run: this tree's one `history`
// run writing TSDB blocks with the recording rules; the previous route's
// OpenMetrics export, `promtool tsdb create-blocks-from openmetrics`, and
// promtool's rules backfill against a Prometheus that loaded those blocks.
// For each step it prints the wall time, the peak resident set (the
// kernel's maxrss of the process, through /usr/bin/time) and the output's
// size. Both binaries first start against the same simulated account (one
// page a month), so both histories hold the same meetings. Run from the
// repository root, with Debian's prometheus and promtool in PATH:
//
//	go run ./scripts/historybench [-hosts 300] [-days 90] [-previous fc88664]
//
// -previous "" measures this tree only (e.g. -hosts 10000 -days 30).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/umeeting/umeeting_exporter/simulator"
)

var (
	hosts    = flag.Int("hosts", 300, "hosts of the account")
	days     = flag.Int("days", 90, "days of history (the config's backfill)")
	previous = flag.String("previous", "fc88664", "git revision of the previous route (OpenMetrics and promtool); empty: this tree only")
	rules    = flag.String("rules", "alerts/umeeting.rules.yml", "rule file of the recording rules; empty: this tree's replay alone")
	skipThis = flag.Bool("skip-this", false, "measure the previous route only")
)

// measure is one step: wall time, CPU time (user and system), peak RSS,
// output size.
type measure struct {
	name  string
	wall  time.Duration
	cpu   time.Duration
	rssKB int64
	bytes int64
	err   error
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	work, err := os.MkdirTemp("", "historybench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)

	now := time.Now()
	sim := simulator.New(simulator.Options{Seed: 1, Hosts: *hosts, DisablePaging: true,
		HistoryStart: now.Add(-time.Duration(*days+1) * 24 * time.Hour), HistoryEnd: now.Add(-10 * time.Minute)})
	apiURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()

	bins := map[string]string{"this tree": build(".", filepath.Join(work, "new"))}
	if *previous != "" {
		src := filepath.Join(work, "src")
		if err := os.Mkdir(src, 0o755); err != nil {
			log.Fatal(err)
		}
		if out, err := exec.Command("sh", "-c", fmt.Sprintf("git archive %s | tar -x -C %s", *previous, src)).CombinedOutput(); err != nil {
			log.Fatalf("git archive %s: %v\n%s", *previous, err, out)
		}
		bins["previous"] = build(src, filepath.Join(work, "old"))
	}
	rulesAbs, err := filepath.Abs(*rules)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("history of %d hosts x %d days (%d meetings)\n", *hosts, *days, len(sim.Truth(now.Add(-time.Duration(*days)*24*time.Hour), now)))

	var rows []measure
	// This tree: one command.
	if !*skipThis {
		dir := filepath.Join(work, "new-run")
		storage := firstStart(bins["this tree"], dir, apiURL)
		out := filepath.Join(dir, "blocks")
		args := []string{"history", "--config.file=" + filepath.Join(dir, "config.yml"), "--storage.path=" + storage,
			"--label=job=umeeting", "--label=instance=exporter:9861", "--output=" + out}
		name := "this tree: history (blocks)"
		if *rules != "" {
			args, name = append(args, "--rules="+rulesAbs), "this tree: history (blocks + rules)"
		}
		rows = append(rows, run(name, out, append([]string{bins["this tree"]}, args...)...))
		b, _ := os.ReadFile(out + ".log")
		fmt.Print(string(b)) // its summary: steps, samples, the replay's and the rules' wall times
	}
	if *previous != "" {
		dir := filepath.Join(work, "old-run")
		storage := firstStart(bins["previous"], dir, apiURL)
		om := filepath.Join(dir, "history.om")
		m := run("previous: history (OpenMetrics)", om, bins["previous"], "history", "--config.file="+filepath.Join(dir, "config.yml"),
			"--storage.path="+storage, "--label=job=umeeting", "--label=instance=exporter:9861", "--output="+om)
		rows = append(rows, m)
		blocks := filepath.Join(dir, "prom")
		rows = append(rows, run("previous: promtool create-blocks-from openmetrics", blocks, "promtool", "tsdb", "create-blocks-from",
			"--max-block-duration=720h", "openmetrics", om, blocks))
		os.Remove(om)
		rows = append(rows, rulesBackfill(m.err, dir, blocks, rulesAbs, readRange(dir)))
	}
	fmt.Printf("\n%-52s %10s %10s %12s %12s  %s\n", "step", "wall_s", "cpu_s", "peak_RSS_MiB", "output_MB", "result")
	var total, totalCPU time.Duration
	for _, r := range rows {
		res := "ok"
		if r.err != nil {
			res = r.err.Error()
		}
		if strings.HasPrefix(r.name, "previous") {
			total, totalCPU = total+r.wall, totalCPU+r.cpu
		}
		fmt.Printf("%-52s %10.1f %10.1f %12.1f %12.1f  %s\n", r.name, r.wall.Seconds(), r.cpu.Seconds(), float64(r.rssKB)/1024, float64(r.bytes)/1e6, res)
	}
	if *previous != "" {
		fmt.Printf("%-52s %10.1f %10.1f\n", "previous: the three steps", total.Seconds(), totalCPU.Seconds())
	}
}

// build builds the exporter in src to bin.
func build(src, bin string) string {
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("go build in %s: %v\n%s", src, err, out)
	}
	return bin
}

// firstStart writes a config reading the simulator and runs the exporter
// until its first poll kept the state at the seam; it returns the storage.
func firstStart(bin, dir, apiURL string) string {
	storage := filepath.Join(dir, "data")
	if err := os.MkdirAll(storage, 0o700); err != nil {
		log.Fatal(err)
	}
	cfg := fmt.Sprintf("poll_interval: 1h\nbackfill: %dd\naccounts:\n  - name: acme\n    api_url: %s\n    api_key: demo-key\n    api_secret: demo-secret\n    daily_request_budget: 0\n",
		*days, apiURL)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "config.yml"), "--storage.path="+storage,
		"--web.listen-address=127.0.0.1:0")
	logs, err := os.Create(filepath.Join(dir, "exporter.log"))
	if err != nil {
		log.Fatal(err)
	}
	defer logs.Close()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(storage, "acme.state.seam")); err == nil {
			time.Sleep(time.Second) // the state itself is saved with it
			return storage
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := os.ReadFile(logs.Name())
	log.Fatalf("%s: no first start within 10 minutes:\n%s", bin, b)
	return ""
}

// run runs a command under /usr/bin/time and measures it; out is what it
// writes (a file or a folder).
func run(name, out string, args ...string) measure {
	rss := out + ".rss"
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M %U %S", "-o", rss}, args...)...)
	begun := time.Now()
	logs, err := cmd.CombinedOutput()
	m := measure{name: name, wall: time.Since(begun), err: err}
	if err != nil {
		m.err = fmt.Errorf("%v: %s", err, lastLine(string(logs)))
	}
	if b, rerr := os.ReadFile(rss); rerr == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 { // after "Command exited with..."
			f = f[len(f)-3:]
			m.rssKB, _ = strconv.ParseInt(f[0], 10, 64)
			user, _ := strconv.ParseFloat(f[1], 64)
			sys, _ := strconv.ParseFloat(f[2], 64)
			m.cpu = time.Duration((user + sys) * float64(time.Second))
		}
	}
	os.WriteFile(out+".log", logs, 0o600)
	filepath.WalkDir(out, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				m.bytes += fi.Size()
			}
		}
		return nil
	})
	return m
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// readRange reads the --start and --end the previous route printed.
func readRange(dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "history.om.log"))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[0] == "promtool" && strings.Contains(line, " rules ") {
			var out []string
			for _, a := range f {
				if strings.HasPrefix(a, "--start=") || strings.HasPrefix(a, "--end=") {
					out = append(out, a)
				}
			}
			return out
		}
	}
	return nil
}

// rulesBackfill starts Prometheus on the imported blocks and runs
// promtool's rules backfill against it, as the previous route's step 5.
func rulesBackfill(prev error, dir, blocks, rules string, rng []string) measure {
	name := "previous: promtool create-blocks-from rules"
	if prev != nil || len(rng) != 2 {
		return measure{name: name, err: errors.New("the export failed or printed no range")}
	}
	addr := freeAddr()
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte("global:\n  evaluation_interval: 1m\n"), 0o600)
	prom := exec.Command("prometheus", "--config.file="+cfg, "--storage.tsdb.path="+blocks, "--storage.tsdb.retention.time=1y",
		"--web.listen-address="+addr, "--log.level=warn")
	if err := prom.Start(); err != nil {
		return measure{name: name, err: err}
	}
	defer func() { prom.Process.Signal(syscall.SIGTERM); prom.Wait() }()
	for range 600 {
		if resp, err := http.Get("http://" + addr + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	out := filepath.Join(dir, "rule-blocks")
	args := append([]string{"promtool", "tsdb", "create-blocks-from", "--max-block-duration=162h", "rules", "--url=http://" + addr,
		"--eval-interval=1m"}, rng...)
	return run(name, out, append(args, "--output-dir="+out, rules)...)
}

// freeAddr is a free loopback address.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
