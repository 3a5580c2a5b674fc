package budget

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock for Budget whose waits pass at once, moving the
// clock forward by the time waited.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) budget(perDay int, minInterval time.Duration) *Budget {
	return newBudget(perDay, minInterval, c.Now, c.After)
}

func TestBudgetDailyCap(t *testing.T) {
	clock := newFakeClock()
	b := clock.budget(3, 0)
	ctx := context.Background()
	for i := range 3 {
		if got := b.Remaining(); got != 3-i {
			t.Errorf("before take %d: remaining %d, want %d", i, got, 3-i)
		}
		if err := b.Take(ctx); err != nil {
			t.Fatalf("take %d: %v", i, err)
		}
		clock.Advance(time.Hour)
	}
	err := b.Take(ctx)
	if !errors.Is(err, ErrExhausted) || b.Remaining() != 0 {
		t.Fatalf("4th take: %v, remaining %d; want exhausted, 0", err, b.Remaining())
	}
	// The window rolls: the first request leaves it 24 h after it was made.
	clock.Advance(21*time.Hour - time.Second)
	if err := b.Take(ctx); !errors.Is(err, ErrExhausted) {
		t.Fatalf("a second before the first request expires: %v", err)
	}
	clock.Advance(time.Second)
	if got := b.Remaining(); got != 1 {
		t.Errorf("after the first request expired: remaining %d, want 1", got)
	}
	if err := b.Take(ctx); err != nil {
		t.Fatalf("after the first request expired: %v", err)
	}
	if err := b.Take(ctx); !errors.Is(err, ErrExhausted) {
		t.Fatalf("window full again: %v", err)
	}
	if len(clock.waits) != 0 {
		t.Errorf("waited %v without a minimum interval", clock.waits)
	}
}

func TestBudgetMinInterval(t *testing.T) {
	clock := newFakeClock()
	b := clock.budget(0, time.Minute)
	ctx := context.Background()
	if got := b.Remaining(); got != -1 {
		t.Errorf("remaining without a cap: %d, want -1", got)
	}
	steps := []struct {
		advance, wait time.Duration
	}{
		{0, 0},           // first request: no wait
		{0, time.Minute}, // at once: a full interval
		{30 * time.Second, 30 * time.Second},
		{2 * time.Minute, 0}, // long after: no wait
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		clock.waits = nil
		if err := b.Take(ctx); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		var waited time.Duration
		for _, w := range clock.waits {
			waited += w
		}
		if waited != s.wait {
			t.Errorf("step %d: waited %v, want %v", i, waited, s.wait)
		}
	}
}

func TestBudgetWaitHonoursContext(t *testing.T) {
	b := New(10, time.Hour)
	if err := b.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A deadline before the interval ends: give up at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Take(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("with a deadline: %v, want DeadlineExceeded", err)
	}
	// Cancelled while waiting.
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if err := b.Take(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want Canceled", err)
	}
	if got := b.Remaining(); got != 9 {
		t.Errorf("remaining %d, want 9: failed waits must not spend the budget", got)
	}
}

func TestBudgetConcurrent(t *testing.T) {
	clock := newFakeClock()
	b := clock.budget(5, 0)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, fail int
	)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.Take(context.Background())
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else if errors.Is(err, ErrExhausted) {
				fail++
			}
		}()
	}
	wg.Wait()
	if ok != 5 || fail != 15 {
		t.Errorf("%d granted, %d refused; want 5 and 15", ok, fail)
	}
}

// memLedger is a Ledger in memory, shared by the budgets given it as
// ACCOUNT.requests is by processes.
type memLedger struct {
	times []time.Time
	fail  error // recording fails with it
}

func (l *memLedger) Spend(decide func([]time.Time) ([]time.Time, bool)) error {
	window, ok := decide(slices.Clone(l.times))
	if !ok {
		return nil
	}
	if l.fail != nil {
		return l.fail
	}
	l.times = slices.Clone(window)
	return nil
}

