package server_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
	"github.com/eventmetrics/eventmetrics/server"
)

func TestIngestJSON(t *testing.T) {
	ts := startServer(t, "", server.Options{})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()
	req := map[string]any{"points": []json.RawMessage{
		pt("lat", 1.5, t0, map[string]string{"svc": "a"}),
		pt("lat", math.Inf(1), t0+1, map[string]string{"svc": "a"}),
		pt("lat", math.NaN(), t0+2, map[string]string{"svc": "b"}),
		json.RawMessage(`{"name":"lat","value":"-Inf","timestamp":"2026-01-02T03:04:05.000000009Z"}`),
		json.RawMessage(`{"name":"","value":1}`),                             // empty name
		json.RawMessage(`{"name":"lat","value":"abc"}`),                      // not a number
		json.RawMessage(`{"name":"lat","value":1,"ts":5}`),                   // unknown field
		json.RawMessage(`{"name":"lat"}`),                                    // no value
		json.RawMessage(`{"name":"lat","labels":{"a":"\u0000x"},"value":1}`), // NUL in a value
		json.RawMessage(`{"name":"reqs","value":2,"op":"increment"}`),
		json.RawMessage(`{"name":"reqs","value":3,"op":"increment"}`),
		json.RawMessage(`{"name":"reqs","value":-1,"op":"increment"}`),              // negative
		json.RawMessage(`{"name":"reqs","value":1,"op":"increment","timestamp":1}`), // stamped
		json.RawMessage(`{"name":"reqs","value":1,"op":"bump"}`),
	}}
	code, resp := ts.ingest(req, nil)
	if code != 200 || resp.Accepted != 6 || resp.Rejected != 8 {
		t.Fatalf("got %d %+v", code, resp)
	}
	wantBad := map[int]string{4: "name", 5: "not a number", 6: "unknown field", 7: "no value", 8: "NUL", 11: ">= 0", 12: "no timestamp", 13: "unknown op"}
	for _, e := range resp.Errors {
		if w, ok := wantBad[e.Index]; !ok || !strings.Contains(e.Error, w) {
			t.Errorf("point %d: error %q, want one containing %q", e.Index, e.Error, w)
		}
		delete(wantBad, e.Index)
	}
	if len(wantBad) != 0 {
		t.Errorf("no error reported for points %v", wantBad)
	}
	r := ts.query(server.QueryRequest{Name: "lat", Op: "points"})
	if len(r.Timestamps) != 4 {
		t.Fatalf("points: %+v", r)
	}
	if r.Timestamps[0] != t0 || r.Values[0] != 1.5 || !math.IsInf(float64(r.Values[1]), 1) || !math.IsNaN(float64(r.Values[2])) || r.Timestamps[3] != t0+3 || !math.IsInf(float64(r.Values[3]), -1) {
		t.Errorf("points: %+v", r)
	}
	// Increments keep a running total, also across a restart of the server.
	last := ts.query(server.QueryRequest{Name: "reqs", Op: "aggregate", Aggs: []string{"last", "count"}})
	if len(last.Values) != 2 || last.Values[0] != 5 || last.Values[1] != 2 {
		t.Fatalf("counter: %+v, want last 5 of 2 points", last)
	}
	dir := ts.dir
	ts.stop()
	ts = startServer(t, dir, server.Options{})
	ts.ingest(map[string]any{"points": []json.RawMessage{json.RawMessage(`{"name":"reqs","value":10,"op":"increment"}`)}}, nil)
	last = ts.query(server.QueryRequest{Name: "reqs", Op: "aggregate", Aggs: []string{"last", "count"}})
	if len(last.Values) != 2 || last.Values[0] != 15 || last.Values[1] != 3 {
		t.Errorf("counter after restart: %+v, want 15", last.Values)
	}

	// Every point invalid: 422.
	code, resp = ts.ingest(map[string]any{"points": []json.RawMessage{json.RawMessage(`{"name":"","value":1}`)}}, nil)
	if code != 422 || resp.Rejected != 1 {
		t.Errorf("all invalid: %d %+v", code, resp)
	}
}

