package query

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/eventmetrics/eventmetrics/encode"
	"github.com/eventmetrics/eventmetrics/index"
)

// Agg names a scalar aggregation.
type Agg int

// The scalar aggregations. Each skips NaN values.
const (
	Last  Agg = iota // the value with the greatest timestamp (of equal ones, the last written)
	Min              // the smallest value
	Max              // the largest value
	Mean             // Sum / Count
	Count            // the number of values
	Sum              // the sum of the values
)

func (a Agg) String() string {
	switch a {
	case Last:
		return "last"
	case Min:
		return "min"
	case Max:
		return "max"
	case Mean:
		return "mean"
	case Count:
		return "count"
	case Sum:
		return "sum"
	case Increase:
		return "increase"
	case Rate:
		return "rate"
	}
	return fmt.Sprintf("Agg(%d)", int(a))
}

// Query is a selection of series and a time range. Its builder methods
// return a modified copy; the zero time selection is every point.
type Query struct {
	src  Source
	name string
	ms   []Matcher
	now  func() time.Time
	mint int64 // inclusive
	maxt int64 // inclusive
	err  error

	groupBy  []string // GroupBy label names
	bySeries bool     // one group per series
	step     int64    // tumbling window length in ns (0 = one window)
	rollups  bool     // the *By methods may read rollups (UseRollups)
}

// New returns a query over src for the series named name that satisfy every
// matcher. now is the clock used by Since (nil means time.Now).
func New(src Source, now func() time.Time, name string, ms ...Matcher) *Query {
	if now == nil {
		now = time.Now
	}
	q := &Query{src: src, name: name, ms: slices.Clone(ms), now: now, mint: math.MinInt64, maxt: math.MaxInt64}
	if src == nil {
		q.err = errors.New("query: no source")
	}
	for _, m := range ms {
		if err := m.Err(); err != nil {
			q.err = fmt.Errorf("query: %w", err)
		}
	}
	return q
}

// Errorf returns a query that fails with err when run (for sources that
// cannot serve queries, such as a closed engine).
func Errorf(err error) *Query { return &Query{err: err} }

func (q *Query) clone() *Query { c := *q; return &c }

// FromBeginning removes the lower time bound.
func (q *Query) FromBeginning() *Query { c := q.clone(); c.mint = math.MinInt64; return c }

// From sets the inclusive lower bound.
func (q *Query) From(t time.Time) *Query { c := q.clone(); c.mint = t.UnixNano(); return c }

// To sets the exclusive upper bound.
func (q *Query) To(t time.Time) *Query {
	c := q.clone()
	ns := t.UnixNano()
	if ns == math.MinInt64 {
		c.maxt, c.mint = math.MinInt64, math.MaxInt64 // empty
		return c
	}
	c.maxt = ns - 1
	return c
}

// Since selects from now-d on, with no upper bound.
func (q *Query) Since(d time.Duration) *Query {
	c := q.From(q.nowOrDefault().Add(-d))
	c.maxt = math.MaxInt64
	return c
}

// Between selects [t0, t1).
func (q *Query) Between(t0, t1 time.Time) *Query { return q.From(t0).To(t1) }

// FromNanos and ToNanos set the bounds in Unix nanoseconds (inclusive and
// exclusive).
func (q *Query) FromNanos(t int64) *Query { c := q.clone(); c.mint = t; return c }

// ToNanos sets the exclusive upper bound in Unix nanoseconds.
func (q *Query) ToNanos(t int64) *Query {
	c := q.clone()
	if t == math.MinInt64 {
		c.maxt, c.mint = math.MinInt64, math.MaxInt64
		return c
	}
	c.maxt = t - 1
	return c
}

// Range returns the selected range as inclusive Unix nanosecond bounds.
func (q *Query) Range() (mint, maxt int64) { return q.mint, q.maxt }

func (q *Query) nowOrDefault() time.Time {
	if q.now == nil {
		return time.Now()
	}
	return q.now()
}

