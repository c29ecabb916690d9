package remote

import (
	"math"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/eventmetrics/eventmetrics/engine"
)

// Stats are the Sender's counts since New.
type Stats struct {
	Points          int64 // points read from the feed
	Samples         int64 // samples acknowledged by the receiver
	Batches         int64 // requests acknowledged
	Retries         int64 // requests retried (5xx, 429, network errors)
	Rejected        int64 // samples dropped: the receiver answered 4xx (not 429)
	RejectedBatches int64
	Late            int64 // Aggregated: points after their window was emitted
	Collapsed       int64 // Raw: points replaced by a later one in the same millisecond
	NaN             int64 // Aggregated: NaN points (not aggregated, as in the query layer)
	Filtered        int64 // series not matching the selectors
	UnknownSeries   int64 // series whose labels could not be read
	Queued          int64 // samples in memory, not yet acknowledged
	ReadErrors      int64 // failed feed reads (retried)
	Commits         int64 // cursor commits
	CommitErrors    int64
	FeedSkipped     int64          // points the feed skipped (the sender fell MaxFeedLag behind)
	Committed       engine.FeedPos // the durable cursor
	Read            engine.FeedPos // where the sender reads the feed
	NewestSent      time.Time      // timestamp of the newest sample acknowledged
	LastStatus      int            // HTTP status of the last response
	LastError       error          // the last error seen (sending, reading, committing)
}

// Stats returns the Sender's counts.
func (s *Sender) Stats() Stats {
	st := Stats{
		Points:          s.stats.points.Load(),
		Samples:         s.stats.samples.Load(),
		Batches:         s.stats.batches.Load(),
		Retries:         s.stats.retries.Load(),
		Rejected:        s.stats.rejected.Load(),
		RejectedBatches: s.stats.rejectedBatches.Load(),
		Late:            s.stats.late.Load(),
		Collapsed:       s.stats.collapsed.Load(),
		NaN:             s.stats.nan.Load(),
		Filtered:        s.stats.filtered.Load(),
		UnknownSeries:   s.stats.unknownSeries.Load(),
		Queued:          s.stats.queued.Load(),
		ReadErrors:      s.stats.readErrors.Load(),
		Commits:         s.stats.commits.Load(),
		CommitErrors:    s.stats.commitErrors.Load(),
		Committed:       engine.FeedPos{Segment: uint64(s.stats.committedSeg.Load()), Offset: s.stats.committedOff.Load()},
		LastStatus:      int(s.stats.lastStatus.Load()),
	}
	if ms := s.stats.newestSentMs.Load(); ms != 0 {
		st.NewestSent = time.UnixMilli(ms)
	}
	s.mu.Lock()
	st.LastError = s.mu.lastErr
	feed := s.feed
	s.mu.Unlock()
	if feed != nil {
		fst := feed.Stats()
		st.FeedSkipped, st.Read = fst.Skipped, fst.Read
	}
	return st
}

// LagQuantile estimates the q-quantile (0..1) of the delivery lag: from a
// sample's timestamp (for Aggregated, its window's end) to its
// acknowledgement, over every sample acknowledged since New (within one
// bucket of a histogram growing by 1.25×; 0 when none).
func (s *Sender) LagQuantile(q float64) time.Duration { return s.lag.quantile(q) }

// lagHistogram counts delivery lags in exponential buckets.
type lagHistogram struct {
	mu     sync.Mutex
	bounds []float64 // seconds, ascending; then +Inf
	counts []uint64
	sum    float64
	n      uint64
}

func (h *lagHistogram) init() {
	for b := 0.001; b < 1000; b *= 1.25 {
		h.bounds = append(h.bounds, b)
	}
	h.counts = make([]uint64, len(h.bounds)+1)
}

func (h *lagHistogram) observe(ms int64) {
	sec := float64(max(ms, 0)) / 1e3
	i := 0
	for i < len(h.bounds) && sec > h.bounds[i] {
		i++
	}
	h.mu.Lock()
	h.counts[i]++
	h.sum += sec
	h.n++
	h.mu.Unlock()
}

func (h *lagHistogram) quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= max(rank, 1) {
			if i == len(h.bounds) {
				return time.Duration(h.bounds[i-1] * float64(time.Second))
			}
			return time.Duration(h.bounds[i] * float64(time.Second))
		}
	}
	return 0
}