func TestBatchIDExactlyOnce(t *testing.T) {
	ts := startServer(t, "", server.Options{})
	batch := func(id string, n int) map[string]any {
		pts := make([]json.RawMessage, n)
		for i := range pts {
			pts[i] = pt("m", float64(i), int64(i+1), nil)
		}
		return map[string]any{"batch_id": id, "points": pts}
	}
	if code, resp := ts.ingest(batch("a-1", 10), nil); code != 200 || resp.Accepted != 10 || resp.Duplicate {
		t.Fatalf("first: %d %+v", code, resp)
	}
	if code, resp := ts.ingest(batch("a-1", 10), nil); code != 200 || !resp.Duplicate {
		t.Fatalf("retry: %d %+v", code, resp)
	}
	// The header works too, and must agree with the body.
	if code, resp := ts.ingest(map[string]any{"points": batch("", 3)["points"]}, map[string]string{server.BatchIDHeader: "a-1"}); code != 200 || !resp.Duplicate {
		t.Fatalf("retry by header: %d %+v", code, resp)
	}
	if code, _ := ts.ingest(batch("a-2", 1), map[string]string{server.BatchIDHeader: "a-3"}); code != 400 {
		t.Fatalf("disagreeing ids: %d", code)
	}
	// Concurrent retries of one batch: written once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { ts.ingest(batch("a-4", 100), nil) })
	}
	wg.Wait()
	if n := ts.count("m"); n != 110 {
		t.Fatalf("count %v, want 110", n)
	}
	if st := ts.srv.Stats(); st.BatchesDeduplicated != 9 || st.DedupKeys != 2 {
		t.Errorf("stats: %+v", st)
	}
	// The ids survive a restart: they are stored with the points.
	dir := ts.dir
	ts.stop()
	ts = startServer(t, dir, server.Options{})
	if code, resp := ts.ingest(batch("a-4", 100), nil); code != 200 || !resp.Duplicate {
		t.Fatalf("retry after restart: %d %+v", code, resp)
	}
	if n := ts.count("m"); n != 110 {
		t.Fatalf("count after restart %v, want 110", n)
	}
	// The batch-id series is the system's: hidden from names.
	code, body := ts.do("GET", "/em/v1/names", nil, nil)
	if code != 200 || strings.Contains(string(body), "__eventmetrics") || !strings.Contains(string(body), `"m"`) {
		t.Errorf("names: %d %s", code, body)
	}
	// Past the window, ids are forgotten.
	dir = ts.dir
	ts.stop()
	ts = startServer(t, dir, server.Options{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	if st := ts.srv.Stats(); st.DedupKeys != 0 {
		t.Errorf("keys older than the window were loaded: %+v", st)
	}
}

func remoteWriteBody(t testing.TB, series, samples int, t0 int64) []byte {
	var req prompb.WriteRequest
	for s := range series {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "rw_metric"}, {Name: "instance", Value: fmt.Sprint("i", s)}}}
		for i := range samples {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t0 + int64(i)*1000, Value: float64(s*samples + i)})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

var rwHeaders = map[string]string{"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf", "X-Prometheus-Remote-Write-Version": "0.1.0"}

func TestRemoteWrite(t *testing.T) {
	ts := startServer(t, "", server.Options{})
	t0 := time.Now().UnixMilli()
	body := remoteWriteBody(t, 3, 4, t0)
	if code, b := ts.do("POST", "/api/v1/write", body, rwHeaders); code != 204 {
		t.Fatalf("remote write: %d %s", code, b)
	}
	// Prometheus retries a failed send with the same body: not counted twice.
	if code, b := ts.do("POST", "/api/v1/write", body, rwHeaders); code != 204 {
		t.Fatalf("retry: %d %s", code, b)
	}
	if n := ts.count("rw_metric"); n != 12 {
		t.Fatalf("count %v, want 12", n)
	}
	r := ts.query(server.QueryRequest{Name: "rw_metric", Matchers: []server.MatcherSpec{{Label: "instance", Op: "=", Value: "i1"}}, Op: "points"})
	if len(r.Timestamps) != 4 || r.Timestamps[0] != t0*1e6 || r.Values[3] != 7 {
		t.Errorf("points: %+v", r)
	}
	// Stale markers are not events; histograms and invalid labels are refused,
	// the valid samples kept.
	req := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "rw2"}}, Samples: []prompb.Sample{{Timestamp: t0, Value: 1}, {Timestamp: t0 + 1, Value: math.Float64frombits(value.StaleNaN)}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "rw2"}, {Name: "x", Value: "\x00"}}, Samples: []prompb.Sample{{Timestamp: t0, Value: 1}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "rw3"}}, Histograms: []prompb.Histogram{{Timestamp: t0}}},
	}}
	b, _ := req.Marshal()
	code, msg := ts.do("POST", "/api/v1/write", snappy.Encode(nil, b), rwHeaders)
	if code != 400 || !strings.Contains(string(msg), "2 samples rejected (1 accepted)") {
		t.Errorf("partial: %d %s", code, msg)
	}
	if n := ts.count("rw2"); n != 1 {
		t.Errorf("rw2 count %v, want 1", n)
	}
	code, msg = ts.do("POST", "/api/v1/write", body, map[string]string{"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"})
	if code != 415 {
		t.Errorf("remote write 2.0: %d %s", code, msg)
	}
}

