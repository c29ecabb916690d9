package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/metrics"
)

// The instrumentation hot path side by side with prometheus/client_golang:
// a counter increment and a histogram observation on a label set bound
// once (the handle kept, as both libraries recommend), on one goroutine.
//
//	go test -run '^$' -bench Instrument -benchmem -count=6 . | tee instr.txt
//
// eventmetrics is measured in memory (no engine) and with an engine in
// SyncInterval mode (every observation also stored at its event time);
// client_golang keeps memory state only.

func emHandles(b *testing.B, withEngine bool) (*metrics.Counter, *metrics.Histogram) {
	o := &metrics.RegistryOptions{}
	if withEngine {
		db, err := engine.Open(b.TempDir(), &engine.Options{Sync: engine.SyncInterval})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
		o.Engine = db
	}
	r, err := metrics.NewRegistry(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Flush() })
	cv := metrics.Must(r.CounterVec(metrics.Opts{Name: "http.requests", Labels: []string{"method", "code"}}))
	hv := metrics.Must(r.HistogramVec(metrics.HistogramOpts{Opts: metrics.Opts{Name: "http.latency", Labels: []string{"method"}}}))
	return metrics.Must(cv.WithValues("GET", "200")), metrics.Must(hv.WithValues("GET"))
}

func promHandles() (prometheus.Counter, prometheus.Observer) {
	r := prometheus.NewRegistry()
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "h"}, []string{"method", "code"})
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "http_latency", Help: "h", Buckets: prometheus.DefBuckets}, []string{"method"})
	r.MustRegister(cv, hv)
	return cv.WithLabelValues("GET", "200"), hv.WithLabelValues("GET")
}

func BenchmarkInstrumentCounterInc(b *testing.B) {
	b.Run("eventmetrics/memory", func(b *testing.B) {
		c, _ := emHandles(b, false)
		b.ReportAllocs()
		for b.Loop() {
			c.Inc()
		}
	})
	b.Run("eventmetrics/engine", func(b *testing.B) {
		c, _ := emHandles(b, true)
		b.ReportAllocs()
		for b.Loop() {
			c.Inc()
		}
	})
	b.Run("client_golang", func(b *testing.B) {
		c, _ := promHandles()
		b.ReportAllocs()
		for b.Loop() {
			c.Inc()
		}
	})
}

func BenchmarkInstrumentHistogramObserve(b *testing.B) {
	b.Run("eventmetrics/memory", func(b *testing.B) {
		_, h := emHandles(b, false)
		b.ReportAllocs()
		v := 0.0
		for b.Loop() {
			h.Observe(v)
			v = nextValue(v)
		}
	})
	b.Run("eventmetrics/engine", func(b *testing.B) {
		_, h := emHandles(b, true)
		b.ReportAllocs()
		v := 0.0
		for b.Loop() {
			h.Observe(v)
			v = nextValue(v)
		}
	})
	b.Run("client_golang", func(b *testing.B) {
		_, h := promHandles()
		b.ReportAllocs()
		v := 0.0
		for b.Loop() {
			h.Observe(v)
			v = nextValue(v)
		}
	})
}

// nextValue walks 0..12 s in 1 ms steps, through every default bucket.
func nextValue(v float64) float64 {
	v += 0.001
	if v > 12 {
		v = 0
	}
	return v
}
