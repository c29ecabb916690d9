package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/eventmetrics/eventmetrics/bench/truth"
	"github.com/eventmetrics/eventmetrics/bench/workload"
)

// prom runs Prometheus TSDB as an embedded library.
//
// Options: tsdb.DefaultOptions() unchanged (2 h blocks, no out-of-order
// window, WAL without compression, 15 d retention, which is relative to
// the newest data and so never drops a workload). Ingest: one Appender per
// batch of 1,000 points, Commit, series refs cached per writer (the first
// Append of a series passes its labels and ref 0). Flush: db.Compact (every
// head block that is due), then CompactHead over what is left of the head,
// so that every point is in a block, then Close. Queries read raw points
// through a Querier (Select with labels.MustNewMatcher) and compute the
// answers outside: numpy-linear percentiles after a sort (Q1, Q2), counts
// and plain float64 sums (Q3 per 60 s window, Q4).
type prom struct {
	l  *load
	db *tsdb.DB
}

func (p *prom) name() string { return "Prometheus" }

func promLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func (p *prom) open(dir string) error {
	db, err := tsdb.Open(dir, promLogger(), nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		return fmt.Errorf("prometheus: open %s: %w", dir, err)
	}
	p.db = db
	return nil
}

func promLabels(cfg workload.Config, s int) labels.Labels {
	m := workload.Labels(s)
	m[labels.MetricName] = cfg.Metric()
	return labels.FromMap(m)
}

func (p *prom) ingest(shards []shard, batch int) (float64, error) {
	ctx := context.Background()
	el, err := runWriters(shards, func(w int, sh *shard, st *stepper) error {
		lbls := make([]labels.Labels, p.l.cfg.Series)
		refs := make([]storage.SeriesRef, p.l.cfg.Series)
		k := 0
		for lo := 0; lo < len(sh.Series); lo += batch {
			st.wait(w, k)
			hi := min(lo+batch, len(sh.Series))
			app := p.db.Appender(ctx)
			for i := lo; i < hi; i++ {
				s := sh.Series[i]
				if refs[s] == 0 {
					lbls[s] = promLabels(p.l.cfg, int(s))
				}
				ref, err := app.Append(refs[s], lbls[s], sh.T[i]/1e6, sh.V[i])
				if err != nil {
					app.Rollback()
					return fmt.Errorf("prometheus: writer %d: append series %d at %d: %w", w, s, sh.T[i]/1e6, err)
				}
				refs[s] = ref
			}
			if err := app.Commit(); err != nil {
				return fmt.Errorf("prometheus: writer %d: commit: %w", w, err)
			}
			st.finished(w)
			k++
		}
		return nil
	})
	return el.Seconds(), err
}

func (p *prom) flushClose() error {
	if err := p.db.Compact(context.Background()); err != nil {
		return fmt.Errorf("prometheus: compact: %w", err)
	}
	h := p.db.Head()
	if h.NumSeries() > 0 && h.MinTime() <= h.MaxTime() {
		if err := p.db.CompactHead(tsdb.NewRangeHead(h, h.MinTime(), h.MaxTime())); err != nil {
			return fmt.Errorf("prometheus: compact head: %w", err)
		}
	}
	return p.close()
}

func (p *prom) close() error {
	if p.db == nil {
		return nil
	}
	err := p.db.Close()
	p.db = nil
	return err
}

// dataSize is the bytes of the blocks: the directories holding a meta.json.
func (p *prom) dataSize(dir string) (int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(dir + "/" + e.Name() + "/meta.json"); err != nil {
			continue
		}
		m, err := dirSize(dir + "/" + e.Name())
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

func (p *prom) dataName() string { return "blocks" }

// each calls fn for every float sample of the series matching ms in
// [mint, maxt] (ms, inclusive), series by series in the order Select
// returns them.
func (p *prom) each(mint, maxt int64, fn func(l labels.Labels, t int64, v float64), ms ...*labels.Matcher) error {
	q, err := p.db.Querier(mint, maxt)
	if err != nil {
		return err
	}
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, ms...)
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		l := s.Labels()
		it = s.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				return fmt.Errorf("prometheus: sample of type %v", vt)
			}
			t, v := it.At()
			fn(l, t, v)
		}
		if err := it.Err(); err != nil {
			return err
		}
	}
	return ss.Err()
}

func (p *prom) metric() *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, p.l.cfg.Metric())
}

func (p *prom) q1() ([]float64, error) {
	var vals []float64
	l := truth.Q1Labels
	err := p.each(math.MinInt64, math.MaxInt64, func(_ labels.Labels, _ int64, v float64) { vals = append(vals, v) },
		p.metric(),
		labels.MustNewMatcher(labels.MatchEqual, "service", l["service"]),
		labels.MustNewMatcher(labels.MatchEqual, "endpoint", l["endpoint"]),
		labels.MustNewMatcher(labels.MatchEqual, "status", l["status"]))
	if err != nil {
		return nil, err
	}
	return truth.Percentiles(vals, 50, 90, 99), nil
}

