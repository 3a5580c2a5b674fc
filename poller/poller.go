// Package poller knows time: it polls each account on its schedule, never two polls of one account at once, commits a successful poll to the account's store, and hands the collector a new snapshot when the store says the poll changed what it shows.
package poller

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/umeeting/umeeting_exporter/budget"
	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/internal/account"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// settings is everything one account's runner depends on. A reload hands
// a running runner its new settings: nothing restarts, and only a change of
// what the client needs builds a new client.
type settings struct {
	account      config.Account
	pollInterval time.Duration
	pollTimeout  time.Duration
	lookback     time.Duration
	backfill     time.Duration
	// backfillText is backfill as configured (60d), for log lines.
	backfillText string
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
		backfillText: cfg.Backfill.String(),
		metrics:      account.MetricsOptions(cfg.Metrics),
	}
	// A series exposed (again) holds its next increments for a poll.
	s.metrics.HoldFor = cfg.PollInterval.D()
	if re := cfg.Metrics.HostInclude; re != nil {
		s.include = re.String()
	}
	if re := cfg.Metrics.HostExclude; re != nil {
		s.exclude = re.String()
	}
	return s
}

// sameClient says whether a client built for s serves o too: the budget's
// limits are set on the shared budget and the licence limit is only
// exported, so they do not need a new client.
func (s settings) sameClient(o settings) bool {
	a, b := s.account, o.account
	for _, x := range []*config.Account{&a, &b} {
		x.Location = nil // compared by name (Timezone)
		x.DailyRequestBudget, x.MinRequestInterval, x.ConcurrentMeetingsLimit = 0, config.Duration{}, 0
	}
	return reflect.DeepEqual(a, b)
}

// sameMetrics compares the metrics options: expressions by text.
func (s settings) sameMetrics(o settings) bool {
	return s.include == o.include && s.exclude == o.exclude &&
		s.metrics.PerHost == o.metrics.PerHost && s.metrics.MaxHosts == o.metrics.MaxHosts &&
		s.metrics.MaxUserTypes == o.metrics.MaxUserTypes
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
	budgets map[string]*budget.Budget
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
		budgets: map[string]*budget.Budget{},
	}
}

// Ready says whether a configuration was applied.
func (m *Manager) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ready
}

// Apply makes the running pollers match cfg: new accounts start, removed
// ones stop, running ones take their new settings in place, keeping their
// counts and status (see runner.update). Clients are built first, so a bad
// account config changes nothing.
func (m *Manager) Apply(cfg *config.Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]settings{}
	clients := map[string]*umeeting.Client{}
	for _, a := range cfg.Accounts {
		s := newSettings(cfg, a)
		want[a.Name] = s
		if r := m.runners[a.Name]; r != nil && r.settings().sameClient(s) {
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
	logs := map[string]openedLog{}
	for name := range clients {
		if m.stores[name] != nil {
			continue
		}
		st, err := m.openStore(name)
		if err != nil {
			return err
		}
		l, info, err := store.OpenRequestLog(m.dir, name)
		if err != nil {
			return fmt.Errorf("account %s: %w", name, err)
		}
		opened[name], logs[name] = st, openedLog{l, info}
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
	for name, s := range want {
		// Every setting applies at once: limits on the shared budget,
		// the rest through the runner.
		m.budgets[name].SetLimits(s.account.DailyRequestBudget, s.account.MinRequestInterval.D())
		if r := m.runners[name]; r != nil {
			r.update(s, clients[name])
		}
	}
	// The directory join is set before any new runner polls, so even the
	// first poll (the baseline) counts by department.
	if m.attributor != nil {
		maxGroups := 0
		if cfg.Directory != nil {
			maxGroups = cfg.Directory.MaxDepartments
		}
		for _, stores := range []map[string]*store.Store{m.stores, opened} {
			for _, st := range stores {
				st.SetAttributor(m.attributor, maxGroups)
			}
		}
	}
	for name, c := range clients {
		if m.runners[name] != nil {
			continue
		}
		st := m.stores[name]
		if st == nil {
			st = opened[name]
			m.stores[name] = st
			m.persistBudget(name, want[name].account.DailyRequestBudget, m.budgets[name], logs[name])
		}
		m.inst.InitAccount(name)
		r := newRunner(name, want[name], c, st, m.budgets[name], m.coll, m.inst, m.now, log.With(m.logger, "account", name))
		m.runners[name] = r
		r.start()
	}
	m.ready = true
	return nil
}

// openedLog is an account's request log as OpenRequestLog found it.
type openedLog struct {
	log  *store.RequestLog
	info store.RequestLogInfo
}

// persistBudget hands the account's budget the requests of earlier runs,
// from its request log, and makes the log its ledger: each new request is
// durable there before it is sent, and the history export's requests,
// recorded there too, count, so that no restart, crash or history run
// exceeds daily_request_budget. A corrupt log counts as the whole budget
// spent when it was last written.
func (m *Manager) persistBudget(name string, perDay int, b *budget.Budget, ol openedLog) {
	logger := log.With(m.logger, "account", name)
	times := ol.info.Times
	if ol.info.LoadError != nil {
		for range perDay {
			times = append(times, ol.info.SpentAt)
		}
		level.Error(logger).Log("msg", "Request budget file unusable, moved aside; the daily budget counts as used up when it was last written",
			"err", ol.info.LoadError, "moved_to", ol.info.SetAside, "next_request_after", ol.info.SpentAt.Add(24*time.Hour).UTC().Format(time.RFC3339))
		if err := ol.log.Rewrite(times); err != nil {
			level.Error(logger).Log("msg", "Writing the request budget file failed; requests are refused until it can be written", "err", err)
		}
	}
	b.Restore(times)
	b.Share(ol.log)
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
	b := m.budgets[a.Name]
	if b == nil {
		// The budget outlives reloads, so a reload cannot reset it.
		b = budget.New(a.DailyRequestBudget, a.MinRequestInterval.D())
		m.budgets[a.Name] = b
	}
	name := a.Name
	return account.NewClient(a, b, log.With(m.logger, "account", name),
		func(result string) { m.inst.APIRequests.WithLabelValues(name, result).Inc() })
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
