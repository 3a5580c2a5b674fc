// Command umeeting_exporter polls the UMeeting hisMeeting API and serves
// meeting usage as Prometheus metrics.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/directory"
	"github.com/umeeting/umeeting_exporter/exposition"
	"github.com/umeeting/umeeting_exporter/history"
	"github.com/umeeting/umeeting_exporter/internal/logging"
	"github.com/umeeting/umeeting_exporter/internal/serve"
	"github.com/umeeting/umeeting_exporter/poller"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/store"
)

const (
	exporterName     = "umeeting_exporter"
	demoAPIKey       = "demo-key"
	demoAPISecret    = "demo-secret"
	demoPollInterval = 10 * time.Second
	demoBackfill     = 60 * 24 * time.Hour
	// demoConcurrentLimit is a licence limit the demo company stays below
	// (its daily peak is about 35), so the licence panels have data.
	demoConcurrentLimit = 50
)

func main() {
	serveCmd := kingpin.Command("serve", "Poll the API and serve the metrics (the default command).").Default()
	var (
		serveFlags   = addCommonFlags(serveCmd)
		configCheck  = serveCmd.Flag("config.check", "Validate the configuration file, print what is wrong, and exit.").Bool()
		metricsPath  = serveCmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		enablePprof  = serveCmd.Flag("web.enable-pprof", "Serve Go profiling under /debug/pprof/ (heap, CPU, goroutines) and link it from the landing page.").Bool()
		toolkitFlags = kingpinflag.AddFlags(serveCmd, ":9861")
		limits       = serve.AddFlags(serveCmd)
		historyCmd   = kingpin.Command("history", "Write the usage of the past (config backfill or --since, up to where the live counters began), and the recording rules over it, as Prometheus TSDB blocks into a new or empty folder, to be moved into Prometheus's data folder (docs/history.md).")
		histFlags    = addCommonFlags(historyCmd)
		histOut      = historyCmd.Flag("output", "New or empty folder to write the blocks to (made 0700, files 0600: they hold e-mail addresses).").Required().String()
		histRules    = historyCmd.Flag("rules", "Prometheus rule file whose recording rules are evaluated over the history and written as blocks too (repeatable; e.g. alerts/umeeting.rules.yml).").ExistingFiles()
		histEval     = historyCmd.Flag("evaluation-interval", "Evaluation interval of rule groups without their own: your Prometheus's global evaluation_interval.").Default(history.DefaultEvalInterval.String()).Duration()
		histHosts    = historyCmd.Flag("per-host", "Write per-host series as the live exporter does; --no-per-host writes per-account series only, for large accounts.").Default("true").Bool()
		histAccts    = historyCmd.Flag("account", "Account to export (repeatable); default every account.").Strings()
		histLabels   = historyCmd.Flag("label", "Label Prometheus adds to the exporter's series when it scrapes it, NAME=VALUE, repeatable: at least job and instance, as on its up series (e.g. --label=job=umeeting --label=instance=exporter:9861).").StringMap()
		histSince    = historyCmd.Flag("since", "How far back the history reaches: a duration before the first start (e.g. 180d) or a date (YYYY-MM-DD, UTC), further back than backfill; default backfill. Stops where the API serves nothing older.").String()
		histMaxReq   = historyCmd.Flag("max-requests", "API requests this run may make per account; when used up, run again later to resume.").Default(strconv.Itoa(history.DefaultMaxRequests)).Int()
	)
	kingpin.CommandLine.Help = "Serves UMeeting meeting usage from the hisMeeting API as Prometheus metrics.\n\n" +
		"Polls each configured account on its own schedule and counts every finished meeting once, across restarts. " +
		"Reloads the configuration on SIGHUP and on POST /-/reload (a bad file keeps the running one); " +
		"--config.check validates a file and exits. " +
		"The server's flags (--config.file, --web.*, --log.*) are listed by 'serve --help', history's by 'history --help'."
	kingpin.Version(version.Print(exporterName))
	kingpin.HelpFlag.Short('h')
	command := kingpin.Parse()

	if command == historyCmd.FullCommand() {
		logger, _ := logging.New(os.Stderr, *histFlags.logLevel, *histFlags.logFormat)
		cfg, err := historyConfig(*histFlags.configFile, *histFlags.demo, *histFlags.demoSimulator)
		var since history.Since
		if err == nil {
			since, err = history.ParseSince(*histSince)
		}
		if err == nil {
			err = history.Run(context.Background(), cfg, history.Options{
				StorageDir: *histFlags.storagePath, Output: *histOut, PerHost: *histHosts, Accounts: *histAccts,
				MaxRequests: *histMaxReq, Labels: *histLabels, Since: since, RuleFiles: *histRules, EvalInterval: *histEval,
				Progress: os.Stderr, Logger: logger,
			})
		}
		if err != nil {
			level.Error(logger).Log("msg", "History export failed", "err", err)
			os.Exit(1)
		}
		return
	}
	var (
		configFile    = serveFlags.configFile
		storagePath   = serveFlags.storagePath
		demo          = serveFlags.demo
		demoSimulator = serveFlags.demoSimulator
	)
	logger, slogger := logging.New(os.Stderr, *serveFlags.logLevel, *serveFlags.logFormat)

	if *configCheck {
		cfg, err := config.Load(*configFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		dirWarnings, err := directory.Check(cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "config file %s: %v\n", *configFile, err)
			os.Exit(1)
		}
		for _, w := range append(cfg.Warnings(), dirWarnings...) {
			fmt.Printf("%s: warning: %s\n", *configFile, w)
		}
		fmt.Printf("%s: OK, %d account(s)\n", *configFile, len(cfg.Accounts))
		return
	}

	level.Info(logger).Log("msg", "Starting "+exporterName, "version", version.Info(), "build_context", version.BuildContext())

	loadConfig := func() (*config.Config, error) { return config.Load(*configFile) }
	if *demo {
		if err := checkLoopback(*demoSimulator); err != nil {
			level.Error(logger).Log("msg", "Bad --demo.simulator-address", "err", err)
			os.Exit(1)
		}
		sim := simulator.New(simulator.Options{Seed: 1, APIKey: demoAPIKey, APISecret: demoAPISecret})
		apiURL, err := sim.Start(*demoSimulator)
		if err != nil {
			level.Error(logger).Log("msg", "Starting the demo simulator failed", "err", err)
			os.Exit(1)
		}
		defer sim.Close()
		level.Info(logger).Log("msg", "Demo mode: polling the built-in simulator", "account", "demo", "simulator", sim.Addr())
		loadConfig = func() (*config.Config, error) { return demoConfig(*configFile, apiURL) }
	}

	reg := prometheus.NewRegistry()
	coll := collector.New()
	inst := collector.NewInstruments(reg)
	reg.MustRegister(
		versioncollector.NewCollector(exporterName),
		collectors.NewGoCollector(),
		collector.NewProcessCollector(),
		coll.Status(), // usage metrics are served from coll.Cache()
	)

	unlock, err := store.LockDir(*storagePath)
	if err != nil {
		level.Error(logger).Log("msg", "Cannot use the storage folder", "err", err)
		os.Exit(1)
	}
	defer unlock()
	manager := poller.NewManager(*storagePath, coll, inst, logger)
	dirs := directory.NewManager(logger, coll.SetDirectory)
	reg.MustRegister(dirs)
	manager.SetAttributor(dirs)
	defer dirs.Stop()
	reloads := &reloader{load: loadConfig, manager: manager, dirs: dirs, inst: inst, logger: logger}
	reload := reloads.reload
	// Bind before the first poll: a start that cannot serve sends no request.
	listeners, err := serve.Listen(toolkitFlags)
	if err != nil {
		level.Error(logger).Log("msg", "Cannot serve HTTP", "err", err)
		os.Exit(1)
	}
	if err := reload(); err != nil && !reloads.started {
		os.Exit(1) // a directory that does not read is no reason not to start
	}
	defer stopWithin(manager, 15*time.Second, logger)

	mux := http.NewServeMux()
	mux.Handle(*metricsPath, limits.Scrape(promhttp.InstrumentMetricHandler(reg, exposition.NewHandler(coll.Cache(), reg, exposition.HandlerOpts{
		ErrorLog:            logging.ScrapeErrorLog{Logger: logger},
		MaxRequestsInFlight: limits.MaxRequests,
	}))))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy.") })
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !manager.Ready() {
			http.Error(w, "Not ready.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready.")
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			http.Error(w, "Use POST or PUT to reload the configuration.", http.StatusMethodNotAllowed)
			return
		}
		if err := reload(); err != nil {
			http.Error(w, "Reload failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Reloaded.")
	})
	profiling := "false"
	if *enablePprof {
		profiling = "true"
		mux.Handle("/debug/pprof/", http.DefaultServeMux) // where net/http/pprof registers its handlers
	}
	if *metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "UMeeting Exporter",
			Description: "Prometheus exporter for UMeeting meeting usage",
			Version:     version.Info(),
			Profiling:   profiling,
			Links: []web.LandingLinks{
				{Address: *metricsPath, Text: "Metrics"},
				{Address: "/-/healthy", Text: "Health"},
				{Address: "/-/ready", Text: "Readiness"},
			},
		})
		if err != nil {
			level.Error(logger).Log("msg", "Building the landing page failed", "err", err)
			os.Exit(1)
		}
		mux.Handle("/", landing)
	}

	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: logging.ServerErrorLog(logger)}
	limits.Apply(server)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGHUP {
				go reload() // a reload waits for the directory: SIGTERM must not
				continue
			}
			level.Info(logger).Log("msg", "Shutting down", "signal", sig)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			server.Shutdown(ctx)
			cancel()
			return
		}
	}()
	if err := web.ServeMultiple(listeners, server, toolkitFlags, slogger); err != nil && !errors.Is(err, http.ErrServerClosed) {
		level.Error(logger).Log("msg", "HTTP server failed", "err", err)
		os.Exit(1)
	}
}