// TestBudgetRestoreAcrossRestarts: the requests of an earlier run, handed
// back from the saved state, count against the cap and the interval.
func TestBudgetRestoreAcrossRestarts(t *testing.T) {
	clock := newFakeClock()
	ctx := context.Background()
	first := clock.budget(5, time.Minute)
	ledger := &memLedger{}
	first.Share(ledger)
	for range 3 {
		if err := first.Take(ctx); err != nil {
			t.Fatal(err)
		}
	}
	saved := ledger.times
	if len(saved) != 3 {
		t.Fatalf("the ledger holds %d requests, want 3", len(saved))
	}
	// A restart 30 s later: a new Budget restored from what was saved.
	clock.Advance(30 * time.Second)
	second := clock.budget(5, time.Minute)
	second.Restore(append(saved, clock.Now().Add(-25*time.Hour))) // one older than the window
	if got := second.Remaining(); got != 2 {
		t.Errorf("after restore: remaining %d, want 2", got)
	}
	waitsBefore := len(clock.waits)
	for range 2 {
		if err := second.Take(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(clock.waits) == waitsBefore {
		t.Error("the minimum interval since the last request of the earlier run was not kept")
	}
	if err := second.Take(ctx); !errors.Is(err, ErrExhausted) {
		t.Errorf("6th request in a day across a restart: %v", err)
	}
}

// TestBudgetSharedLedger: two budgets of one account in two processes (the
// exporter and the history export) each knew only its own requests, so
// together they sent twice the cap, closer together than the interval.
// Sharing a ledger, they keep both limits together.
func TestBudgetSharedLedger(t *testing.T) {
	clock := newFakeClock()
	ledger := &memLedger{}
	exporter, history := clock.budget(6, time.Minute), clock.budget(6, time.Minute)
	exporter.Share(ledger)
	history.Share(ledger)
	sent := 0
	for i := range 20 {
		b := exporter
		if i%3 != 0 {
			b = history
		}
		if err := b.Take(context.Background()); err == nil {
			sent++
		} else if !errors.Is(err, ErrExhausted) {
			t.Fatal(err)
		}
	}
	if sent != 6 || len(ledger.times) != 6 {
		t.Errorf("two budgets of 6 sharing a ledger sent %d requests, recorded %d", sent, len(ledger.times))
	}
	for i := 1; i < len(ledger.times); i++ {
		if d := ledger.times[i].Sub(ledger.times[i-1]); d < time.Minute {
			t.Errorf("requests %d and %d %s apart, want at least 1m", i-1, i, d)
		}
	}
	// Without a cap, the interval alone is shared too.
	clock.Advance(25 * time.Hour)
	ledger = &memLedger{}
	a, b := clock.budget(0, time.Minute), clock.budget(0, time.Minute)
	a.Share(ledger)
	b.Share(ledger)
	waits := len(clock.waits)
	if a.Take(context.Background()) != nil || b.Take(context.Background()) != nil || len(clock.waits) != waits+1 {
		t.Errorf("the second process's request did not wait for the interval: waits %v", clock.waits[waits:])
	}
}

// TestBudgetUnrecordedRequestIsNotSent: when the request cannot be made
// durable, Take fails and spends nothing, so a restart can never forget a
// request that was sent.
func TestBudgetUnrecordedRequestIsNotSent(t *testing.T) {
	clock := newFakeClock()
	b := clock.budget(5, 0)
	fail := errors.New("disk full")
	ledger := &memLedger{fail: fail}
	b.Share(ledger)
	if err := b.Take(context.Background()); !errors.Is(err, fail) {
		t.Fatalf("Take with a failing record: %v", err)
	}
	if got := b.Remaining(); got != 5 {
		t.Errorf("remaining %d after an unrecorded request, want 5", got)
	}
	ledger.fail = nil
	if err := b.Take(context.Background()); err != nil || len(ledger.times) != 1 || b.Remaining() != 4 {
		t.Errorf("Take after the disk recovered: %v, recorded %v, remaining %d", err, ledger.times, b.Remaining())
	}
}
