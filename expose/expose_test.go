package expose_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/expose"
	"github.com/eventmetrics/eventmetrics/metrics"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// weird label values: quotes, backslashes, newlines, and all at once.
var weird = []string{`say "hi"`, `C:\path\`, "two\nlines", "\\\"\n\\n\"", "ünï©ødé"}

// fullRegistry returns a registry using every metric type, labels holding
// every character that needs escaping, constant labels, a prefix and a
// custom collector.
func fullRegistry(t testing.TB) *metrics.Registry {
	t.Helper()
	r, err := metrics.NewRegistry(&metrics.RegistryOptions{Prefix: "app", ConstLabels: metrics.Labels{"instance_name": "it's \"me\"\\"}})
	if err != nil {
		t.Fatal(err)
	}
	reqs := metrics.Must(r.CounterVec(metrics.Opts{Name: "http.requests", Help: "Requests served, by method and path.\nSecond line with \\ backslash.", Labels: []string{"method", "path"}}))
	depth := metrics.Must(r.GaugeVec(metrics.Opts{Name: "queue.depth", Help: "Items queued.", Labels: []string{"queue"}}))
	lat := metrics.Must(r.HistogramVec(metrics.HistogramOpts{Opts: metrics.Opts{Name: "http.request.duration.seconds", Help: "Latency.", Labels: []string{"path"}}, Buckets: []float64{0.1, 0.5, 1}}))
	size := metrics.Must(r.SummaryVec(metrics.SummaryOpts{Opts: metrics.Opts{Name: "response.size.bytes", Help: "Response sizes.", Labels: []string{"path"}}, Quantiles: []float64{0.5, 0.99}}))
	logins := metrics.Must(r.Meter(metrics.MeterOpts{Opts: metrics.Opts{Name: "logins", Help: "Logins in the last period."}}))
	logins.MarkN(3)
	up := metrics.Must(r.Gauge(metrics.Opts{Name: "up", Help: "Whether the service is up."}))
	up.Set(1)
	empty := metrics.Must(r.Summary(metrics.SummaryOpts{Opts: metrics.Opts{Name: "idle.seconds", Help: "Never observed: NaN quantiles."}}))
	_ = empty
	for i, w := range weird {
		c := metrics.Must(reqs.WithValues("GET", w))
		for range i + 1 {
			c.Inc()
		}
		metrics.Must(depth.WithValues(w)).Set(float64(10 * (i + 1)))
		h := metrics.Must(lat.WithValues(w))
		h.Observe(0.05)
		h.Observe(0.7)
		h.Observe(3)
		s := metrics.Must(size.WithValues(w))
		s.Observe(100)
		s.Observe(300)
	}
	err = r.RegisterCollector(metrics.CollectorFunc(func() ([]*dto.MetricFamily, error) {
		return []*dto.MetricFamily{{
			Name: proto.String("app_build_info"), Help: proto.String("Build information."), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{
				Label: []*dto.LabelPair{{Name: proto.String("version"), Value: proto.String("v1.2.3\n\"beta\"")}},
				Gauge: &dto.Gauge{Value: proto.Float64(1)},
			}},
		}}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func get(t testing.TB, h http.Handler, accept string, extra ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func decodeAll(t testing.TB, body []byte, format expfmt.Format) map[string]*dto.MetricFamily {
	t.Helper()
	dec := expfmt.NewDecoder(bytes.NewReader(body), format)
	out := map[string]*dto.MetricFamily{}
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("decode %s: %v\n%s", format, err, body)
		}
		out[mf.GetName()] = &mf
	}
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// checkRoundTrip checks that every weird label value and value survived.
func checkRoundTrip(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	reqs := fams["app_http_requests_total"]
	if reqs == nil {
		for n := range fams {
			t.Log(n)
		}
		t.Fatal("no app_http_requests_total")
	}
	if reqs.GetType() != dto.MetricType_COUNTER || !strings.Contains(reqs.GetHelp(), "Second line with \\ backslash.") {
		t.Fatalf("counter family %v", reqs)
	}
	found := 0
	for _, m := range reqs.GetMetric() {
		for i, w := range weird {
			if labelValue(m, "path") == w {
				found++
				if m.GetCounter().GetValue() != float64(i+1) || labelValue(m, "instance_name") != "it's \"me\"\\" {
					t.Fatalf("path %q: %v", w, m)
				}
			}
		}
	}
	if found != len(weird) {
		t.Fatalf("found %d of %d label values", found, len(weird))
	}
	h := fams["app_http_request_duration_seconds"]
	if h.GetType() != dto.MetricType_HISTOGRAM || h.GetMetric()[0].GetHistogram().GetSampleCount() != 3 {
		t.Fatalf("histogram %v", h)
	}
	s := fams["app_response_size_bytes"]
	if s.GetType() != dto.MetricType_SUMMARY || s.GetMetric()[0].GetSummary().GetQuantile()[0].GetValue() != 200 {
		t.Fatalf("summary %v", s)
	}
	if q := fams["app_idle_seconds"].GetMetric()[0].GetSummary().GetQuantile()[0].GetValue(); !math.IsNaN(q) {
		t.Fatalf("empty summary quantile %v", q)
	}
	if b := fams["app_build_info"]; labelValue(b.GetMetric()[0], "version") != "v1.2.3\n\"beta\"" {
		t.Fatalf("collector %v", b)
	}
}

func TestTextFormat(t *testing.T) {
	h := expose.Handler(fullRegistry(t), nil)
	for _, accept := range []string{"", "*/*", "text/plain", "text/plain;version=0.0.4", "application/json"} {
		resp := get(t, h, accept)
		body, _ := io.ReadAll(resp.Body)
		ct := resp.Header.Get("Content-Type")
		if resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			t.Fatalf("accept %q: %d %q", accept, resp.StatusCode, ct)
		}
		checkRoundTrip(t, decodeAll(t, body, expfmt.FmtText))
		if !strings.Contains(string(body), "# TYPE app_http_requests_total counter") || !strings.Contains(string(body), "# HELP app_queue_depth Items queued.") {
			t.Fatalf("HELP/TYPE missing:\n%s", body)
		}
	}
}

func TestOpenMetricsFormat(t *testing.T) {
	h := expose.Handler(fullRegistry(t), nil)
	// What Prometheus 2.42 sends.
	accept := "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	resp := get(t, h, accept)
	body, _ := io.ReadAll(resp.Body)
	ct := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/openmetrics-text; version=1.0.0") {
		t.Fatalf("content type %q", ct)
	}
	if !strings.HasSuffix(string(body), "# EOF\n") {
		t.Fatalf("no # EOF:\n%s", body)
	}
	checkRoundTrip(t, decodeAll(t, body, expfmt.FmtOpenMetrics_1_0_0))
	// Disabled OpenMetrics: text even when asked.
	resp = get(t, expose.Handler(fullRegistry(t), &expose.HandlerOptions{DisableOpenMetrics: true}), accept)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("content type %q", ct)
	}
}

func TestHandlerHTTP(t *testing.T) {
	r := fullRegistry(t)
	h := expose.Handler(r, nil)
	resp := get(t, h, "", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatal("not gzipped")
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, decodeAll(t, body, expfmt.FmtText))
	if resp := get(t, expose.Handler(r, &expose.HandlerOptions{DisableCompression: true}), "", "Accept-Encoding", "gzip"); resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzipped though disabled")
	}
	req := httptest.NewRequest(http.MethodPost, "/metrics", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
	req = httptest.NewRequest(http.MethodHead, "/metrics", nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Fatalf("HEAD: %d %d", rec.Code, rec.Body.Len())
	}
	// A failing collector: 500, or the rest with ContinueOnError.
	fail := true
	if err := r.RegisterCollector(metrics.CollectorFunc(func() ([]*dto.MetricFamily, error) {
		if fail {
			return nil, errors.New("sensor offline")
		}
		return nil, nil
	})); err == nil {
		t.Fatal("failing collector registered")
	}
	fail = false
	if err := r.RegisterCollector(metrics.CollectorFunc(func() ([]*dto.MetricFamily, error) {
		if fail {
			return nil, errors.New("sensor offline")
		}
		return nil, nil
	})); err != nil {
		t.Fatal(err)
	}
	fail = true
	resp = get(t, h, "")
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 500 || !strings.Contains(string(body), "sensor offline") {
		t.Fatalf("failing collector: %d %s", resp.StatusCode, body)
	}
	resp = get(t, expose.Handler(r, &expose.HandlerOptions{ContinueOnError: true}), "")
	if resp.StatusCode != 200 {
		t.Fatalf("ContinueOnError: %d", resp.StatusCode)
	}
}

func TestJSON(t *testing.T) {
	r, _ := metrics.NewRegistry(nil)
	metrics.Must(r.Counter(metrics.Opts{Name: "db.queries"})).Inc()
	g := metrics.Must(r.GaugeVec(metrics.Opts{Name: "db.pool.size", Labels: []string{"pool"}}))
	metrics.Must(g.WithValues("a\"b")).Set(3)
	metrics.Must(r.Gauge(metrics.Opts{Name: "db.pool"})).Set(math.Inf(1)) // a leaf that is also a prefix
	metrics.Must(r.Gauge(metrics.Opts{Name: "nan"})).Set(math.NaN())
	h := metrics.Must(r.Histogram(metrics.HistogramOpts{Opts: metrics.Opts{Name: "lat"}, Buckets: []float64{1}}))
	h.Observe(0.5)
	s := metrics.Must(r.Summary(metrics.SummaryOpts{Opts: metrics.Opts{Name: "sz"}, Quantiles: []float64{0.5}}))
	s.Observe(4)

	rec := httptest.NewRecorder()
	expose.JSONHandler(r, false).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	var flat map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &flat); err != nil {
		t.Fatalf("%v\n%s", err, rec.Body)
	}
	want := map[string]any{
		"db_queries_total":          1.0,
		`db_pool_size{pool="a\"b"}`: 3.0,
		"db_pool":                   "+Inf",
		"nan":                       "NaN",
		`lat_bucket{le="1"}`:        1.0,
		`lat_bucket{le="+Inf"}`:     1.0,
		"lat_sum":                   0.5,
		"lat_count":                 1.0,
		`sz{quantile="0.5"}`:        4.0,
		"sz_sum":                    4.0,
		"sz_count":                  1.0,
	}
	for k, v := range want {
		if flat[k] != v {
			t.Errorf("flat[%s] = %v, want %v", k, flat[k], v)
		}
	}
	if len(flat) != len(want) {
		t.Errorf("flat has %d keys, want %d: %v", len(flat), len(want), flat)
	}

	rec = httptest.NewRecorder()
	expose.JSONHandler(r, true).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	var tree map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &tree); err != nil {
		t.Fatalf("%v\n%s", err, rec.Body)
	}
	db := tree["db"].(map[string]any)
	if q := db["queries"].([]any)[0].(map[string]any); q["_"] != 1.0 {
		t.Fatalf("db.queries %v", q)
	}
	pool := db["pool"].(map[string]any)
	if leaf := pool["_"].([]any)[0].(map[string]any); leaf["_"] != "+Inf" {
		t.Fatalf("db.pool leaf %v", pool)
	}
	if sz := pool["size"].([]any)[0].(map[string]any); sz["pool"] != "a\"b" || sz["_"] != 3.0 {
		t.Fatalf("db.pool.size %v", sz)
	}
	lat := tree["lat"].([]any)[0].(map[string]any)["_"].(map[string]any)
	if lat["count"] != 1.0 || lat["buckets"].(map[string]any)["+Inf"] != 1.0 {
		t.Fatalf("lat %v", lat)
	}
	if q := tree["sz"].([]any)[0].(map[string]any)["_"].(map[string]any)["quantiles"].(map[string]any)["0.5"]; q != 4.0 {
		t.Fatalf("sz %v", q)
	}
}

// TestHandlerConcurrent scrapes while observations and new label sets
// arrive (run with -race).
func TestHandlerConcurrent(t *testing.T) {
	r := fullRegistry(t)
	v := metrics.Must(r.CounterVec(metrics.Opts{Name: "conc", Labels: []string{"k"}}))
	h := expose.Handler(r, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			metrics.Must(v.WithValues(string(rune('a' + i%26)))).Inc()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 20 && time.Now().Before(deadline); i++ {
		resp := get(t, h, "")
		body, _ := io.ReadAll(resp.Body)
		decodeAll(t, body, expfmt.FmtText)
	}
	<-done
}
