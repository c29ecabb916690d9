package remote

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

// processor turns the points of one feed read into samples. It returns
// the samples (appended to dst), the position the cursor may be committed
// at once they are all acknowledged, and the state to store with it.
// Reader goroutine only.
type processor interface {
	process(dst []item, pts []engine.FeedPoint, end engine.FeedPos, caughtUp, idle bool) ([]item, engine.FeedPos, []byte)
}

func newProcessor(s *Sender, state []byte) (processor, error) {
	r := &resolver{s: s, series: make(map[uint64]*seriesRef)}
	if s.cfg.Shape == Raw {
		return &rawProc{resolver: r, hold: s.cfg.BatchWait, pending: make(map[uint64]*rawPoint), lastMs: make(map[uint64]int64)}, nil
	}
	a := &aggProc{resolver: r, cfg: s.cfg.Aggregation, wins: make(map[winKey]*window)}
	a.width = int64(a.cfg.Window)
	a.emitted = math.MinInt64
	a.watermark = math.MinInt64
	if len(state) > 0 {
		if err := a.restore(state); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// seriesRef is what the sender knows of one engine series.
type seriesRef struct {
	skip  bool // filtered out, or unknown
	shard int
	name  string
	base  []prompb.Label // sorted, with __name__, without it for derived names
	raw   *labelSet
	agg   *aggSets
}

// aggSets are the label sets of the Aggregated shape's series.
type aggSets struct {
	count, sum *labelSet
	buckets    []*labelSet // one per bound, then +Inf
	quantiles  []*labelSet
}

// resolver maps series ids to label sets, filtering with the selectors.
type resolver struct {
	s      *Sender
	series map[uint64]*seriesRef
}

// mix64 is splitmix64's finalizer: a fixed hash, so a series keeps its
// shard across restarts.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (r *resolver) ref(id uint64) *seriesRef {
	if ref := r.series[id]; ref != nil {
		return ref
	}
	ref := &seriesRef{}
	r.series[id] = ref
	name, ls, err := r.s.db.SeriesLabels(id)
	if err != nil {
		r.s.stats.unknownSeries.Add(1)
		r.s.setErr(fmt.Errorf("remote: series %d: %w", id, err))
		ref.skip = true
		return ref
	}
	if engine.InternalName(name) {
		ref.skip = true // bookkeeping (the server's batch ids): never exported
		return ref
	}
	lb := labels.NewScratchBuilder(len(ls) + 1 + len(r.s.cfg.ExternalLabels))
	lb.Add(labels.MetricName, name)
	have := make(map[string]bool, len(ls))
	for _, l := range ls {
		lb.Add(l.Name, l.Value)
		have[l.Name] = true
	}
	for k, v := range r.s.cfg.ExternalLabels {
		if !have[k] && k != labels.MetricName {
			lb.Add(k, v)
		}
	}
	lb.Sort()
	lset := lb.Labels()
	if !r.s.selected(lset) {
		r.s.stats.filtered.Add(1)
		ref.skip = true
		return ref
	}
	ref.name = name
	lset.Range(func(l labels.Label) {
		if l.Name != labels.MetricName {
			ref.base = append(ref.base, prompb.Label{Name: l.Name, Value: l.Value})
		}
	})
	ref.shard = int(mix64(id) % uint64(len(r.s.shards)))
	return ref
}

// selected reports whether a series matches one of the selectors (or
// there are none).
func (s *Sender) selected(ls labels.Labels) bool {
	if len(s.sel) == 0 {
		return true
	}
	for _, ms := range s.sel {
		ok := true
		for _, m := range ms {
			if !m.Matches(ls.Get(m.Name)) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// makeSet returns the sorted label set base + __name__=name + extra.
func makeSet(base []prompb.Label, name string, extra ...prompb.Label) *labelSet {
	out := make([]prompb.Label, 0, len(base)+1+len(extra))
	out = append(out, prompb.Label{Name: labels.MetricName, Value: name})
	out = append(out, base...)
	for _, e := range extra {
		// A series' own label wins over a derived one of the same name.
		if !slices.ContainsFunc(base, func(l prompb.Label) bool { return l.Name == e.Name }) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b prompb.Label) int { return cmp.Compare(a.Name, b.Name) })
	return &labelSet{labels: out}
}

// floorDiv is ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// ---- Raw ----

// rawProc exports each point as a sample. A series' last point is held
// back until a point of a later millisecond arrives, or the sender has
// caught up with the log and the point has waited hold (BatchWait), so
// that of several points in one millisecond the last one (in log order)
// is sent, as promapi's querier keeps it. A point arriving later still
// for a millisecond already sent is dropped and counted as collapsed.
type rawProc struct {
	*resolver
	hold    time.Duration
	pending map[uint64]*rawPoint // per series: the point held back
	lastMs  map[uint64]int64     // per series: the millisecond last sent
	flushed []uint64             // scratch
}

type rawPoint struct {
	ms   int64
	v    float64
	pos  engine.FeedPos
	seen time.Time // when its millisecond was first read
}

func (p *rawProc) process(dst []item, pts []engine.FeedPoint, end engine.FeedPos, caughtUp, idle bool) ([]item, engine.FeedPos, []byte) {
	now := time.Now()
	for i := range pts {
		pt := &pts[i]
		ref := p.ref(pt.Series)
		if ref.skip {
			continue
		}
		ms := floorDiv(pt.T, int64(time.Millisecond))
		if pend := p.pending[pt.Series]; pend != nil {
			if pend.ms == ms {
				p.s.stats.collapsed.Add(1)
				pend.v, pend.pos = pt.V, pt.Pos
				continue
			}
			dst = p.emit(dst, pt.Series, ref, pend)
			pend.ms, pend.v, pend.pos, pend.seen = ms, pt.V, pt.Pos, now
			continue
		}
		if last, ok := p.lastMs[pt.Series]; ok && last == ms {
			// A point of this millisecond was sent already (the sender had
			// caught up in between): it stays, this one is collapsed.
			p.s.stats.collapsed.Add(1)
			continue
		}
		p.pending[pt.Series] = &rawPoint{ms: ms, v: pt.V, pos: pt.Pos, seen: now}
	}
	safe := end
	if caughtUp {
		p.flushed = p.flushed[:0]
		for id, pend := range p.pending {
			if now.Sub(pend.seen) >= p.hold {
				p.flushed = append(p.flushed, id)
			}
		}
		slices.Sort(p.flushed)
		for _, id := range p.flushed {
			dst = p.emit(dst, id, p.series[id], p.pending[id])
			delete(p.pending, id)
		}
	}
	for _, pend := range p.pending {
		if pend.pos.Less(safe) {
			safe = pend.pos
		}
	}
	return dst, safe, nil
}

func (p *rawProc) emit(dst []item, id uint64, ref *seriesRef, pt *rawPoint) []item {
	if ref.raw == nil {
		ref.raw = makeSet(ref.base, ref.name)
	}
	p.lastMs[id] = pt.ms
	return append(dst, item{ls: ref.raw, t: pt.ms, v: pt.v, shard: ref.shard})
}

// ---- Aggregated ----

type winKey struct {
	series uint64
	start  int64 // ns
}

type window struct {
	count   uint64
	sum     float64
	buckets []uint64 // per bound (non-cumulative), then +Inf
	values  []float64
	minPos  engine.FeedPos
}

// aggProc aggregates points per series and window and emits a window once
// the watermark (the greatest event time seen; the wall clock after
// IdleClose without points) passes its end plus Grace.
type aggProc struct {
	*resolver
	cfg   Aggregation
	width int64
	wins  map[winKey]*window
	// Every window ending at or before emitted has been emitted (ns);
	// watermark is the greatest event time seen.
	emitted, watermark int64
	// From the restored state: points before replayEnd in windows ending
	// at or before replayEmitted were handled before the restart.
	replayEnd     engine.FeedPos
	replayEmitted int64
	replaying     bool
	closing       []winKey
}

// aggStateVersion is the version byte of the state stored with the feed
// cursor (DESIGN.md §17). Part of the format: do not change.
const aggStateVersion = 1

func (a *aggProc) state(end engine.FeedPos) []byte {
	b := []byte{aggStateVersion}
	b = binary.AppendUvarint(b, uint64(a.width))
	b = binary.AppendVarint(b, a.watermark)
	b = binary.AppendVarint(b, a.emitted)
	b = binary.AppendUvarint(b, end.Segment)
	b = binary.AppendUvarint(b, uint64(end.Offset))
	return binary.AppendUvarint(b, uint64(end.Index))
}

func (a *aggProc) restore(b []byte) error {
	if len(b) < 1 || b[0] != aggStateVersion {
		return errors.New("stored aggregation state: unknown version (was the feed written by another shape?)")
	}
	b = b[1:]
	var u [5]uint64
	var v [2]int64
	var n int
	if u[0], n = binary.Uvarint(b); n <= 0 {
		return errors.New("stored aggregation state: truncated")
	}
	b = b[n:]
	for i := range v {
		if v[i], n = binary.Varint(b); n <= 0 {
			return errors.New("stored aggregation state: truncated")
		}
		b = b[n:]
	}
	for i := 1; i < 4; i++ {
		if u[i], n = binary.Uvarint(b); n <= 0 {
			return errors.New("stored aggregation state: truncated")
		}
		b = b[n:]
	}
	if len(b) != 0 || u[2] > math.MaxInt64 || u[3] > math.MaxUint32 {
		return errors.New("stored aggregation state: malformed")
	}
	if int64(u[0]) != a.width {
		return fmt.Errorf("stored aggregation state has window %v, the configuration %v: use another feed name", time.Duration(u[0]), time.Duration(a.width))
	}
	a.watermark, a.emitted = v[0], v[1]
	a.replayEnd = engine.FeedPos{Segment: u[1], Offset: int64(u[2]), Index: uint32(u[3])}
	a.replayEmitted = a.emitted
	a.replaying = true
	return nil
}

func (a *aggProc) process(dst []item, pts []engine.FeedPoint, end engine.FeedPos, caughtUp, idle bool) ([]item, engine.FeedPos, []byte) {
	for i := range pts {
		pt := &pts[i]
		if a.replaying && !pt.Pos.Less(a.replayEnd) {
			a.replaying = false
		}
		ref := a.ref(pt.Series)
		if ref.skip {
			continue
		}
		start := floorDiv(pt.T, a.width) * a.width
		wend := start + a.width
		if a.replaying && wend <= a.replayEmitted {
			continue // emitted (or counted late) before the restart
		}
		if math.IsNaN(pt.V) {
			a.s.stats.nan.Add(1)
			continue
		}
		if wend <= a.emitted {
			a.s.stats.late.Add(1)
			continue
		}
		a.watermark = max(a.watermark, pt.T)
		k := winKey{pt.Series, start}
		w := a.wins[k]
		if w == nil {
			w = &window{buckets: make([]uint64, len(a.cfg.Buckets)+1), minPos: pt.Pos}
			a.wins[k] = w
		}
		w.count++
		w.sum += pt.V
		b, _ := slices.BinarySearch(a.cfg.Buckets, pt.V) // first bound >= v: le semantics
		w.buckets[b]++
		if len(a.cfg.Quantiles) > 0 {
			w.values = append(w.values, pt.V)
		}
	}
	if idle {
		if now := time.Now().UnixNano(); now > a.watermark {
			a.watermark = now
		}
	}
	// Close the windows ending at or before watermark - grace.
	if a.watermark != math.MinInt64 {
		limit := floorDiv(a.watermark-int64(a.cfg.Grace), a.width) * a.width
		if limit > a.emitted {
			a.closing = a.closing[:0]
			for k := range a.wins {
				if k.start+a.width <= limit {
					a.closing = append(a.closing, k)
				}
			}
			slices.SortFunc(a.closing, func(x, y winKey) int {
				if c := cmp.Compare(x.start, y.start); c != 0 {
					return c
				}
				return cmp.Compare(x.series, y.series)
			})
			for _, k := range a.closing {
				dst = a.emit(dst, k, a.wins[k])
				delete(a.wins, k)
			}
			a.emitted = limit
		}
	}
	safe := end
	for _, w := range a.wins {
		if w.minPos.Less(safe) {
			safe = w.minPos
		}
	}
	return dst, safe, a.state(end)
}

func (a *aggProc) emit(dst []item, k winKey, w *window) []item {
	ref := a.series[k.series]
	if ref.agg == nil {
		s := &aggSets{
			count: makeSet(ref.base, ref.name+"_count"),
			sum:   makeSet(ref.base, ref.name+"_sum"),
		}
		for _, b := range a.cfg.Buckets {
			s.buckets = append(s.buckets, makeSet(ref.base, ref.name+"_bucket", prompb.Label{Name: "le", Value: formatFloat(b)}))
		}
		s.buckets = append(s.buckets, makeSet(ref.base, ref.name+"_bucket", prompb.Label{Name: "le", Value: "+Inf"}))
		for _, q := range a.cfg.Quantiles {
			s.quantiles = append(s.quantiles, makeSet(ref.base, ref.name, prompb.Label{Name: "quantile", Value: formatFloat(q)}))
		}
		ref.agg = s
	}
	t := floorDiv(k.start+a.width, int64(time.Millisecond))
	add := func(ls *labelSet, v float64) {
		dst = append(dst, item{ls: ls, t: t, v: v, shard: ref.shard})
	}
	add(ref.agg.count, float64(w.count))
	add(ref.agg.sum, w.sum)
	var cum uint64
	for i, n := range w.buckets {
		cum += n
		add(ref.agg.buckets[i], float64(cum))
	}
	if len(a.cfg.Quantiles) > 0 {
		slices.Sort(w.values)
		for i, q := range a.cfg.Quantiles {
			add(ref.agg.quantiles[i], query.PercentileSorted(w.values, q*100))
		}
	}
	return dst
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
