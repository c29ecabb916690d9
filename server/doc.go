// Package server serves an engine.DB over HTTP: the process behind
// `eventmetrics serve`, which any number of local processes write to (with
// package client, through the same engine.Writer interface as an embedded
// DB) and query.
//
//	db, err := engine.Open("./data", nil)
//	...
//	srv := server.New(db, server.Options{})        // loads the batch ids it acknowledged
//	srv.Handle("GET /metrics", metricsHandler)      // extra handlers: promapi, a dashboard, /metrics
//	go srv.ListenAndServe(server.DefaultAddr)       // 127.0.0.1:9470
//	...
//	srv.Shutdown(ctx)                               // stop accepting, finish requests, sync
//	db.Close()
//
// Endpoints (DESIGN.md section 14 has the wire formats):
//
//	POST /em/v1/ingest               JSON batches: per-point errors, valid points kept, batch ids
//	POST /api/v1/write               Prometheus remote write 1.0 (protobuf, snappy)
//	POST /em/v1/import               Prometheus text or OpenMetrics, with timestamps
//	POST /api/v1/import/prometheus   the same
//	POST /em/v1/query                the native query API (QueryRequest: the whole query layer)
//	GET  /em/v1/series, /em/v1/names, /em/v1/labels, /em/v1/label_values
//	GET  /em/v1/stats, /em/v1/health
//
// Durability: a write is answered 200 (204 for remote write) only once its
// points are durable (the server syncs the store before answering), and a
// write that carried a batch id (client.Writer always sends one; a
// remote-write body is its own id) is stored at most once however often it
// is retried within Options.DedupWindow, across crashes and restarts of
// the server: the id is recorded in the same log record as the points.
//
// Limits: every request body is bounded as sent and after decompression
// (checked before decompressing where the format states the size); writes
// are bounded in points and distinct series; header and body read
// timeouts cut slow clients; at most MaxConcurrentWrites writes are decoded
// at once. Auth (a bearer token) and CORS are off by default, and the
// default address is the loopback interface. No endpoint takes a file
// name: nothing outside the store is reachable.
//
// Concurrency: a Server is safe for concurrent use; requests run in
// parallel. Writes go to the engine concurrently (the engine serializes
// its log); writes carrying increments serialize among themselves (the
// server keeps the counters' running totals). A retry of a batch that is
// being written waits for the first attempt and is then answered as a
// duplicate. Handle may be called at any time. The server does not
// own the DB: close it after Shutdown.
//
// Metrics: Stats returns the server's counters (requests, errors, points
// accepted and rejected, batches deduplicated, bytes); mount an exposition
// of them at /metrics with Handle.
package server
