package directory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// Source names: the values of the `source` label.
const (
	SourceFile = "file"
	SourceLDAP = "ldap"
)

// Snapshot is what the rest of the exporter sees: the merged directory
// and the settings that go with it. It is immutable.
type Snapshot struct {
	Enabled        bool            // a directory section is configured
	Dir            *Directory      // nil before the first successful read
	Tariffs        *config.Tariffs // nil: no chargeback
	MaxDepartments int

	sources []sourceStatus // the health of the sources, for scrapes
}

// source is one configured source and what is known of its reads.
type source struct {
	name string
	// path is the file's, named in the errors of a read that times out
	// (a file's other errors name it already); empty for LDAP.
	path string
	read func(ctx context.Context) (*Directory, error)
	// timeout bounds a read; see readBounded.
	timeout time.Duration
	// secret is redacted from errors before they are logged.
	secret string
	// blocked, when set, is closed when a read that outlived its timeout
	// ends at last.
	blocked atomic.Pointer[chan struct{}]

	last        *Directory // last good copy
	up          bool
	failing     bool // in a failure episode: its reason was logged
	lastSuccess time.Time
	failures    float64
}

// Manager keeps the directory up to date: it reads every source on
// start, on each reload and every refresh_interval, in the background,
// and keeps the last good copy of a source that fails. It implements
// store.Attributor (the join at the time a meeting is counted) and
// prometheus.Collector (the health of the sources).
type Manager struct {
	logger log.Logger
	// OnChange, if set, is called with each new snapshot.
	onChange func(*Snapshot)

	cur atomic.Pointer[Snapshot] // for polls and scrapes, which never wait for a read

	// life ends with Stop: reads in progress, Apply's too, are given up.
	life context.Context
	end  context.CancelFunc
	// changed wakes the refresh loop when Apply changes the sources: the
	// next refresh is a whole refresh_interval later.
	changed chan struct{}
	done    chan struct{} // closed when the refresh loop has ended

	mu      sync.Mutex // guards the fields below and the sources' results
	cfg     *config.Directory
	tariffs *config.Tariffs
	sources []*source
}

// NewManager returns a Manager without sources; onChange (may be nil) is
// called after every change of the snapshot.
func NewManager(logger log.Logger, onChange func(*Snapshot)) *Manager {
	m := &Manager{logger: logger, onChange: onChange, changed: make(chan struct{}, 1), done: make(chan struct{})}
	m.life, m.end = context.WithCancel(context.Background())
	m.cur.Store(&Snapshot{})
	go m.loop()
	return m
}

// Current is the directory in use; never nil.
func (m *Manager) Current() *Snapshot { return m.cur.Load() }

// Apply takes the directory and tariffs sections of a (re)loaded config
// and reads every source at once, each read bounded by its timeout, so
// that the first poll already joins and a reload knows whether the
// directory reads. It returns why a source failed; that source keeps its
// last good copy, and is read again every refresh_interval. Without a
// directory section the join stops.
func (m *Manager) Apply(cfg *config.Config) error {
	m.mu.Lock()
	m.tariffs = cfg.Tariffs
	if !reflect.DeepEqual(m.cfg, cfg.Directory) {
		old := map[string]*source{}
		for _, s := range m.sources {
			old[s.name] = s
		}
		m.cfg, m.sources = cfg.Directory, nil
		if cfg.Directory != nil {
			m.sources = newSources(cfg.Directory)
		}
		for _, s := range m.sources {
			// A source keeps its last good copy across a change of its
			// settings until the new settings read well.
			if o := old[s.name]; o != nil {
				s.last, s.up, s.failing, s.lastSuccess, s.failures = o.last, o.up, o.failing, o.lastSuccess, o.failures
			}
		}
		select {
		case m.changed <- struct{}{}:
		default:
		}
	}
	m.publishLocked() // the tariffs may have changed
	sources := m.sources
	m.mu.Unlock()
	if cfg.Directory == nil {
		return nil
	}
	return m.refresh(m.life, sources)
}