func (q *Query) empty() bool { return q.mint > q.maxt }

// scan runs fn on every chunk of every selected series.
func (q *Query) scan(fn func(it ChunkIterator, c *Chunk, full bool) error) error {
	if q.err != nil {
		return q.err
	}
	if q.empty() {
		return nil
	}
	return q.src.Select(q.name, q.ms, q.mint, q.maxt, Hints{}, func(id uint64, _ string, _ []index.Label, it ChunkIterator) error {
		for it.Next() {
			c := it.At()
			if c.MaxT < q.mint || c.MinT > q.maxt {
				continue
			}
			if err := fn(it, c, c.MinT >= q.mint && c.MaxT <= q.maxt); err != nil {
				return chunkError(id, c, err)
			}
		}
		return it.Err()
	})
}

// chunkError names the series and chunk an error came from.
func chunkError(id uint64, c *Chunk, err error) error {
	return fmt.Errorf("query: series %d, chunk %d..%d (seq %d): %w", id, c.MinT, c.MaxT, c.Seq, err)
}

// points gives the points of c inside the range, decoding into the
// scratch buffers of d.
func (d *decoder) points(it ChunkIterator, c *Chunk, mint, maxt int64) ([]int64, []float64, error) {
	ts, vs := c.TS, c.VS
	if c.Encoded {
		data, err := it.Data()
		if err != nil {
			return nil, nil, err
		}
		_, d.ts, d.vs, err = encode.DecodeAll(data, d.ts[:0], d.vs[:0])
		if err != nil {
			return nil, nil, err
		}
		ts, vs = d.ts, d.vs
	}
	lo, hi := 0, len(ts)
	if len(ts) > 0 && ts[0] < mint {
		lo = sort.Search(len(ts), func(i int) bool { return ts[i] >= mint })
	}
	if len(ts) > 0 && ts[len(ts)-1] > maxt {
		hi = sort.Search(len(ts), func(i int) bool { return ts[i] > maxt })
	}
	if lo > hi {
		lo = hi
	}
	return ts[lo:hi], vs[lo:hi], nil
}

type decoder struct {
	ts []int64
	vs []float64
}

// scalarState accumulates every scalar aggregation at once.
type scalarState struct {
	count              uint64
	sum                float64
	min, max           float64
	lastT              int64
	lastSeq            uint64
	last               float64
	hasLast            bool
	hasMinMax          bool
	lastFromHdrPending bool
}

func (s *scalarState) addHeader(h encode.Header, seq uint64) {
	s.addSummary(uint64(h.Count-h.NaNs), h.Sum, h.Min, h.Max, h.LastT, seq, h.Last)
}

// addRollup adds a rollup window's aggregates.
func (s *scalarState) addRollup(rw *RollupWindow) {
	s.addSummary(rw.Count, rw.Sum, rw.Min, rw.Max, rw.LastT, rw.LastSeq, rw.Last)
}

// addSummary adds the aggregates of n values (none when n is 0).
func (s *scalarState) addSummary(n uint64, sum, mn, mx float64, lastT int64, lastSeq uint64, last float64) {
	if n == 0 {
		return
	}
	s.count += n
	s.sum += sum
	if !s.hasMinMax || mn < s.min {
		s.min = mn
	}
	if !s.hasMinMax || mx > s.max {
		s.max = mx
	}
	s.hasMinMax = true
	s.offerLast(lastT, lastSeq, last)
}

func (s *scalarState) offerLast(t int64, seq uint64, v float64) {
	if !s.hasLast || t > s.lastT || (t == s.lastT && seq >= s.lastSeq) {
		s.lastT, s.lastSeq, s.last, s.hasLast = t, seq, v, true
	}
}

