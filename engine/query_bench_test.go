package engine_test

import (
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

// benchPoints is the points per series of the query benchmarks: the full
// workload (10,000 × 1,000 series = 10M points) unless
// EVENTMETRICS_BENCH_POINTS says otherwise.
func benchPoints() int {
	if s := os.Getenv("EVENTMETRICS_BENCH_POINTS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 10_000
}

type queryFixture struct {
	db    *engine.DB
	cfg   workload.Config
	n     int
	bytes int64
	dir   string
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[workload.Kind]*queryFixture{}
)

// fixture ingests a workload once per process, closes and reopens the DB so
// that queries read from storage.
func fixture(b *testing.B, kind workload.Kind) *queryFixture {
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f := fixtures[kind]; f != nil {
		return f
	}
	pts, cfg := loadWorkload(workload.Config{Kind: kind, Points: benchPoints()})
	dir, err := os.MkdirTemp("", "eventmetrics-bench-")
	if err != nil {
		b.Fatal(err)
	}
	db := open(b, dir, nil)
	ingest(b, db, cfg, pts, 1, 1000)
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	f := &queryFixture{db: open(b, dir, nil), cfg: cfg, n: len(pts), bytes: dirSize(b, dir), dir: dir}
	fixtures[kind] = f
	return f
}

func BenchmarkQuery(b *testing.B) {
	defer func() {
		fixturesMu.Lock()
		for k, f := range fixtures {
			f.db.Close()
			os.RemoveAll(f.dir)
			delete(fixtures, k)
		}
		fixturesMu.Unlock()
	}()
	for _, kind := range []workload.Kind{workload.Event, workload.Scrape} {
		b.Run(kind.String(), func(b *testing.B) {
			f := fixture(b, kind)
			metric := f.cfg.Metric()
			lo, hi := f.cfg.Range()
			b.Run("Q1", func(b *testing.B) {
				b.ReportAllocs()
				q := f.db.Query(metric, query.Eq("service", "svc-0"), query.Eq("endpoint", "/api/0"), query.Eq("status", "200"))
				for b.Loop() {
					ps, err := q.Percentiles(50, 90, 99)
					if err != nil || ps[0] != ps[0] {
						b.Fatal(err, ps)
					}
				}
				b.ReportMetric(float64(f.cfg.Points)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
			})
			b.Run("Q2", func(b *testing.B) {
				b.ReportAllocs()
				from := hi - (hi-lo)/10
				q := f.db.Query(metric, query.Eq("service", "svc-3")).FromNanos(from)
				for b.Loop() {
					if _, err := q.Percentiles(99); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("Q3", func(b *testing.B) {
				b.ReportAllocs()
				q := f.db.Query(metric, query.Eq("endpoint", "/api/7")).Step(time.Minute)
				for b.Loop() {
					rows, err := q.AggregateBy(query.Sum, query.Count)
					if err != nil || len(rows) != 1 {
						b.Fatal(err)
					}
				}
			})
			b.Run("Q4", func(b *testing.B) {
				b.ReportAllocs()
				q := f.db.Query(metric)
				for b.Loop() {
					v, err := q.Scalars(query.Count, query.Sum)
					if err != nil || int(v[0]) != f.n {
						b.Fatal(err, v)
					}
				}
				b.ReportMetric(float64(f.n)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
				b.ReportMetric(float64(f.bytes)/float64(f.n), "disk-B/point")
			})
		})
	}
}
