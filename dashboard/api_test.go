package dashboard_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/dashboard"
	"github.com/eventmetrics/eventmetrics/query"
)

type metricsResp struct {
	Metrics []struct {
		Name   string `json:"name"`
		Series uint64 `json:"series"`
	} `json:"metrics"`
	Series uint64 `json:"series"`
}

type labelsResp struct {
	Metric string `json:"metric"`
	Series uint64 `json:"series"`
	Labels []struct {
		Name     string `json:"name"`
		Distinct int    `json:"distinct"`
		Values   []struct {
			Value  string `json:"value"`
			Series uint64 `json:"series"`
		} `json:"values"`
		Truncated bool `json:"truncated"`
	} `json:"labels"`
}

type pointsResp struct {
	SeriesTotal uint64 `json:"series_total"`
	SeriesShown int    `json:"series_shown"`
	Total       int    `json:"total"`
	Shown       int    `json:"shown"`
	Downsampled bool   `json:"downsampled"`
	Series      []struct {
		Labels map[string]string `json:"labels"`
		Total  int               `json:"total"`
		Shown  int               `json:"shown"`
		T      []float64         `json:"t"`
		V      []*float64        `json:"v"`
	} `json:"series"`
}

type windowed struct {
	From    float64 `json:"from"`
	To      float64 `json:"to"`
	StepMS  float64 `json:"step_ms"`
	Rollups bool    `json:"rollups"`
}

type aggregatesResp struct {
	windowed
	Rows []struct {
		Labels map[string]string `json:"labels"`
		T      []float64         `json:"t"`
		Count  []float64         `json:"count"`
		Mean   []float64         `json:"mean"`
		Min    []float64         `json:"min"`
		Max    []float64         `json:"max"`
	} `json:"rows"`
}

type percentilesResp struct {
	windowed
	P           []float64 `json:"p"`
	Approximate bool      `json:"approximate"`
	Rows        []struct {
		T      []float64   `json:"t"`
		Values [][]float64 `json:"values"`
		RelErr []float64   `json:"rel_err"`
	} `json:"rows"`
}

