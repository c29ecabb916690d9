package metrics

import "time"

// Observer records a value: *Histogram, *Summary and *Gauge (which sets
// it) are Observers.
type Observer interface {
	Observe(v float64)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(v float64)

// Observe calls f(v).
func (f ObserverFunc) Observe(v float64) { f(v) }

// Timer measures a duration and records it in a unit. It is a small value:
// start one per measurement.
//
//	t := metrics.NewTimer(latency, time.Millisecond)
//	...
//	t.ObserveDuration() // records the milliseconds elapsed
type Timer struct {
	start time.Time
	o     Observer
	unit  time.Duration
}

// NewTimer starts a timer that records into o in the given unit (0 means
// seconds): a duration d is recorded as d/unit.
func NewTimer(o Observer, unit time.Duration) Timer {
	if unit <= 0 {
		unit = time.Second
	}
	return Timer{start: time.Now(), o: o, unit: unit}
}

// Elapsed returns the time since the timer started.
func (t Timer) Elapsed() time.Duration { return time.Since(t.start) }

// ObserveDuration records the time elapsed since the timer started and
// returns it. It may be called more than once (laps).
func (t Timer) ObserveDuration() time.Duration {
	d := time.Since(t.start)
	if t.o != nil {
		t.o.Observe(float64(d) / float64(t.unit))
	}
	return d
}