func TestImportText(t *testing.T) {
	ts := startServer(t, "", server.Options{})
	prom := `# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",path="/a"} 10 1700000000000
http_requests_total{code="500",path="/a"} 2 1700000000000
temperature 21.5
`
	code, b := ts.do("POST", "/api/v1/import/prometheus", []byte(prom), map[string]string{"Content-Type": "text/plain; version=0.0.4"})
	if code != 200 || !strings.Contains(string(b), `"accepted":3`) {
		t.Fatalf("import: %d %s", code, b)
	}
	r := ts.query(server.QueryRequest{Name: "http_requests_total", Op: "points", Matchers: []server.MatcherSpec{{Label: "code", Op: "=", Value: "500"}}})
	if len(r.Timestamps) != 1 || r.Timestamps[0] != 1700000000000*1e6 || r.Values[0] != 2 {
		t.Errorf("points: %+v", r)
	}
	if n := ts.count("temperature"); n != 1 {
		t.Errorf("sample without timestamp: count %v", n)
	}
	om := "# TYPE jobs counter\njobs_total{q=\"x\"} 7 1700000001.5\n# EOF\n"
	code, b = ts.do("POST", "/em/v1/import", []byte(om), map[string]string{"Content-Type": "application/openmetrics-text; version=1.0.0"})
	if code != 200 {
		t.Fatalf("openmetrics: %d %s", code, b)
	}
	r = ts.query(server.QueryRequest{Name: "jobs_total", Op: "points"})
	if len(r.Timestamps) != 1 || r.Timestamps[0] != 1700000001500*1e6 || r.Values[0] != 7 {
		t.Errorf("openmetrics points: %+v", r)
	}
	// A syntax error names the problem; nothing is written.
	code, b = ts.do("POST", "/em/v1/import", []byte("ok 1\nbad{ 2\n"), nil)
	if code != 400 || !strings.Contains(string(b), "parse") {
		t.Errorf("bad text: %d %s", code, b)
	}
	if n := ts.count("ok"); n != 0 {
		t.Errorf("a rejected import wrote %v points", n)
	}
	// With a batch id, an import is idempotent too.
	h := map[string]string{server.BatchIDHeader: "imp-1"}
	ts.do("POST", "/em/v1/import", []byte("once 1 1700000000000\n"), h)
	ts.do("POST", "/em/v1/import", []byte("once 1 1700000000000\n"), h)
	if n := ts.count("once"); n != 1 {
		t.Errorf("import with batch id twice: count %v", n)
	}
}

