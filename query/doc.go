// Package query selects series by label matchers and computes exact
// aggregations over every stored point of every selected series in a time
// range.
//
// A Query is built from a Source (an *engine.DB, reached through
// db.Query) with a metric name and matchers, narrowed by time selections,
// and run by one of its result methods:
//
//	q := db.Query("latency", query.Eq("service", "checkout")).Since(5 * time.Minute)
//	p99, err := q.Percentiles(99)
//	mean, err := q.Scalar(query.Mean)
//
// Semantics:
//   - all points of all matching series are aggregated together;
//   - NaN means "no value": Values, Timestamps and Points return NaN points
//     as stored, every aggregation skips them;
//   - an empty selection gives NaN for Min, Max, Mean and Last, 0 for Count
//     and Sum, NaN for each percentile, all-zero buckets, empty slices.
//
// Memory: results stream over storage chunk by chunk. Scalars and buckets
// hold O(1) state per query (plus one decoded chunk); exact percentiles hold
// every selected value (8 bytes each) because exactness needs them all;
// Values, Timestamps and Points hold their result.
//
// Concurrency: a Query is an immutable value; its methods may be called from
// many goroutines, and run concurrently with writes. A query sees every
// point acknowledged before it started.
package query
