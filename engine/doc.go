// Package engine is the embedded event-time metrics store: an append-only,
// log-structured engine that records every observation at its event time
// and keeps all of it.
//
//	db, err := engine.Open(dir, nil)
//	defer db.Close()
//	err = db.Observe("latency", 0.012, engine.Labels{"service": "checkout"})
//	p99, err := db.Query("latency", query.Eq("service", "checkout")).Percentiles(99)
//
// Writes go to a write-ahead log (package wal) and to an in-memory head that
// holds each series' open chunk; sealed chunks (package encode) and the
// series index (package index) are written to a pebble LSM by checkpoints,
// after which the log segments they cover are deleted. DESIGN.md describes
// the key layout, the formats and the durability contract.
//
// Concurrency: every method of DB, Series and Query may be called from many
// goroutines at once. A Batch is owned by one goroutine at a time.
package engine
