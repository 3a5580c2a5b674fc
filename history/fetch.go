package history

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/umeeting/umeeting_exporter/budget"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// Fetcher is what the history needs of the API client.
type Fetcher interface {
	Fetch(ctx context.Context, from, to time.Time, sink umeeting.Sink) error
}

// month is one request's worth of history: the meetings that ended in
// [From, To]. Months are cut so that the client, which reaches back by the
// longest meeting and pads the dates by a day on each side, asks for it in
// one request (per page).
type month struct {
	From, To time.Time
}

// months cuts [from, to) into periods that each fit one API request. The
// client asks for the dates [day(From-reach)-1, day(To)+1] in loc, reach
// being the account's max_meeting_length; one request may span the dates
// [a, monthEnd(a)], so a period covers the end times of the local days
// up to monthEnd(a)-1. One request a month halves the requests of periods
// cut without the reach, and a month's answer is then whole or empty,
// never an empty part of it (see monthFile.empty). A reach of about four
// weeks or more leaves no such day: its periods are a day each.
func months(from, to time.Time, reach time.Duration, loc *time.Location) []month {
	var out []month
	for a := from; a.Before(to); {
		y, m, d := a.Add(-reach).In(loc).Date()
		first := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
		last := requestEnd(first) // the last date one request may ask for
		// The last day whose meetings that request covers, padding included.
		ly, lm, ld := last.AddDate(0, 0, -1).Date()
		end := time.Date(ly, lm, ld, 0, 0, 0, 0, loc).AddDate(0, 0, 1) // exclusive
		if !end.After(a) {
			end = time.Date(a.In(loc).Year(), a.In(loc).Month(), a.In(loc).Day()+1, 0, 0, 0, 0, loc)
		}
		if end.After(to) {
			end = to
		}
		out = append(out, month{From: a, To: end.Add(-time.Nanosecond)})
		a = end
	}
	return out
}

