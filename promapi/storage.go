package promapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/eventmetrics/eventmetrics/encode"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/query"
)

// DefaultMaxSelectPoints bounds the points one Select holds in memory when
// QueryableOptions.MaxSelectPoints is 0: 50 million points, 800 MB.
const DefaultMaxSelectPoints = 50_000_000

// ErrTooManyPoints is wrapped by the error of a Select that would hold more
// points than its limit.
var ErrTooManyPoints = errors.New("promapi: a selector matches too many points")

// QueryableOptions configure a Queryable. The zero value of every field
// means its default.
type QueryableOptions struct {
	// MaxSelectPoints bounds the points (after the per-millisecond
	// reduction) that one Select may hold in memory; past it the Select
	// fails with ErrTooManyPoints. 0 means DefaultMaxSelectPoints.
	MaxSelectPoints int
}

// Validate reports options that cannot work.
func (o QueryableOptions) Validate() error {
	if o.MaxSelectPoints < 0 {
		return fmt.Errorf("promapi: MaxSelectPoints is %d; it must be >= 0 (0 = default)", o.MaxSelectPoints)
	}
	return nil
}

func (o QueryableOptions) maxPoints() int {
	if o.MaxSelectPoints > 0 {
		return o.MaxSelectPoints
	}
	return DefaultMaxSelectPoints
}

// Queryable is a storage.Queryable over an engine DB: every eventmetrics
// series is one Prometheus series with the label __name__ (the metric name)
// plus its labels, and samples in milliseconds. See the package doc for how
// points become samples.
type Queryable struct {
	db   *engine.DB
	opts QueryableOptions
}

var _ storage.Queryable = (*Queryable)(nil)