// commonFlags are the flags both commands have.
type commonFlags struct {
	configFile, storagePath, demoSimulator, logLevel, logFormat *string
	demo                                                        *bool
}

// addCommonFlags adds the flags of both commands to cmd: each command's
// --help shows its own flags only.
func addCommonFlags(cmd *kingpin.CmdClause) commonFlags {
	return commonFlags{
		configFile:    cmd.Flag("config.file", "Configuration file.").Default("config.yml").String(),
		storagePath:   cmd.Flag("storage.path", "Folder for the state that keeps counts across restarts.").Default("data").String(),
		demo:          cmd.Flag("demo", "Poll a built-in UMeeting simulator as account \"demo\"; needs no credentials.").Bool(),
		demoSimulator: cmd.Flag("demo.simulator-address", "Loopback address of the demo simulator.").Default("127.0.0.1:0").String(),
		logLevel:      cmd.Flag("log.level", "Only log messages with the given severity or above. One of: [debug, info, warn, error]").Default("info").Enum("debug", "info", "warn", "error"),
		logFormat:     cmd.Flag("log.format", "Output format of log messages. One of: [logfmt, json]").Default("logfmt").Enum("logfmt", "json"),
	}
}

// checkLoopback refuses a simulator address off the loopback interface: the
// simulator's control endpoints (fault injection) must not be reachable
// from the network.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not a loopback address (use 127.0.0.1:PORT)", addr)
	}
	return nil
}

