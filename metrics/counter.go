package metrics

import (
	"fmt"
	"math"
	"sync/atomic"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Counter is a monotonically increasing value (one label set of a counter
// metric). It is safe for concurrent use. With an engine attached, each
// increment is stored as the series' new running total, continuing from
// the total stored before (as engine Increment does), in timestamp order;
// the in-memory value, which exposition shows, counts from the process
// start.
type Counter struct {
	cell
	n    atomic.Uint64 // integer increments
	bits atomic.Uint64 // float64 sum of non-integer increments
}

// Counter registers a counter without labels.
func (r *Registry) Counter(o Opts) (*Counter, error) {
	f, err := r.register(kindCounter, o, false, func(*family) metricCell { return new(Counter) })
	if err != nil {
		return nil, err
	}
	f.initSingle()
	return f.single.(*Counter), nil
}

// CounterVec registers a counter with labels.
func (r *Registry) CounterVec(o Opts) (CounterVec, error) {
	f, err := r.register(kindCounter, o, true, func(*family) metricCell { return new(Counter) })
	if err != nil {
		return CounterVec{}, err
	}
	return newVec[*Counter](f), nil
}

// Inc adds 1.
func (c *Counter) Inc() {
	if !c.fam.on.Load() {
		return
	}
	if c.state.Load() != stTouched {
		c = c.fam.live(&c.cell, c).(*Counter)
	}
	c.n.Add(1)
	if b := c.bind.Load(); b != nil {
		b.add(1)
	}
}

// Add adds v, which must be finite and >= 0.
func (c *Counter) Add(v float64) error {
	if !(v >= 0) || math.IsInf(v, 1) {
		return fmt.Errorf("%w: %s: counter increment %v: must be finite and >= 0", ErrInvalid, c.fam.promName, v)
	}
	if !c.fam.on.Load() {
		return nil
	}
	if c.state.Load() != stTouched {
		c = c.fam.live(&c.cell, c).(*Counter)
	}
	if u := uint64(v); float64(u) == v {
		c.n.Add(u)
	} else {
		addFloat(&c.bits, v)
	}
	if b := c.bind.Load(); b != nil {
		b.add(v)
	}
	return nil
}

// Value returns the current in-memory value.
func (c *Counter) Value() float64 {
	return float64(c.n.Load()) + math.Float64frombits(c.bits.Load())
}

// CountErrors runs fn and counts 1 if it returns an error or panics (the
// panic goes on after counting). It returns fn's error.
func (c *Counter) CountErrors(fn func() error) (err error) {
	ok := false
	defer func() {
		if !ok {
			c.Inc()
		}
	}()
	err = fn()
	ok = err == nil
	return err
}

// CountPanics runs fn and counts 1 if it panics; the panic goes on.
func (c *Counter) CountPanics(fn func()) {
	ok := false
	defer func() {
		if !ok {
			c.Inc()
		}
	}()
	fn()
	ok = true
}

// add stores the counter's new running total.
func (b *binding) add(d float64) {
	w := b.w
	w.mu.Lock()
	b.total += d
	w.appendLocked(b.s, w.r.nowNanos(), b.total)
	w.mu.Unlock()
}

func (c *Counter) collect(m *dto.Metric, _ int64) {
	m.Counter = &dto.Counter{Value: proto.Float64(c.Value())}
}
