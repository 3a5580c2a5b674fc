package poller

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/umeeting/umeeting_exporter/budget"
	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// runner polls one account: the regular poll on its schedule, then, while
// it is not done, a step of the one-time read of older history (backfill).
type runner struct {
	name   string
	store  *store.Store
	budget *budget.Budget
	coll   *collector.Collector
	inst   *collector.Instruments
	now    func() time.Time
	logger log.Logger

	cancel context.CancelFunc
	done   chan struct{}
	// wake tells the loop that settings changed; pollNow asks it to poll
	// at once (a new client) rather than at the next scheduled time.
	wake    chan struct{}
	pollNow atomic.Bool

	mu     sync.Mutex
	set    settings
	client *umeeting.Client
	status collector.Status

	// pubMu orders publications of usage metrics, so a reload's
	// republication and a poll's cannot publish old options last.
	pubMu sync.Mutex

	// rebackfill asks the loop to read older history again (backfill raised).
	rebackfill atomic.Bool

	// Used by the loop only.
	lastStart    time.Time
	failures     int
	failingSince time.Time
	bf           backfillState
}

func newRunner(name string, s settings, c *umeeting.Client, st *store.Store, b *budget.Budget,
	coll *collector.Collector, inst *collector.Instruments, now func() time.Time, logger log.Logger) *runner {
	return &runner{
		name: name, set: s, client: c, store: st, budget: b, coll: coll, inst: inst, now: now, logger: logger,
		wake: make(chan struct{}, 1),
	}
}

// settings returns the current settings.
func (r *runner) settings() settings {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.set
}

func (r *runner) current() (settings, *umeeting.Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.set, r.client
}

// setStatus changes the status under the lock and publishes it.
func (r *runner) setStatus(change func(*collector.Status)) {
	r.mu.Lock()
	change(&r.status)
	st := r.status
	r.mu.Unlock()
	r.coll.SetStatus(r.name, st)
}

// publish publishes the store's numbers with the current metrics options
// when changed is set: the poll changed what a Snapshot shows
// (ApplyResult.Changed), or the exporter starts, or the options are new.
// Otherwise only the gauges that move with time are computed, and served
// live: a poll that changed nothing publishes nothing.
func (r *runner) publish(at time.Time, changed bool) {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	if changed {
		r.coll.SetUsage(r.name, r.store.Snapshot(at), r.settings().metrics)
		return
	}
	active, peakMeetings, peakParticipants := r.store.Gauges(at)
	r.coll.SetGauges(r.name, at, active, peakMeetings, peakParticipants)
}

func (r *runner) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	s := r.settings()
	r.bf = newBackfillState(r.store)
	r.setStatus(func(st *collector.Status) {
		*st = collector.Status{
			PollInterval:     s.pollInterval,
			BudgetRemaining:  r.budget.Remaining(),
			ConcurrentLimit:  s.account.ConcurrentMeetingsLimit,
			LastSuccess:      r.store.CountedThrough(),
			BackfillProgress: r.bf.progress(s.backfill),
		}
	})
	// Counts restored from disk are served at once, before the first poll;
	// the store applies the metrics options when it counts.
	r.store.SetPolicy(s.metrics, r.now())
	r.publish(r.now(), true)
	go r.run(ctx)
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