type histogramResp struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Total  uint64    `json:"total"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Auto   bool      `json:"auto"`
}

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func TestMetrics(t *testing.T) {
	srv := serve(t, openFixture(t))
	var r metricsResp
	if code, body := get(t, srv, "/dashboard/api/metrics", nil, &r); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	got := map[string]uint64{}
	var names []string
	for _, m := range r.Metrics {
		got[m.Name] = m.Series
		names = append(names, m.Name)
	}
	want := map[string]uint64{errorsTotal: 4, latency: 3, queue: 1}
	if fmt.Sprint(got) != fmt.Sprint(want) || !slices.IsSorted(names) || r.Series != 8 {
		t.Fatalf("metrics %v (series %d), want %v sorted (series 8)", r.Metrics, r.Series, want)
	}
}

func TestLabels(t *testing.T) {
	srv := serve(t, openFixture(t))
	var r labelsResp
	if code, body := get(t, srv, "/dashboard/api/labels", vals("metric", latency), &r); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if r.Series != 3 || len(r.Labels) != 2 || r.Labels[0].Name != "method" || r.Labels[1].Name != "route" {
		t.Fatalf("labels %+v", r)
	}
	m := r.Labels[0]
	if m.Distinct != 2 || m.Values[0].Value != "GET" || m.Values[0].Series != 2 || m.Values[1].Value != "POST" || m.Values[1].Series != 1 {
		t.Fatalf("method values %+v", m)
	}
	// Matchers narrow the selection.
	if code, body := get(t, srv, "/dashboard/api/labels", vals("metric", latency, "match", "method=GET", "match", "route=~/h.*"), &r); code != 200 || r.Series != 1 {
		t.Fatalf("status %d, series %d: %s", code, r.Series, body)
	}
	// No metric: every series.
	if code, body := get(t, srv, "/dashboard/api/labels", nil, &r); code != 200 || r.Series != 8 || len(r.Labels) != 4 {
		t.Fatalf("status %d: %s", code, body)
	}
}

func TestCardinality(t *testing.T) {
	srv := serve(t, openFixture(t))
	var r labelsResp
	if code, body := get(t, srv, "/dashboard/api/cardinality", vals("top", "1"), &r); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var order []string
	for _, l := range r.Labels {
		order = append(order, fmt.Sprintf("%s:%d", l.Name, l.Distinct))
	}
	// By descending distinct values, then by name.
	if got, want := strings.Join(order, " "), "service:4 method:2 route:2 zone:2"; got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
	for _, l := range r.Labels {
		if len(l.Values) != 1 || !l.Truncated {
			t.Fatalf("label %s: top=1 gave %+v", l.Name, l)
		}
	}
	if m := r.Labels[1]; m.Values[0].Value != "GET" || m.Values[0].Series != 2 {
		t.Fatalf("top value of method: %+v, want GET with 2 series", m.Values)
	}
}

func TestPoints(t *testing.T) {
	db := openFixture(t)
	srv := serve(t, db)
	var r pointsResp
	if code, body := get(t, srv, "/dashboard/api/points", vals("metric", latency, "last", "1h"), &r); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if r.SeriesTotal != 3 || r.SeriesShown != 3 || r.Total != 3*latencyPoints || r.Shown != r.Total || r.Downsampled {
		t.Fatalf("last 1h: %+v", r)
	}
	for _, s := range r.Series {
		ms := []query.Matcher{query.Eq("route", s.Labels["route"]), query.Eq("method", s.Labels["method"])}
		ts, vs, err := db.Query(latency, ms...).Since(time.Hour).Points()
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != s.Total || len(s.T) != len(ts) {
			t.Fatalf("series %v: %d points, query layer %d", s.Labels, s.Total, len(ts))
		}
		for i := range ts {
			if s.T[i] != float64(ts[i])/1e6 || s.V[i] == nil || *s.V[i] != vs[i] {
				t.Fatalf("series %v point %d: (%v, %v), want (%v, %v)", s.Labels, i, s.T[i], s.V[i], float64(ts[i])/1e6, vs[i])
			}
		}
	}
	// A longer range reaches the old point.
	if code, body := get(t, srv, "/dashboard/api/points", vals("metric", latency, "last", "2d"), &r); code != 200 || r.Total != 3*latencyPoints+1 {
		t.Fatalf("last 2d: status %d, total %d: %s", code, r.Total, body)
	}
	// Downsampling keeps the exact count and says so.
	if code, body := get(t, srv, "/dashboard/api/points", vals("metric", latency, "max", "10", "series", "2"), &r); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if !r.Downsampled || r.SeriesShown != 2 || r.SeriesTotal != 3 || r.Total != 2*latencyPoints || r.Shown > 20 {
		t.Fatalf("max=10 series=2: %+v", r)
	}
	for _, s := range r.Series {
		if s.Shown > 10 || s.Shown != len(s.T) || !slices.IsSorted(s.T) {
			t.Fatalf("downsampled series %v: %d shown, times %v", s.Labels, s.Shown, s.T)
		}
	}
	// NaN is sent as null.
	if code, body := get(t, srv, "/dashboard/api/points", vals("metric", queue), &r); code != 200 || r.Total != queuePoints || r.Series[0].V[30] != nil {
		t.Fatalf("queue: status %d: %s", code, body)
	}
	// A custom range in Unix ms and in RFC 3339.
	from := fixtureNow.Add(-30 * time.Minute)
	for _, f := range []string{strconv.FormatInt(from.UnixMilli(), 10), from.Format(time.RFC3339)} {
		if code, body := get(t, srv, "/dashboard/api/points", vals("metric", queue, "from", f, "to", strconv.FormatInt(fixtureNow.UnixMilli(), 10)), &r); code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		n, _ := db.Query(queue).Between(from, fixtureNow).Timestamps()
		if r.Total != len(n) {
			t.Fatalf("from=%s: %d points, want %d", f, r.Total, len(n))
		}
	}
	// A metric with no series: empty, not an error.
	if code, body := get(t, srv, "/dashboard/api/points", vals("metric", "nope"), &r); code != 200 || r.Total != 0 || len(r.Series) != 0 {
		t.Fatalf("unknown metric: status %d: %s", code, body)
	}
}

func TestAggregates(t *testing.T) {
	db := openFixture(t)
	srv := serve(t, db)
	var r aggregatesResp
	if code, body := get(t, srv, "/dashboard/api/aggregates", vals("metric", latency, "step", "10m"), &r); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if r.StepMS != 600e3 || len(r.Rows) != 1 || r.Rollups {
		t.Fatalf("%+v", r)
	}
	from := int64(r.From * 1e6)
	if from%int64(10*time.Minute) != 0 {
		t.Fatalf("from %d is not aligned to the step", from)
	}
	want, err := db.Query(latency).FromNanos(from).ToNanos(int64(r.To*1e6)).Step(10*time.Minute).AggregateBy(query.Count, query.Mean, query.Min, query.Max)
	if err != nil {
		t.Fatal(err)
	}
	row := r.Rows[0]
	var total float64
	for i, ts := range want[0].Times {
		w := want[0].Values[i]
		if row.T[i] != float64(ts)/1e6 || row.Count[i] != w[0] || row.Mean[i] != w[1] || row.Min[i] != w[2] || row.Max[i] != w[3] {
			t.Fatalf("window %d: got t=%v %v %v %v %v, want %v %v", i, row.T[i], row.Count[i], row.Mean[i], row.Min[i], row.Max[i], ts, w)
		}
		total += row.Count[i]
	}
	if total != 3*latencyPoints || len(row.T) != len(want[0].Times) {
		t.Fatalf("%v points in %d windows", total, len(row.T))
	}
	// Grouped, with an automatic step.
	if code, body := get(t, srv, "/dashboard/api/aggregates", vals("metric", latency, "by", "route"), &r); code != 200 || len(r.Rows) != 2 || r.Rows[0].Labels["route"] != "/api" {
		t.Fatalf("by route: status %d: %s", code, body)
	}
	if r.StepMS != 30e3 { // 1h over 120 windows
		t.Fatalf("auto step %v ms, want 30000", r.StepMS)
	}
	// A 7-day range reads rollups (none exist here, so the answer is exact).
	if code, body := get(t, srv, "/dashboard/api/aggregates", vals("metric", latency, "last", "7d"), &r); code != 200 || !r.Rollups {
		t.Fatalf("7d: status %d: %s", code, body)
	}
}

func TestPercentiles(t *testing.T) {
	db := openFixture(t)
	srv := serve(t, db)
	var r percentilesResp
	if code, body := get(t, srv, "/dashboard/api/percentiles", vals("metric", latency, "step", "15m"), &r); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if fmt.Sprint(r.P) != "[50 90 99]" || r.Approximate || len(r.Rows) != 1 {
		t.Fatalf("%+v", r)
	}
	want, err := db.Query(latency).FromNanos(int64(r.From*1e6)).ToNanos(int64(r.To*1e6)).Step(15*time.Minute).PercentilesBy(50, 90, 99)
	if err != nil {
		t.Fatal(err)
	}
	row := r.Rows[0]
	if len(row.T) != len(want[0].Times) || row.RelErr != nil {
		t.Fatalf("%d windows, want %d (rel_err %v)", len(row.T), len(want[0].Times), row.RelErr)
	}
	for i := range want[0].Times {
		for j := range 3 {
			if row.Values[j][i] != want[0].Values[i][j] {
				t.Fatalf("window %d p%v: %v, want %v", i, r.P[j], row.Values[j][i], want[0].Values[i][j])
			}
		}
	}
	if code, body := get(t, srv, "/dashboard/api/percentiles", vals("metric", latency, "p", "25,75"), &r); code != 200 || fmt.Sprint(r.P) != "[25 75]" || len(r.Rows[0].Values) != 2 {
		t.Fatalf("p=25,75: status %d: %s", code, body)
	}
}

func TestHistogram(t *testing.T) {
	db := openFixture(t)
	srv := serve(t, db)
	var r histogramResp
	bounds := []float64{0.1, 0.2, 0.3, 0.5}
	if code, body := get(t, srv, "/dashboard/api/histogram", vals("metric", latency, "bounds", "0.1, 0.2,0.3,0.5"), &r); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	want, err := db.Query(latency).Since(time.Hour).Buckets(bounds, false)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(r.Counts) != fmt.Sprint(want) || fmt.Sprint(r.Bounds) != fmt.Sprint(bounds) || r.Auto || r.Total != 3*latencyPoints {
		t.Fatalf("got %+v, want counts %v", r, want)
	}
	// Automatic bounds cover [min, max]; every value is counted.
	if code, body := get(t, srv, "/dashboard/api/histogram", vals("metric", latency, "buckets", "8"), &r); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var sum uint64
	for _, c := range r.Counts {
		sum += c
	}
	if !r.Auto || sum != r.Total || r.Counts[len(r.Counts)-1] != 0 || r.Bounds[len(r.Bounds)-1] < r.Max || len(r.Bounds) > 12 || !slices.IsSorted(r.Bounds) {
		t.Fatalf("auto: %+v", r)
	}
	// NaN values are not counted.
	if code, body := get(t, srv, "/dashboard/api/histogram", vals("metric", queue), &r); code != 200 || r.Total != queuePoints-1 {
		t.Fatalf("queue: status %d: %s", code, body)
	}
}

func TestBadRequests(t *testing.T) {
	srv := serve(t, openFixture(t))
	long := strings.Repeat("x", dashboard.MaxQueryBytes)
	many := url.Values{"metric": {latency}}
	for i := 0; i <= dashboard.MaxMatchers; i++ {
		many.Add("match", fmt.Sprintf("l%d=v", i))
	}
	manyBounds := make([]string, dashboard.MaxBounds+1)
	for i := range manyBounds {
		manyBounds[i] = strconv.Itoa(i)
	}
	for _, tc := range []struct {
		name, path, rawQuery string
		status               int
		msg                  string
	}{
		{"no metric", "points", "", 400, `"metric" is required`},
		{"metric twice", "points", "metric=a&metric=b", 400, "given 2 times"},
		{"metric not UTF-8", "points", "metric=%ff", 400, "UTF-8"},
		{"metric with control char", "aggregates", "metric=a%01", 400, "control character"},
		{"bad matcher", "points", "metric=a&match=novalue", 400, "want name=value"},
		{"matcher without name", "points", "metric=a&match=%3Dv", 400, "want name=value"},
		{"bad regexp", "labels", "metric=a&match=" + url.QueryEscape("a=~("), 400, "missing closing )"},
		{"too many matchers", "points", many.Encode(), 400, "over the limit"},
		{"bad last", "points", "metric=a&last=soon", 400, "positive duration"},
		{"negative last", "points", "metric=a&last=-1h", 400, "positive duration"},
		{"last too far", "points", "metric=a&last=100000000d", 400, "positive duration"},
		{"last and from", "points", "metric=a&last=1h&from=1", 400, "not both"},
		{"to without from", "points", "metric=a&to=1", 400, `"to" needs "from"`},
		{"empty range", "points", "metric=a&from=10&to=5", 400, "empty range"},
		{"bad from", "histogram", "metric=a&from=yesterday", 400, "RFC 3339"},
		{"huge from", "histogram", "metric=a&from=1e300", 400, "outside the years"},
		{"NaN from", "histogram", "metric=a&from=NaN", 400, "outside the years"},
		{"max too small", "points", "metric=a&max=1", 400, "max="},
		{"max too large", "points", "metric=a&max=100001", 400, "max="},
		{"series zero", "points", "metric=a&series=0", 400, "series="},
		{"too many windows", "aggregates", "metric=a&last=30d&step=1s", 400, "windows over the range"},
		{"bad step", "percentiles", "metric=a&step=0", 400, "positive duration"},
		{"windows zero", "percentiles", "metric=a&windows=0", 400, "windows="},
		{"bad rollups", "aggregates", "metric=a&rollups=maybe", 400, "auto, on or off"},
		{"bad by", "aggregates", "metric=a&by=%ff", 400, "UTF-8"},
		{"bad percentile", "percentiles", "metric=a&p=101", 400, "outside [0, 100]"},
		{"bad percentile list", "percentiles", "metric=a&p=x", 400, "ascending percentiles"},
		{"descending bounds", "histogram", "metric=a&bounds=3,2", 400, "strictly ascending"},
		{"equal bounds", "histogram", "metric=a&bounds=1,1", 400, "strictly ascending"},
		{"NaN bound", "histogram", "metric=a&bounds=NaN", 400, "not a finite number"},
		{"Inf bound", "histogram", "metric=a&bounds=1,Inf", 400, "not a finite number"},
		{"empty bound", "histogram", "metric=a&bounds=1,,2", 400, "not a finite number"},
		{"too many bounds", "histogram", "metric=a&bounds=" + strings.Join(manyBounds, ","), 400, "over the limit"},
		{"buckets zero", "histogram", "metric=a&buckets=0", 400, "buckets="},
		{"top zero", "cardinality", "top=0", 400, "top="},
		{"bad escape", "metrics", "a=%zz", 400, "bad query string"},
		{"query string too long", "metrics", "a=" + long, 414, "over the limit"},
		{"unknown endpoint", "nothing", "", 404, "unknown dashboard API endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/dashboard/api/" + tc.path + "?" + tc.rawQuery)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error  string `json:"error"`
				Status int    `json:"status"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("status %d, body not JSON: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tc.status || body.Status != tc.status || !strings.Contains(body.Error, tc.msg) {
				t.Fatalf("status %d %q, want %d with %q", resp.StatusCode, body.Error, tc.status, tc.msg)
			}
		})
	}
	t.Run("POST", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/dashboard/api/metrics", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("status %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
}