// NewQueryable returns a Queryable over db.
func NewQueryable(db *engine.DB, opts QueryableOptions) (*Queryable, error) {
	if db == nil {
		return nil, errors.New("promapi: nil *engine.DB")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Queryable{db: db, opts: opts}, nil
}

// Querier returns a Querier over the samples with timestamps in [mint, maxt]
// (milliseconds, inclusive).
func (q *Queryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{db: q.db, mint: mint, maxt: maxt, maxPoints: q.opts.maxPoints()}, nil
}

// querier is a storage.Querier over one time range. It holds no resources:
// every Select reads the DB afresh.
type querier struct {
	db         *engine.DB
	mint, maxt int64 // ms, inclusive
	maxPoints  int
}

// Close implements storage.Querier.
func (*querier) Close() error { return nil }

// nsPerMs is the number of nanoseconds in a millisecond.
const nsPerMs int64 = 1e6

// msToNs converts a lower bound in ms to ns, saturating.
func msToNs(ms int64) int64 {
	if ms > math.MaxInt64/nsPerMs {
		return math.MaxInt64
	}
	if ms < math.MinInt64/nsPerMs {
		return math.MinInt64
	}
	return ms * nsPerMs
}

// msToNsEnd converts an inclusive upper bound in ms to the last ns of that
// millisecond, saturating.
func msToNsEnd(ms int64) int64 {
	if ms > math.MaxInt64/nsPerMs-1 {
		return math.MaxInt64
	}
	if ms < math.MinInt64/nsPerMs {
		return math.MinInt64
	}
	return ms*nsPerMs + nsPerMs - 1
}

// nsToMs converts a timestamp to the millisecond holding it (floor, also
// before 1970).
func nsToMs(ns int64) int64 {
	ms := ns / nsPerMs
	if ns%nsPerMs < 0 {
		ms--
	}
	return ms
}

// nsRange returns the querier's range, narrowed by hints, in ns.
func (q *querier) nsRange(start, end int64, narrow bool) (mint, maxt int64) {
	lo, hi := q.mint, q.maxt
	if narrow {
		lo, hi = max(lo, start), min(hi, end)
	}
	if lo > hi {
		return 1, 0
	}
	return msToNs(lo), msToNsEnd(hi)
}

// translate turns Prometheus matchers into engine matchers. The metric name
// is a label (__name__) in both, so no matcher is special.
func translate(ms []*labels.Matcher) ([]query.Matcher, error) {
	out := make([]query.Matcher, 0, len(ms))
	for _, m := range ms {
		if m == nil {
			return nil, errors.New("promapi: nil matcher")
		}
		var t index.MatchType
		switch m.Type {
		case labels.MatchEqual:
			t = index.MatchEqual
		case labels.MatchNotEqual:
			t = index.MatchNotEqual
		case labels.MatchRegexp:
			t = index.MatchRegexp
		case labels.MatchNotRegexp:
			t = index.MatchNotRegexp
		default:
			return nil, fmt.Errorf("promapi: unknown matcher type %d in %s", m.Type, m)
		}
		em, err := index.NewMatcher(t, m.Name, m.Value)
		if err != nil {
			return nil, fmt.Errorf("promapi: %w", err)
		}
		out = append(out, em)
	}
	return out, nil
}

// seriesLabels builds the Prometheus label set of a series.
func seriesLabels(b *labels.ScratchBuilder, name string, ls []index.Label) labels.Labels {
	b.Reset()
	b.Add(labels.MetricName, name)
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels()
}

// checkEvery is how many series a Select reads between looks at its
// context.
const checkEvery = 64

// Select implements storage.Querier. Each series' points in the range are
// read into memory (see the package doc for the per-millisecond rule);
// with hints.Func == "series" only labels are read, and a series is
// returned when one of its chunks overlaps the range.
func (q *querier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	ms, err := translate(matchers)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	var mint, maxt int64
	labelsOnly := false
	limit := 0
	if hints != nil {
		mint, maxt = q.nsRange(hints.Start, hints.End, true)
		labelsOnly = hints.Func == "series"
		limit = hints.Limit
	} else {
		mint, maxt = q.nsRange(0, 0, false)
	}
	set := &seriesSet{i: -1}
	if mint > maxt {
		return set
	}
	var (
		sb   labels.ScratchBuilder
		r    pointReader
		n    int
		segs []segment
	)
	err = q.db.Select("", ms, mint, maxt, query.Hints{Labels: true}, func(_ uint64, name string, ls []index.Label, it query.ChunkIterator) error {
		if n++; n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if engine.InternalName(name) {
			return nil // the engine's and server's own series (engine.InternalName)
		}
		if labelsOnly {
			ok, err := overlaps(it, mint, maxt)
			if err != nil || !ok {
				return err
			}
			set.series = append(set.series, seriesEntry{lset: seriesLabels(&sb, name, ls)})
			return nil
		}
		start := len(set.ts)
		segs = segs[:0]
		for it.Next() {
			c := it.At()
			if c.MaxT < mint || c.MinT > maxt {
				continue
			}
			ts, vs, err := r.points(it, c, mint, maxt)
			if err != nil {
				return fmt.Errorf("promapi: series %s: chunk %d..%d: %w", name, c.MinT, c.MaxT, err)
			}
			if len(ts) == 0 {
				continue
			}
			segs = append(segs, segment{seq: c.Seq, off: len(set.ts) - start, n: len(ts)})
			set.ts = append(set.ts, ts...)
			set.vs = append(set.vs, vs...)
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("promapi: series %s: %w", name, err)
		}
		if len(set.ts) == start {
			return nil
		}
		ts, vs := set.ts[start:], set.vs[start:]
		orderPoints(ts, vs, segs)
		k := toMillis(ts, vs)
		set.ts, set.vs = set.ts[:start+k], set.vs[:start+k]
		if len(set.ts) > q.maxPoints {
			return fmt.Errorf("%w: more than %d points in [%d, %d] ns", ErrTooManyPoints, q.maxPoints, mint, maxt)
		}
		set.series = append(set.series, seriesEntry{lset: seriesLabels(&sb, name, ls), lo: start, hi: start + k})
		return nil
	})
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	// Sorted whatever sortSeries says: it keeps answers deterministic and
	// costs little next to reading the points.
	slices.SortFunc(set.series, func(a, b seriesEntry) int { return labels.Compare(a.lset, b.lset) })
	if limit > 0 && len(set.series) > limit {
		set.series = set.series[:limit]
	}
	return set
}

// overlaps reports whether a chunk of the series overlaps [mint, maxt].
func overlaps(it query.ChunkIterator, mint, maxt int64) (bool, error) {
	for it.Next() {
		if c := it.At(); c.MaxT >= mint && c.MinT <= maxt {
			return true, nil
		}
	}
	return false, it.Err()
}

// pointReader decodes chunks into scratch buffers.
type pointReader struct {
	ts []int64
	vs []float64
}

// points returns the points of c in [mint, maxt], valid until the next call
// or until it moves on.
func (r *pointReader) points(it query.ChunkIterator, c *query.Chunk, mint, maxt int64) ([]int64, []float64, error) {
	ts, vs := c.TS, c.VS
	if c.Encoded {
		data, err := it.Data()
		if err != nil {
			return nil, nil, err
		}
		_, r.ts, r.vs, err = encode.DecodeAll(data, r.ts[:0], r.vs[:0])
		if err != nil {
			return nil, nil, err
		}
		ts, vs = r.ts, r.vs
	}
	if len(ts) != len(vs) {
		return nil, nil, fmt.Errorf("chunk has %d timestamps and %d values", len(ts), len(vs))
	}
	lo := sort.Search(len(ts), func(i int) bool { return ts[i] >= mint })
	hi := sort.Search(len(ts), func(i int) bool { return ts[i] > maxt })
	if lo > hi {
		lo = hi
	}
	return ts[lo:hi], vs[lo:hi], nil
}

// segment is the run of points of one chunk inside a series' buffer.
type segment struct {
	seq uint64
	off int
	n   int
}

// orderPoints sorts a series' points by (timestamp, chunk seq, position in
// the chunk): time order, and among equal timestamps the order they were
// written in (the order query.Last uses). Chunks that follow each other in
// time (the usual case) need no sort.
func orderPoints(ts []int64, vs []float64, segs []segment) {
	sorted := true
	for i := 1; i < len(ts); i++ {
		if ts[i] < ts[i-1] {
			sorted = false
			break
		}
	}
	if sorted {
		// Equal timestamps across two chunks must still follow seq order.
		for i := 1; i < len(segs); i++ {
			a, b := segs[i-1], segs[i]
			if ts[a.off+a.n-1] == ts[b.off] && a.seq > b.seq {
				sorted = false
				break
			}
		}
	}
	if sorted {
		return
	}
	type point struct {
		t   int64
		seq uint64
		pos int
		v   float64
	}
	pts := make([]point, 0, len(ts))
	for _, s := range segs {
		for i := s.off; i < s.off+s.n; i++ {
			pts = append(pts, point{t: ts[i], seq: s.seq, pos: i, v: vs[i]})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		if c := cmp.Compare(a.seq, b.seq); c != 0 {
			return c
		}
		return cmp.Compare(a.pos, b.pos)
	})
	for i, p := range pts {
		ts[i], vs[i] = p.t, p.v
	}
}

// toMillis converts ordered ns points to ms in place, keeping the last
// point of each millisecond, and returns how many remain.
func toMillis(ts []int64, vs []float64) int {
	w := 0
	for r := range ts {
		ms := nsToMs(ts[r])
		if w > 0 && ts[w-1] == ms {
			vs[w-1] = vs[r]
			continue
		}
		ts[w], vs[w] = ms, vs[r]
		w++
	}
	return w
}

// unbounded reports whether the querier's range is unbounded in practice
// (no narrower than the HTTP API's default), so that label lookups can use
// the postings alone.
func (q *querier) unbounded() bool {
	return q.mint <= minTimeMs && q.maxt >= maxTimeMs
}

// LabelNames implements storage.LabelQuerier: the label names (with
// __name__) of the series that match and have a chunk overlapping the
// querier's range.
func (q *querier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ms, err := translate(matchers)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	if q.unbounded() {
		names, err = q.db.LabelNames("", ms...)
		if err != nil {
			return nil, nil, err
		}
		// __name__ is a label to Prometheus; the engine lists it apart.
		if vals, err := q.db.LabelValues(index.MetricNameLabel, "", ms...); err != nil {
			return nil, nil, err
		} else if len(vals) > 0 {
			names = append(names, labels.MetricName)
		}
	} else {
		set := map[string]struct{}{}
		err = q.eachSeriesInRange(ctx, ms, func(_ string, ls []index.Label) {
			set[labels.MetricName] = struct{}{}
			for _, l := range ls {
				set[l.Name] = struct{}{}
			}
		})
		if err != nil {
			return nil, nil, err
		}
		names = make([]string, 0, len(set))
		for n := range set {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	names, _ = hints.ApplyLimit(names)
	return names, nil, nil
}

// LabelValues implements storage.LabelQuerier: the values of label name
// among the series that match and have a chunk overlapping the querier's
// range.
func (q *querier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ms, err := translate(matchers)
	if err != nil {
		return nil, nil, err
	}
	var vals []string
	if q.unbounded() {
		lv, err := q.db.LabelValues(name, "", ms...)
		if err != nil {
			return nil, nil, err
		}
		vals = make([]string, 0, len(lv))
		for _, v := range lv {
			if v.Value != "" && !(name == labels.MetricName && engine.InternalName(v.Value)) {
				vals = append(vals, v.Value)
			}
		}
	} else {
		set := map[string]struct{}{}
		err = q.eachSeriesInRange(ctx, ms, func(metric string, ls []index.Label) {
			if engine.InternalName(metric) {
				return
			}
			if name == labels.MetricName {
				set[metric] = struct{}{}
				return
			}
			for _, l := range ls {
				if l.Name == name && l.Value != "" {
					set[l.Value] = struct{}{}
				}
			}
		})
		if err != nil {
			return nil, nil, err
		}
		vals = make([]string, 0, len(set))
		for v := range set {
			vals = append(vals, v)
		}
	}
	slices.Sort(vals)
	vals, _ = hints.ApplyLimit(vals)
	return vals, nil, nil
}

// eachSeriesInRange calls fn for every matching series with a chunk
// overlapping the querier's range.
func (q *querier) eachSeriesInRange(ctx context.Context, ms []query.Matcher, fn func(name string, ls []index.Label)) error {
	mint, maxt := q.nsRange(0, 0, false)
	if mint > maxt {
		return nil
	}
	n := 0
	return q.db.Select("", ms, mint, maxt, query.Hints{Labels: true}, func(_ uint64, name string, ls []index.Label, it query.ChunkIterator) error {
		if n++; n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ok, err := overlaps(it, mint, maxt)
		if err != nil || !ok {
			return err
		}
		fn(name, ls)
		return nil
	})
}
