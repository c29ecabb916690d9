package engine_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

// BenchmarkRollupQuery30Days: 30 days of W-event-like latencies (20
// series over 4 services, a point every 10 s: 5.2M points), compacted into
// cold blocks with 1-minute and 1-hour rollups; an hourly windowed query
// (p50/p99, and count/sum/max) per service over the 30 days, read from the
// points and from the rollups.
func BenchmarkRollupQuery30Days(b *testing.B) {
	const (
		series = 20
		every  = 10 * time.Second
		days   = 30
	)
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	start := end.Add(-days * 24 * time.Hour)
	db := open(b, b.TempDir(), &engine.Options{Now: fixedClock, NoBackgroundCompaction: true,
		Rollups: []time.Duration{time.Minute, time.Hour}})
	defer db.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	hs := make([]*engine.Series, series)
	for s := range hs {
		h, err := db.Series("latency", engine.Labels{"service": "svc-" + strconv.Itoa(s%4), "instance": strconv.Itoa(s)})
		if err != nil {
			b.Fatal(err)
		}
		hs[s] = h
	}
	var bt engine.Batch
	n := 0
	for t := start; t.Before(end); t = t.Add(every) {
		for _, h := range hs {
			bt.Add(h, t.UnixNano()+rng.Int64N(int64(every)), math.Exp(-3+rng.NormFloat64()))
		}
		if bt.Len() >= 10000 {
			if err := db.Append(&bt); err != nil {
				b.Fatal(err)
			}
			n += bt.Len()
			bt.Reset()
		}
	}
	if err := db.Append(&bt); err != nil {
		b.Fatal(err)
	}
	n += bt.Len()
	t0 := time.Now()
	if err := db.Compact(); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d points; compaction with rollups took %v: %+v", n, time.Since(t0), db.LastCompaction())
	q := func() *query.Query {
		return db.Query("latency").Between(start, end).GroupBy("service").Step(time.Hour)
	}
	for _, mode := range []string{"raw", "rollups"} {
		get := func() *query.Query {
			if mode == "rollups" {
				return q().UseRollups()
			}
			return q()
		}
		b.Run("percentiles/"+mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rows, err := get().PercentilesBy(50, 99)
				if err != nil || len(rows) != 4 || len(rows[0].Times) != days*24 {
					b.Fatalf("%d rows, %v", len(rows), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
		})
		b.Run("aggregates/"+mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rows, err := get().AggregateBy(query.Count, query.Sum, query.Max)
				if err != nil || len(rows) != 4 || len(rows[0].Times) != days*24 {
					b.Fatalf("%d rows, %v", len(rows), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
		})
	}
}
