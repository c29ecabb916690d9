// Package client writes to an eventmetrics server (`eventmetrics serve`,
// package server) through engine.Writer, the interface *engine.DB
// implements: moving an application from an embedded store to a shared
// server changes one constructor call.
//
//	// embedded:
//	w, err := engine.Open("./data", nil)
//	// shared server:
//	w, err := client.New("http://127.0.0.1:9470", nil)
//
//	w.Observe("latency", 0.12, engine.Labels{"service": "checkout"})
//	w.Increment("requests_total", 1, engine.Labels{"code": "200"})
//	err = w.Sync()   // everything written before is acknowledged: durable on the server
//	w.Close()
//
// Writes are queued in memory and sent in the background in batches (of
// MaxBatchPoints, or every FlushEvery). Memory is bounded: past
// MaxPendingPoints unacknowledged points, writes block until the server
// catches up. A batch that fails transiently (network error, 408, 429,
// 5xx) is retried with exponential backoff for RetryFor; every batch
// carries an id (a random 128-bit prefix per Writer and a sequence number)
// that the server remembers, so a retried batch is never stored twice,
// even when the server crashed after storing it and before answering.
// Errors (points the server refused, batches dropped after RetryFor) are
// returned by the next Sync or Close, and passed to Options.OnError.
//
// Differences from *engine.DB: Observe stamps points with the client's
// clock, Increment with the server's (the server keeps running totals);
// validation that needs the store (label limits, the series budget) is
// reported at Sync, not by the write call.
//
// Concurrency: a Writer is safe for concurrent use. One goroutine sends
// the batches in order, one cuts them on the FlushEvery timer; Close stops
// both.
package client
