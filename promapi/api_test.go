package promapi_test

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/promapi"
)

// apiResponse is Prometheus' JSON envelope.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// server serves the API over a fresh store holding the fixture.
type server struct {
	f   *fixture
	db  *engine.DB
	srv *httptest.Server
}

func newServer(t testing.TB, opts promapi.Options) *server {
	t.Helper()
	f := newFixture(rand.New(rand.NewPCG(seed(t), 1)))
	db := f.write(t, t.TempDir())
	if opts.Now == nil {
		opts.Now = func() time.Time { return time.UnixMilli(t0 + span) }
	}
	srv := httptest.NewServer(promapi.New(db, opts))
	t.Cleanup(func() {
		srv.Close()
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return &server{f: f, db: db, srv: srv}
}

// do sends a request (GET with the query string, or POST with a form body)
// and decodes the envelope.
func (s *server) do(t testing.TB, method, path string, form url.Values) (int, apiResponse) {
	t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodPost {
		req, err = http.NewRequest(method, s.srv.URL+path, strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequest(method, s.srv.URL+path+"?"+form.Encode(), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r apiResponse
	if resp.StatusCode != http.StatusMethodNotAllowed {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, body)
		}
	}
	return resp.StatusCode, r
}

// query runs an instant or range query and returns its decoded data.
func (s *server) query(t testing.TB, method, path string, form url.Values) queryData {
	t.Helper()
	code, r := s.do(t, method, path, form)
	if code != http.StatusOK || r.Status != "success" {
		t.Fatalf("%s %v: %d %+v", path, form, code, r)
	}
	var d queryData
	if err := json.Unmarshal(r.Data, &d); err != nil {
		t.Fatalf("data %s: %v", r.Data, err)
	}
	return d
}

func secs(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64) }

// instantTimes are the evaluation times of the instant tests: early, not
// aligned to a sample, across the reopen, after the last sample (one gauge
// has gone stale by then).
var instantTimes = []int64{t0 + 10*60*1000, t0 + 30*60*1000 + 7_123, t0 + 42*60*1000, t0 + span + 4*60*1000}

func TestInstantQueriesMatchReference(t *testing.T) {
	s := newServer(t, promapi.Options{})
	for _, expr := range exprs {
		for i, at := range instantTimes {
			method := []string{http.MethodGet, http.MethodPost}[i%2]
			t.Run(expr+"@"+strconv.Itoa(i), func(t *testing.T) {
				d := s.query(t, method, "/api/v1/query", url.Values{"query": {expr}, "time": {secs(at)}})
				if d.ResultType != "vector" {
					t.Fatalf("resultType %q", d.ResultType)
				}
				var vec []apiSeries
				if err := json.Unmarshal(d.Result, &vec); err != nil {
					t.Fatal(err)
				}
				compareResults(t, expr, vectorResult(t, vec, at), s.f.eval(expr, at))
			})
		}
	}
}

func TestRangeQueriesMatchReference(t *testing.T) {
	s := newServer(t, promapi.Options{})
	start, end, step := t0+5*60*1000+500, t0+span+4*60*1000, int64(60_000)
	grid := int((end-start)/step) + 1
	for i, expr := range exprs {
		method := []string{http.MethodGet, http.MethodPost}[i%2]
		t.Run(expr, func(t *testing.T) {
			d := s.query(t, method, "/api/v1/query_range", url.Values{
				"query": {expr}, "start": {secs(start)}, "end": {secs(end)}, "step": {"60s"},
			})
			if d.ResultType != "matrix" {
				t.Fatalf("resultType %q", d.ResultType)
			}
			var mat []apiSeries
			if err := json.Unmarshal(d.Result, &mat); err != nil {
				t.Fatal(err)
			}
			got := matrixResults(t, mat)
			steps := 0
			for at := start; at <= end; at += step {
				want := s.f.eval(expr, at)
				if len(want) == 0 && len(got[at]) == 0 {
					continue
				}
				steps++
				compareResults(t, expr+"@"+strconv.FormatInt(at, 10), got[at], want)
				delete(got, at)
			}
			for at := range got {
				t.Errorf("a step at %d, off the grid", at)
			}
			if steps != grid {
				t.Errorf("%d steps with results, want every one of %d", steps, grid)
			}
		})
	}
}

func TestScalarAndStringResults(t *testing.T) {
	s := newServer(t, promapi.Options{})
	at := t0 + 1500
	for _, c := range []struct{ expr, typ, want string }{
		{"1+1", "scalar", `[1700000041.500,"2"]`},
		{"-1/0", "scalar", `[1700000041.500,"-Inf"]`},
		{"0/0", "scalar", `[1700000041.500,"NaN"]`},
		{`"hi"`, "string", `[1700000041.500,"hi"]`},
	} {
		d := s.query(t, http.MethodGet, "/api/v1/query", url.Values{"query": {c.expr}, "time": {secs(at)}})
		if d.ResultType != c.typ || string(d.Result) != c.want {
			t.Errorf("%s: %s %s, want %s %s", c.expr, d.ResultType, d.Result, c.typ, c.want)
		}
	}
}

func TestDefaultTimeIsNow(t *testing.T) {
	now := t0 + 20*60*1000
	s := newServer(t, promapi.Options{Now: func() time.Time { return time.UnixMilli(now) }})
	d := s.query(t, http.MethodGet, "/api/v1/query", url.Values{"query": {"temperature"}})
	var vec []apiSeries
	if err := json.Unmarshal(d.Result, &vec); err != nil {
		t.Fatal(err)
	}
	compareResults(t, "temperature at now", vectorResult(t, vec, now), s.f.eval("temperature", now))
}

func TestLimitTruncates(t *testing.T) {
	s := newServer(t, promapi.Options{})
	code, r := s.do(t, http.MethodGet, "/api/v1/query", url.Values{"query": {"temperature"}, "time": {secs(t0 + 600_000)}, "limit": {"2"}})
	if code != http.StatusOK {
		t.Fatalf("%d %+v", code, r)
	}
	var d queryData
	var vec []apiSeries
	if err := json.Unmarshal(r.Data, &d); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(d.Result, &vec); err != nil {
		t.Fatal(err)
	}
	if len(vec) != 2 || !slices.Contains(r.Warnings, "results truncated due to limit") {
		t.Errorf("limit=2: %d series, warnings %q", len(vec), r.Warnings)
	}
}

func TestSeriesAndLabelEndpoints(t *testing.T) {
	s := newServer(t, promapi.Options{})
	decode := func(t *testing.T, r apiResponse, v any) {
		t.Helper()
		if r.Status != "success" {
			t.Fatalf("%+v", r)
		}
		if err := json.Unmarshal(r.Data, v); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("series", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			_, r := s.do(t, method, "/api/v1/series", url.Values{"match[]": {`temperature{room=~"k.*|hall"}`, `http_requests_total{code="500",instance="a"}`, `temperature{room="hall"}`}})
			var got []map[string]string
			decode(t, r, &got)
			var keys []string
			for _, m := range got {
				keys = append(keys, keyOf(m))
			}
			want := []string{`http_requests_total{code="500",instance="a"}`, `temperature{room="hall"}`, `temperature{room="kitchen"}`}
			if !slices.Equal(keys, want) {
				t.Errorf("%s: %q, want %q", method, keys, want)
			}
		}
	})
	t.Run("series in a time range", func(t *testing.T) {
		// The attic stops 150s before the end; a range after that sees
		// the others only.
		_, r := s.do(t, http.MethodGet, "/api/v1/series", url.Values{"match[]": {"temperature"}, "start": {secs(t0 + span - 60_000)}, "end": {secs(t0 + span + 60_000)}})
		var got []map[string]string
		decode(t, r, &got)
		if len(got) != 2 {
			t.Errorf("%v", got)
		}
		_, r = s.do(t, http.MethodGet, "/api/v1/series", url.Values{"match[]": {"temperature"}, "start": {secs(t0 + 2*span)}})
		decode(t, r, &got)
		if len(got) != 0 {
			t.Errorf("after every point: %v", got)
		}
	})
	t.Run("labels", func(t *testing.T) {
		var got []string
		_, r := s.do(t, http.MethodGet, "/api/v1/labels", nil)
		decode(t, r, &got)
		if want := []string{"__name__", "code", "instance", "le", "room"}; !slices.Equal(got, want) {
			t.Errorf("all: %q, want %q", got, want)
		}
		_, r = s.do(t, http.MethodPost, "/api/v1/labels", url.Values{"match[]": {"temperature", `latency_bucket{le="1"}`}})
		decode(t, r, &got)
		if want := []string{"__name__", "instance", "le", "room"}; !slices.Equal(got, want) {
			t.Errorf("matched: %q, want %q", got, want)
		}
		_, r = s.do(t, http.MethodGet, "/api/v1/labels", url.Values{"match[]": {"temperature"}, "start": {secs(t0)}, "end": {secs(t0 + 60_000)}})
		decode(t, r, &got)
		if want := []string{"__name__", "room"}; !slices.Equal(got, want) {
			t.Errorf("ranged: %q, want %q", got, want)
		}
		_, r = s.do(t, http.MethodGet, "/api/v1/labels", url.Values{"limit": {"2"}})
		decode(t, r, &got)
		if want := []string{"__name__", "code"}; !slices.Equal(got, want) || len(r.Warnings) != 1 {
			t.Errorf("limit 2: %q %q, want %q and a warning", got, r.Warnings, want)
		}
	})
	t.Run("label values", func(t *testing.T) {
		var got []string
		_, r := s.do(t, http.MethodGet, "/api/v1/label/__name__/values", nil)
		decode(t, r, &got)
		if want := []string{"http_requests_total", "latency_bucket", "temperature"}; !slices.Equal(got, want) {
			t.Errorf("names: %q, want %q", got, want)
		}
		_, r = s.do(t, http.MethodGet, "/api/v1/label/room/values", url.Values{"match[]": {`temperature{room!="hall"}`}})
		decode(t, r, &got)
		if want := []string{"attic", "kitchen"}; !slices.Equal(got, want) {
			t.Errorf("rooms: %q, want %q", got, want)
		}
		_, r = s.do(t, http.MethodGet, "/api/v1/label/room/values", url.Values{"start": {secs(t0 + span - 60_000)}})
		decode(t, r, &got)
		if want := []string{"hall", "kitchen"}; !slices.Equal(got, want) {
			t.Errorf("rooms at the end: %q, want %q", got, want)
		}
		_, r = s.do(t, http.MethodGet, "/api/v1/label/U__r_6f_om/values", nil) // "room", escaped
		decode(t, r, &got)
		if len(got) != 3 {
			t.Errorf("escaped name: %q", got)
		}
		_, r = s.do(t, http.MethodGet, "/api/v1/label/nosuch/values", nil)
		decode(t, r, &got)
		if got == nil || len(got) != 0 {
			t.Errorf("unknown label: %#v, want []", got)
		}
	})
	t.Run("buildinfo", func(t *testing.T) {
		var got map[string]string
		_, r := s.do(t, http.MethodGet, "/api/v1/status/buildinfo", nil)
		decode(t, r, &got)
		if got["version"] != promapi.PrometheusVersion || got["goVersion"] == "" {
			t.Errorf("%v", got)
		}
	})
}

func TestErrors(t *testing.T) {
	s := newServer(t, promapi.Options{MaxSamples: 1000})
	now := secs(t0 + span)
	for _, c := range []struct {
		name, method, path string
		form               url.Values
		code               int
		typ, msg           string
	}{
		{"no query", "GET", "/api/v1/query", nil, 400, "bad_data", "invalid parameter \"query\""},
		{"parse error", "GET", "/api/v1/query", url.Values{"query": {"rate(x[5m]"}}, 400, "bad_data", "parse error"},
		{"bad time", "GET", "/api/v1/query", url.Values{"query": {"1"}, "time": {"yesterday"}}, 400, "bad_data", "cannot parse \"yesterday\""},
		{"NaN time", "GET", "/api/v1/query", url.Values{"query": {"1"}, "time": {"NaN"}}, 400, "bad_data", "out of range"},
		{"huge time", "GET", "/api/v1/query", url.Values{"query": {"1"}, "time": {"1e300"}}, 400, "bad_data", "out of range"},
		{"bad timeout", "GET", "/api/v1/query", url.Values{"query": {"1"}, "timeout": {"0"}}, 400, "bad_data", "timeout must be positive"},
		{"bad limit", "GET", "/api/v1/query", url.Values{"query": {"1"}, "limit": {"-1"}}, 400, "bad_data", "limit must be non-negative"},
		{"bad lookback", "GET", "/api/v1/query", url.Values{"query": {"1"}, "lookback_delta": {"soon"}}, 400, "bad_data", "lookback_delta"},
		{"range without start", "GET", "/api/v1/query_range", url.Values{"query": {"1"}, "end": {now}, "step": {"1"}}, 400, "bad_data", "invalid parameter \"start\""},
		{"end before start", "POST", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {now}, "end": {"0"}, "step": {"1"}}, 400, "bad_data", "end timestamp must not be before start time"},
		{"zero step", "GET", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"0"}, "end": {now}, "step": {"0"}}, 400, "bad_data", "zero or negative query resolution"},
		{"NaN step", "GET", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"0"}, "end": {now}, "step": {"NaN"}}, 400, "bad_data", "step"},
		{"too many steps", "GET", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"0"}, "end": {now}, "step": {"1"}}, 400, "bad_data", "11,000 points"},
		{"too many samples", "GET", "/api/v1/query", url.Values{"query": {`{__name__=~".+"}[1h]`}, "time": {now}}, 422, "execution", "too many samples"},
		{"many-to-many", "GET", "/api/v1/query", url.Values{"query": {"temperature + on() temperature"}, "time": {now}}, 422, "execution", "many-to-many"},
		{"series without match", "GET", "/api/v1/series", nil, 400, "bad_data", "no match[] parameter provided"},
		{"series with empty matcher", "GET", "/api/v1/series", url.Values{"match[]": {`{room=""}`}}, 400, "bad_data", "at least one non-empty matcher"},
		{"series with bad selector", "GET", "/api/v1/series", url.Values{"match[]": {`{room=~"("}`}}, 400, "bad_data", "match[]"},
		{"labels with bad start", "GET", "/api/v1/labels", url.Values{"start": {"x"}}, 400, "bad_data", "invalid parameter \"start\""},
		{"bad label name", "GET", "/api/v1/label/" + url.PathEscape("a\xffb") + "/values", nil, 400, "bad_data", "invalid label name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, r := s.do(t, c.method, c.path, c.form)
			if code != c.code || r.Status != "error" || r.ErrorType != c.typ || !strings.Contains(r.Error, c.msg) {
				t.Errorf("%d %+v, want %d %s containing %q", code, r, c.code, c.typ, c.msg)
			}
		})
	}
	t.Run("method not allowed", func(t *testing.T) {
		for _, p := range []string{"/api/v1/query", "/api/v1/label/room/values"} {
			if code, _ := s.do(t, http.MethodDelete, p, nil); code != http.StatusMethodNotAllowed {
				t.Errorf("DELETE %s: %d", p, code)
			}
		}
		if code, _ := s.do(t, http.MethodPost, "/api/v1/label/room/values", nil); code != http.StatusMethodNotAllowed {
			t.Errorf("POST label values: %d", code)
		}
	})
}

