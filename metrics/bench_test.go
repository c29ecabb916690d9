package metrics_test

import (
	"testing"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/metrics"
)

// handles returns a bound counter and histogram of a fresh registry, with
// an engine (SyncInterval, the default mode) when withEngine.
func handles(tb testing.TB, withEngine bool) (*metrics.Counter, *metrics.Histogram, *metrics.Registry) {
	return handlesOpts(tb, withEngine, &metrics.RegistryOptions{})
}

func handlesOpts(tb testing.TB, withEngine bool, o *metrics.RegistryOptions) (*metrics.Counter, *metrics.Histogram, *metrics.Registry) {
	tb.Helper()
	if withEngine {
		o.Engine = openDB(tb, &engine.Options{Sync: engine.SyncInterval})
	}
	r := newReg(tb, o)
	cv := metrics.Must(r.CounterVec(metrics.Opts{Name: "http.requests", Labels: []string{"method", "code"}}))
	hv := metrics.Must(r.HistogramVec(metrics.HistogramOpts{Opts: metrics.Opts{Name: "http.latency", Labels: []string{"method"}}}))
	return metrics.Must(cv.WithValues("GET", "200")), metrics.Must(hv.WithValues("GET")), r
}

func BenchmarkCounterInc(b *testing.B) {
	for _, eng := range []bool{false, true} {
		b.Run(map[bool]string{false: "memory", true: "engine"}[eng], func(b *testing.B) {
			c, _, _ := handles(b, eng)
			b.ReportAllocs()
			for b.Loop() {
				c.Inc()
			}
		})
	}
}

func BenchmarkWriteThrough(b *testing.B) {
	c, h, _ := handlesOpts(b, true, &metrics.RegistryOptions{WriteThrough: true})
	b.Run("counter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Inc()
		}
	})
	b.Run("histogram", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.Observe(0.3)
		}
	})
}

func BenchmarkHistogramObserve(b *testing.B) {
	for _, eng := range []bool{false, true} {
		b.Run(map[bool]string{false: "memory", true: "engine"}[eng], func(b *testing.B) {
			_, h, _ := handles(b, eng)
			b.ReportAllocs()
			v := 0.0
			for b.Loop() {
				h.Observe(v)
				v += 0.001
				if v > 12 {
					v = 0
				}
			}
		})
	}
}

// BenchmarkParallel observes one bound label set from GOMAXPROCS
// goroutines.
func BenchmarkParallel(b *testing.B) {
	for _, eng := range []bool{false, true} {
		name := map[bool]string{false: "memory", true: "engine"}[eng]
		c, h, _ := handles(b, eng)
		b.Run("counter/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.Inc()
				}
			})
		})
		b.Run("histogram/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					h.Observe(0.3)
				}
			})
		})
	}
}

// BenchmarkDisabled is an observation below the current level.
func BenchmarkDisabled(b *testing.B) {
	c, h, r := handles(b, false)
	if err := r.SetLevel("http", metrics.Disabled); err != nil {
		b.Fatal(err)
	}
	b.Run("counter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Inc()
		}
	})
	b.Run("histogram", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.Observe(1)
		}
	})
}

func BenchmarkMeterMark(b *testing.B) {
	r := newReg(b, nil)
	m := metrics.Must(r.Meter(metrics.MeterOpts{Opts: metrics.Opts{Name: "calls"}}))
	b.ReportAllocs()
	for b.Loop() {
		m.Mark()
	}
}

// BenchmarkWithValues is a lookup of an existing label set (the cost of
// not caching the handle).
func BenchmarkWithValues(b *testing.B) {
	r := newReg(b, nil)
	cv := metrics.Must(r.CounterVec(metrics.Opts{Name: "http.requests", Labels: []string{"method", "code"}}))
	metrics.Must(cv.WithValues("GET", "200"))
	b.ReportAllocs()
	for b.Loop() {
		c, err := cv.WithValues("GET", "200")
		if err != nil {
			b.Fatal(err)
		}
		c.Inc()
	}
}

func BenchmarkGather(b *testing.B) {
	r := newReg(b, nil)
	cv := metrics.Must(r.CounterVec(metrics.Opts{Name: "req", Labels: []string{"k"}}))
	for i := range 1000 {
		metrics.Must(cv.WithValues(string(rune('a'+i%26)) + string(rune('a'+i/26)))).Inc()
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHotPathAllocs guards zero allocations per observation on bound
// handles, in memory and with an engine, and when disabled.
func TestHotPathAllocs(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	for _, eng := range []bool{false, true} {
		c, h, r := handles(t, eng)
		g := metrics.Must(r.Gauge(metrics.Opts{Name: "g"}))
		m := metrics.Must(r.Meter(metrics.MeterOpts{Opts: metrics.Opts{Name: "m"}}))
		cases := map[string]func(){
			"counter.Inc":       func() { c.Inc() },
			"counter.Add":       func() { _ = c.Add(2) },
			"gauge.Set":         func() { g.Set(3) },
			"gauge.Add":         func() { g.Add(1.5) },
			"histogram.Observe": func() { h.Observe(0.3) },
			"meter.Mark":        func() { m.Mark() },
		}
		for name, fn := range cases {
			if n := testing.AllocsPerRun(1000, fn); n != 0 {
				t.Errorf("%s (engine %v): %v allocs per op, want 0", name, eng, n)
			}
		}
		cv := metrics.Must(r.CounterVec(metrics.Opts{Name: "lookup", Labels: []string{"a", "b"}}))
		metrics.Must(cv.WithValues("x", "y"))
		if n := testing.AllocsPerRun(1000, func() { _, _ = cv.WithValues("x", "y") }); n != 0 {
			t.Errorf("WithValues of a known set (engine %v): %v allocs", eng, n)
		}
		_ = r.SetLevel("", metrics.Disabled)
		if n := testing.AllocsPerRun(1000, func() { c.Inc(); h.Observe(1) }); n != 0 {
			t.Errorf("disabled: %v allocs", n)
		}
	}
}
