package server

import (
	"fmt"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/eventmetrics/eventmetrics/dashboard"
	"github.com/eventmetrics/eventmetrics/expose"
	"github.com/eventmetrics/eventmetrics/metrics"
	"github.com/eventmetrics/eventmetrics/promapi"
)

// MountAll adds to s everything `eventmetrics serve` answers besides the
// server's own API: the Prometheus HTTP API and remote read (package
// promapi) under /api/v1/, the dashboard at /, and the server's and
// store's own metrics at /metrics (Prometheus text or OpenMetrics, package
// expose), with those of extra collectors (a remote-write sender's, say).
// Call it once, before serving.
func (s *Server) MountAll(promOpts promapi.Options, extra ...metrics.Collector) error {
	api, err := promapi.NewAPI(s.db, promOpts)
	if err != nil {
		return fmt.Errorf("server: prometheus api: %w", err)
	}
	for _, p := range []string{"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/api/v1/label/", "/api/v1/status/buildinfo", "POST /api/v1/read"} {
		s.Handle(p, api)
	}
	s.Handle("/", dashboard.New(s.db))
	reg, err := metrics.NewRegistry(nil)
	if err != nil {
		return err
	}
	for _, c := range append([]metrics.Collector{metrics.CollectorFunc(s.collect)}, extra...) {
		if err := reg.RegisterCollector(c); err != nil {
			return fmt.Errorf("server: metrics: %w", err)
		}
	}
	s.Handle("GET /metrics", expose.Handler(reg, nil))
	return nil
}

// collect turns Stats, and the store's own figures, into metric families.
func (s *Server) collect() ([]*dto.MetricFamily, error) {
	st := s.Stats()
	ct := s.db.CompactionTotals()
	counter := func(name, help string, v float64) *dto.MetricFamily {
		return &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(v)}}}}
	}
	gauge := func(name, help string, v float64) *dto.MetricFamily {
		return &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(v)}}}}
	}
	return []*dto.MetricFamily{
		counter("eventmetrics_server_requests_total", "HTTP requests answered.", float64(st.Requests)),
		counter("eventmetrics_server_client_errors_total", "HTTP answers with a 4xx status.", float64(st.ClientErrors)),
		counter("eventmetrics_server_server_errors_total", "HTTP answers with a 5xx status.", float64(st.ServerErrors)),
		counter("eventmetrics_server_points_accepted_total", "Points written and acknowledged.", float64(st.PointsAccepted)),
		counter("eventmetrics_server_points_rejected_total", "Points refused as invalid (reported per point).", float64(st.PointsRejected)),
		counter("eventmetrics_server_batches_accepted_total", "Write requests acknowledged.", float64(st.BatchesAccepted)),
		counter("eventmetrics_server_batches_deduplicated_total", "Retried batches recognized by their id and not written again.", float64(st.BatchesDeduplicated)),
		counter("eventmetrics_server_received_bytes_total", "Request body bytes as sent.", float64(st.BytesReceived)),
		counter("eventmetrics_server_decoded_bytes_total", "Request body bytes after decompression.", float64(st.BytesDecoded)),
		gauge("eventmetrics_server_requests_in_flight", "Requests being served.", float64(st.InFlight)),
		gauge("eventmetrics_server_batch_ids", "Batch ids remembered for deduplication.", float64(st.DedupKeys)),
		gauge("eventmetrics_store_series", "Series in the store.", float64(s.db.SeriesCount())),
		counter("eventmetrics_store_compacted_chunks_total", "Chunks merged by compactions since the store opened.", float64(ct.ChunksMerged)),
		counter("eventmetrics_store_cold_chunks_total", "Chunks packed into cold blocks since the store opened.", float64(ct.ChunksBlocked)),
		counter("eventmetrics_store_expired_chunks_total", "Chunks removed by retention since the store opened.", float64(ct.ChunksExpired)),
	}, nil
}

var _ http.Handler = (*Server)(nil)
