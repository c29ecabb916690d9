// Package dashboard serves a small web dashboard over an engine.DB: a
// metric and label browser, a time-range picker, line charts of the stored
// values and of windowed aggregates (count, mean, min, max), p50/p90/p99
// bands over time, a histogram with bucket bounds chosen in the page, and a
// cardinality view.
//
// It owns the page, its assets (embedded with go:embed; the chart library
// is uPlot, see assets/README.md for how the files were obtained) and the
// small JSON API the page calls, under /dashboard/api/:
//
//	metrics       metric names with their series counts
//	labels        label names of a selection, each with its values and series counts
//	cardinality   labels by number of distinct values, with their top values
//	points        the points of the selected series in a range, downsampled for display
//	aggregates    count, mean, min, max per window (query.Step + AggregateBy)
//	percentiles   p50, p90, p99 per window (PercentilesBy; rollups on long ranges)
//	histogram     counts per bucket for bounds given by the page (BucketsBy)
//
// Every request is a GET with its parameters in the query string, validated:
// a bad one is answered with a 4xx status and {"error": "...", "status": N}.
// The limits (points and series per chart, windows, bounds, matchers) are
// the package's constants. Nothing reads a request body and nothing writes
// to the store.
//
// Use:
//
//	db, err := engine.Open(dir, nil)
//	...
//	http.Handle("/", dashboard.New(db))
//
// The page uses relative URLs, so it may also be mounted under a prefix:
// mux.Handle("/ui/", http.StripPrefix("/ui", dashboard.New(db))).
//
// Concurrency: the handler is safe for concurrent use. API requests that
// query the store run at most GOMAXPROCS at a time; the others wait (until
// their request is canceled). The DB must stay open while the handler
// serves; after Close the API answers 503.
package dashboard
