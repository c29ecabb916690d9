package query

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/eventmetrics/eventmetrics/index"
)

// Label is one name=value pair of a result row.
type Label = index.Label

// Two more aggregations, for counters written with Increment (running
// totals). They are computed per series, then summed over the series of a
// group, and are robust to counter resets (a value below its predecessor is
// a restart from 0).
const (
	// Increase is the growth of the counters: for every pair of
	// consecutive selected points of a series, v - prev (or v after a
	// reset), attributed to the window of the later point. The first
	// selected point of each series is its baseline, so adjacent windows
	// add up to the increase over the whole range.
	Increase Agg = 100 + iota
	// Rate is Increase per second of the window (of the range when there is
	// no Step: the bounded range, or else the span of the selected points).
	Rate
)

// GroupBy makes the *By methods return one row per distinct combination of
// the values of the given label names (a series lacking a label has the
// empty value there). The metric name is reachable as "__name__".
func (q *Query) GroupBy(names ...string) *Query {
	c := q.clone()
	c.groupBy = slices.Clone(names)
	c.bySeries = false
	return c
}

// BySeries makes the *By methods return one row per series, labeled with
// all its labels (and "__name__").
func (q *Query) BySeries() *Query {
	c := q.clone()
	c.groupBy = nil
	c.bySeries = true
	return c
}

// Step makes the *By methods return one result per tumbling window of
// length d. Windows start at the range's lower bound when it has one (From,
// Since, Between), else at multiples of d since the Unix epoch. Only windows
// holding selected points are returned.
func (q *Query) Step(d time.Duration) *Query {
	c := q.clone()
	if d <= 0 {
		c.err = fmt.Errorf("query: step %v must be positive", d)
		return c
	}
	c.step = int64(d)
	return c
}

// Row is one group's result.
type Row struct {
	// Labels names the group: the GroupBy labels with their values (empty
	// values omitted), every label of the series with BySeries, none when
	// not grouped.
	Labels []Label
	// Times holds the start of each window (Unix ns), ascending. Without a
	// Step there is one window: the range's lower bound, or the time of the
	// first selected point when the range is unbounded below.
	Times []int64
	// Values[i] holds the results for window Times[i], one per requested
	// aggregation, percentile or bucket.
	Values [][]float64
	// RelErr[i] bounds the relative error of every value of window i: 0
	// means exact. Only percentiles read from rollups (UseRollups) are
	// approximate; RelErr is nil when every window is exact.
	RelErr []float64
}

// Exact reports whether every value of the row is exact.
func (r *Row) Exact() bool {
	for _, e := range r.RelErr {
		if e != 0 {
			return false
		}
	}
	return true
}