// update applies reloaded settings without a restart: counts, status and
// schedule are kept. A new client (c != nil: connection settings changed)
// polls at once to show whether they work; new metrics options republish
// the store's numbers at once, without a poll; a new interval moves the
// next poll to the last one plus the new interval.
func (r *runner) update(s settings, c *umeeting.Client) {
	r.mu.Lock()
	old := r.set
	r.set = s
	if c != nil {
		r.client = c
	}
	r.status.PollInterval = s.pollInterval
	r.status.ConcurrentLimit = s.account.ConcurrentMeetingsLimit
	r.status.BudgetRemaining = r.budget.Remaining()
	st := r.status
	r.mu.Unlock()
	r.coll.SetStatus(r.name, st)
	// Which hosts have series of their own changes at once; the store
	// holds the next increments of series it exposes (again) for a poll.
	r.store.SetPolicy(s.metrics, r.now())
	if s.backfill > old.backfill {
		r.store.ReadHistoryAgain()
		r.rebackfill.Store(true)
	}
	if !old.sameMetrics(s) {
		r.publish(r.now(), true)
		level.Info(r.logger).Log("msg", "Metrics options changed; republished the stored numbers")
	}
	if c != nil {
		r.pollNow.Store(true)
	}
	if c != nil || old.pollInterval != s.pollInterval {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	next := r.now()
	for {
		timer := time.NewTimer(max(next.Sub(r.now()), 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.wake:
			timer.Stop()
			if r.pollNow.Swap(false) || r.lastStart.IsZero() {
				next = r.now()
			} else {
				next = r.lastStart.Add(r.settings().pollInterval)
			}
			continue
		case <-timer.C:
		}
		r.pollNow.Store(false)
		r.lastStart = r.now()
		if err := r.poll(ctx); err == nil {
			r.backfillStep(ctx)
		}
		next = r.lastStart.Add(r.settings().pollInterval)
	}
}

// maxBaselineTimeout bounds the first poll of a fresh state.
const maxBaselineTimeout = 6 * time.Hour

// pollTimeout is poll_timeout, times the number of lookbacks in the window
// for the baseline, which reads the whole backfill in one poll (at most
// maxBaselineTimeout, and never less than poll_timeout).
func pollTimeout(s settings, win store.Window) time.Duration {
	if !win.Baseline || s.lookback <= 0 {
		return s.pollTimeout
	}
	n := (win.Now.Sub(win.From) + s.lookback - 1) / s.lookback
	return max(s.pollTimeout, min(s.pollTimeout*time.Duration(n), maxBaselineTimeout))
}

// poll fetches the window, and only when the whole fetch succeeded applies
// it to the store, saves the store and publishes a new snapshot. A failed
// poll changes no count: the last good numbers stay served and umeeting_up
// says the poll failed.
func (r *runner) poll(ctx context.Context) error {
	s, client := r.current()
	start := r.now()
	win := r.store.Window(start, s.lookback, s.backfill)
	batch := r.store.NewBatch(win)
	pctx, cancel := context.WithTimeout(ctx, pollTimeout(s, win))
	var rest *unreadHistory
	var err error
	if win.Baseline {
		rest, err = r.fetchBaseline(pctx, client, s, win, batch)
	} else {
		err = client.Fetch(pctx, win.From, start, batch)
	}
	cancel()
	if rest != nil && ctx.Err() != nil {
		err = ctx.Err() // shutting down: do not commit half a baseline
	}
	took := r.now().Sub(start)
	if err != nil {
		if ctx.Err() != nil {
			return err // shutting down: not a failed poll
		}
		var hasNumbers bool
		r.setStatus(func(st *collector.Status) {
			st.Up = false
			st.PollDuration = took
			st.BudgetRemaining = r.budget.Remaining()
			hasNumbers = !st.LastSuccess.IsZero()
		})
		r.inst.Polls.WithLabelValues(r.name, collector.PollFailure).Inc()
		if r.failures == 0 {
			r.failingSince = start
		}
		r.failures++
		msg := "Poll failed; serving the last good numbers"
		if !hasNumbers {
			msg = "Poll failed; no numbers to serve yet"
		}
		level.Error(r.logger).Log("msg", msg, "err", err, "duration", roundDuration(took), "failed_polls", r.failures)
		return err
	}
	// Counted only once durable: a counter served and then lost in a
	// restart would go down. A poll whose save fails is undone; a later
	// poll counts its meetings.
	res, err := r.store.Commit(batch)
	if err != nil {
		r.inst.StateSaveFailures.WithLabelValues(r.name).Inc()
		r.inst.Polls.WithLabelValues(r.name, collector.PollFailure).Inc()
		r.setStatus(func(st *collector.Status) {
			st.PollDuration = took
			st.BudgetRemaining = r.budget.Remaining()
		})
		level.Error(r.logger).Log("msg", "Saving state failed; the poll's meetings are counted once a save succeeds", "err", err)
		return err
	}
	if rest != nil {
		r.continueBaseline(s, win, rest)
	}
	done := r.now()
	r.publish(done, res.Changed)
	r.setStatus(func(st *collector.Status) {
		st.Up = true
		st.LastSuccess = done
		st.PollDuration = took
		st.BudgetRemaining = r.budget.Remaining()
		if res.Saved {
			st.LastSave = done
		}
	})
	r.inst.Polls.WithLabelValues(r.name, collector.PollSuccess).Inc()
	if r.failures > 0 {
		level.Info(r.logger).Log("msg", "Polls recovered", "failed_polls", r.failures,
			"failing_for", roundDuration(start.Sub(r.failingSince)))
		r.failures = 0
	}
	lvl := level.Debug
	if res.Counted > 0 || res.Invalid > 0 || win.Baseline {
		lvl = level.Info
	}
	lvl(r.logger).Log("msg", "Poll finished", "counted", res.Counted, "invalid", res.Invalid, "baseline", win.Baseline,
		"folded_user_type", res.Folded, "remembered", r.store.Remembered(), "pruned", res.Pruned, "duration", roundDuration(took))
	return nil
}

// save writes the state, counting and logging a failure.
func (r *runner) save() {
	if err := r.store.Save(); err != nil {
		r.inst.StateSaveFailures.WithLabelValues(r.name).Inc()
		level.Error(r.logger).Log("msg", "Saving state failed; counts are at risk on a restart", "err", err)
	}
}

// roundDuration rounds a measured duration for log lines (1.234s, not
// 1.234567891s).
func roundDuration(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
