// Package poller knows time: it polls each account on its schedule, never
// two polls of one account at once, applies a successful poll to the
// account's store as a whole, saves it, and hands fresh snapshots to the
// collector. A failed poll changes no count: the last good numbers stay
// served and umeeting_up says the poll failed.
package poller

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	promconfig "github.com/prometheus/common/config"

	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// settings is everything one account's runner depends on; a reload
// restarts a runner only when its settings changed.
type settings struct {
	account      config.Account
	pollInterval time.Duration
	pollTimeout  time.Duration
	lookback     time.Duration
	backfill     time.Duration
	metrics      collector.Options
	// include and exclude stand for the compiled expressions in comparisons.
	include, exclude string
}

func newSettings(cfg *config.Config, a config.Account) settings {
	s := settings{
		account:      a,
		pollInterval: cfg.PollInterval.D(),
		pollTimeout:  cfg.EffectivePollTimeout(),
		lookback:     cfg.Lookback.D(),
		backfill:     cfg.Backfill.D(),
		metrics:      collector.Options{PerHost: cfg.Metrics.PerHost, MaxHosts: cfg.Metrics.MaxHosts},
	}
	if re := cfg.Metrics.HostInclude; re != nil {
		s.metrics.Include, s.include = re.Regexp, re.String()
	}
	if re := cfg.Metrics.HostExclude; re != nil {
		s.metrics.Exclude, s.exclude = re.Regexp, re.String()
	}
	return s
}

// equal compares settings by value: zones by name, expressions by text.
func (s settings) equal(o settings) bool {
	s.account.Location, o.account.Location = nil, nil
	s.metrics.Include, s.metrics.Exclude, o.metrics.Include, o.metrics.Exclude = nil, nil, nil, nil
	return reflect.DeepEqual(s, o)
}

// Manager runs one poller per configured account.
type Manager struct {
	dir    string
	logger log.Logger
	coll   *collector.Collector
	inst   *collector.Instruments
	now    func() time.Time

	mu      sync.Mutex
	runners map[string]*runner
	stores  map[string]*store.Store
	budgets map[string]*umeeting.Budget
	ready   bool

	// attributor joins counted meetings with the directory (nil: none).
	attributor store.Attributor
}

// SetAttributor makes every account count its meetings also by the
// department and cost centre a gives (the directory join); call it
// before the first Apply.
func (m *Manager) SetAttributor(a store.Attributor) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attributor = a
}

// NewManager returns a Manager keeping state under dir.
func NewManager(dir string, coll *collector.Collector, inst *collector.Instruments, logger log.Logger) *Manager {
	return &Manager{
		dir: dir, logger: logger, coll: coll, inst: inst, now: time.Now,
		runners: map[string]*runner{},
		stores:  map[string]*store.Store{},
		budgets: map[string]*umeeting.Budget{},
	}
}

// Ready says whether a configuration was applied.
func (m *Manager) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ready
}

// Apply makes the running pollers match cfg: new accounts start, removed
// ones stop, changed ones restart with their counts kept. Clients are built
// first, so a bad account config changes nothing.
func (m *Manager) Apply(cfg *config.Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]settings{}
	clients := map[string]*umeeting.Client{}
	for _, a := range cfg.Accounts {
		s := newSettings(cfg, a)
		want[a.Name] = s
		if r := m.runners[a.Name]; r != nil && r.set.equal(s) {
			continue
		}
		c, err := m.newClient(s)
		if err != nil {
			return fmt.Errorf("account %s: %w", a.Name, err)
		}
		clients[a.Name] = c
	}
	// Open the new accounts' states before changing anything: an
	// unreadable state file fails the whole apply.
	opened := map[string]*store.Store{}
	for name := range clients {
		if m.stores[name] != nil {
			continue
		}
		st, err := m.openStore(name)
		if err != nil {
			return err
		}
		opened[name] = st
	}
	for name, r := range m.runners {
		if _, keep := want[name]; !keep {
			r.stop()
			delete(m.runners, name)
			delete(m.stores, name)
			delete(m.budgets, name)
			m.coll.Delete(name)
			m.inst.DeleteAccount(name)
			level.Info(m.logger).Log("msg", "Stopped polling account no longer configured", "account", name)
		}
	}
	for name, c := range clients {
		if r := m.runners[name]; r != nil {
			r.stop()
		}
		st := m.stores[name]
		if st == nil {
			st = opened[name]
			m.stores[name] = st
			m.persistBudget(name, m.budgets[name], st)
		}
		m.inst.InitAccount(name)
		r := &runner{
			name: name, set: want[name], client: c, store: st, budget: m.budgets[name],
			coll: m.coll, inst: m.inst, now: m.now,
			logger: log.With(m.logger, "account", name),
		}
		m.runners[name] = r
		r.start()
	}
	if m.attributor != nil {
		maxGroups := 0
		if cfg.Directory != nil {
			maxGroups = cfg.Directory.MaxDepartments
		}
		for _, st := range m.stores {
			st.SetAttributor(m.attributor, maxGroups)
		}
	}
	m.ready = true
	return nil
}

