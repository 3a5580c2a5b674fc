package history

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/umeeting/umeeting_exporter/internal/timex"
)

// DefaultEvalInterval is Prometheus's default evaluation_interval, used for
// rule groups that set no interval of their own.
const DefaultEvalInterval = time.Minute

// ruleWindow is the span of one range query of a rule: the engine holds a
// window's points of every series the rule reads (about 280 MiB live for
// 2 hours of a 1m interval at 10,000 hosts), so it bounds the memory of an
// evaluation, whatever the history's length; each query also reads the
// rule's own range (1h) before the window again, a cost shorter windows
// repeat more often.
const ruleWindow = 2 * time.Hour

// ruleGroup is a group of a rule file: its recording rules in file order.
type ruleGroup struct {
	file, name string
	interval   time.Duration
	offset     time.Duration // query_offset
	rules      []*rules.RecordingRule
}

// loadRules reads the rule files as Prometheus does (the same parser and
// checks) and returns their groups with recording rules, in file order;
// alerting rules are left out: they write no series a dashboard reads.
func loadRules(files []string, interval time.Duration) ([]ruleGroup, error) {
	p := parser.NewParser(parser.Options{})
	var groups []ruleGroup
	for _, f := range files {
		rgs, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, p, discardLogger)
		if len(errs) > 0 {
			return nil, fmt.Errorf("--rules %s: %w", f, errors.Join(errs...))
		}
		for _, rg := range rgs.Groups {
			g := ruleGroup{file: f, name: rg.Name, interval: interval}
			if rg.Interval != 0 {
				g.interval = time.Duration(rg.Interval)
			}
			if rg.QueryOffset != nil {
				g.offset = time.Duration(*rg.QueryOffset)
			}
			for _, r := range rg.Rules {
				if r.Record == "" {
					continue
				}
				expr, err := p.ParseExpr(r.Expr)
				if err != nil {
					return nil, fmt.Errorf("--rules %s: group %s: %s: %w", f, rg.Name, r.Record, err)
				}
				g.rules = append(g.rules, rules.NewRecordingRule(r.Record, expr, rules.FromMaps(rg.Labels, r.Labels)))
			}
			if len(g.rules) > 0 {
				groups = append(groups, g)
			}
		}
	}
	return groups, nil
}

// evalRules evaluates the recording rules at every evaluation of their
// group's interval in [from, end), over the blocks written so far and the
// rules' own results, and writes the results as blocks too. Time goes
// forward a window at a time; in each, the groups in file order and their
// rules in order are evaluated with Prometheus's engine, each rule's
// results stored before the next rule runs, so a rule reading rules above
// it sees their results as on a live Prometheus. The result at every
// evaluation time is the engine's instant evaluation there (a range query
// evaluates each step so); a series that vanishes gets a staleness marker
// at the first evaluation without it, as the rule manager writes.
func evalRules(ctx context.Context, out *output, groups []ruleGroup, from, end time.Time) (int64, error) {
	blocks, err := openSeriesBlocks(out.blocks)
	if err != nil {
		return 0, err
	}
	defer blocks.close()
	w, err := out.blockWriter()
	if err != nil {
		return 0, err
	}
	queryable := storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		readers, err := blocks.overlapping(mint, maxt)
		if err != nil {
			return nil, err
		}
		qs := make([]storage.Querier, 0, len(readers)+1)
		for _, b := range append(readers, tsdb.NewRangeHead(w.head, mint, maxt)) {
			q, err := tsdb.NewBlockQuerier(b, mint, maxt)
			if err != nil {
				return nil, err
			}
			qs = append(qs, q)
		}
		return storage.NewMergeQuerier(qs, nil, storage.ChainedSeriesMerge), nil
	})
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:               discardLogger,
		MaxSamples:           math.MaxInt, // a window's points are bounded by ruleWindow
		Timeout:              time.Hour,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
	})
	e := ruleEval{w: w, engine: engine, queryable: queryable, series: map[string]*ruleSeries{}}
	for a := from.Truncate(ruleWindow); a.Before(end); a = a.Add(ruleWindow) {
		for _, g := range groups {
			first := ceil(timex.Later(a, from), g.interval)
			last := ceil(timex.Earlier(a.Add(ruleWindow), end), g.interval).Add(-g.interval)
			if last.Before(first) {
				continue
			}
			for _, r := range g.rules {
				if err := e.eval(ctx, g, r, first, last); err != nil {
					w.abort()
					return e.samples, err
				}
			}
		}
		if err := blocks.closeUnused(); err != nil {
			w.abort()
			return e.samples, err
		}
	}
	if err := w.close(); err != nil {
		return e.samples, err
	}
	return e.samples, nil
}

// seriesBlocks are the replay's blocks, opened when a query reaches them
// and closed after a window that did not: an open block keeps the pages of
// its files that queries read mapped (resident), so holding every block
// open to the end would add the whole output's size to the peak memory.
type seriesBlocks struct {
	pool   chunkenc.Pool
	blocks []seriesBlock
}

// seriesBlock is a written block: its folder, time range and, while a
// window reads it, the open block.
type seriesBlock struct {
	dir        string
	mint, maxt int64 // [mint, maxt)
	open       *tsdb.Block
	used       bool // read during the current window
}

