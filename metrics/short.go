package metrics

import (
	"fmt"
)

// The short API of statvent, on the Default registry, for scripts: a
// metric is registered by its first use, with no labels and a generated
// help text. A later use with another type is an error wrapping ErrType.

// Incr adds delta (finite, >= 0) to the counter name.
func Incr(name string, delta float64) error { return Default.Incr(name, delta) }

// Set sets the gauge name to v.
func Set(name string, v float64) error { return Default.Set(name, v) }

// Record adds v to the summary name (quantiles 0.5, 0.9, 0.99 over 10
// minutes, with count and sum).
func Record(name string, v float64) error { return Default.Record(name, v) }

// Incr adds delta (finite, >= 0) to the counter name of r.
func (r *Registry) Incr(name string, delta float64) error {
	m, err := r.shortMetric(name, kindCounter)
	if err != nil {
		return err
	}
	return m.(*Counter).Add(delta)
}

// Set sets the gauge name of r to v.
func (r *Registry) Set(name string, v float64) error {
	m, err := r.shortMetric(name, kindGauge)
	if err != nil {
		return err
	}
	m.(*Gauge).Set(v)
	return nil
}

// Record adds v to the summary name of r.
func (r *Registry) Record(name string, v float64) error {
	m, err := r.shortMetric(name, kindSummary)
	if err != nil {
		return err
	}
	m.(*Summary).Observe(v)
	return nil
}

func (r *Registry) shortMetric(name string, k kind) (metricCell, error) {
	if m, ok := r.short.Load(name); ok {
		return checkShort(name, m.(metricCell), k)
	}
	r.mu.RLock()
	f := r.byDotted[name]
	r.mu.RUnlock()
	if f != nil {
		m := f.singleCell()
		if m == nil {
			return nil, fmt.Errorf("%w: %q is a %s with labels", ErrType, name, f.kind)
		}
		return checkShort(name, m, k)
	}
	o := Opts{Name: name, Help: name + " (short API)"}
	var m metricCell
	var err error
	switch k {
	case kindCounter:
		m, err = r.Counter(o)
	case kindGauge:
		m, err = r.Gauge(o)
	default:
		m, err = r.Summary(SummaryOpts{Opts: o})
	}
	if err != nil {
		// Lost a race with another first use: take the winner's.
		r.mu.RLock()
		f := r.byDotted[name]
		r.mu.RUnlock()
		if f == nil {
			return nil, err
		}
		if m = f.singleCell(); m == nil {
			return nil, err
		}
	}
	r.short.Store(name, m)
	return checkShort(name, m, k)
}

func checkShort(name string, m metricCell, k kind) (metricCell, error) {
	if got := m.base().fam.kind; got != k {
		return nil, fmt.Errorf("%w: %q is a %s, not a %s", ErrType, name, got, k)
	}
	return m, nil
}
