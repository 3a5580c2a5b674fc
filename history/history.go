// Package history writes an account's past usage, and the recording rules
// over it, as Prometheus TSDB blocks ending exactly where the live counters
// began.
//
// The exporter's first start counts all of `backfill` into its counters'
// starting values and records that moment, the seam. `history` reads the
// same period from the API again, a month per request, and replays it in
// time order through the same store and collector code at a fixed step,
// writing each step's usage families as samples: the series have the
// live label sets, gauges are what the exporter would have shown then, and
// every counter series ends at the seam at exactly its live starting value,
// so increase() across the seam counts every meeting once.
package history

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/common/model"

	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/internal/account"
	"github.com/umeeting/umeeting_exporter/internal/timex"
	"github.com/umeeting/umeeting_exporter/store"
)

// Step is the time between two points of the history: Prometheus's
// default lookback (5m), so gauges draw without gaps at any query step, and
// a divisor of 24h, so every UTC midnight is a point and increase() over
// whole days is exact.
const Step = 5 * time.Minute

// DefaultMaxRequests bounds the API requests of one run per account; a run
// that needs more stops with its progress saved, and the next run resumes.
const DefaultMaxRequests = 500

// memoryLimit is the Go runtime's soft memory limit during a run, unless
// GOMEMLIMIT sets one (as Prometheus 3 sets one by default): a run holds a
// few hundred MB live (at 10,000 hosts, about 400 MiB: the series of the
// replay and one block of their samples, or one window of the rules), and
// the collector's default pacing lets the heap grow to twice that before
// collecting; the limit makes it collect more often instead, so that the
// peak stays under 1 GiB. It is soft: a run that needs more gets more.
const memoryLimit = 768 << 20

// Options configure an export.
type Options struct {
	StorageDir string
	// Output is the folder the blocks are written to: new or empty (see
	// openOutput).
	Output string
	// PerHost false writes per-account series only (hosts folded into the
	// series without host labels): blocks stay small for large accounts.
	PerHost bool
	// Accounts to export; empty means every account of the config.
	Accounts []string
	// MaxRequests caps the API requests of this run per account, on top
	// of the account's min_request_interval; 0 means DefaultMaxRequests.
	MaxRequests int
	// Labels are added to every series: the target labels Prometheus adds
	// when it scrapes the exporter (job, instance, any relabelling), so
	// that the imported series are the scraped ones. job and instance must
	// be given (an empty value stands for no label).
	Labels map[string]string
	// Since is how far back the history reaches, when further than the
	// config's backfill (which the live starting values count): zero means
	// backfill. See ParseSince.
	Since Since
	// RuleFiles are Prometheus rule files whose recording rules are
	// evaluated over the history (alerting rules are left out).
	RuleFiles []string
	// EvalInterval is the evaluation interval of rule groups that set
	// none: Prometheus's evaluation_interval; 0 means its default, 1m.
	EvalInterval time.Duration
	// Progress receives one line per month fetched and a summary per account.
	Progress io.Writer
	Logger   log.Logger
}

// Since is how far back the history reaches: a duration before the seam,
// or a date (UTC midnight).
type Since struct {
	Before time.Duration
	Date   time.Time
}

// ParseSince reads --since: a duration (90d, 12w, 2160h) or a date
// (YYYY-MM-DD, UTC); "" is the config's backfill.
func ParseSince(s string) (Since, error) {
	if s == "" {
		return Since{}, nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return Since{Date: d}, nil
	}
	d, err := model.ParseDuration(s)
	if err != nil || d <= 0 {
		return Since{}, fmt.Errorf("--since %q: want a duration before the first start (e.g. 90d) or a date (YYYY-MM-DD)", s)
	}
	return Since{Before: time.Duration(d)}, nil
}

