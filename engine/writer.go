package engine

import "time"

// Writer is the write side of a store, as an application uses it: *DB
// implements it in-process, and package client implements it over HTTP
// against `eventmetrics serve`, so that moving an application from an
// embedded store to a shared server changes one constructor call.
//
// The methods have exactly the meaning of DB's: Observe stamps the point
// with the writer's clock now, ObserveAt with ts, and Increment stores the
// running total stamped now (for a client: by the server, which keeps the
// totals). Sync returns once every write that returned nil before it is
// durable (for a client: acknowledged by the server, which acknowledges
// only durable points), and reports a failure of any of them. Close
// flushes and releases the writer; every call after it returns an error.
type Writer interface {
	Observe(name string, value float64, labels Labels) error
	ObserveAt(ts time.Time, name string, value float64, labels Labels) error
	Increment(name string, delta float64, labels Labels) error
	Sync() error
	Close() error
}

var _ Writer = (*DB)(nil)