func (s *scalarState) addPoints(ts []int64, vs []float64, seq uint64) {
	for i, v := range vs {
		if v != v {
			continue
		}
		s.count++
		s.sum += v
		if !s.hasMinMax {
			s.min, s.max, s.hasMinMax = v, v, true
		} else {
			if v < s.min {
				s.min = v
			}
			if v > s.max {
				s.max = v
			}
		}
		t := ts[i]
		if !s.hasLast || t > s.lastT || (t == s.lastT && seq >= s.lastSeq) {
			s.lastT, s.lastSeq, s.last, s.hasLast = t, seq, v, true
		}
	}
}

func (s *scalarState) result(agg Agg) (float64, error) {
	switch agg {
	case Count:
		return float64(s.count), nil
	case Sum:
		return s.sum, nil
	case Mean:
		if s.count == 0 {
			return math.NaN(), nil
		}
		return s.sum / float64(s.count), nil
	case Min:
		if !s.hasMinMax {
			return math.NaN(), nil
		}
		return s.min, nil
	case Max:
		if !s.hasMinMax {
			return math.NaN(), nil
		}
		return s.max, nil
	case Last:
		if !s.hasLast {
			return math.NaN(), nil
		}
		return s.last, nil
	}
	return math.NaN(), fmt.Errorf("query: unknown aggregation %d", int(agg))
}

// Scalar computes one aggregation over every selected point. Chunks that lie
// wholly inside the range are answered from their headers without decoding.
func (q *Query) Scalar(agg Agg) (float64, error) {
	if agg < Last || agg > Sum {
		return math.NaN(), fmt.Errorf("query: unknown aggregation %d", int(agg))
	}
	var st scalarState
	if err := q.scalars(&st); err != nil {
		return math.NaN(), err
	}
	return st.result(agg)
}