// from returns where the history begins for a seam and a backfill start.
func (s Since) from(seam, base time.Time) (time.Time, error) {
	var t time.Time
	switch {
	case !s.Date.IsZero():
		t = s.Date
	case s.Before > 0:
		t = seam.Add(-s.Before)
	default:
		return base, nil
	}
	if t.After(base) {
		return time.Time{}, fmt.Errorf("--since %s is after %s, the start of backfill before the first start: the history reaches at least that far back (the live starting values count it)",
			t.UTC().Format(time.RFC3339), base.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// ownLabels are the labels the exporter's usage series carry themselves.
var ownLabels = []string{"account", "email", "host", "user_type", "feature", "window", "le", "reason"}

// CheckLabels checks the target labels given for the imported series.
func CheckLabels(labels map[string]string) error {
	var missing []string
	for _, need := range []string{"job", "instance"} {
		if _, ok := labels[need]; !ok {
			missing = append(missing, need)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("give the labels your Prometheus adds to the exporter's series, at least job and instance, as on its up series (e.g. --label=job=umeeting --label=instance=exporter:9861); missing: %s; without them the imported series would not continue the scraped ones", strings.Join(missing, ", "))
	}
	for name := range labels {
		if !model.LegacyValidation.IsValidLabelName(name) || strings.HasPrefix(name, "__") {
			return fmt.Errorf("--label %q: not a valid label name", name)
		}
		if slices.Contains(ownLabels, name) {
			return fmt.Errorf("--label %q: the exporter's series have this label already", name)
		}
	}
	return nil
}

// Run writes the history of the configured accounts, and the recording
// rules over it, as TSDB blocks into opts.Output.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	if opts.MaxRequests <= 0 {
		opts.MaxRequests = DefaultMaxRequests
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(memoryLimit))
	}
	if opts.EvalInterval <= 0 {
		opts.EvalInterval = DefaultEvalInterval
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if err := CheckLabels(opts.Labels); err != nil {
		return err
	}
	accounts, err := selectAccounts(cfg, opts.Accounts)
	if err != nil {
		return err
	}
	groups, err := loadRules(opts.RuleFiles, opts.EvalInterval)
	if err != nil {
		return err
	}
	out, err := openOutput(opts.Output)
	if err != nil {
		return err
	}
	defer out.remove()
	var inputs []replayInput
	for _, a := range accounts {
		in, err := prepare(ctx, cfg, a, opts)
		if err != nil {
			return err
		}
		inputs = append(inputs, in)
	}
	var series int64
	for _, in := range inputs {
		begun := time.Now()
		bw, err := out.blockWriter()
		if err != nil {
			return err
		}
		stats, err := replay(newSeriesWriter(bw, opts.Labels), in, Step)
		if err == nil {
			err = bw.close()
		} else {
			bw.abort()
		}
		if err != nil {
			return err
		}
		series += bw.samples
		fmt.Fprintf(opts.Progress, "history: account %s: replayed %d meetings from %s to the seam %s in %d steps of %s: %d samples in %d blocks (%s)\n",
			in.name, stats.Meetings, in.start.UTC().Format(time.RFC3339), in.seam.UTC().Format(time.RFC3339),
			stats.Steps, Step, bw.samples, bw.blocks, time.Since(begun).Round(time.Millisecond))
		if stats.Late > 0 || stats.Missing > 0 {
			fmt.Fprintf(opts.Progress, "history: account %s: the API now lists %.0f meetings before the seam that the first start had not seen (counted live since, so left out here) and no longer lists %.0f that it counted (they show as an increase in the last step before the seam); the series end exactly at the live starting values\n",
				in.name, stats.Late, stats.Missing)
			if stats.Late > 0 {
				fmt.Fprintf(opts.Progress, "history: account %s: more meetings not seen than a lookback holds mean that the first start did not read all of backfill, or that backfill changed since: see docs/history.md\n", in.name)
			}
		}
	}
	if len(groups) > 0 {
		from, end := rulesRange(inputs)
		begun := time.Now()
		n, err := evalRules(ctx, out, groups, from, end)
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.Progress, "history: recording rules of %d groups evaluated from %s to %s: %d samples (%s)\n",
			len(groups), from.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), n, time.Since(begun).Round(time.Millisecond))
		if last := latestSeam(inputs); last.Sub(end) > opts.EvalInterval {
			fmt.Fprintf(opts.Progress, "history: the accounts' seams differ (%s to %s): the rules end at the earliest, so the rule series of the later accounts have a gap until their own seam\n",
				end.UTC().Format(time.RFC3339), last.UTC().Format(time.RFC3339))
		}
	}
	blocks, err := out.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.Progress, "history: wrote %d blocks (%d series samples) to %s; next: stop Prometheus, move them into its data folder (--storage.tsdb.path, owned by its user), and start it again\n",
		blocks, series, opts.Output)
	return nil
}

