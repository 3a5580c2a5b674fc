package umeeting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrBudgetExhausted is returned (wrapped) when an account has used its
// requests of the trailing 24 hours.
var ErrBudgetExhausted = errors.New("daily request budget exhausted")

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
	times  []time.Time // requests in the window, oldest first (only with a cap)
	last   time.Time   // the latest request
	onTake func([]time.Time) error
}

// NewBudget returns a budget of perDay requests in any 24 h (perDay <= 0:
// no daily cap) with at least minInterval between requests.
func NewBudget(perDay int, minInterval time.Duration) *Budget {
	return newBudget(perDay, minInterval, time.Now, time.After)
}

func newBudget(perDay int, minInterval time.Duration, now func() time.Time, after func(time.Duration) <-chan time.Time) *Budget {
	return &Budget{perDay: perDay, minInterval: max(minInterval, 0), now: now, after: after}
}

// Take spends one request. It first waits until minInterval has passed
// since the previous request, giving up at once when ctx's deadline would
// pass first, and returns an error wrapping ErrBudgetExhausted when the
// last 24 h already hold perDay requests.
func (b *Budget) Take(ctx context.Context) error {
	for {
		b.mu.Lock()
		now := b.now()
		b.prune(now)
		if b.perDay > 0 && len(b.times) >= b.perDay {
			next := b.times[0].Add(budgetWindow)
			b.mu.Unlock()
			return fmt.Errorf("%w: %d requests in the last 24h, the next is allowed at %s",
				ErrBudgetExhausted, b.perDay, next.UTC().Format(time.RFC3339))
		}
		var wait time.Duration
		if !b.last.IsZero() {
			wait = b.last.Add(b.minInterval).Sub(now)
		}
		if wait <= 0 {
			if b.perDay > 0 {
				b.times = append(b.times, now)
				if b.onTake != nil {
					if err := b.onTake(b.times); err != nil {
						b.times = b.times[:len(b.times)-1]
						b.mu.Unlock()
						return fmt.Errorf("the request is not sent: it could not be recorded for daily_request_budget: %w", err)
					}
				}
			}
			b.last = now
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
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

// Restore adds requests made before this Budget existed (by an earlier run
// of the exporter, from its saved state) so that a restart cannot hand out
// a fresh allowance. Times outside the window are dropped.
func (b *Budget) Restore(times []time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range times {
		if t.After(b.last) {
			b.last = t
		}
	}
	if b.perDay <= 0 {
		return
	}
	b.times = append(b.times, times...)
	slices.SortFunc(b.times, func(x, y time.Time) int { return x.Compare(y) })
	b.prune(b.now())
}

// OnTake sets f, called with the requests of the window (the new one
// last; f must not keep the slice) each time Take spends one and before
// Take returns, that is before the request is sent: f persists them, so
// that a crash right after cannot forget the request. When f fails, Take
// fails and the request is not spent: a request that a restart could
// forget is never sent. Only a budget with a daily cap calls it.
func (b *Budget) OnTake(f func(times []time.Time) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onTake = f
}

// SetLimits changes the limits (a configuration reload); the requests
// already made keep counting against the new daily cap.
func (b *Budget) SetLimits(perDay int, minInterval time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if perDay > 0 && b.perDay <= 0 {
		b.times = b.times[:0] // not tracked without a cap: start counting now
	}
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
