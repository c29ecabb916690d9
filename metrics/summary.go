package metrics

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/eventmetrics/eventmetrics/query"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Summary exposes exact quantiles over a sliding time window, with the
// count and sum of every observation (one label set of a summary metric).
// It keeps the observations of the window in memory (16 bytes each) and
// computes the quantiles from them at exposition, with the same linear
// interpolation as the query layer's Percentiles. With an engine attached
// each observation is also stored. It is safe for concurrent use.
type Summary struct {
	cell
	mu    sync.Mutex
	ts    []int64 // window, in arrival order; ts[head:] are live
	vs    []float64
	head  int
	count uint64
	sum   float64
	unit  float64
}

func (r *Registry) summary(o SummaryOpts, vec bool) (*family, error) {
	qs := o.Quantiles
	if qs == nil {
		qs = []float64{0.5, 0.9, 0.99}
	}
	for _, q := range qs {
		if !(q >= 0 && q <= 1) {
			return nil, fmt.Errorf("%w: %s: quantile %v is outside [0, 1]", ErrInvalid, o.Name, q)
		}
	}
	if o.MaxAge < 0 {
		return nil, fmt.Errorf("%w: %s: MaxAge is negative", ErrInvalid, o.Name)
	}
	f, err := r.register(kindSummary, o.Opts, vec, func(f *family) metricCell { return &Summary{unit: f.unit} })
	if err != nil {
		return nil, err
	}
	f.quantiles = slices.Clone(qs)
	slices.Sort(f.quantiles)
	f.maxAge = int64(o.MaxAge)
	if f.maxAge == 0 {
		f.maxAge = int64(10 * time.Minute)
	}
	return f, nil
}

// Summary registers a summary without labels.
func (r *Registry) Summary(o SummaryOpts) (*Summary, error) {
	f, err := r.summary(o, false)
	if err != nil {
		return nil, err
	}
	f.initSingle()
	return f.single.(*Summary), nil
}

// SummaryVec registers a summary with labels.
func (r *Registry) SummaryVec(o SummaryOpts) (SummaryVec, error) {
	f, err := r.summary(o, true)
	if err != nil {
		return SummaryVec{}, err
	}
	return newVec[*Summary](f), nil
}

// Observe records v, stamped with the registry's clock.
func (s *Summary) Observe(v float64) { s.observe(s.fam.reg.nowNanos(), v) }

// ObserveAt records v at event time t (it counts in the window while t is
// within MaxAge of now).
func (s *Summary) ObserveAt(t time.Time, v float64) { s.observe(t.UnixNano(), v) }

// ObserveDuration records d in the metric's Unit.
func (s *Summary) ObserveDuration(d time.Duration) { s.Observe(float64(d) / s.unit) }

// Time returns a function that records the time elapsed since Time was
// called: defer s.Time()().
func (s *Summary) Time() func() {
	start := time.Now()
	return func() { s.ObserveDuration(time.Since(start)) }
}

func (s *Summary) observe(t int64, v float64) {
	if !s.fam.on.Load() {
		return
	}
	if s.state.Load() != stTouched {
		s = s.fam.live(&s.cell, s).(*Summary)
	}
	s.mu.Lock()
	if v == v {
		s.count++
		s.sum += v
		s.ts = append(s.ts, t)
		s.vs = append(s.vs, v)
		s.pruneLocked(s.fam.reg.nowNanos())
	}
	s.mu.Unlock()
	if b := s.bind.Load(); b != nil {
		b.w.mu.Lock()
		b.w.appendLocked(b.s, t, v)
		b.w.mu.Unlock()
	}
}

// pruneLocked drops observations older than the window from the front and
// compacts the buffers when half of them is dead.
func (s *Summary) pruneLocked(now int64) {
	cut := now - s.fam.maxAge
	for s.head < len(s.ts) && s.ts[s.head] < cut {
		s.head++
	}
	if s.head > 64 && s.head*2 >= len(s.ts) {
		n := copy(s.ts, s.ts[s.head:])
		copy(s.vs, s.vs[s.head:])
		s.ts, s.vs, s.head = s.ts[:n], s.vs[:n], 0
	}
}

// Quantiles returns the summary's quantiles over the window ending now
// (NaN when the window is empty), its count and sum.
func (s *Summary) Quantiles() (qs []float64, count uint64, sum float64) {
	return s.quantiles(s.fam.reg.nowNanos())
}

func (s *Summary) quantiles(now int64) ([]float64, uint64, float64) {
	cut := now - s.fam.maxAge
	s.mu.Lock()
	s.pruneLocked(now)
	win := make([]float64, 0, len(s.ts)-s.head)
	for i := s.head; i < len(s.ts); i++ {
		if s.ts[i] >= cut && s.ts[i] <= now {
			win = append(win, s.vs[i])
		}
	}
	count, sum := s.count, s.sum
	s.mu.Unlock()
	slices.Sort(win)
	qs := make([]float64, len(s.fam.quantiles))
	for i, q := range s.fam.quantiles {
		qs[i] = math.NaN()
		if len(win) > 0 {
			qs[i] = query.PercentileSorted(win, q*100)
		}
	}
	return qs, count, sum
}

func (s *Summary) collect(m *dto.Metric, now int64) {
	qs, count, sum := s.quantiles(now)
	ds := &dto.Summary{SampleCount: proto.Uint64(count), SampleSum: proto.Float64(sum)}
	for i, q := range s.fam.quantiles {
		ds.Quantile = append(ds.Quantile, &dto.Quantile{Quantile: proto.Float64(q), Value: proto.Float64(qs[i])})
	}
	m.Summary = ds
}