// persistBudget hands the requests saved with the state to the account's
// budget, and saves the state before each new request is sent, so that no
// restart or crash lets the exporter exceed daily_request_budget.
func (m *Manager) persistBudget(name string, b *umeeting.Budget, st *store.Store) {
	b.Restore(st.RequestTimes())
	logger := log.With(m.logger, "account", name)
	b.OnTake(func(times []time.Time) {
		st.SetRequestTimes(times)
		if err := st.Save(); err != nil {
			m.inst.StateSaveFailures.WithLabelValues(name).Inc()
			level.Error(logger).Log("msg", "Saving the request budget failed; a restart may exceed daily_request_budget", "err", err)
		}
	})
}

func (m *Manager) openStore(name string) (*store.Store, error) {
	st, info := store.Open(m.dir, name)
	if info.ReadError != nil {
		return nil, fmt.Errorf("account %s: %w", name, info.ReadError)
	}
	if len(info.RemovedTemp) > 0 {
		level.Info(m.logger).Log("msg", "Removed temporary state files left by a crash", "account", name, "files", strings.Join(info.RemovedTemp, ","))
	}
	switch {
	case info.LoadError != nil && info.SetAside != "":
		level.Error(m.logger).Log("msg", "State file unusable, moved aside; counting starts from zero", "account", name, "err", info.LoadError, "moved_to", info.SetAside)
	case info.LoadError != nil:
		level.Error(m.logger).Log("msg", "State file unusable and could not be moved aside; state will not be saved", "account", name, "err", info.LoadError)
	case info.Fresh:
		level.Info(m.logger).Log("msg", "No state yet; starting from zero and reading history once", "account", name, "path", st.Path())
	default:
		level.Info(m.logger).Log("msg", "State loaded", "account", name, "path", st.Path(), "remembered_meetings", st.Remembered())
	}
	return st, nil
}

func (m *Manager) newClient(s settings) (*umeeting.Client, error) {
	a := s.account
	httpClient, err := promconfig.NewClientFromConfig(a.HTTPClientConfig, "umeeting_exporter")
	if err != nil {
		return nil, fmt.Errorf("http_client_config: %w", err)
	}
	b := m.budgets[a.Name]
	if b == nil {
		// The budget outlives reloads, so a reload cannot reset it.
		b = umeeting.NewBudget(a.DailyRequestBudget, a.MinRequestInterval.D())
		m.budgets[a.Name] = b
	}
	name := a.Name
	return umeeting.New(umeeting.Config{
		Account:      name,
		URL:          a.APIURL,
		APIKey:       a.APIKey,
		APISecret:    a.Secret,
		Method:       a.Method,
		Location:     a.Location,
		PageSize:     a.PageSize,
		Timeout:      a.Timeout.D(),
		MaxRetries:   a.MaxRetries,
		HTTPClient:   httpClient,
		Budget:       b,
		Logger:       log.With(m.logger, "account", name),
		OnRequest:    func(result string) { m.inst.APIRequests.WithLabelValues(name, result).Inc() },
		RetryBackoff: time.Second,
	})
}