// Collect implements metrics.Collector: register the Sender with
// (*metrics.Registry).RegisterCollector to see it on the engine's /metrics.
// Families are named eventmetrics_remote_*, labelled with the feed name.
func (s *Sender) Collect() ([]*dto.MetricFamily, error) {
	st := s.Stats()
	feed := []*dto.LabelPair{{Name: proto.String("feed"), Value: proto.String(s.cfg.Feed)}}
	with := func(k, v string) []*dto.LabelPair {
		return append(append([]*dto.LabelPair(nil), feed...), &dto.LabelPair{Name: proto.String(k), Value: proto.String(v)})
	}
	fam := func(name, help string, typ dto.MetricType, ms ...*dto.Metric) *dto.MetricFamily {
		return &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: typ.Enum(), Metric: ms}
	}
	counter := func(ls []*dto.LabelPair, v int64) *dto.Metric {
		return &dto.Metric{Label: ls, Counter: &dto.Counter{Value: proto.Float64(float64(v))}}
	}
	gauge := func(ls []*dto.LabelPair, v float64) *dto.Metric {
		return &dto.Metric{Label: ls, Gauge: &dto.Gauge{Value: proto.Float64(v)}}
	}
	lagSec := 0.0
	if !st.NewestSent.IsZero() {
		lagSec = max(time.Since(st.NewestSent).Seconds(), 0)
	}
	fams := []*dto.MetricFamily{
		fam("eventmetrics_remote_points_read_total", "Points read from the engine's log feed.", dto.MetricType_COUNTER, counter(feed, st.Points)),
		fam("eventmetrics_remote_samples_sent_total", "Samples acknowledged by the receiver.", dto.MetricType_COUNTER, counter(feed, st.Samples)),
		fam("eventmetrics_remote_batches_sent_total", "Requests acknowledged by the receiver.", dto.MetricType_COUNTER, counter(feed, st.Batches)),
		fam("eventmetrics_remote_retries_total", "Requests retried after a 5xx, a 429 or a network error.", dto.MetricType_COUNTER, counter(feed, st.Retries)),
		fam("eventmetrics_remote_dropped_total", "Samples or points not exported, by reason: rejected (4xx), late (after their window), collapsed (same millisecond), nan, feed_lag (skipped by the engine past MaxFeedLag), unknown_series.", dto.MetricType_COUNTER,
			counter(with("reason", "rejected"), st.Rejected),
			counter(with("reason", "late"), st.Late),
			counter(with("reason", "collapsed"), st.Collapsed),
			counter(with("reason", "nan"), st.NaN),
			counter(with("reason", "feed_lag"), st.FeedSkipped),
			counter(with("reason", "unknown_series"), st.UnknownSeries)),
		fam("eventmetrics_remote_series_filtered_total", "Series not matching the selectors.", dto.MetricType_COUNTER, counter(feed, st.Filtered)),
		fam("eventmetrics_remote_read_errors_total", "Failed reads of the log feed (retried).", dto.MetricType_COUNTER, counter(feed, st.ReadErrors)),
		fam("eventmetrics_remote_commits_total", "Durable cursor commits.", dto.MetricType_COUNTER, counter(feed, st.Commits)),
		fam("eventmetrics_remote_commit_errors_total", "Failed cursor commits.", dto.MetricType_COUNTER, counter(feed, st.CommitErrors)),
		fam("eventmetrics_remote_queue_length", "Samples in memory, not yet acknowledged.", dto.MetricType_GAUGE, gauge(feed, float64(st.Queued))),
		fam("eventmetrics_remote_queue_capacity", "Configured queue capacity in samples.", dto.MetricType_GAUGE, gauge(feed, float64(s.cfg.QueueCapacity))),
		fam("eventmetrics_remote_lag_seconds", "Now minus the timestamp of the newest acknowledged sample.", dto.MetricType_GAUGE, gauge(feed, lagSec)),
		fam("eventmetrics_remote_cursor_segment", "Log segment of the committed cursor.", dto.MetricType_GAUGE, gauge(feed, float64(st.Committed.Segment))),
		fam("eventmetrics_remote_cursor_offset_bytes", "Offset in its segment of the committed cursor.", dto.MetricType_GAUGE, gauge(feed, float64(st.Committed.Offset))),
	}
	s.lag.mu.Lock()
	h := &dto.Histogram{SampleCount: proto.Uint64(s.lag.n), SampleSum: proto.Float64(s.lag.sum)}
	var cum uint64
	for i, b := range s.lag.bounds {
		cum += s.lag.counts[i]
		if i%4 == 0 || i == len(s.lag.bounds)-1 { // expose every 4th bound: ×2.44
			h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(b), CumulativeCount: proto.Uint64(cum)})
		}
	}
	s.lag.mu.Unlock()
	fams = append(fams, fam("eventmetrics_remote_delivery_lag_seconds", "From a sample's timestamp to its acknowledgement.", dto.MetricType_HISTOGRAM, &dto.Metric{Label: feed, Histogram: h}))
	return fams, nil
}
