// Package budget limits the API requests of one account: at most a daily
// number in any rolling 24 hours and a minimum interval between two, kept
// in a ledger that every process spending them shares.
package budget

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrExhausted is returned (wrapped) when an account has used its
// requests of the trailing 24 hours.
var ErrExhausted = errors.New("daily request budget exhausted")

// budgetWindow is the rolling window of the daily cap.
const budgetWindow = 24 * time.Hour

// Budget limits the API requests of one account: at most perDay in any
// rolling 24 h, and at least minInterval between two requests (the vendor
// allows 1 request a minute and 2,000 a day). It outlives a Client, so a
// configuration reload does not hand out a fresh allowance. It is safe for
// concurrent use.
type Budget struct {
	perDay      int
	minInterval time.Duration
	now         func() time.Time
	after       func(time.Duration) <-chan time.Time

	mu     sync.Mutex
	times  []time.Time // requests in the window, oldest first
	last   time.Time   // the latest request
	ledger Ledger
}

// Ledger keeps an account's requests where every process that spends its
// budget sees them: the exporter and the history export share one, so that
// together they keep daily_request_budget and min_request_interval.
type Ledger interface {
	// Spend calls decide, under a lock that every process spending the
	// budget takes, with the requests they recorded (oldest first; older
	// ones than a day may be left out). When decide returns ok, window
	// holds the requests of the last day, the new one last, and Spend
	// records the new one durably before it returns, that is before the
	// request is sent. An error refuses the request; one wrapping
	// ErrExhausted says the ledger's own allowance is spent.
	Spend(decide func(recorded []time.Time) (window []time.Time, ok bool)) error
}

// New returns a budget of perDay requests in any 24 h (perDay <= 0:
// no daily cap) with at least minInterval between requests.
func New(perDay int, minInterval time.Duration) *Budget {
	return newBudget(perDay, minInterval, time.Now, time.After)
}

func newBudget(perDay int, minInterval time.Duration, now func() time.Time, after func(time.Duration) <-chan time.Time) *Budget {
	return &Budget{perDay: perDay, minInterval: max(minInterval, 0), now: now, after: after}
}

// Take spends one request. It first waits until minInterval has passed
// since the previous request, giving up at once when ctx's deadline would
// pass first, and returns an error wrapping ErrExhausted when the
// last 24 h already hold perDay requests. With a ledger, the requests of
// the other processes sharing it count too.
func (b *Budget) Take(ctx context.Context) error {
	for {
		b.mu.Lock()
		now, wait, err := b.try()
		b.mu.Unlock()
		if err != nil || wait <= 0 {
			return err
		}
		if deadline, ok := ctx.Deadline(); ok && deadline.Before(now.Add(wait)) {
			return fmt.Errorf("waiting %s for the minimum request interval would pass the deadline: %w",
				wait, context.DeadlineExceeded)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the minimum request interval: %w", ctx.Err())
		case <-b.after(wait):
		}
	}
}

// try spends a request when the limits allow it now, through the ledger
// when there is one; otherwise it says how long to wait for minInterval,
// or why the day's requests are spent. b.mu is held.
func (b *Budget) try() (now time.Time, wait time.Duration, refused error) {
	decide := func(recorded []time.Time) ([]time.Time, bool) {
		b.restore(recorded)
		now = b.now()
		b.prune(now)
		if b.perDay > 0 && len(b.times) >= b.perDay {
			refused = fmt.Errorf("%w: %d requests in the last 24h, the next is allowed at %s",
				ErrExhausted, b.perDay, b.times[0].Add(budgetWindow).UTC().Format(time.RFC3339))
			return nil, false
		}
		if !b.last.IsZero() {
			wait = b.last.Add(b.minInterval).Sub(now)
		}
		if wait > 0 {
			return nil, false
		}
		b.times = append(b.times, now)
		return b.times, true
	}
	if b.ledger == nil {
		if _, ok := decide(nil); ok {
			b.last = now
		}
		return now, wait, refused
	}
	spent := false
	err := b.ledger.Spend(func(recorded []time.Time) ([]time.Time, bool) {
		window, ok := decide(recorded)
		spent = ok
		return window, ok
	})
	switch {
	case err != nil && spent:
		b.times = b.times[:len(b.times)-1]
		return now, 0, fmt.Errorf("the request is not sent: it could not be recorded for daily_request_budget: %w", err)
	case errors.Is(err, ErrExhausted):
		return now, 0, err
	case err != nil:
		return now, 0, fmt.Errorf("the request is not sent: the requests of daily_request_budget could not be read: %w", err)
	case spent:
		b.last = now
	}
	return now, wait, refused
}

// Restore adds requests made before this Budget existed (by an earlier run
// of the exporter, from its saved state) so that a restart cannot hand out
// a fresh allowance. Times outside the window are dropped.
func (b *Budget) Restore(times []time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.restore(times)
	b.prune(b.now())
}

// restore adds the requests of times not known yet: a time listed n
// times stands for n requests (a lost request log is restored as the whole
// budget spent at one time), of which those known already are not added
// again. b.mu is held.
func (b *Budget) restore(times []time.Time) {
	for _, t := range times {
		if t.After(b.last) {
			b.last = t
		}
	}
	known := make(map[int64]int, len(b.times))
	for _, t := range b.times {
		known[t.UnixNano()]++
	}
	added := false
	for _, t := range times {
		if known[t.UnixNano()] > 0 {
			known[t.UnixNano()]--
			continue
		}
		b.times, added = append(b.times, t), true
	}
	if added {
		slices.SortFunc(b.times, func(x, y time.Time) int { return x.Compare(y) })
	}
}

// Share makes l the budget's ledger: each request is decided with the
// requests of every process sharing l, and recorded in l before it is
// sent, so that neither a restart nor a second process (the history
// export beside the exporter) exceeds the limits.
func (b *Budget) Share(l Ledger) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ledger = l
}

// SetLimits changes the limits (a configuration reload); the requests
// already made keep counting against the new daily cap.
func (b *Budget) SetLimits(perDay int, minInterval time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.perDay, b.minInterval = perDay, max(minInterval, 0)
}

// Remaining returns how many requests the trailing 24 h still allow, or -1
// when there is no daily cap.
func (b *Budget) Remaining() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.perDay <= 0 {
		return -1
	}
	b.prune(b.now())
	return b.perDay - len(b.times)
}

// prune forgets requests that left the window.
func (b *Budget) prune(now time.Time) {
	cutoff := now.Add(-budgetWindow)
	i := 0
	for i < len(b.times) && !b.times[i].After(cutoff) {
		i++
	}
	if i > 0 {
		b.times = append(b.times[:0], b.times[i:]...)
	}
}