func TestTimeoutIs503(t *testing.T) {
	s := newServer(t, promapi.Options{Timeout: time.Nanosecond})
	code, r := s.do(t, http.MethodGet, "/api/v1/query", url.Values{"query": {"sum(rate(http_requests_total[5m]))"}, "time": {secs(t0 + span)}})
	if code != http.StatusServiceUnavailable || r.ErrorType != "timeout" {
		t.Errorf("%d %+v", code, r)
	}
}

func TestClosedDBIsUnavailable(t *testing.T) {
	s := newServer(t, promapi.Options{})
	db2 := openDB(t, t.TempDir())
	srv := httptest.NewServer(promapi.New(db2, promapi.Options{}))
	defer srv.Close()
	if err := db2.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := &server{f: s.f, srv: srv}
	code, r := s2.do(t, http.MethodGet, "/api/v1/query", url.Values{"query": {"temperature"}})
	if code != http.StatusServiceUnavailable || r.ErrorType != "unavailable" || !strings.Contains(r.Error, "closed") {
		t.Errorf("query: %d %+v", code, r)
	}
	code, r = s2.do(t, http.MethodGet, "/api/v1/label/room/values", nil)
	if code != http.StatusServiceUnavailable || r.ErrorType != "unavailable" {
		t.Errorf("label values: %d %+v", code, r)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []promapi.Options{{Timeout: -1}, {MaxSamples: -1}, {LookbackDelta: -time.Second}, {MaxConcurrentQueries: -2}, {MaxSelectPoints: -3}} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
		if _, err := promapi.NewAPI(nil, promapi.Options{}); err == nil {
			t.Error("nil db: no error")
		}
		srv := httptest.NewServer(promapi.New(nil, o))
		resp, err := srv.Client().Get(srv.URL + "/api/v1/query?query=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), `"errorType":"internal"`) {
			t.Errorf("%+v: %d %s", o, resp.StatusCode, body)
		}
	}
}

func TestPrometheusVersionMatchesGoMod(t *testing.T) {
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github.com/prometheus/prometheus (v\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod does not require github.com/prometheus/prometheus")
	}
	if got := promapi.ReleaseOf(string(m[1])); got != promapi.PrometheusVersion {
		t.Errorf("go.mod requires %s (release %s), PrometheusVersion is %s", m[1], got, promapi.PrometheusVersion)
	}
	for in, want := range map[string]string{"v0.316.0": "3.16.0", "v0.300.1": "3.0.1", "v0.55.0": "v0.55.0", "v1.2.3": "v1.2.3", "(devel)": "(devel)"} {
		if got := promapi.ReleaseOf(in); got != want {
			t.Errorf("ReleaseOf(%q) = %q, want %q", in, got, want)
		}
	}
}