// openSeriesBlocks reads the time ranges of the blocks in dir.
func openSeriesBlocks(dir string) (*seriesBlocks, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the written blocks: %w", err)
	}
	bs := &seriesBlocks{pool: chunkenc.NewPool()}
	for _, e := range entries {
		b, err := tsdb.OpenBlock(discardLogger, filepath.Join(dir, e.Name()), bs.pool, nil)
		if err != nil {
			return nil, fmt.Errorf("opening a written block: %w", err)
		}
		m := b.Meta()
		if err := b.Close(); err != nil {
			return nil, fmt.Errorf("closing a written block: %w", err)
		}
		bs.blocks = append(bs.blocks, seriesBlock{dir: filepath.Join(dir, e.Name()), mint: m.MinTime, maxt: m.MaxTime})
	}
	return bs, nil
}

// overlapping returns the blocks with samples in [mint, maxt], opening
// those not open yet.
func (bs *seriesBlocks) overlapping(mint, maxt int64) ([]tsdb.BlockReader, error) {
	var out []tsdb.BlockReader
	for i := range bs.blocks {
		b := &bs.blocks[i]
		if b.maxt <= mint || b.mint > maxt {
			continue
		}
		if b.open == nil {
			o, err := tsdb.OpenBlock(discardLogger, b.dir, bs.pool, nil)
			if err != nil {
				return nil, fmt.Errorf("opening a written block: %w", err)
			}
			b.open = o
		}
		b.used = true
		out = append(out, b.open)
	}
	return out, nil
}

// closeUnused closes the blocks no query read since the last call.
func (bs *seriesBlocks) closeUnused() error {
	for i := range bs.blocks {
		b := &bs.blocks[i]
		if b.open != nil && !b.used {
			if err := b.open.Close(); err != nil {
				return fmt.Errorf("closing a written block: %w", err)
			}
			b.open = nil
		}
		b.used = false
	}
	return nil
}

// close closes the open blocks.
func (bs *seriesBlocks) close() {
	for i := range bs.blocks {
		if b := &bs.blocks[i]; b.open != nil {
			b.open.Close()
			b.open = nil
		}
	}
}

// ruleEval evaluates rules into a block writer.
type ruleEval struct {
	w         *blockWriter
	engine    *promql.Engine
	queryable storage.Queryable
	series    map[string]*ruleSeries // by labels
	samples   int64
}

// ruleSeries is what the evaluation knows of a rule's result series.
type ruleSeries struct {
	series
	rule  *rules.RecordingRule
	last  int64 // latest evaluation with a value (ms)
	stale bool  // a staleness marker follows last
}

// eval evaluates rule r of group g at every evaluation from first to last
// and stores its results.
func (e *ruleEval) eval(ctx context.Context, g ruleGroup, r *rules.RecordingRule, first, last time.Time) error {
	fail := func(err error) error {
		return fmt.Errorf("--rules %s: group %s: rule %s at %s: %w", g.file, g.name, r.Name(), first.UTC().Format(time.RFC3339), err)
	}
	q, err := e.engine.NewRangeQuery(ctx, e.queryable, nil, r.Query().String(), first.Add(-g.offset), last.Add(-g.offset), g.interval)
	if err != nil {
		return fail(err)
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return fail(res.Err)
	}
	mat, err := res.Matrix()
	if err != nil {
		return fail(err)
	}
	step, offset := g.interval.Milliseconds(), g.offset.Milliseconds()
	lb := labels.NewBuilder(labels.EmptyLabels())
	seen := map[string]bool{}
	for _, s := range mat {
		// The rule's name and labels, as the rule manager sets them.
		lb.Reset(s.Metric)
		lb.Set(labels.MetricName, r.Name())
		r.Labels().Range(func(l labels.Label) { lb.Set(l.Name, l.Value) })
		lset := lb.Labels()
		key := lset.String()
		if seen[key] {
			return fail(rules.ErrDuplicateRecordingLabelSet)
		}
		seen[key] = true
		rs := e.series[key]
		if rs == nil {
			rs = &ruleSeries{series: series{lset: lset}, rule: r, last: math.MinInt64, stale: true}
			e.series[key] = rs
		}
		add := func(t int64, v float64) error {
			if !rs.stale && t-rs.last > step {
				if err := e.w.add(&rs.series, rs.last+step, math.Float64frombits(value.StaleNaN)); err != nil {
					return err
				}
				e.samples++
			}
			rs.last, rs.stale = t, false
			e.samples++
			return nil
		}
		for _, p := range s.Floats {
			if err := add(p.T+offset, p.F); err != nil {
				return fail(err)
			}
			if err := e.w.add(&rs.series, p.T+offset, p.F); err != nil {
				return fail(err)
			}
		}
		for _, p := range s.Histograms {
			if err := add(p.T+offset, 0); err != nil {
				return fail(err)
			}
			if err := e.w.addHistogram(&rs.series, p.T+offset, p.H); err != nil {
				return fail(err)
			}
		}
	}
	// Series without a value at the last evaluation are stale after it.
	lastMs := last.UnixMilli()
	for _, rs := range e.series {
		if !rs.stale && rs.last < lastMs && rs.rule == r {
			if err := e.w.add(&rs.series, rs.last+step, math.Float64frombits(value.StaleNaN)); err != nil {
				return fail(err)
			}
			rs.stale = true
			e.samples++
		}
	}
	return e.w.commit()
}

// ceil is the first multiple of d (since the epoch) at or after t.
func ceil(t time.Time, d time.Duration) time.Time {
	if c := t.Truncate(d); c.Before(t) {
		return c.Add(d)
	}
	return t.Truncate(d)
}
