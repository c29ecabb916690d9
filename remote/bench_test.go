package remote_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/remote"
)

// BenchmarkSender measures the sender against a real VictoriaMetrics on
// this machine (skipped without it):
//
//   - throughput: 1M points of 100 series already in the log, sent raw;
//     points/s from the sender's start to the last acknowledgement;
//   - lag: a steady ingest of 50 000 points/s (500 series, one point each
//     every 10 ms, stamped with the wall clock) for 10 s; the delivery lag
//     (from a point's timestamp to the receiver's acknowledgement of its
//     sample) at p50 and p99, with the log in SyncInterval (1 s: the feed
//     sees what the log handed to the OS) and in SyncAlways mode.
//
// go test -run '^$' -bench BenchmarkSender -benchtime=1x ./remote/
func BenchmarkSender(b *testing.B) {
	b.Run("throughput", func(b *testing.B) {
		srv := startServer(b, "victoria-metrics")
		b.ReportAllocs()
		var total time.Duration
		var points int
		for b.Loop() {
			db, err := engine.Open(b.TempDir(), &engine.Options{SyncEvery: 50 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			cfg := remote.Config{URL: srv.writeURL(), Shards: 4, BatchSize: 5000, QueueCapacity: 200_000}
			// Create the sender's feed first, so that it holds what follows.
			f, err := db.Feed("remote")
			if err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
			const n, series = 1_000_000, 100
			var ss [series]*engine.Series
			for k := range ss {
				ss[k] = mustSeries(b, db, "bench", engine.Labels{"k": strconv.Itoa(k)})
			}
			base := time.Now().Add(-time.Hour).UnixNano()
			var bt engine.Batch
			for i := 0; i < n; i++ {
				bt.Add(ss[i%series], base+int64(i/series)*int64(time.Millisecond), float64(i))
				if bt.Len() == 10_000 {
					if err := db.Append(&bt); err != nil {
						b.Fatal(err)
					}
					bt.Reset()
				}
			}
			t0 := time.Now()
			s, err := remote.New(db, cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Start(); err != nil {
				b.Fatal(err)
			}
			waitFor(b, 120*time.Second, "1M samples", func() bool { return s.Stats().Samples >= n })
			total += time.Since(t0)
			points += n
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(points)/total.Seconds(), "points/s")
	})
	for _, mode := range []engine.SyncMode{engine.SyncInterval, engine.SyncAlways} {
		b.Run("lag/"+mode.String(), func(b *testing.B) {
			srv := startServer(b, "victoria-metrics")
			var p50, p99 time.Duration
			for b.Loop() {
				db, err := engine.Open(b.TempDir(), &engine.Options{Sync: mode})
				if err != nil {
					b.Fatal(err)
				}
				s, err := remote.New(db, remote.Config{URL: srv.writeURL()})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Start(); err != nil {
					b.Fatal(err)
				}
				const series = 500
				var ss [series]*engine.Series
				for k := range ss {
					ss[k] = mustSeries(b, db, "lag", engine.Labels{"k": strconv.Itoa(k)})
				}
				var bt engine.Batch
				tick := time.NewTicker(10 * time.Millisecond)
				end := time.Now().Add(10 * time.Second)
				sent := 0
				for now := range tick.C {
					if now.After(end) {
						break
					}
					bt.Reset()
					ts := time.Now().UnixNano()
					for _, x := range ss {
						bt.Add(x, ts, 1)
					}
					if err := db.Append(&bt); err != nil {
						b.Fatal(err)
					}
					sent += series
				}
				tick.Stop()
				waitFor(b, 30*time.Second, "every sample", func() bool {
					// (Two ticks can fall in one millisecond: collapsed.)
					if st := s.Stats(); st.Samples+st.Collapsed < int64(sent) {
						return false
					}
					return true
				})
				p50, p99 = s.LagQuantile(0.5), s.LagQuantile(0.99)
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(p50)/1e6, "p50-lag-ms")
			b.ReportMetric(float64(p99)/1e6, "p99-lag-ms")
		})
	}
}
