// Package expose serves a registry's metrics: the Prometheus text format
// 0.0.4 and OpenMetrics 1.0 (chosen by content negotiation, written by
// github.com/prometheus/common/expfmt, which escapes every label value),
// and JSON: a flat map of sample names to values (as statvent served) or a
// tree by dotted name (as satella's to_json).
//
//	http.Handle("/metrics", expose.Handler(metrics.Default, nil))
//	http.Handle("/metrics.json", expose.JSONHandler(metrics.Default, false))
//	http.Handle("/metrics/tree.json", expose.JSONHandler(metrics.Default, true))
//
// Concurrency: handlers serve concurrent requests; each one gathers the
// registry once (its in-memory state: exposition never reads storage).
package expose