// requestEnd is the last date of a one-month request that starts at a: the
// day before the same day of the next month, clamped to that month's length.
// It is the same rule as the client's, so a period never needs two requests.
func requestEnd(a time.Time) time.Time {
	y, m, d := a.Date()
	next := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	if dim := time.Date(next.Year(), next.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day(); d > dim {
		d = dim
	}
	return time.Date(next.Year(), next.Month(), d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
}

// monthSink is a umeeting.Sink keeping the distinct meetings of one month.
type monthSink struct {
	seen    map[string]bool
	kept    []umeeting.Meeting
	pending []umeeting.Meeting
	invalid int
	pendInv int
}

func newMonthSink() *monthSink { return &monthSink{seen: map[string]bool{}} }

func (c *monthSink) Meeting(m *umeeting.Meeting) { c.pending = append(c.pending, *m) }
func (c *monthSink) Invalid(string, []byte)      { c.pendInv++ }
func (c *monthSink) DiscardPage()                { c.pending, c.pendInv = c.pending[:0], 0 }

func (c *monthSink) CommitPage() {
	for _, m := range c.pending {
		if !c.seen[m.UUID] {
			c.seen[m.UUID] = true
			c.kept = append(c.kept, m)
		}
	}
	c.invalid += c.pendInv
	c.pending, c.pendInv = c.pending[:0], 0
}

// monthFile is what is saved of a fetched month, so that an interrupted
// run resumes where it stopped.
type monthFile struct {
	Version  int
	From, To time.Time
	Invalid  int
	Meetings []umeeting.Meeting
}

const monthFileVersion = 1

// empty says whether the API listed nothing for the month. Such a month is
// saved for the run that fetched it, but a later run asks for it again: one
// transient answer without data would otherwise be a gap in every history
// made from this folder. A month that is really empty costs one request a run.
func (mf monthFile) empty() bool { return len(mf.Meetings) == 0 && mf.Invalid == 0 }

// cache keeps the fetched months of one account in a folder.
type cache struct{ dir string }

func (c cache) path(m month) string {
	return filepath.Join(c.dir, fmt.Sprintf("%d-%d.gob", m.From.Unix(), m.To.Unix()))
}

// load returns a saved month, or ok=false when it was not fetched yet (or
// its file is unusable, in which case it is fetched again).
func (c cache) load(m month) (mf monthFile, ok bool) {
	f, err := os.Open(c.path(m))
	if err != nil {
		return mf, false
	}
	defer f.Close()
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&mf); err != nil ||
		mf.Version != monthFileVersion || !mf.From.Equal(m.From) || !mf.To.Equal(m.To) {
		return monthFile{}, false
	}
	return mf, true
}

// save writes a month atomically: a crash leaves it saved whole or not at all.
func (c cache) save(mf monthFile) error {
	if err := os.MkdirAll(c.dir, 0o750); err != nil {
		return fmt.Errorf("creating the progress folder: %w", err)
	}
	path := c.path(month{From: mf.From, To: mf.To})
	tmp, err := os.CreateTemp(c.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("saving progress: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	err = gob.NewEncoder(w).Encode(&mf)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("saving progress to %s: %w", path, err)
	}
	return nil
}

// fetchMonths makes sure every month is in the cache, fetching the missing
// ones in time order with one progress line each on progress. It stops at
// the first failure (budget exhausted, API error): what was fetched stays
// saved, so a later run resumes.
func fetchMonths(ctx context.Context, account string, f Fetcher, c cache, ms []month, progress io.Writer) error {
	for i, m := range ms {
		if mf, ok := c.load(m); ok && !mf.empty() {
			fmt.Fprintf(progress, "history: account %s: month %d/%d %s: already fetched\n", account, i+1, len(ms), span(m))
			continue
		}
		col := newMonthSink()
		start := time.Now()
		if err := f.Fetch(ctx, m.From, m.To, col); err != nil {
			if errors.Is(err, budget.ErrExhausted) {
				return fmt.Errorf("account %s: month %s: %w; %d of %d months are saved in %s, run the same command again later to resume",
					account, span(m), err, i, len(ms), c.dir)
			}
			return fmt.Errorf("account %s: month %s: %w (months fetched so far are kept; run again to resume)", account, span(m), err)
		}
		mf := monthFile{Version: monthFileVersion, From: m.From, To: m.To, Invalid: col.invalid, Meetings: col.kept}
		if err := c.save(mf); err != nil {
			return fmt.Errorf("account %s: %w", account, err)
		}
		fmt.Fprintf(progress, "history: account %s: month %d/%d %s: %d meetings, %d invalid records, %s\n",
			account, i+1, len(ms), span(m), len(col.kept), col.invalid, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func span(m month) string {
	return m.From.UTC().Format(time.RFC3339) + ".." + m.To.Add(time.Nanosecond).UTC().Format(time.RFC3339)
}

// fetchOlder fetches the months before backfill (--since), newest first,
// and stops at the first that the API serves nothing of: an empty month
// (the months after it had meetings, so the API keeps nothing older) or
// one it answers with an error (it refuses older dates). It returns the
// months to replay, in time order, and where the history then begins. A
// budget running out stops the run (resumable), as in fetchMonths.
func fetchOlder(ctx context.Context, account string, f Fetcher, c cache, ms []month, progress io.Writer) ([]month, time.Time, error) {
	from := ms[len(ms)-1].To.Add(time.Nanosecond) // the backfill's start
	kept := 0
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		mf, ok := c.load(m)
		if !ok || mf.empty() {
			col := newMonthSink()
			start := time.Now()
			err := f.Fetch(ctx, m.From, m.To, col)
			if errors.Is(err, budget.ErrExhausted) {
				return nil, time.Time{}, fmt.Errorf("account %s: month %s: %w; the months fetched so far are saved in %s, run the same command again later to resume",
					account, span(m), err, c.dir)
			}
			if err != nil {
				fmt.Fprintf(progress, "history: account %s: month %s before backfill: %v: taken as the end of what the API serves; the history begins at %s\n",
					account, span(m), err, from.UTC().Format(time.RFC3339))
				break
			}
			mf = monthFile{Version: monthFileVersion, From: m.From, To: m.To, Invalid: col.invalid, Meetings: col.kept}
			if err := c.save(mf); err != nil {
				return nil, time.Time{}, fmt.Errorf("account %s: %w", account, err)
			}
			fmt.Fprintf(progress, "history: account %s: month %s before backfill: %d meetings, %d invalid records, %s\n",
				account, span(m), len(mf.Meetings), mf.Invalid, time.Since(start).Round(time.Millisecond))
		} else {
			fmt.Fprintf(progress, "history: account %s: month %s before backfill: already fetched\n", account, span(m))
		}
		if mf.empty() {
			fmt.Fprintf(progress, "history: account %s: the API serves nothing in %s: taken as the end of what it keeps; the history begins at %s\n",
				account, span(m), from.UTC().Format(time.RFC3339))
			break
		}
		from, kept = m.From, kept+1
	}
	return ms[len(ms)-kept:], from, nil
}

// sharedBudget is the request budget of a run for account a: the
// account's daily_request_budget and min_request_interval, spent together
// with the exporter (and any other run) through the request log in dir,
// and at most maxRequests of them for this run.
func sharedBudget(a config.Account, dir string, st *store.Store, maxRequests int) *budget.Budget {
	b := budget.New(a.DailyRequestBudget, a.MinRequestInterval.D())
	b.Share(&runLedger{Ledger: store.ShareRequestLog(dir, a.Name), left: maxRequests, max: maxRequests})
	return b
}

// runLedger is the account's ledger with this run's own cap on top: a run
// that needs more requests stops with its progress saved, and the next run
// resumes.
type runLedger struct {
	budget.Ledger
	left, max int
}

// Spend refuses the request once the run spent its max, and otherwise
// spends it in the account's ledger.
func (r *runLedger) Spend(decide func([]time.Time) ([]time.Time, bool)) error {
	if r.left <= 0 {
		return fmt.Errorf("%w: this run made its %d requests (--max-requests)", budget.ErrExhausted, r.max)
	}
	return r.Ledger.Spend(func(recorded []time.Time) ([]time.Time, bool) {
		window, ok := decide(recorded)
		if ok {
			r.left--
		}
		return window, ok
	})
}
