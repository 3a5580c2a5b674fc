package poller

import (
	"context"
	"errors"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/common/model"

	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/internal/timex"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// The one-time read of older history (backfill) runs apart from the
// regular poll: one step after each successful poll, each step one period
// of at most a month read newest first, so a failure costs one step and the
// read resumes where it stopped. A failed step backs off (doubling from the
// poll interval, at most maxBackfillBackoff); a step that ran out of time
// halves the period (at least a day), so a slow API (min_request_interval)
// still gets through. Steps leave the regular polls their share of the
// daily budget. Its status is umeeting_backfill_up and
// umeeting_backfill_progress_ratio; umeeting_up is the regular poll's alone.
const (
	maxBackfillSpan    = 30 * 24 * time.Hour
	minBackfillSpan    = 24 * time.Hour
	maxBackfillBackoff = time.Hour
)

// backfillState is where the backfill stands; the runner's loop owns it.
type backfillState struct {
	done bool
	// started is when the first step ran; the read covers [started-backfill, top).
	started, top time.Time
	// cursor: everything from cursor to top was read.
	cursor   time.Time
	span     time.Duration
	failures int
	nextTry  time.Time
	// waitingForBudget is set while steps wait for budget, to log it once.
	waitingForBudget bool
}

func newBackfillState(st *store.Store) backfillState {
	return backfillState{done: st.Backfilled(), span: maxBackfillSpan}
}

// progress is the share of the read done, reaching back backfill.
func (b *backfillState) progress(backfill time.Duration) float64 {
	switch {
	case b.done:
		return 1
	case b.top.IsZero() || backfill <= 0:
		return 0
	}
	total := b.top.Sub(b.started.Add(-backfill))
	if total <= 0 {
		return 1
	}
	return min(1, float64(b.top.Sub(b.cursor))/float64(total))
}

// budgetReserve is what a backfill step must leave in the daily budget:
// the regular polls' requests of a day, at most half the budget.
func budgetReserve(s settings) int {
	perDay := int((24*time.Hour + s.pollInterval - 1) / s.pollInterval)
	need := perDay * config.RequestsPerPoll(s.lookback+s.account.MaxMeetingLength.D())
	if limit := s.account.DailyRequestBudget; limit > 0 {
		need = min(need, limit/2)
	}
	return need
}

// backfillStep reads the next period of older history, if the backfill
// is not done, is due and the budget allows it.
func (r *runner) backfillStep(ctx context.Context) {
	if r.rebackfill.Swap(false) {
		r.bf = newBackfillState(r.store)
		backfill := r.settings().backfill // not under setStatus's lock
		r.setStatus(func(st *collector.Status) { st.BackfillProgress = r.bf.progress(backfill) })
	}
	b := &r.bf
	if b.done {
		return
	}
	if r.store.Backfilled() { // read by a fresh state's first poll, the baseline
		r.finishBackfill(r.settings(), false)
		return
	}
	s, client := r.current()
	now := r.now()
	if s.backfill <= s.lookback {
		r.finishBackfill(s, false)
		return
	}
	if b.started.IsZero() {
		b.started = now
		b.top = r.store.Window(now, s.lookback, s.backfill).KeepFrom
		b.cursor = b.top
		level.Info(r.logger).Log("msg", "Reading older history once, a month at a time between polls",
			"backfill", s.backfillText, "from", b.started.Add(-s.backfill).UTC().Format(time.DateOnly))
	}
	target := b.started.Add(-s.backfill) // a reload may move it
	if !b.cursor.After(target) {
		r.finishBackfill(s, false)
		return
	}
	if now.Before(b.nextTry) {
		return
	}
	if rem := r.budget.Remaining(); rem >= 0 && rem <= budgetReserve(s) {
		if !b.waitingForBudget {
			level.Info(r.logger).Log("msg", "Older history waits for request budget; the regular polls keep their share",
				"budget_remaining", rem, "reserved", budgetReserve(s))
			b.waitingForBudget = true
		}
		return
	}
	b.waitingForBudget = false
	from := b.cursor.Add(-b.span)
	if from.Before(target) {
		from = target
	}
	batch := r.store.NewBatch(r.store.Window(now, s.lookback, s.backfill).HostsOnly())
	pctx, cancel := context.WithTimeout(ctx, s.pollTimeout)
	err := client.Fetch(pctx, from, b.cursor, batch)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		b.failures++
		wait := min(s.pollInterval<<min(b.failures-1, 20), maxBackfillBackoff)
		b.nextTry = now.Add(wait)
		if errors.Is(err, context.DeadlineExceeded) && b.span > minBackfillSpan {
			b.span = max(b.span/2, minBackfillSpan)
		}
		r.setStatus(func(st *collector.Status) {
			st.BackfillFailing = true
			st.BudgetRemaining = r.budget.Remaining()
		})
		level.Warn(r.logger).Log("msg", "Reading older history failed; it resumes there later", "err", err,
			"from", from.UTC().Format(time.RFC3339), "to", b.cursor.UTC().Format(time.RFC3339),
			"failures", b.failures, "retry_in", model.Duration(wait))
		return
	}
	// All of it ended before the window: only hosts' latest meetings move.
	res := r.store.Apply(batch)
	b.cursor, b.failures, b.nextTry = from, 0, time.Time{}
	if !b.cursor.After(target) {
		r.finishBackfill(s, res.Changed)
		return
	}
	r.save()
	r.publish(r.now(), res.Changed)
	r.setStatus(func(st *collector.Status) {
		st.BackfillFailing = false
		st.BackfillProgress = b.progress(s.backfill)
		st.BudgetRemaining = r.budget.Remaining()
	})
	level.Debug(r.logger).Log("msg", "Read older history", "from", from.UTC().Format(time.RFC3339),
		"progress", b.progress(s.backfill))
}

