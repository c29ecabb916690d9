// Package promapi serves the Prometheus HTTP API over an engine DB, so that
// Prometheus tools (promtool, Grafana's Prometheus data source, any
// Prometheus API client) can query eventmetrics as if it were Prometheus.
// PromQL is evaluated by Prometheus' own engine
// (github.com/prometheus/prometheus/promql) over Queryable, an adapter from
// the engine's storage to storage.Queryable.
//
//	db, err := engine.Open(dir, nil)
//	...
//	http.Handle("/", promapi.New(db, promapi.Options{}))
//	// promtool query instant http://127.0.0.1:9090 'sum by (code) (rate(requests_total[5m]))'
//
// Endpoints (GET, and POST with a form body, as Prometheus):
// /api/v1/query, /api/v1/query_range, /api/v1/series, /api/v1/labels,
// /api/v1/label/<name>/values (GET only) and /api/v1/status/buildinfo.
// Answers use Prometheus' JSON envelope
// ({"status":"success","data":...}); errors carry "errorType" and "error"
// with Prometheus' status codes: 400 bad_data, 422 execution, 499
// canceled, 503 timeout or unavailable (a closed DB), 500 internal (such
// as corrupt data).
//
// From points to samples. An eventmetrics series (metric name plus labels)
// is one Prometheus series with __name__ set to the metric name. Points
// carry nanosecond event times and may share a timestamp (two events);
// Prometheus samples have millisecond timestamps, strictly increasing per
// series. A Select therefore orders a series' points by timestamp (equal
// timestamps in write order), converts each to the millisecond holding it
// (floor, also before 1970), and keeps the last point of each millisecond.
// Keeping the last is what a counter needs (Increment stores running
// totals, so the last point of a millisecond is the total at its end; a sum
// would double count) and is what Prometheus does with a gauge scraped
// twice. Events that share a millisecond are thus seen by PromQL as one
// sample: count or sum them with the native query layer (package query),
// not with count_over_time.
//
// Values pass through bit-exactly: NaN is a value to PromQL (as in
// Prometheus), unlike in package query where aggregations skip it; ±Inf are
// values. A point stored with Prometheus' staleness-marker bit pattern
// (value.StaleNaN) is a staleness marker to PromQL. Otherwise there are no
// staleness markers: an instant selector sees a series' last sample up to
// the lookback delta (Options.LookbackDelta, 5m by default) after it.
//
// Memory: the engine's Select hands out a series' chunks only during a
// callback, so a Select reads the points of its range into memory (16 bytes
// a sample, bounded by Options.MaxSelectPoints) and the PromQL engine works
// on those; the engine itself is bounded by Options.MaxSamples.
//
// Concurrency: an API and a Queryable may be used from many goroutines;
// each query reads the DB afresh and sees every point acknowledged before
// its selectors ran. At most Options.MaxConcurrentQueries queries evaluate
// at once; the others wait, at most until their timeout. A Querier and the
// SeriesSets it returns belong to one goroutine. Neither starts goroutines
// of its own.
package promapi
