package metrics

import (
	"math"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Gauge is a value that goes up and down (one label set of a gauge
// metric). It is safe for concurrent use. With an engine attached, every
// change stores the new value; changes of one gauge are serialized so that
// the stored values follow the order of their timestamps.
type Gauge struct {
	cell
	bits atomic.Uint64
}

// Gauge registers a gauge without labels.
func (r *Registry) Gauge(o Opts) (*Gauge, error) {
	f, err := r.register(kindGauge, o, false, func(*family) metricCell { return new(Gauge) })
	if err != nil {
		return nil, err
	}
	f.initSingle()
	return f.single.(*Gauge), nil
}

// GaugeVec registers a gauge with labels.
func (r *Registry) GaugeVec(o Opts) (GaugeVec, error) {
	f, err := r.register(kindGauge, o, true, func(*family) metricCell { return new(Gauge) })
	if err != nil {
		return GaugeVec{}, err
	}
	return newVec[*Gauge](f), nil
}

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) {
	if !g.fam.on.Load() {
		return
	}
	if g.state.Load() != stTouched {
		g = g.fam.live(&g.cell, g).(*Gauge)
	}
	if b := g.bind.Load(); b != nil {
		w := b.w
		w.mu.Lock()
		g.bits.Store(math.Float64bits(v))
		w.appendLocked(b.s, w.r.nowNanos(), v)
		w.mu.Unlock()
		return
	}
	g.bits.Store(math.Float64bits(v))
}

// Add adds d (which may be negative).
func (g *Gauge) Add(d float64) {
	if !g.fam.on.Load() {
		return
	}
	if g.state.Load() != stTouched {
		g = g.fam.live(&g.cell, g).(*Gauge)
	}
	if b := g.bind.Load(); b != nil {
		w := b.w
		w.mu.Lock()
		v := addFloat(&g.bits, d)
		w.appendLocked(b.s, w.r.nowNanos(), v)
		w.mu.Unlock()
		return
	}
	addFloat(&g.bits, d)
}

// Inc adds 1.
func (g *Gauge) Inc() { g.Add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.Add(-1) }

// Sub subtracts d.
func (g *Gauge) Sub(d float64) { g.Add(-d) }

// SetToCurrentTime sets the gauge to the registry clock's Unix time in
// seconds.
func (g *Gauge) SetToCurrentTime() {
	g.Set(float64(g.fam.reg.nowNanos()) / 1e9)
}

// TrackInProgress adds 1 now and returns a function that subtracts it:
// defer g.TrackInProgress()().
func (g *Gauge) TrackInProgress() func() {
	g.Inc()
	return g.Dec
}

// Time returns a function that sets the gauge to the time elapsed since
// Time was called, in the metric's Unit: defer g.Time()().
func (g *Gauge) Time() func() {
	start := time.Now()
	return func() { g.Set(float64(time.Since(start)) / g.fam.unit) }
}

// Observe sets the gauge to v, so that a Gauge is an Observer (for timers).
func (g *Gauge) Observe(v float64) { g.Set(v) }

// Value returns the current value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

func (g *Gauge) collect(m *dto.Metric, _ int64) {
	m.Gauge = &dto.Gauge{Value: proto.Float64(g.Value())}
}