// TestRandomRequests sends random query strings to every endpoint: each is
// answered with 200 or a 4xx, never a 5xx, and the handler does not panic.
func TestRandomRequests(t *testing.T) {
	seed := uint64(20250314)
	if s := os.Getenv("DASHBOARD_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set DASHBOARD_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	srv := serve(t, openFixture(t))
	endpoints := []string{"metrics", "labels", "cardinality", "points", "aggregates", "percentiles", "histogram"}
	keys := []string{"metric", "match", "last", "from", "to", "step", "windows", "max", "series", "bounds", "buckets", "p", "by", "rollups", "top"}
	pool := []string{"", latency, queue, "1h", "7d", "-1", "0", "1", "10", "1e9", "1e400", "NaN", "-Inf", "auto", "on", "method=GET",
		"route=~/a.*", "x!~(", "1,2,3", "3,2", "1ms", "1ns", "30d", "2025-03-14T11:00:00Z", "\xff", "a\x00", strings.Repeat("9", 40)}
	for range 300 {
		q := url.Values{}
		for range rng.IntN(5) {
			q.Add(keys[rng.IntN(len(keys))], pool[rng.IntN(len(pool))])
		}
		ep := endpoints[rng.IntN(len(endpoints))]
		code, body := get(t, srv, "/dashboard/api/"+ep, q, nil)
		if code >= 500 || (code != 200 && !json.Valid(body)) {
			t.Fatalf("%s?%s: status %d: %s", ep, q.Encode(), code, body)
		}
	}
}

func TestPageAndAssets(t *testing.T) {
	srv := serve(t, openFixture(t))
	for _, tc := range []struct {
		path, typ string
		status    int
	}{
		{"/", "text/html; charset=utf-8", 200},
		{"/dashboard/assets/app.js", "text/javascript; charset=utf-8", 200},
		{"/dashboard/assets/app.css", "text/css; charset=utf-8", 200},
		{"/dashboard/assets/uPlot.iife.min.js", "text/javascript; charset=utf-8", 200},
		{"/dashboard/assets/uPlot.min.css", "text/css; charset=utf-8", 200},
		{"/dashboard/assets/LICENSE.uPlot", "", 200},
		{"/dashboard/assets/README.md", "", 404},
		{"/dashboard/assets/update.sh", "", 404},
		{"/favicon.ico", "", 404},
		{"/dashboard/assets/", "", 404},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.typ != "" && resp.Header.Get("Content-Type") != tc.typ) {
			t.Errorf("%s: status %d, type %q; want %d %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, tc.typ)
		}
		if tc.path == "/" && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("the page has no same-origin content security policy")
		}
	}
}

// TestClosedStore: after Close the API answers 503, not 500 or a panic.
func TestClosedStore(t *testing.T) {
	db := openFixture(t)
	srv := serve(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{"metrics", "labels", "points?metric=a", "histogram?metric=a"} {
		resp, err := http.Get(srv.URL + "/dashboard/api/" + ep)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s after Close: status %d, want 503", ep, resp.StatusCode)
		}
	}
}