// Scalars computes several aggregations in one pass.
func (q *Query) Scalars(aggs ...Agg) ([]float64, error) {
	var st scalarState
	if err := q.scalars(&st); err != nil {
		return nil, err
	}
	out := make([]float64, len(aggs))
	for i, a := range aggs {
		v, err := st.result(a)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (q *Query) scalars(st *scalarState) error {
	var d decoder
	return q.scan(func(it ChunkIterator, c *Chunk, full bool) error {
		if full && c.Encoded {
			st.addHeader(c.Header, c.Seq)
			return nil
		}
		ts, vs, err := d.points(it, c, q.mint, q.maxt)
		if err != nil {
			return err
		}
		st.addPoints(ts, vs, c.Seq)
		return nil
	})
}

// Buckets counts the selected values per bucket: len(bounds)+1 counts, the
// last for values above every bound (+Inf). A value v falls in the first
// bound b with v <= b. With cumulative, each count includes the buckets
// before it (Prometheus "le" counts). Bounds must be sorted ascending,
// without NaN or duplicates.
func (q *Query) Buckets(bounds []float64, cumulative bool) ([]uint64, error) {
	for i, b := range bounds {
		if math.IsNaN(b) {
			return nil, fmt.Errorf("query: bucket bound %d is NaN", i)
		}
		if i > 0 && !(bounds[i-1] < b) {
			return nil, fmt.Errorf("query: bucket bounds must be strictly ascending: bound %d (%g) after %g", i, b, bounds[i-1])
		}
	}
	counts := make([]uint64, len(bounds)+1)
	var d decoder
	err := q.scan(func(it ChunkIterator, c *Chunk, full bool) error {
		if full && c.Encoded {
			h := &c.Header
			n := h.Count - h.NaNs
			if n == 0 {
				return nil
			}
			lo := bucketOf(bounds, h.Min)
			if lo == bucketOf(bounds, h.Max) {
				counts[lo] += uint64(n)
				return nil
			}
		}
		_, vs, err := d.points(it, c, q.mint, q.maxt)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if v != v {
				continue
			}
			counts[bucketOf(bounds, v)]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if cumulative {
		for i := 1; i < len(counts); i++ {
			counts[i] += counts[i-1]
		}
	}
	return counts, nil
}

// bucketOf returns the index of the first bound >= v, or len(bounds).
func bucketOf(bounds []float64, v float64) int {
	if len(bounds) <= 8 {
		for i, b := range bounds {
			if v <= b {
				return i
			}
		}
		return len(bounds)
	}
	return sort.SearchFloat64s(bounds, v)
}

// Percentiles returns exact percentiles (0..100) of every selected non-NaN
// value, with linear interpolation between closest ranks (numpy's default
// "linear" method). It holds every selected value in memory (8 bytes each).
func (q *Query) Percentiles(ps ...float64) ([]float64, error) {
	for _, p := range ps {
		if !(p >= 0 && p <= 100) {
			return nil, fmt.Errorf("query: percentile %g is outside [0, 100]", p)
		}
	}
	var vals []float64
	var d decoder
	err := q.scan(func(it ChunkIterator, c *Chunk, _ bool) error {
		_, vs, err := d.points(it, c, q.mint, q.maxt)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if v == v {
				vals = append(vals, v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return percentilesOf(vals, ps), nil
}

// PercentileSorted is numpy's percentile(a, p, method="linear") for sorted
// a without NaN: NaN when a is empty.
func PercentileSorted(a []float64, p float64) float64 {
	n := len(a)
	if n == 0 {
		return math.NaN()
	}
	h := float64(n-1) * (p / 100)
	lo := math.Floor(h)
	i := int(lo)
	if i >= n-1 {
		return a[n-1]
	}
	if i < 0 {
		i = 0
	}
	return lerp(a[i], a[i+1], h-lo)
}

// lerp is numpy's _lerp: a + (b-a)*t, computed from b's side when t >= 0.5
// for monotonicity; equal ends return that end unchanged.
func lerp(a, b, t float64) float64 {
	if a == b {
		return a
	}
	diff := b - a
	if t >= 0.5 {
		return b - diff*(1-t)
	}
	return a + diff*t
}

// Values returns every selected value in time order (NaN points included).
func (q *Query) Values() ([]float64, error) {
	_, vs, err := q.points(false, true)
	return vs, err
}

// Timestamps returns the Unix-nanosecond timestamps of every selected point
// in time order.
func (q *Query) Timestamps() ([]int64, error) {
	ts, _, err := q.points(true, false)
	return ts, err
}

// Points returns timestamps and values of every selected point, aligned, in
// time order. Points with equal timestamps keep their write order within a
// series.
func (q *Query) Points() ([]int64, []float64, error) {
	return q.points(true, true)
}

func (q *Query) points(wantT, wantV bool) ([]int64, []float64, error) {
	var ts []int64
	var vs []float64
	var d decoder
	sorted := true
	err := q.scan(func(it ChunkIterator, c *Chunk, _ bool) error {
		t, v, err := d.points(it, c, q.mint, q.maxt)
		if err != nil {
			return err
		}
		if len(t) > 0 && len(ts) > 0 && t[0] < ts[len(ts)-1] {
			sorted = false
		}
		ts = append(ts, t...)
		vs = append(vs, v...)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if !sorted {
		sortPoints(ts, vs)
	}
	if ts == nil {
		ts = []int64{}
	}
	if vs == nil {
		vs = []float64{}
	}
	if !wantT {
		ts = nil
	}
	if !wantV {
		vs = nil
	}
	return ts, vs, nil
}

// sortPoints sorts ts (and vs alongside) stably by timestamp.
func sortPoints(ts []int64, vs []float64) {
	idx := make([]int32, len(ts))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int {
		ta, tb := ts[a], ts[b]
		if ta < tb {
			return -1
		}
		if ta > tb {
			return 1
		}
		return 0
	})
	nt := make([]int64, len(ts))
	nv := make([]float64, len(vs))
	for i, j := range idx {
		nt[i], nv[i] = ts[j], vs[j]
	}
	copy(ts, nt)
	copy(vs, nv)
}