// loop reads the sources again every refresh_interval until Stop.
func (m *Manager) loop() {
	defer close(m.done)
	for {
		m.mu.Lock()
		var tick <-chan time.Time
		if m.cfg != nil {
			tick = time.After(m.cfg.RefreshInterval.D())
		}
		sources := m.sources
		m.mu.Unlock()
		select {
		case <-m.life.Done():
			return
		case <-m.changed:
		case <-tick:
			m.refresh(m.life, sources)
		}
	}
}

// Stop gives up the reads in progress and ends the background refreshes.
func (m *Manager) Stop() {
	m.end()
	<-m.done
}

// newSources returns the sources c configures.
func newSources(c *config.Directory) []*source {
	var out []*source
	// The file comes first: it corrects and completes LDAP.
	if c.File != "" || c.Embedded != nil {
		out = append(out, fileSource(c))
	}
	if l := c.LDAP; l != nil {
		out = append(out, &source{name: SourceLDAP, timeout: l.Timeout.D(), secret: l.Password, read: func(ctx context.Context) (*Directory, error) {
			return fetchLDAP(ctx, l, c.ExtraColumns)
		}})
	}
	return out
}

// fileSource reads the file of c, or its embedded copy.
func fileSource(c *config.Directory) *source {
	timeout := c.FileTimeout.D()
	if timeout <= 0 { // a config built in code
		timeout = config.DefaultFileTimeout.D()
	}
	return &source{name: SourceFile, path: c.File, timeout: timeout, read: func(context.Context) (*Directory, error) {
		if c.Embedded != nil {
			return ParseCSV(bytes.NewReader(c.Embedded), c.ExtraColumns)
		}
		return ReadFile(c.File, c.ExtraColumns)
	}}
}

// refresh reads every source once, holding no lock while it reads, so
// that neither scrapes nor reloads wait for a slow server. A source that
// fails keeps its last good copy; its reason is logged once per failure
// episode. It returns the reasons of the sources that failed.
func (m *Manager) refresh(ctx context.Context, sources []*source) error {
	var errs []error
	for _, s := range sources {
		start := time.Now()
		d, err := s.readBounded(ctx)
		if ctx.Err() != nil {
			return nil // stopping
		}
		m.mu.Lock()
		m.record(s, d, err, time.Since(start))
		m.mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("directory source %s: %s", s.name, s.reason(err)))
		}
	}
	m.mu.Lock()
	m.publishLocked()
	m.mu.Unlock()
	return errors.Join(errs...)
}

