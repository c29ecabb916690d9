package metrics

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Histogram counts observations in buckets for exposition (one label set
// of a histogram metric). It is safe for concurrent use. With an engine
// attached, every observation is stored raw at its event time, which is
// what lets SetBuckets change the buckets later and recount history.
//
// A NaN observation is stored in the engine (where it means "no value")
// but not counted: the in-memory counts always equal what the engine's
// query.Buckets returns over the same observations.
type Histogram struct {
	cell
	b    atomic.Pointer[hbuckets]
	sum  atomic.Uint64 // float64 bits
	unit float64
}

// hbuckets is one bucket layout with its counts; SetBuckets replaces it.
type hbuckets struct {
	bounds []float64       // ascending, without +Inf
	counts []atomic.Uint64 // len(bounds)+1, the last for +Inf; not cumulative
}

func newHBuckets(bounds []float64) *hbuckets {
	return &hbuckets{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// index returns the bucket of v: the first bound b with v <= b.
func (hb *hbuckets) index(v float64) int {
	if len(hb.bounds) <= 16 {
		for i, b := range hb.bounds {
			if v <= b {
				return i
			}
		}
		return len(hb.bounds)
	}
	return sort.SearchFloat64s(hb.bounds, v)
}

func checkBuckets(name string, bounds []float64) error {
	for i, b := range bounds {
		if math.IsNaN(b) {
			return fmt.Errorf("%w: %s: bucket bound %d is NaN", ErrInvalid, name, i)
		}
		if i > 0 && !(bounds[i-1] < b) {
			return fmt.Errorf("%w: %s: bucket bounds must be strictly ascending: bound %d (%g) after %g", ErrInvalid, name, i, b, bounds[i-1])
		}
	}
	return nil
}

func (r *Registry) histogram(o HistogramOpts, vec bool) (*family, error) {
	bounds := o.Buckets
	if bounds == nil {
		bounds = DefBuckets
	}
	bounds = slices.Clone(bounds)
	if n := len(bounds); n > 0 && math.IsInf(bounds[n-1], 1) {
		bounds = bounds[:n-1]
	}
	if err := checkBuckets(o.Name, bounds); err != nil {
		return nil, err
	}
	f, err := r.register(kindHistogram, o.Opts, vec, func(f *family) metricCell {
		h := &Histogram{unit: f.unit}
		h.b.Store(newHBuckets(*f.bounds.Load()))
		return h
	})
	if err != nil {
		return nil, err
	}
	f.bounds.Store(&bounds)
	return f, nil
}

// Histogram registers a histogram without labels.
func (r *Registry) Histogram(o HistogramOpts) (*Histogram, error) {
	f, err := r.histogram(o, false)
	if err != nil {
		return nil, err
	}
	f.initSingle()
	return f.single.(*Histogram), nil
}

// HistogramVec registers a histogram with labels.
func (r *Registry) HistogramVec(o HistogramOpts) (HistogramVec, error) {
	f, err := r.histogram(o, true)
	if err != nil {
		return HistogramVec{}, err
	}
	return newVec[*Histogram](f), nil
}

// Observe records v, stamped now.
func (h *Histogram) Observe(v float64) {
	if !h.fam.on.Load() {
		return
	}
	if h.state.Load() != stTouched {
		h = h.fam.live(&h.cell, h).(*Histogram)
	}
	if b := h.bind.Load(); b != nil {
		w := b.w
		w.mu.Lock()
		h.count(v)
		w.appendLocked(b.s, w.r.nowNanos(), v)
		w.mu.Unlock()
		return
	}
	h.count(v)
}

// ObserveAt records v at event time t.
func (h *Histogram) ObserveAt(t time.Time, v float64) {
	if !h.fam.on.Load() {
		return
	}
	if h.state.Load() != stTouched {
		h = h.fam.live(&h.cell, h).(*Histogram)
	}
	if b := h.bind.Load(); b != nil {
		w := b.w
		w.mu.Lock()
		h.count(v)
		w.appendLocked(b.s, t.UnixNano(), v)
		w.mu.Unlock()
		return
	}
	h.count(v)
}

// ObserveDuration records d in the metric's Unit.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(float64(d) / h.unit) }

// Time returns a function that records the time elapsed since Time was
// called, in the metric's Unit: defer h.Time()().
func (h *Histogram) Time() func() {
	start := time.Now()
	return func() { h.ObserveDuration(time.Since(start)) }
}

func (h *Histogram) count(v float64) {
	if v != v {
		return
	}
	hb := h.b.Load()
	hb.counts[hb.index(v)].Add(1)
	addFloat(&h.sum, v)
}

// Count returns the number of observations counted in memory.
func (h *Histogram) Count() uint64 {
	hb := h.b.Load()
	var n uint64
	for i := range hb.counts {
		n += hb.counts[i].Load()
	}
	return n
}

// Sum returns the sum of the observations counted in memory.
func (h *Histogram) Sum() float64 { return math.Float64frombits(h.sum.Load()) }

// Buckets returns the bucket bounds and the cumulative count of each
// (len(bounds)+1 counts, the last for +Inf).
func (h *Histogram) Buckets() (bounds []float64, cumulative []uint64) {
	hb := h.b.Load()
	cumulative = make([]uint64, len(hb.counts))
	var n uint64
	for i := range hb.counts {
		n += hb.counts[i].Load()
		cumulative[i] = n
	}
	return slices.Clone(hb.bounds), cumulative
}

// SetBuckets changes the buckets of every label set of h's metric. The
// counts are recomputed from the observations stored in the attached
// engine (so it fails with ErrNoEngine without one): afterwards counts and
// sum equal query.Buckets and query.Sum over each stored series, which
// holds its whole history (earlier runs of the process included).
// Observations made before the engine was attached are not in it and are
// no longer counted.
func (h *Histogram) SetBuckets(bounds []float64) error {
	f := h.fam
	bounds = slices.Clone(bounds)
	if n := len(bounds); n > 0 && math.IsInf(bounds[n-1], 1) {
		bounds = bounds[:n-1]
	}
	if err := checkBuckets(f.promName, bounds); err != nil {
		return err
	}
	w := f.reg.wr.Load()
	if w == nil {
		return fmt.Errorf("%w: %s: changing buckets recounts the stored observations", ErrNoEngine, f.promName)
	}
	// Under the writer's lock no observation of an engine-bound cell can
	// happen: the counts read from the engine are exact. Lock order:
	// family, then writer.
	f.mu.Lock()
	defer f.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.flushLocked(); err != nil {
		return err
	}
	cells := make([]metricCell, 0, len(f.cells)+1)
	if f.single != nil {
		cells = append(cells, f.single)
	}
	for _, m := range f.cells {
		cells = append(cells, m)
	}
	for _, m := range cells {
		if err := m.(*Histogram).recount(w.db, bounds); err != nil {
			return err
		}
	}
	f.bounds.Store(&bounds)
	return nil
}

// recount replaces h's buckets by bounds with counts from the engine.
func (h *Histogram) recount(db *engine.DB, bounds []float64) error {
	f := h.fam
	b := h.bind.Load()
	if b == nil {
		return fmt.Errorf("%w: %s: a label set has no engine series", ErrNoEngine, f.promName)
	}
	q := db.Query(f.promName, exactMatchers(b.s.Labels())...).BySeries()
	brows, err := q.BucketsBy(bounds, false)
	if err != nil {
		return fmt.Errorf("metrics: %s: recount buckets: %w", f.promName, err)
	}
	srows, err := q.AggregateBy(query.Sum)
	if err != nil {
		return fmt.Errorf("metrics: %s: recount sum: %w", f.promName, err)
	}
	hb := newHBuckets(bounds)
	sum := 0.0
	if row := exactRow(brows, b.s.Labels()); row != nil {
		for _, win := range row.Values {
			for i, c := range win {
				hb.counts[i].Add(uint64(c))
			}
		}
	}
	if row := exactRow(srows, b.s.Labels()); row != nil {
		for _, win := range row.Values {
			sum += win[0]
		}
	}
	h.b.Store(hb)
	h.sum.Store(math.Float64bits(sum))
	return nil
}

func (h *Histogram) collect(m *dto.Metric, _ int64) {
	hb := h.b.Load()
	dh := &dto.Histogram{Bucket: make([]*dto.Bucket, 0, len(hb.bounds)+1)}
	var n uint64
	for i, b := range hb.bounds {
		n += hb.counts[i].Load()
		dh.Bucket = append(dh.Bucket, &dto.Bucket{UpperBound: proto.Float64(b), CumulativeCount: proto.Uint64(n)})
	}
	n += hb.counts[len(hb.bounds)].Load()
	dh.Bucket = append(dh.Bucket, &dto.Bucket{UpperBound: proto.Float64(math.Inf(1)), CumulativeCount: proto.Uint64(n)})
	dh.SampleCount = proto.Uint64(n)
	dh.SampleSum = proto.Float64(h.Sum())
	m.Histogram = dh
}
