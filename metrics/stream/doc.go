// Package stream groups observations into tumbling windows (by event time
// or by count), then by tag set, aggregates each group with one or several
// named functions and emits the aggregates to sinks — metrix's MStream and
// MCoordinator.
//
//	s, err := stream.New(stream.Options{
//		Name:   "latency",
//		Aggs:   []stream.Agg{stream.Sum, stream.Count, stream.P(99)},
//		Window: 10 * time.Second,
//		Sinks:  []stream.Sink{stream.EngineSink(db), stream.WriterSink(os.Stderr)},
//	})
//	s.Send(0.012, map[string]string{"route": "/api"})
//	// each closed window emits latency.sum, latency.count and latency.p99
//	// per tag set, stamped with the window's start
//
// Time windows are aligned to multiples of Window since the Unix epoch, as
// the query layer's Step is when a query has no lower bound, and every
// aggregate skips NaN values as the query layer does: a stream's aggregates
// equal the query layer's over the same observations. A window closes when
// an observation arrives at least Lateness past its end, on Flush, or on
// FlushBefore (which a Coordinator calls on a timer); an observation for a
// window already closed is refused with ErrLate and counted.
//
// Concurrency: every method of Stream and Coordinator is safe for
// concurrent use. Sinks are called with the stream's lock held, one batch
// at a time and in window order: a slow sink slows its stream's senders.
package stream
