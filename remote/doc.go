// Package remote streams what an engine records to a Prometheus
// remote-write 1.0 receiver (protobuf + snappy): Grafana Mimir, Thanos
// Receive, Cortex, VictoriaMetrics, or Prometheus itself with
// --web.enable-remote-write-receiver.
//
//	s, err := remote.New(db, remote.Config{
//		URL:     "http://mimir:8080/api/v1/push",
//		Headers: map[string]string{"X-Scope-OrgID": "team-a"},
//		Shape:   remote.Aggregated,
//		Aggregation: remote.Aggregation{
//			Window:    10 * time.Second,
//			Grace:     5 * time.Second,
//			Buckets:   []float64{0.005, 0.01, 0.05, 0.1, 0.5, 1},
//			Quantiles: []float64{0.5, 0.99},
//		},
//	})
//	if err != nil { ... }
//	if err := s.Start(); err != nil { ... }
//	defer s.Close() // before db.Close
//	registry.RegisterCollector(s) // its state on /metrics
//
// The sender reads the engine's own log through a durable feed
// (engine.DB.Feed): every acknowledged write, in log order. Its cursor is
// committed (about once a second) only up to the first position whose
// samples are not all acknowledged or dropped yet, so a restart or a
// receiver outage resumes where delivery stopped: at least once, and a
// sample is sent twice only when the process dies between a receiver's
// acknowledgement and the next commit; the resent samples are identical,
// which receivers treat as no-ops. DESIGN.md §17 has the contract.
//
// Pipeline: one reader goroutine (feed → shape → tickets) feeds Shards
// shard goroutines through bounded channels (Config.QueueCapacity samples
// in all: when full, the reader waits and the feed holds the log); a
// series always goes to the same shard, which sends one batch at a time,
// so its samples arrive in order. A batch is retried with exponential
// backoff on 5xx, 429 and network errors (Retry-After honoured), forever
// until Close; any other 4xx drops it, counted. A committer goroutine
// makes the cursor durable.
//
// Shapes: Raw sends each point as one sample (the last point of a series
// in one millisecond); Aggregated sends, per series and window, _count,
// _sum, cumulative _bucket{le} and exact {quantile} samples, stamped at
// the window's end.
//
// Concurrency: New, Start, Close, Stats, LagQuantile and Collect are safe
// for concurrent use. Close the Sender before its DB. One Sender per feed
// name.
package remote
