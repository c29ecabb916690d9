package main

import (
	"fmt"
	"math"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/truth"
	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

// em runs eventmetrics.
//
// Options: engine defaults (SyncInterval, 1 s). Ingest: each writer
// resolves its series to handles (db.Series), then fills an engine.Batch
// with 1,000 points and calls db.Append. Flush: Compact (a checkpoint, then
// compaction of the store's tables, which drops superseded partial chunks),
// then Close. Queries: the engine's own (Percentiles,
// Step+AggregateBy, Scalars).
type em struct {
	l  *load
	db *engine.DB
}

func (e *em) name() string { return "eventmetrics" }

func (e *em) open(dir string) error {
	db, err := engine.Open(dir, nil)
	if err != nil {
		return fmt.Errorf("eventmetrics: open %s: %w", dir, err)
	}
	e.db = db
	return nil
}

func (e *em) ingest(shards []shard, batch int) (float64, error) {
	el, err := runWriters(shards, func(w int, sh *shard, st *stepper) error {
		hs := make([]*engine.Series, e.l.cfg.Series)
		for s := w; s < e.l.cfg.Series; s += len(shards) {
			h, err := e.db.Series(e.l.cfg.Metric(), workload.Labels(s))
			if err != nil {
				return err
			}
			hs[s] = h
		}
		var bt engine.Batch
		k := 0
		for lo := 0; lo < len(sh.Series); lo += batch {
			st.wait(w, k)
			hi := min(lo+batch, len(sh.Series))
			for i := lo; i < hi; i++ {
				bt.Add(hs[sh.Series[i]], sh.T[i], sh.V[i])
			}
			if err := e.db.Append(&bt); err != nil {
				return fmt.Errorf("eventmetrics: writer %d: %w", w, err)
			}
			bt.Reset()
			st.finished(w)
			k++
		}
		return nil
	})
	return el.Seconds(), err
}

func (e *em) flushClose() error {
	if err := e.db.Compact(); err != nil {
		e.close()
		return fmt.Errorf("eventmetrics: compact: %w", err)
	}
	return e.close()
}

func (e *em) close() error {
	if e.db == nil {
		return nil
	}
	err := e.db.Close()
	e.db = nil
	return err
}

func (e *em) dataSize(dir string) (int64, error) { return dirSize(dir + "/data") }

func (e *em) dataName() string { return "pebble data/" }

func (e *em) q1() ([]float64, error) {
	l := truth.Q1Labels
	return e.db.Query(e.l.cfg.Metric(), query.Eq("service", l["service"]), query.Eq("endpoint", l["endpoint"]), query.Eq("status", l["status"])).
		Percentiles(50, 90, 99)
}

func (e *em) q2() (float64, error) {
	ps, err := e.db.Query(e.l.cfg.Metric(), query.Eq("service", truth.Q2Service)).FromNanos(truth.Q2From(e.l.cfg)).Percentiles(99)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}

func (e *em) q3() ([]int64, []float64, []float64, error) {
	rows, err := e.db.Query(e.l.cfg.Metric(), query.Eq("endpoint", truth.Q3Endpoint)).Step(time.Duration(truth.Q3Step)).
		AggregateBy(query.Count, query.Sum)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(rows) != 1 {
		return nil, nil, nil, fmt.Errorf("eventmetrics: Q3: %d rows, want 1", len(rows))
	}
	counts, sums := make([]float64, len(rows[0].Values)), make([]float64, len(rows[0].Values))
	for i, v := range rows[0].Values {
		counts[i], sums[i] = v[0], v[1]
	}
	return rows[0].Times, counts, sums, nil
}

func (e *em) q4() (float64, float64, error) {
	v, err := e.db.Query(e.l.cfg.Metric()).Scalars(query.Count, query.Sum)
	if err != nil {
		return 0, 0, err
	}
	return v[0], v[1], nil
}

// verify reads back every point of every series and compares it,
// timestamp and value bits, with the generated data.
func (e *em) verify() error {
	for s := range e.l.cfg.Series {
		var ms []query.Matcher
		for k, v := range workload.Labels(s) {
			ms = append(ms, query.Eq(k, v))
		}
		ts, vs, err := e.db.Query(e.l.cfg.Metric(), ms...).Points()
		if err != nil {
			return err
		}
		wt, wv := e.l.td.TS[s], e.l.td.VS[s]
		if len(ts) != len(wt) {
			return fmt.Errorf("eventmetrics: series %d: read %d points, want %d", s, len(ts), len(wt))
		}
		for i := range ts {
			if ts[i] != wt[i] || math.Float64bits(vs[i]) != math.Float64bits(wv[i]) {
				return fmt.Errorf("eventmetrics: series %d point %d: read (%d, %v), want (%d, %v)", s, i, ts[i], vs[i], wt[i], wv[i])
			}
		}
	}
	return nil
}

// ingestStream ingests the points of g as they are generated, with one
// writer (the peak RSS run).
func (e *em) ingestStream(g *workload.Gen, batch int) error {
	hs := make([]*engine.Series, e.l.cfg.Series)
	var bt engine.Batch
	for {
		pt, ok := g.Next()
		if !ok {
			break
		}
		h := hs[pt.Series]
		if h == nil {
			var err error
			if h, err = e.db.Series(e.l.cfg.Metric(), workload.Labels(pt.Series)); err != nil {
				return err
			}
			hs[pt.Series] = h
		}
		bt.Add(h, pt.T, pt.V)
		if bt.Len() == batch {
			if err := e.db.Append(&bt); err != nil {
				return err
			}
			bt.Reset()
		}
	}
	return e.db.Append(&bt)
}
