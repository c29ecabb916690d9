package engine_test

import (
	"io/fs"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

func BenchmarkSeriesObserve(b *testing.B) {
	db := open(b, b.TempDir(), nil)
	defer db.Close()
	s, err := db.Series("latency", engine.Labels{"service": "myapp"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		if err := s.Observe(1.2); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "points/s")
}

// BenchmarkSeriesObserveAt is Series.Observe without reading the clock
// (the caller supplies the event time): the engine's own cost.
func BenchmarkSeriesObserveAt(b *testing.B) {
	db := open(b, b.TempDir(), nil)
	defer db.Close()
	s, err := db.Series("latency", engine.Labels{"service": "myapp"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	t := time.Now().UnixNano()
	for b.Loop() {
		t += 1000
		if err := s.ObserveAtNanos(t, 1.2); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkClock is the cost of reading the clock that stamps Observe.
func BenchmarkClock(b *testing.B) {
	var sink int64
	base := time.Now()
	for b.Loop() {
		sink += int64(time.Since(base))
	}
	_ = sink
}

func BenchmarkDBObserve(b *testing.B) {
	db := open(b, b.TempDir(), nil)
	defer db.Close()
	labels := engine.Labels{"service": "myapp", "endpoint": "/api/7", "status": "200"}
	b.ReportAllocs()
	for b.Loop() {
		if err := db.Observe("latency", 1.2, labels); err != nil {
			b.Fatal(err)
		}
	}
}

// loadWorkload generates a workload into memory (not timed).
func loadWorkload(cfg workload.Config) ([]workload.Point, workload.Config) {
	g := workload.New(cfg)
	pts := make([]workload.Point, 0, g.Total())
	for {
		p, ok := g.Next()
		if !ok {
			break
		}
		pts = append(pts, p)
	}
	return pts, g.Config()
}

func dirSize(tb testing.TB, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// ingest writes pts through writers goroutines (each owning a disjoint
// share of the series) in batches of batch points.
func ingest(tb testing.TB, db *engine.DB, cfg workload.Config, pts []workload.Point, writers, batch int) {
	handles := make([]*engine.Series, cfg.Series)
	for s := range handles {
		h, err := db.Series(cfg.Metric(), workload.Labels(s))
		if err != nil {
			tb.Fatal(err)
		}
		handles[s] = h
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var bt engine.Batch
			for _, p := range pts {
				if p.Series%writers != w {
					continue
				}
				bt.Add(handles[p.Series], p.T, p.V)
				if bt.Len() == batch {
					if err := db.Append(&bt); err != nil {
						tb.Error(err)
						return
					}
					bt.Reset()
				}
			}
			if err := db.Append(&bt); err != nil {
				tb.Error(err)
			}
		}(w)
	}
	wg.Wait()
}

func BenchmarkAppend(b *testing.B) {
	for _, kind := range []workload.Kind{workload.Event, workload.Scrape} {
		pts, cfg := loadWorkload(workload.Config{Kind: kind, Series: 1000, Points: 1000})
		for _, writers := range []int{1, 2} {
			b.Run(kind.String()+"/writers="+string(rune('0'+writers)), func(b *testing.B) {
				b.ReportAllocs()
				var elapsed time.Duration
				var bytes int64
				var npts int
				for b.Loop() {
					b.StopTimer()
					dir := b.TempDir()
					db := open(b, dir, nil)
					b.StartTimer()
					start := time.Now()
					ingest(b, db, cfg, pts, writers, 1000)
					elapsed += time.Since(start)
					b.StopTimer()
					if err := db.Close(); err != nil {
						b.Fatal(err)
					}
					bytes += dirSize(b, dir)
					npts += len(pts)
					b.StartTimer()
				}
				b.ReportMetric(float64(npts)/elapsed.Seconds(), "points/s")
				b.ReportMetric(float64(bytes)/float64(npts), "B/point")
			})
		}
	}
}

// BenchmarkReplay measures reopening after an unclean stop: every point is
// in the log only.
func BenchmarkReplay(b *testing.B) {
	pts, cfg := loadWorkload(workload.Config{Kind: workload.Event, Series: 1000, Points: 1000})
	src := b.TempDir()
	db := open(b, src, &engine.Options{CheckpointBytes: 1 << 40, CheckpointEvery: time.Hour})
	ingest(b, db, cfg, pts, 1, 1000)
	if err := db.Sync(); err != nil {
		b.Fatal(err)
	}
	crash := b.TempDir()
	copyDir(b, src, crash) // the state a kill -9 would leave
	db.Close()
	b.ReportAllocs()
	var elapsed time.Duration
	var n int
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		copyDir(b, crash, dir)
		b.StartTimer()
		start := time.Now()
		db, err := engine.Open(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		n += len(pts)
		b.StopTimer()
		if c, _ := db.Query(cfg.Metric()).Scalar(query.Count); int(c) != len(pts) {
			b.Fatalf("replayed %v points, want %d", c, len(pts))
		}
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "points/s")
}

// BenchmarkSeriesMemory reports the heap held per series: N series with
// one point each (the head of a series that just appeared), measured after
// a GC.
func BenchmarkSeriesMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		b.StopTimer()
		db := open(b, b.TempDir(), nil)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		for i := 0; i < n; i++ {
			s, err := db.Series("mem", engine.Labels{"id": strconv.Itoa(i), "service": "svc-1", "endpoint": "/api/7"})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.ObserveAtNanos(int64(i), 1); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/series")
		if err := db.Compact(); err != nil {
			b.Fatal(err)
		}
		// Idle series are collected, then their registry entries removed
		// by cleanups, which run after a GC.
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/series-idle")
		b.ReportMetric(float64(db.LiveSeries()), "series-in-memory")
		db.Close()
		b.StartTimer()
	}
}

// BenchmarkAppendWhileCompacting ingests W-event with 5% out-of-order
// points, with the background compaction running every 100 ms, and without
// it: the ingest rate while compaction runs (target: within 20% of ingest
// alone). Bytes per point are measured after a final Compact with the
// background compaction stopped (reopened without it).
func BenchmarkAppendWhileCompacting(b *testing.B) {
	pts, cfg := loadWorkload(workload.Config{Kind: workload.Event, Series: 1000, Points: benchPoints(), OutOfOrder: 0.05})
	for _, bg := range []bool{false, true} {
		name := "alone"
		if bg {
			name = "with-background-compaction"
		}
		b.Run(name, func(b *testing.B) {
			var elapsed time.Duration
			var n int
			var bytes int64
			var merged int
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				db := open(b, dir, &engine.Options{NoBackgroundCompaction: !bg, CompactEvery: 100 * time.Millisecond, CheckpointBytes: 4 << 20})
				b.StartTimer()
				start := time.Now()
				ingest(b, db, cfg, pts, 1, 1000)
				elapsed += time.Since(start)
				n += len(pts)
				b.StopTimer()
				merged += db.CompactionTotals().ChunksMerged
				db.Close()
				db = open(b, dir, &engine.Options{NoBackgroundCompaction: true})
				if err := db.Compact(); err != nil {
					b.Fatal(err)
				}
				db.Close()
				bytes += dirSize(b, dir)
				b.StartTimer()
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "points/s")
			b.ReportMetric(float64(bytes)/float64(n), "B/point")
			b.ReportMetric(float64(merged)/float64(b.N), "bg-merged/op")
		})
	}
}
