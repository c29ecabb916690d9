package promapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/promapi"
)

// readFixture stores two series of a counter-like metric, a point a second
// for 20 minutes ending at end, and returns the handler over it.
func readFixture(t *testing.T, end time.Time) (http.Handler, *engine.DB) {
	t.Helper()
	db := openDB(t, t.TempDir())
	t.Cleanup(func() { db.Close() })
	for _, job := range []string{"a", "b"} {
		s, err := db.Series("rr_total", engine.Labels{"job": job})
		if err != nil {
			t.Fatal(err)
		}
		var b engine.Batch
		for i := 0; i < 1200; i++ {
			v := float64(i)
			if job == "b" {
				v *= 2
			}
			b.Add(s, end.Add(time.Duration(i-1199)*time.Second).UnixNano(), v)
		}
		if err := db.Append(&b); err != nil {
			t.Fatal(err)
		}
	}
	api, err := promapi.NewAPI(db, promapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return api, db
}

func postRead(t *testing.T, h http.Handler, body []byte) (*httptest.ResponseRecorder, *prompb.ReadResponse) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/read", bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		return rec, nil
	}
	raw, err := snappy.Decode(nil, rec.Body.Bytes())
	if err != nil {
		t.Fatalf("response not snappy: %v", err)
	}
	var resp prompb.ReadResponse
	if err := resp.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	return rec, &resp
}

func encodeRead(t *testing.T, req *prompb.ReadRequest) []byte {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

// TestRemoteRead: the protocol answer holds exactly the stored samples of
// the matched series in the range; bad requests get 4xx.
func TestRemoteRead(t *testing.T) {
	end := time.Unix(1_800_000_000, 0)
	h, _ := readFixture(t, end)
	endMs := end.UnixMilli()
	req := &prompb.ReadRequest{Queries: []*prompb.Query{{
		StartTimestampMs: endMs - 99_999, EndTimestampMs: endMs,
		Matchers: []*prompb.LabelMatcher{
			{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "rr_total"},
			{Type: prompb.LabelMatcher_RE, Name: "job", Value: "a|b"},
		},
	}, {
		StartTimestampMs: endMs - 9_999, EndTimestampMs: endMs,
		Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_NEQ, Name: "job", Value: "a"}, {Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "rr_total"}},
	}}, AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS, prompb.ReadRequest_SAMPLES}}
	rec, resp := postRead(t, h, encodeRead(t, req))
	if resp == nil {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/x-protobuf" {
		t.Fatalf("content type %q", ct)
	}
	if len(resp.Results) != 2 || len(resp.Results[0].Timeseries) != 2 || len(resp.Results[1].Timeseries) != 1 {
		t.Fatalf("results %v", resp.Results)
	}
	for qi, want := range []int{100, 10} {
		for _, ts := range resp.Results[qi].Timeseries {
			job := ""
			for _, l := range ts.Labels {
				if l.Name == "job" {
					job = l.Value
				}
			}
			if len(ts.Samples) != want {
				t.Fatalf("query %d job %s: %d samples, want %d", qi, job, len(ts.Samples), want)
			}
			for k, s := range ts.Samples {
				i := 1199 - (want - 1 - k) // the last want points
				v := float64(i)
				if job == "b" {
					v *= 2
				}
				if s.Timestamp != endMs-int64(want-1-k)*1000 || s.Value != v {
					t.Fatalf("query %d job %s sample %d: %+v, want %d %v", qi, job, k, s, endMs-int64(want-1-k)*1000, v)
				}
			}
		}
	}
	bad := map[string][]byte{
		"not snappy":    []byte("hello, this is not snappy"),
		"not protobuf":  snappy.Encode(nil, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}),
		"no matchers":   encodeRead(t, &prompb.ReadRequest{Queries: []*prompb.Query{{StartTimestampMs: 0, EndTimestampMs: 1}}}),
		"start > end":   encodeRead(t, &prompb.ReadRequest{Queries: []*prompb.Query{{StartTimestampMs: 5, EndTimestampMs: 1, Matchers: req.Queries[0].Matchers}}}),
		"bad regexp":    encodeRead(t, &prompb.ReadRequest{Queries: []*prompb.Query{{EndTimestampMs: 1, Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_RE, Name: "job", Value: "("}}}}}),
		"streamed only": encodeRead(t, &prompb.ReadRequest{Queries: req.Queries, AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS}}),
		"oversized":     bytes.Repeat([]byte{'x'}, 9<<20),
	}
	for name, body := range bad {
		rec, _ := postRead(t, h, body)
		if rec.Code < 400 || rec.Code >= 500 {
			t.Errorf("%s: status %d: %s", name, rec.Code, rec.Body)
		}
	}
	// The handler keeps serving.
	if _, resp := postRead(t, h, encodeRead(t, req)); resp == nil {
		t.Fatal("the handler stopped serving after bad requests")
	}
}

// TestPrometheusRemoteRead: a real Prometheus server with eventmetrics as
// its remote_read source (and no data of its own) answers PromQL over
// eventmetrics' data.
func TestPrometheusRemoteRead(t *testing.T) {
	testutil.Binary(t, "prometheus", "prometheus")
	end := time.Now().Truncate(time.Second)
	h, _ := readFixture(t, end)
	srv := httptest.NewServer(h) // 127.0.0.1
	defer srv.Close()
	prom := testutil.StartPrometheus(t, fmt.Sprintf("remote_read:\n  - url: %s/api/v1/read\n    read_recent: true\n", srv.URL))
	byJob := func(q string) (map[string]string, error) {
		res, err := prom.Query(q, end)
		out := map[string]string{}
		for _, r := range res {
			out[r.Metric["job"]] = r.Value
		}
		return out, err
	}
	var got map[string]string
	prom.Wait("an answer through remote read", 30*time.Second, func() (bool, error) {
		var err error
		got, err = byJob(`rr_total`)
		return err == nil && len(got) == 2, err
	})
	if got["a"] != "1199" || got["b"] != "2398" {
		t.Fatalf("rr_total at the end: %v, want a=1199 b=2398", got)
	}
	// A range function over remote data: 5 minutes of a +1/s (a) and
	// +2/s (b) counter.
	got, err := byJob(`increase(rr_total[5m])`)
	if err != nil {
		t.Fatal(err)
	}
	for job, want := range map[string]float64{"a": 300, "b": 600} {
		v, err := strconv.ParseFloat(got[job], 64)
		if err != nil || v < want*0.99 || v > want*1.01 {
			t.Fatalf("increase for %s: %s, want about %v (extrapolated)", job, got[job], want)
		}
	}
}