func (r *runner) finishBackfill(s settings, changed bool) {
	r.store.SetBackfilled()
	r.bf.done = true
	r.save()
	r.publish(r.now(), changed)
	r.setStatus(func(st *collector.Status) {
		st.BackfillFailing = false
		st.BackfillProgress = 1
		st.BudgetRemaining = r.budget.Remaining()
	})
	if !r.bf.started.IsZero() {
		level.Info(r.logger).Log("msg", "Read older history", "backfill", s.backfillText,
			"took", roundDuration(r.now().Sub(r.bf.started)))
	}
}

// unreadHistory is the part of a first poll's backfill that could not be
// read within that poll: everything before cursor.
type unreadHistory struct {
	top, cursor time.Time
	err         error
}

// fetchBaseline reads the first poll of a fresh state: the regular window
// first, then the older history newest first, a month at a time. A failure
// in the regular window fails the poll; a failure (or the poll's deadline)
// in the older history does not: the poll counts what it read, and the
// rest is left to the backfill steps, which only update hosts' latest
// meetings since it is all before the horizon. So an API that refuses old
// dates, or a min_request_interval too long for a month of requests
// within poll_timeout, does not keep the account from being counted.
func (r *runner) fetchBaseline(ctx context.Context, client *umeeting.Client, s settings, win store.Window, batch *store.Batch) (*unreadHistory, error) {
	top := timex.Earlier(win.Now.Add(-s.lookback), win.Now.Add(-store.PeakWindow))
	if !top.After(win.From) {
		return nil, client.Fetch(ctx, win.From, win.Now, batch)
	}
	if err := client.Fetch(ctx, top, win.Now, batch); err != nil {
		return nil, err
	}
	for cursor := top; cursor.After(win.From); {
		from := timex.Later(win.From, cursor.Add(-maxBackfillSpan))
		if err := client.Fetch(ctx, from, cursor, batch); err != nil {
			batch.ReadFrom(cursor)
			return &unreadHistory{top: top, cursor: cursor, err: err}, nil
		}
		cursor = from
	}
	return nil, nil
}

// continueBaseline hands what the first poll could not read to the
// backfill steps, with their status, backoff and progress.
func (r *runner) continueBaseline(s settings, win store.Window, rest *unreadHistory) {
	r.store.ReadHistoryAgain()
	r.save()
	b := backfillState{started: win.Now, top: rest.top, cursor: rest.cursor, span: maxBackfillSpan,
		failures: 1, nextTry: win.Now.Add(s.pollInterval)} // at the next poll
	if errors.Is(rest.err, context.DeadlineExceeded) {
		b.span /= 2
	}
	r.bf = b
	r.setStatus(func(st *collector.Status) {
		st.BackfillFailing = true
		st.BackfillProgress = b.progress(s.backfill)
	})
	level.Warn(r.logger).Log("msg", "The first poll read history back to here only; the counters start from what it read, "+
		"and older history is read later for hosts' latest meetings", "read_back_to", rest.cursor.UTC().Format(time.RFC3339),
		"backfill", s.backfillText, "err", rest.err)
}
