// Package metrics is the instrumentation API of eventmetrics: counters,
// gauges, histograms, summaries, meters (calls per time unit) and timers,
// with labels, registries,
// hierarchical names with runtime levels, and an optional engine that
// receives every observation at its event time.
//
//	reg := metrics.Default
//	requests := metrics.Must(reg.CounterVec(metrics.Opts{
//		Name:     "http.requests",
//		Help:     "HTTP requests served.",
//		Labels:   []string{"method", "code"},
//		Defaults: metrics.Labels{"code": "200"},
//	}))
//	latency := metrics.Must(reg.Histogram(metrics.HistogramOpts{
//		Opts: metrics.Opts{Name: "http.latency.seconds", Help: "Request latency."},
//	}))
//
//	get, err := requests.Bind(metrics.Labels{"method": "GET"}) // partial: keep it
//	ok200, err := get.With(nil)                                // complete (code defaults to 200)
//	ok200.Inc()                                                // hot path: no map work
//	defer latency.Time()()
//
//	reg.SetEngine(db)                          // from now on every observation is stored too
//	defer reg.Flush()                          // before db.Close
//	reg.SetLevel("http", metrics.Disabled)     // http.* stop recording
//
// Names are dotted ("http.server.requests"); each prefix is a node of a
// tree whose level (Disabled, Runtime, Debug, or Inherit from the parent)
// can be switched at runtime. A metric records when its node's effective
// level is at least Runtime (Debug for metrics declared with Opts.Debug);
// otherwise an observation costs one atomic load. The exposition name is
// the registry prefix and the parts joined by underscores, plus "_total"
// for counters.
//
// Labels: a Vec is a metric declared with label names; Bind fixes some
// values and returns a new Vec (immutable, cacheable), With or WithValues
// completes the set (defaults fill the rest) and returns the handle of one
// label set. A missing, unknown or doubly bound label is an error wrapping
// ErrLabels. Each metric holds at most MaxLabelSets label sets; past it a
// new one is refused with ErrLabelBudget and counted in
// eventmetrics_label_sets_overflow_total. With RegistryOptions.TTL, label
// sets idle that long leave memory and exposition; a handle still held
// comes back on its next observation.
//
// Engine: with an engine attached (RegistryOptions.Engine or SetEngine),
// each label set resolves its engine series once; observations are written
// through that handle with their event time, buffered and appended in
// batches (at most FlushEvery later; Flush appends now, WriteThrough
// writes each at once). Write errors cannot be returned by Inc or Observe:
// they are counted (EngineErrors, eventmetrics_engine_write_errors_total).
// Exposition (Gather) reads the in-memory state only.
//
// The short API (Incr, Set, Record) registers metrics on first use in the
// Default registry, as statvent did.
//
// Concurrency: every method of Registry, Vec, Counter, Gauge, Histogram,
// Summary and Meter is safe for concurrent use. Counter, Gauge and
// Histogram updates are lock-free in memory; Summary and Meter take a lock
// per label set. With an engine attached, every stored update goes through
// the registry's writer under one mutex, so that stored values (counter
// totals, gauge values) follow their timestamps. A Timer value belongs to
// one goroutine.
package metrics