// Stop stops every poller; each state was saved after its last poll.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.runners {
		r.stop()
	}
	clear(m.runners)
}

// runner polls one account.
type runner struct {
	name   string
	set    settings
	client *umeeting.Client
	store  *store.Store
	budget *umeeting.Budget
	coll   *collector.Collector
	inst   *collector.Instruments
	now    func() time.Time
	logger log.Logger

	cancel context.CancelFunc
	done   chan struct{}
	status collector.Status
}

func (r *runner) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	r.status = collector.Status{
		PollInterval:    r.set.pollInterval,
		BudgetRemaining: r.budget.Remaining(),
		ConcurrentLimit: r.set.account.ConcurrentMeetingsLimit,
		LastSuccess:     r.store.CountedThrough(),
	}
	// Counts restored from disk are served at once, before the first poll.
	r.coll.SetUsage(r.name, r.store.Snapshot(r.now()), r.set.metrics)
	r.coll.SetStatus(r.name, r.status)
	go r.run(ctx)
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	ticker := time.NewTicker(r.set.pollInterval)
	defer ticker.Stop()
	for {
		if err := r.poll(ctx, false); err == nil && !r.store.Backfilled() {
			r.backfill(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// backfill reads older history once, after the first successful poll, so
// hosts' latest meetings (and the 7d/30d gauges) are right from the start.
func (r *runner) backfill(ctx context.Context) {
	if r.set.backfill <= r.set.lookback {
		r.store.SetBackfilled()
		return
	}
	level.Info(r.logger).Log("msg", "Reading older history once", "backfill", r.set.backfill)
	r.poll(ctx, true)
}

// poll fetches the window, and only when the whole fetch succeeded applies
// it to the store, saves the store and publishes a new snapshot.
func (r *runner) poll(ctx context.Context, backfill bool) error {
	start := r.now()
	win := r.store.Window(start, r.set.lookback, r.set.backfill)
	from := win.KeepFrom
	if backfill {
		from = minTime(from, start.Add(-r.set.backfill))
	}
	batch := r.store.NewBatch(win)
	pctx, cancel := context.WithTimeout(ctx, r.set.pollTimeout)
	err := r.client.Fetch(pctx, from, start, batch)
	cancel()
	r.status.PollDuration = r.now().Sub(start)
	r.status.BudgetRemaining = r.budget.Remaining()
	if err != nil {
		if ctx.Err() != nil {
			return err // shutting down or reloading: not a failed poll
		}
		r.status.Up = false
		r.coll.SetStatus(r.name, r.status)
		r.inst.Polls.WithLabelValues(r.name, collector.PollFailure).Inc()
		level.Error(r.logger).Log("msg", "Poll failed; serving the last good numbers", "err", err, "duration", r.status.PollDuration)
		return err
	}
	res := r.store.Apply(batch)
	if backfill {
		r.store.SetBackfilled()
	}
	if err := r.store.Save(); err != nil {
		r.inst.StateSaveFailures.WithLabelValues(r.name).Inc()
		level.Error(r.logger).Log("msg", "Saving state failed; counts are at risk on a restart", "err", err)
	} else {
		r.status.LastSave = r.now()
	}
	r.status.Up = true
	r.status.LastSuccess = r.now()
	r.coll.SetUsage(r.name, r.store.Snapshot(r.status.LastSuccess), r.set.metrics)
	r.coll.SetStatus(r.name, r.status)
	r.inst.Polls.WithLabelValues(r.name, collector.PollSuccess).Inc()
	lvl := level.Debug
	if res.Counted > 0 || res.Invalid > 0 || backfill {
		lvl = level.Info
	}
	lvl(r.logger).Log("msg", "Poll finished", "counted", res.Counted, "invalid", res.Invalid,
		"remembered", r.store.Remembered(), "pruned", res.Pruned, "backfill", backfill, "duration", r.status.PollDuration)
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