// TestQueryAPI compares every operation of the native API with the query
// layer run directly.
func TestQueryAPI(t *testing.T) {
	ts := startServer(t, "", server.Options{})
	t0 := int64(1_700_000_000) * 1e9
	var pts []json.RawMessage
	for i := range 600 {
		svc := []string{"a", "b", "c"}[i%3]
		pts = append(pts, pt("lat", float64(i%97)/10, t0+int64(i)*1e9, map[string]string{"svc": svc, "path": fmt.Sprint("/p", i%2)}))
	}
	if code, resp := ts.ingest(map[string]any{"points": pts}, nil); code != 200 || resp.Accepted != 600 {
		t.Fatalf("ingest: %d %+v", code, resp)
	}
	from, to := server.Time(t0+60e9), server.Time(t0+500e9)
	ms := []server.MatcherSpec{{Label: "svc", Op: "=~", Value: "a|b"}}
	base := ts.db.Query("lat", query.Re("svc", "a|b")).FromNanos(int64(from)).ToNanos(int64(to))

	eq := func(what string, got []server.Float, want []float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
		for i := range want {
			if math.Float64bits(float64(got[i])) != math.Float64bits(want[i]) {
				t.Errorf("%s[%d]: got %v, want %v", what, i, got[i], want[i])
			}
		}
	}
	r := ts.query(server.QueryRequest{Name: "lat", Matchers: ms, From: &from, To: &to, Op: "aggregate", Aggs: []string{"count", "sum", "min", "max", "mean", "last"}})
	want, _ := base.Scalars(query.Count, query.Sum, query.Min, query.Max, query.Mean, query.Last)
	eq("aggregate", r.Values, want)

	r = ts.query(server.QueryRequest{Name: "lat", Matchers: ms, From: &from, To: &to, Op: "percentiles", Percentiles: []float64{50, 99}})
	want, _ = base.Percentiles(50, 99)
	eq("percentiles", r.Values, want)

	r = ts.query(server.QueryRequest{Name: "lat", Matchers: ms, From: &from, To: &to, Op: "buckets", Bounds: []server.Float{1, 5}, Cumulative: true})
	cs, _ := base.Buckets([]float64{1, 5}, true)
	eq("buckets", r.Values, []float64{float64(cs[0]), float64(cs[1]), float64(cs[2])})

	r = ts.query(server.QueryRequest{Name: "lat", Matchers: ms, From: &from, To: &to, Op: "approx_percentiles", Percentiles: []float64{50}, RelErr: 0.01})
	ap, _ := base.ApproxPercentiles(0.01, 50)
	eq("approx", r.Values, ap.Values)
	if r.Count != ap.Count || r.RelErr != ap.RelativeError {
		t.Errorf("approx: %+v vs %+v", r, ap)
	}

	r = ts.query(server.QueryRequest{Name: "lat", Matchers: ms, From: &from, To: &to, Op: "points"})
	wts, wvs, _ := base.Points()
	eq("points", r.Values, wvs)
	if fmt.Sprint(r.Timestamps) != fmt.Sprint(wts) {
		t.Errorf("timestamps differ")
	}

	// Grouped and windowed.
	r = ts.query(server.QueryRequest{Name: "lat", Matchers: ms, From: &from, To: &to, GroupBy: []string{"svc"}, Step: server.Duration(time.Minute), Op: "aggregate", Aggs: []string{"count", "max"}})
	rows, _ := base.GroupBy("svc").Step(time.Minute).AggregateBy(query.Count, query.Max)
	if len(r.Rows) != len(rows) || len(rows) != 2 {
		t.Fatalf("rows: %d vs %d", len(r.Rows), len(rows))
	}
	for i, row := range rows {
		if r.Rows[i].Labels["svc"] != row.Label("svc") || fmt.Sprint(r.Rows[i].Times) != fmt.Sprint(row.Times) {
			t.Errorf("row %d: %+v vs %+v", i, r.Rows[i], row)
		}
		for j := range row.Values {
			eq(fmt.Sprint("row ", i, " window ", j), r.Rows[i].Values[j], row.Values[j])
		}
	}
	r = ts.query(server.QueryRequest{Name: "lat", BySeries: true, Op: "percentiles", Percentiles: []float64{90}})
	if len(r.Rows) != 6 || r.Rows[0].Labels["__name__"] != "lat" {
		t.Errorf("by series: %+v", r.Rows)
	}
	r = ts.query(server.QueryRequest{Name: "lat", GroupBy: []string{"path"}, Op: "buckets", Bounds: []server.Float{5}})
	if len(r.Rows) != 2 || len(r.Rows[0].Values[0]) != 2 {
		t.Errorf("buckets by: %+v", r.Rows)
	}
	since := ts.query(server.QueryRequest{Name: "lat", Since: server.Duration(time.Hour), Op: "aggregate", Aggs: []string{"count"}})
	if since.Values[0] != 0 {
		t.Errorf("since 1h over 2023 data: %v", since.Values)
	}

	// Listings.
	code, b := ts.do("GET", "/em/v1/series?name=lat&match=svc%3Da&match=path!%3D/p1", nil, nil)
	if code != 200 || strings.Count(string(b), "__name__") != 1 {
		t.Errorf("series: %d %s", code, b)
	}
	code, b = ts.do("GET", "/em/v1/labels?name=lat", nil, nil)
	if code != 200 || !strings.Contains(string(b), `"path"`) {
		t.Errorf("labels: %d %s", code, b)
	}
	code, b = ts.do("GET", "/em/v1/label_values?label=svc", nil, nil)
	if code != 200 || !strings.Contains(string(b), `"Value":"c","Series":2`) {
		t.Errorf("label_values: %d %s", code, b)
	}
}

// TestStoreErrors: the series budget rejects the points past it, alone; a
// closed store answers 503, which writers retry.
func TestStoreErrors(t *testing.T) {
	db, err := engine.Open(t.TempDir(), &engine.Options{MaxSeries: 3}) // one for the batch ids
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(db, server.Options{Logger: quietLogger()})
	post := func(body string) (int, string) {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("POST", "/em/v1/ingest", strings.NewReader(body)))
		return rec.Code, rec.Body.String()
	}
	code, body := post(`{"batch_id":"x-1","points":[{"name":"a","value":1},{"name":"b","value":1},{"name":"c","value":1}]}`)
	if code != 200 || !strings.Contains(body, `"accepted":2,"rejected":1`) || !strings.Contains(body, "series limit") {
		t.Errorf("past the series budget: %d %s", code, body)
	}
	db.Close()
	code, body = post(`{"points":[{"name":"a","value":1}]}`)
	if code != 503 || !strings.Contains(body, "closed") {
		t.Errorf("closed store: %d %s", code, body)
	}
	code, body = post(`{"points":[{"name":"new","value":1}]}`)
	if code != 503 {
		t.Errorf("closed store, new series: %d %s", code, body)
	}
}