// Label returns the value of label name in the row ("" if absent).
func (r *Row) Label(name string) string {
	for _, l := range r.Labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

type evalKind int

const (
	evalAggs evalKind = iota
	evalPercentiles
	evalBuckets
)

// window accumulates one (group, window) cell.
type window struct {
	sc       scalarState
	vals     []float64   // percentiles
	approx   *approxCell // percentiles, once a rollup contributed (vals then go here)
	buckets  []uint64
	increase float64
}

type group struct {
	labels  []Label
	windows map[int64]*window
	minT    int64 // first selected point (for unbounded ranges)
	maxT    int64 // last selected point
}

type evaluator struct {
	q       *Query
	kind    evalKind
	aggs    []Agg
	ps      []float64
	bounds  []float64
	cumul   bool
	needPts bool // some aggregation needs every point (percentiles, increase)
	needSeq bool // increase/rate: per-series ordered points
	groups  map[string]*group
	order   []string
	d       decoder
	keyBuf  []byte
	// per-series scratch for increase
	sts []int64
	svs []float64
	// rollups (UseRollups): what the current block contributed
	useRollups bool
	ru         rollupUse
	fts        []int64 // scratch: the points of a chunk outside consumed windows
	fvs        []float64
}

// AggregateBy computes the aggregations per group and window (see GroupBy,
// BySeries and Step): Row.Values[i][j] is aggs[j] in window i.
func (q *Query) AggregateBy(aggs ...Agg) ([]Row, error) {
	for _, a := range aggs {
		if !(a >= Last && a <= Sum) && a != Increase && a != Rate {
			return nil, fmt.Errorf("query: unknown aggregation %d", int(a))
		}
	}
	e := &evaluator{q: q, kind: evalAggs, aggs: aggs}
	for _, a := range aggs {
		if a == Increase || a == Rate {
			e.needSeq = true
		}
	}
	return e.run()
}

// PercentilesBy computes exact percentiles per group and window:
// Row.Values[i][j] is percentile ps[j] in window i. It holds every selected
// value in memory.
func (q *Query) PercentilesBy(ps ...float64) ([]Row, error) {
	for _, p := range ps {
		if !(p >= 0 && p <= 100) {
			return nil, fmt.Errorf("query: percentile %g is outside [0, 100]", p)
		}
	}
	e := &evaluator{q: q, kind: evalPercentiles, ps: ps, needPts: true}
	return e.run()
}

// BucketsBy counts values per bucket per group and window (see Buckets):
// Row.Values[i] holds len(bounds)+1 counts for window i.
func (q *Query) BucketsBy(bounds []float64, cumulative bool) ([]Row, error) {
	if err := checkBounds(bounds); err != nil {
		return nil, err
	}
	e := &evaluator{q: q, kind: evalBuckets, bounds: bounds, cumul: cumulative}
	return e.run()
}

func checkBounds(bounds []float64) error {
	for i, b := range bounds {
		if math.IsNaN(b) {
			return fmt.Errorf("query: bucket bound %d is NaN", i)
		}
		if i > 0 && !(bounds[i-1] < b) {
			return fmt.Errorf("query: bucket bounds must be strictly ascending: bound %d (%g) after %g", i, b, bounds[i-1])
		}
	}
	return nil
}

// windowOf returns the start of the window holding t.
func (q *Query) windowOf(t int64) int64 {
	if q.step == 0 {
		if q.mint != math.MinInt64 {
			return q.mint
		}
		return math.MinInt64 // fixed up to the first point's time in rows()
	}
	origin := int64(0)
	if q.mint != math.MinInt64 {
		origin = q.mint
	}
	// floor((t - origin) / step), without overflow for any int64 t.
	d := uint64(t - origin) // wraps correctly when t >= origin
	if t >= origin {
		return origin + int64(d/uint64(q.step))*q.step
	}
	nd := uint64(origin - t)
	k := (nd + uint64(q.step) - 1) / uint64(q.step)
	return origin - int64(k)*q.step
}

func (e *evaluator) groupFor(name string, labels []Label) *group {
	q := e.q
	var ls []Label
	b := e.keyBuf[:0]
	switch {
	case q.bySeries:
		b = append(b, name...)
		b = append(b, 0xFF)
		for _, l := range labels {
			b = append(b, l.Name...)
			b = append(b, 0xFF)
			b = append(b, l.Value...)
			b = append(b, 0xFF)
		}
	case len(q.groupBy) > 0:
		for _, n := range q.groupBy {
			b = append(b, labelValue(name, labels, n)...)
			b = append(b, 0xFF)
		}
	}
	e.keyBuf = b
	g := e.groups[string(b)]
	if g != nil {
		return g
	}
	switch {
	case q.bySeries:
		ls = append([]Label{{Name: index.MetricNameLabel, Value: name}}, labels...)
	case len(q.groupBy) > 0:
		for _, n := range q.groupBy {
			if v := labelValue(name, labels, n); v != "" {
				ls = append(ls, Label{Name: n, Value: v})
			}
		}
		slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	}
	g = &group{labels: ls, windows: make(map[int64]*window), minT: math.MaxInt64, maxT: math.MinInt64}
	e.groups[string(b)] = g
	e.order = append(e.order, string(b))
	return g
}

// labelValue returns the value of label n of a series ("" if absent);
// index.MetricNameLabel gives the metric name.
func labelValue(name string, labels []Label, n string) string {
	if n == index.MetricNameLabel {
		return name
	}
	for _, l := range labels {
		if l.Name == n {
			return l.Value
		}
	}
	return ""
}

func (e *evaluator) win(g *group, start int64) *window {
	w := g.windows[start]
	if w == nil {
		w = &window{}
		if e.kind == evalBuckets {
			w.buckets = make([]uint64, len(e.bounds)+1)
		}
		g.windows[start] = w
	}
	return w
}

func (e *evaluator) run() ([]Row, error) {
	q := e.q
	if q.err != nil {
		return nil, q.err
	}
	e.groups = make(map[string]*group)
	e.useRollups = q.rollups && !e.needSeq && (e.kind == evalAggs || e.kind == evalPercentiles)
	if q.empty() {
		return []Row{}, nil
	}
	hints := Hints{Labels: q.bySeries || len(q.groupBy) > 0}
	err := q.src.Select(q.name, q.ms, q.mint, q.maxt, hints, func(id uint64, name string, labels []index.Label, it ChunkIterator) error {
		g := e.groupFor(name, labels)
		e.sts, e.svs = e.sts[:0], e.svs[:0]
		e.ru.block = 0
		for it.Next() {
			c := it.At()
			if c.MaxT < q.mint || c.MinT > q.maxt {
				continue
			}
			if err := e.chunk(g, it, c); err != nil {
				return chunkError(id, c, err)
			}
		}
		if err := it.Err(); err != nil {
			return err
		}
		if e.needSeq {
			e.increase(g)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.rows()
}

// chunk folds one chunk into its group.
func (e *evaluator) chunk(g *group, it ChunkIterator, c *Chunk) error {
	q := e.q
	if e.useRollups && c.Block != 0 {
		if c.Block != e.ru.block {
			if err := e.useBlockRollup(g, it, c.Block); err != nil {
				return err
			}
		}
		if len(e.ru.consumed) > 0 {
			return e.chunkBesideRollup(g, it, c)
		}
	}
	full := c.MinT >= q.mint && c.MaxT <= q.maxt
	// Header fast path: the chunk lies inside the range and inside one
	// window, and only header aggregates are asked for.
	if full && c.Encoded && !e.needPts && !e.needSeq && e.q.windowOf(c.MinT) == e.q.windowOf(c.MaxT) {
		h := &c.Header
		n := h.Count - h.NaNs
		if n == 0 {
			return nil // NaN only: no value, no window
		}
		// The first and last values' times: NaN points are not values
		// (MinT and MaxT may be theirs).
		g.minT = min(g.minT, h.FirstT)
		g.maxT = max(g.maxT, h.LastT)
		switch e.kind {
		case evalAggs:
			e.win(g, q.windowOf(c.MinT)).sc.addHeader(*h, c.Seq)
			return nil
		case evalBuckets:
			lo := bucketOf(e.bounds, h.Min)
			if lo == bucketOf(e.bounds, h.Max) {
				e.win(g, q.windowOf(c.MinT)).buckets[lo] += uint64(n)
				return nil
			}
		}
	}
	ts, vs, err := e.d.points(it, c, q.mint, q.maxt)
	if err != nil {
		return err
	}
	return e.points(g, c.Seq, ts, vs)
}

// points folds points of one chunk (seq) into their windows of g.
func (e *evaluator) points(g *group, seq uint64, ts []int64, vs []float64) error {
	q := e.q
	if e.needSeq {
		e.sts = append(e.sts, ts...)
		e.svs = append(e.svs, vs...)
	}
	var w *window
	wStart, wEnd := int64(1), int64(0) // current window [wStart, wEnd]
	for i, t := range ts {
		v := vs[i]
		if v != v {
			continue
		}
		if w == nil || t < wStart || t > wEnd {
			wStart = q.windowOf(t)
			wEnd = math.MaxInt64
			if q.step != 0 && wStart <= math.MaxInt64-q.step {
				wEnd = wStart + q.step - 1
			}
			w = e.win(g, wStart)
		}
		g.minT = min(g.minT, t)
		g.maxT = max(g.maxT, t)
		switch e.kind {
		case evalAggs:
			w.sc.addPoints(ts[i:i+1], vs[i:i+1], seq)
		case evalPercentiles:
			if w.approx != nil {
				if err := w.approx.add(v); err != nil {
					return err
				}
			} else {
				w.vals = append(w.vals, v)
			}
		case evalBuckets:
			w.buckets[bucketOf(e.bounds, v)]++
		}
	}
	return nil
}

// useBlockRollup takes from the rollups of block (the current chunk's)
// every window that lies inside one of the query's windows, and notes
// which windows of the block it answered.
func (e *evaluator) useBlockRollup(g *group, it ChunkIterator, block uint64) error {
	q := e.q
	e.ru = rollupUse{block: block, consumed: e.ru.consumed[:0], skipped: e.ru.skipped[:0]}
	ri, ok := it.(RollupIterator)
	if !ok {
		return nil
	}
	// A tier whose windows nest in the query's.
	accept := func(w int64) bool {
		if q.step == 0 {
			return true
		}
		origin := int64(0)
		if q.mint != math.MinInt64 {
			origin = q.mint
		}
		return q.step%w == 0 && origin-floorDiv(origin, w) == 0
	}
	ro, err := ri.Rollup(accept)
	if err != nil || ro == nil || ro.Tier.Width <= 0 {
		return err
	}
	tier, relErr, mint := &ro.Tier, ro.RelErr, max(q.mint, ro.MinT)
	e.ru.width = tier.Width
	for i := range tier.Windows {
		rw := &tier.Windows[i]
		end := rw.Start + tier.Width - 1
		if rw.Start < mint || end < rw.Start || end > q.maxt || q.windowOf(rw.Start) != q.windowOf(end) || rw.Count == 0 {
			e.ru.skipped = append(e.ru.skipped, rw.Start)
			continue
		}
		e.ru.consumed = append(e.ru.consumed, rw.Start)
		g.minT = min(g.minT, rw.FirstT)
		g.maxT = max(g.maxT, rw.LastT)
		w := e.win(g, q.windowOf(rw.Start))
		switch e.kind {
		case evalAggs:
			w.sc.addRollup(rw)
		case evalPercentiles:
			if w.approx == nil {
				if w.approx, err = newApproxCell(relErr); err != nil {
					return err
				}
				for _, v := range w.vals {
					if err := w.approx.add(v); err != nil {
						return err
					}
				}
				w.vals = nil
			}
			if err := w.approx.merge(rw, relErr); err != nil {
				return err
			}
		}
	}
	return nil
}

// chunkBesideRollup folds the points of a block's chunk that lie outside
// the windows its block's rollups answered; a chunk wholly inside them is
// not even read.
func (e *evaluator) chunkBesideRollup(g *group, it ChunkIterator, c *Chunk) error {
	q, ru := e.q, &e.ru
	lo, hi := floorDiv(max(c.MinT, q.mint), ru.width), floorDiv(min(c.MaxT, q.maxt), ru.width)
	if !anyIn(ru.skipped, lo, hi) {
		return nil
	}
	ts, vs, err := e.d.points(it, c, q.mint, q.maxt)
	if err != nil {
		return err
	}
	e.fts, e.fvs = e.fts[:0], e.fvs[:0]
	for i, t := range ts {
		if !containsSorted(ru.consumed, floorDiv(t, ru.width)) {
			e.fts = append(e.fts, t)
			e.fvs = append(e.fvs, vs[i])
		}
	}
	return e.points(g, c.Seq, e.fts, e.fvs)
}

// increase attributes the counter growth of one series (its points in
// e.sts/e.svs) to the windows of g.
func (e *evaluator) increase(g *group) {
	ts, vs := e.sts, e.svs
	if !slices.IsSorted(ts) {
		ts, vs = sortedPoints(ts, vs)
	}
	prev := math.NaN()
	for i, t := range ts {
		v := vs[i]
		if v != v {
			continue
		}
		w := e.win(g, e.q.windowOf(t))
		if prev == prev {
			if v >= prev {
				w.increase += v - prev
			} else {
				w.increase += v // reset
			}
		}
		prev = v
	}
}

func sortedPoints(ts []int64, vs []float64) ([]int64, []float64) {
	nt := slices.Clone(ts)
	nv := slices.Clone(vs)
	sortPoints(nt, nv)
	return nt, nv
}

func (e *evaluator) rows() ([]Row, error) {
	rows := make([]Row, 0, len(e.order))
	for _, k := range e.order {
		g := e.groups[k]
		starts := make([]int64, 0, len(g.windows))
		for s := range g.windows {
			starts = append(starts, s)
		}
		slices.Sort(starts)
		r := Row{Labels: g.labels, Times: starts, Values: make([][]float64, len(starts))}
		for i, s := range starts {
			w := g.windows[s]
			if s == math.MinInt64 && g.minT != math.MaxInt64 {
				r.Times[i] = g.minT
			}
			switch e.kind {
			case evalAggs:
				out := make([]float64, len(e.aggs))
				for j, a := range e.aggs {
					switch a {
					case Increase:
						out[j] = w.increase
					case Rate:
						out[j] = w.increase / e.windowSeconds(g)
					default:
						out[j], _ = w.sc.result(a)
					}
				}
				r.Values[i] = out
			case evalPercentiles:
				if w.approx != nil {
					vals, err := w.approx.quantiles(e.ps)
					if err != nil {
						return nil, err
					}
					r.Values[i] = vals
					if r.RelErr == nil {
						r.RelErr = make([]float64, len(starts))
					}
					r.RelErr[i] = w.approx.relErr
					break
				}
				r.Values[i] = percentilesOf(w.vals, e.ps)
			case evalBuckets:
				out := make([]float64, len(w.buckets))
				var acc uint64
				for j, c := range w.buckets {
					if e.cumul {
						acc += c
						out[j] = float64(acc)
					} else {
						out[j] = float64(c)
					}
				}
				r.Values[i] = out
			}
		}
		rows = append(rows, r)
	}
	// Rows in a stable order: by labels.
	slices.SortFunc(rows, func(a, b Row) int { return compareLabelSets(a.Labels, b.Labels) })
	return rows, nil
}

func (e *evaluator) windowSeconds(g *group) float64 {
	q := e.q
	if q.step != 0 {
		return float64(q.step) / 1e9
	}
	if q.mint != math.MinInt64 && q.maxt != math.MaxInt64 {
		return (float64(q.maxt) - float64(q.mint) + 1) / 1e9
	}
	if g.maxT > g.minT {
		return (float64(g.maxT) - float64(g.minT)) / 1e9
	}
	return math.NaN()
}

func compareLabelSets(a, b []Label) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}