// ceilMillis is the smallest ms timestamp t with t·1e6 >= ns.
func ceilMillis(ns int64) int64 {
	ms := ns / 1e6
	if ms*1e6 < ns {
		ms++
	}
	return ms
}

func (p *prom) q2() (float64, error) {
	var vals []float64
	err := p.each(ceilMillis(truth.Q2From(p.l.cfg)), math.MaxInt64, func(_ labels.Labels, _ int64, v float64) { vals = append(vals, v) },
		p.metric(), labels.MustNewMatcher(labels.MatchEqual, "service", truth.Q2Service))
	if err != nil {
		return 0, err
	}
	return truth.Percentiles(vals, 99)[0], nil
}

func (p *prom) q3() ([]int64, []float64, []float64, error) {
	type acc struct{ count, sum float64 }
	windows := map[int64]*acc{}
	err := p.each(math.MinInt64, math.MaxInt64, func(_ labels.Labels, t int64, v float64) {
		w := truth.WindowStart(t * 1e6)
		a := windows[w]
		if a == nil {
			a = &acc{}
			windows[w] = a
		}
		a.count++
		a.sum += v
	}, p.metric(), labels.MustNewMatcher(labels.MatchEqual, "endpoint", truth.Q3Endpoint))
	if err != nil {
		return nil, nil, nil, err
	}
	starts := make([]int64, 0, len(windows))
	for w := range windows {
		starts = append(starts, w)
	}
	slices.Sort(starts)
	counts, sums := make([]float64, len(starts)), make([]float64, len(starts))
	for i, w := range starts {
		counts[i], sums[i] = windows[w].count, windows[w].sum
	}
	return starts, counts, sums, nil
}

func (p *prom) q4() (float64, float64, error) {
	var count, sum float64
	err := p.each(math.MinInt64, math.MaxInt64, func(_ labels.Labels, _ int64, v float64) {
		count++
		sum += v
	}, p.metric())
	return count, sum, err
}

// verify reads back every point and compares it, timestamp and value bits,
// with the generated data.
func (p *prom) verify() error {
	byKey := map[string]int{}
	for s := range p.l.cfg.Series {
		byKey[promLabels(p.l.cfg, s).String()] = s
	}
	got := make([]int, p.l.cfg.Series)
	var bad error
	var last labels.Labels
	cur := -1
	err := p.each(math.MinInt64, math.MaxInt64, func(l labels.Labels, t int64, v float64) {
		if bad != nil {
			return
		}
		if cur < 0 || !labels.Equal(l, last) {
			s, ok := byKey[l.String()]
			if !ok {
				bad = fmt.Errorf("prometheus: unknown series %s", l)
				return
			}
			cur, last = s, l
		}
		i := got[cur]
		ts, vs := p.l.td.TS[cur], p.l.td.VS[cur]
		if i >= len(ts) || ts[i] != t*1e6 || math.Float64bits(vs[i]) != math.Float64bits(v) {
			bad = fmt.Errorf("prometheus: series %d point %d: read (%d ms, %v)", cur, i, t, v)
			return
		}
		got[cur]++
	}, p.metric())
	if err != nil {
		return err
	}
	if bad != nil {
		return bad
	}
	for s, n := range got {
		if n != len(p.l.td.TS[s]) {
			return fmt.Errorf("prometheus: series %d: read %d points, want %d", s, n, len(p.l.td.TS[s]))
		}
	}
	return nil
}

// ingestStream ingests the points of g as they are generated, with one
// writer (the peak RSS run).
func (p *prom) ingestStream(g *workload.Gen, batch int) error {
	ctx := context.Background()
	lbls := make([]labels.Labels, p.l.cfg.Series)
	refs := make([]storage.SeriesRef, p.l.cfg.Series)
	app := p.db.Appender(ctx)
	n := 0
	for {
		pt, ok := g.Next()
		if !ok {
			break
		}
		if refs[pt.Series] == 0 {
			lbls[pt.Series] = promLabels(p.l.cfg, pt.Series)
		}
		ref, err := app.Append(refs[pt.Series], lbls[pt.Series], pt.T/1e6, pt.V)
		if err != nil {
			app.Rollback()
			return fmt.Errorf("prometheus: append: %w", err)
		}
		refs[pt.Series] = ref
		if n++; n == batch {
			if err := app.Commit(); err != nil {
				return err
			}
			app, n = p.db.Appender(ctx), 0
		}
	}
	return app.Commit()
}