// rulesRange is the period over which the recording rules are evaluated:
// from the history's first point up to the earliest seam (excluded). The
// live Prometheus evaluated the rules over the exporter's own samples from
// the seam on, so no evaluation is made twice.
func rulesRange(inputs []replayInput) (from, end time.Time) {
	for i, in := range inputs {
		if i == 0 {
			from, end = in.start, in.seam
			continue
		}
		from, end = timex.Earlier(from, in.start), timex.Earlier(end, in.seam)
	}
	return from, end
}

// latestSeam is the latest of the accounts' seams.
func latestSeam(inputs []replayInput) time.Time {
	var last time.Time
	for _, in := range inputs {
		last = timex.Later(last, in.seam)
	}
	return last
}

func selectAccounts(cfg *config.Config, names []string) ([]config.Account, error) {
	if len(names) == 0 {
		return cfg.Accounts, nil
	}
	var out []config.Account
	for _, n := range names {
		found := false
		for _, a := range cfg.Accounts {
			if a.Name == n {
				out, found = append(out, a), true
			}
		}
		if !found {
			return nil, fmt.Errorf("--account %q is not in the config", n)
		}
	}
	return out, nil
}

// prepare reads the live state of an account and fetches its history.
func prepare(ctx context.Context, cfg *config.Config, a config.Account, opts Options) (replayInput, error) {
	st, err := store.ReadOnly(opts.StorageDir, a.Name)
	if errors.Is(err, store.ErrNoState) {
		return replayInput{}, fmt.Errorf("account %s: %w: start the exporter first (with this --storage.path); the history ends where its counters began", a.Name, err)
	}
	if err != nil {
		return replayInput{}, fmt.Errorf("account %s: %w", a.Name, err)
	}
	seam, baseline, err := liveStart(opts.StorageDir, a.Name)
	if err != nil {
		return replayInput{}, fmt.Errorf("account %s: %w", a.Name, err)
	}
	base := seam.Add(-cfg.Backfill.D())
	since, err := opts.Since.from(seam, base)
	if err != nil {
		return replayInput{}, fmt.Errorf("account %s: %w", a.Name, err)
	}
	in := replayInput{
		name:     a.Name,
		live:     account.MetricsOptions(cfg.Metrics),
		start:    base,
		base:     base,
		seam:     seam,
		baseline: baseline,
		months:   months(base, seam.Add(time.Nanosecond), a.MaxMeetingLength.D(), a.Location),
		cache:    cache{dir: filepath.Join(opts.StorageDir, "history", a.Name, fmt.Sprintf("%d-%d", base.Unix(), seam.Unix()))},
	}
	in.hist = in.live
	if !opts.PerHost {
		in.hist.PerHost = false
	}
	client, err := account.NewClient(a, sharedBudget(a, opts.StorageDir, st, opts.MaxRequests), log.With(opts.Logger, "account", a.Name), nil)
	if err != nil {
		return replayInput{}, fmt.Errorf("account %s: %w", a.Name, err)
	}
	if err := fetchMonths(ctx, a.Name, client, in.cache, in.months, opts.Progress); err != nil {
		return replayInput{}, err
	}
	if since.Before(base) {
		older, from, err := fetchOlder(ctx, a.Name, client, in.cache, months(since, base, a.MaxMeetingLength.D(), a.Location), opts.Progress)
		if err != nil {
			return replayInput{}, err
		}
		in.months, in.start = append(older, in.months...), from
	}
	return in, nil
}

// liveStart returns the seam and the live counters' starting values, from
// the copy of the state the exporter's first start kept.
func liveStart(dir, account string) (time.Time, *store.Snapshot, error) {
	st, err := store.ReadSeam(dir, account)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("cannot tell where the live counters began: %w", err)
	}
	seam := st.Seam()
	return seam, st.Snapshot(seam), nil
}