// stopWithin stops the pollers, but gives up waiting after d so that a
// stuck request cannot keep the process from exiting; every state was
// saved after its last successful poll anyway.
func stopWithin(m *poller.Manager, d time.Duration, logger log.Logger) {
	done := make(chan struct{})
	go func() { m.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		level.Warn(logger).Log("msg", "Pollers did not stop in time; exiting anyway", "waited", model.Duration(d))
	}
}

// demoTariffs price the demo company's licences and usage (CNY).
var demoTariffs = config.Tariffs{
	Currency:       "CNY",
	Monthly:        map[string]float64{"Corp": 120, "Pro": 90, "Basic": 30, "Edu": 20},
	PerMeetingHour: 1.5,
	PerPSTNMeeting: 4,
}

// historyConfig is the config the history export reads: the file, or with
// --demo the demo account of a running exporter whose simulator listens on
// simAddr.
func historyConfig(path string, demo bool, simAddr string) (*config.Config, error) {
	if !demo {
		return config.Load(path)
	}
	if _, port, err := net.SplitHostPort(simAddr); err != nil || port == "0" {
		return nil, fmt.Errorf("history --demo reads the simulator of the running demo exporter: give its --demo.simulator-address (e.g. 127.0.0.1:9862), not %q", simAddr)
	}
	if err := checkLoopback(simAddr); err != nil {
		return nil, err
	}
	return demoConfig(path, "http://"+simAddr+simulator.APIPath)
}

// demoConfig is the config file (when there is one) with its accounts
// replaced by the demo account, polling the simulator at apiURL often.
func demoConfig(path, apiURL string) (*config.Config, error) {
	// The file's accounts are replaced: read it without validating them.
	cfg, err := config.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		cfg, err = config.Decode(nil, ".")
	}
	if err != nil {
		return nil, err
	}
	a := config.DefaultAccount
	a.Name, a.APIURL, a.APIKey, a.APISecret = "demo", apiURL, demoAPIKey, demoAPISecret
	a.DailyRequestBudget = 0 // the simulator has no rate limit
	a.ConcurrentMeetingsLimit = demoConcurrentLimit
	cfg.Accounts = []config.Account{a}
	cfg.PollInterval = config.NewDuration(demoPollInterval)
	// The simulator keeps 60 days of history: read it all on the first
	// start, so the idle-licence table has hosts idle for 30+ days.
	cfg.Backfill = config.NewDuration(demoBackfill)
	if cfg.Directory == nil {
		// The demo company's directory, with licence holders who never met.
		cfg.Directory = &config.Directory{Embedded: directory.DemoCSV, RefreshInterval: config.DefaultDirectoryRefresh, FileTimeout: config.DefaultFileTimeout,
			MaxDepartments: config.DefaultMaxDepartments}
		if cfg.Tariffs == nil {
			cfg.Tariffs = &demoTariffs
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	return cfg, nil
}