// readBounded reads s, waiting at most its timeout. A read still blocked
// then (a file on a hung network share: a blocked system call cannot be
// interrupted) is left to end in the background, and until it does
// every read of s fails at once, so that blocked reads do not pile up.
func (s *source) readBounded(ctx context.Context) (*Directory, error) {
	if blocked := s.blocked.Load(); blocked != nil {
		select {
		case <-*blocked:
		default:
			return nil, fmt.Errorf("an earlier read, which outlived its timeout of %s, is still blocked (a hung file share or server?)", s.timeout)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	type result struct {
		d   *Directory
		err error
	}
	res, ended := make(chan result, 1), make(chan struct{})
	go func() {
		defer close(ended)
		d, err := s.read(ctx)
		res <- result{d, err}
	}()
	select {
	case r := <-res:
		return r.d, r.err
	case <-ctx.Done():
	}
	select {
	case r := <-res: // it ended meanwhile
		return r.d, r.err
	default:
	}
	s.blocked.Store(&ended)
	err := fmt.Errorf("no answer within %s (timeout; a hung file share or server?)", s.timeout)
	if s.path != "" {
		err = fmt.Errorf("%s: %w", s.path, err)
	}
	return nil, err
}

// reason is err's message without the source's secret.
func (s *source) reason(err error) string {
	reason := err.Error()
	if s.secret != "" {
		reason = strings.ReplaceAll(reason, s.secret, "<secret>")
	}
	return reason
}

// record notes the result of one read of s; mu is held.
func (m *Manager) record(s *source, d *Directory, err error, took time.Duration) {
	if err != nil {
		s.up = false
		s.failures++
		if !s.failing {
			s.failing = true
			level.Error(m.logger).Log("msg", "Reading the directory failed; keeping its last good copy", "source", s.name,
				"err", s.reason(err), "entries_kept", s.last.Len())
		}
		return
	}
	if s.failing {
		level.Info(m.logger).Log("msg", "Directory source readable again", "source", s.name)
	}
	if s.last == nil || s.failing {
		level.Info(m.logger).Log("msg", "Directory read", "source", s.name, "entries", d.Len(),
			"duplicate_emails", d.Duplicates, "without_email", d.NoEmail, "duration", took)
	}
	s.last, s.up, s.failing, s.lastSuccess = d, true, false, time.Now()
}

func (m *Manager) publishLocked() {
	snap := &Snapshot{Tariffs: m.tariffs}
	for _, s := range m.sources {
		snap.sources = append(snap.sources, sourceStatus{name: s.name, up: s.up, lastSuccess: s.lastSuccess, failures: s.failures, dir: s.last})
	}
	if m.cfg != nil {
		snap.Enabled = true
		snap.MaxDepartments = m.cfg.MaxDepartments
		dirs := make([]*Directory, 0, len(m.sources))
		for _, s := range m.sources {
			dirs = append(dirs, s.last)
		}
		snap.Dir = merge(dirs...)
	}
	m.cur.Store(snap)
	if m.onChange != nil {
		m.onChange(snap)
	}
}

// Attribute implements store.Attributor: the department and cost centre
// a host has now, and the usage price of the meeting at today's tariffs.
// It is called when a meeting is counted, so later moves change no past
// number.
func (m *Manager) Attribute(mt *umeeting.Meeting, secs uint64) (store.Attribution, bool) {
	snap := m.cur.Load()
	if !snap.Enabled {
		return store.Attribution{}, false
	}
	a := store.Attribution{Department: Unknown, CostCenter: Unknown}
	if e, ok := snap.Dir.Lookup(mt.Email); ok {
		if e.Department != "" {
			a.Department = e.Department
		}
		if e.CostCenter != "" {
			a.CostCenter = e.CostCenter
		}
	}
	if t := snap.Tariffs; t != nil {
		cost := float64(secs) / 3600 * t.PerMeetingHour
		if mt.Features&umeeting.FeaturePSTN != 0 {
			cost += t.PerPSTNMeeting
		}
		a.CostMicros = uint64(math.Round(cost * 1e6))
	}
	return a, true
}

// sourceStatus is the health of one source, as scrapes see it.
type sourceStatus struct {
	name        string
	up          bool
	lastSuccess time.Time
	failures    float64
	dir         *Directory // the copy in use, nil before the first read
}

var (
	upDesc = prometheus.NewDesc("umeeting_directory_up",
		"1 when the last read of the directory source succeeded, 0 when it failed (its last good copy stays in use).", []string{"source"}, nil)
	entriesDesc = prometheus.NewDesc("umeeting_directory_entries",
		"People in the copy of the directory source in use (after dropping duplicate e-mails).", []string{"source"}, nil)
	duplicatesDesc = prometheus.NewDesc("umeeting_directory_duplicate_emails",
		"Entries of the directory source dropped because their e-mail was listed before (the first one wins), in the copy in use.", []string{"source"}, nil)
	lastSuccessDesc = prometheus.NewDesc("umeeting_directory_last_success_timestamp_seconds",
		"Unix time of the last successful read of the directory source; 0 before the first.", []string{"source"}, nil)
	failuresDesc = prometheus.NewDesc("umeeting_directory_read_failures_total",
		"Failed reads of the directory source.", []string{"source"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, entriesDesc, duplicatesDesc, lastSuccessDesc, failuresDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	for _, s := range m.cur.Load().sources {
		up, last, duplicates := 0.0, 0.0, 0
		if s.up {
			up = 1
		}
		if !s.lastSuccess.IsZero() {
			last = float64(s.lastSuccess.UnixNano()) / 1e9
		}
		if s.dir != nil {
			duplicates = s.dir.Duplicates
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, s.name)
		ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(s.dir.Len()), s.name)
		ch <- prometheus.MustNewConstMetric(duplicatesDesc, prometheus.GaugeValue, float64(duplicates), s.name)
		ch <- prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue, last, s.name)
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, s.failures, s.name)
	}
}
