package metrics_test

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/metrics"
	dto "github.com/prometheus/client_model/go"
)

func newReg(t testing.TB, o *metrics.RegistryOptions) *metrics.Registry {
	t.Helper()
	r, err := metrics.NewRegistry(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// family returns the gathered family name, or nil.
func family(t testing.TB, r *metrics.Registry, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func wantErr(t *testing.T, err, target error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error wrapping %v containing %q, got nil", target, substr)
	}
	if !errors.Is(err, target) || !strings.Contains(err.Error(), substr) {
		t.Fatalf("want an error wrapping %v containing %q, got %v", target, substr, err)
	}
}

func TestCounter(t *testing.T) {
	r := newReg(t, nil)
	c, err := r.Counter(metrics.Opts{Name: "jobs.done", Help: "Jobs done."})
	if err != nil {
		t.Fatal(err)
	}
	c.Inc()
	c.Inc()
	if err := c.Add(2.5); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(0); err != nil {
		t.Fatal(err)
	}
	if got := c.Value(); got != 4.5 {
		t.Fatalf("value %v, want 4.5", got)
	}
	for _, bad := range []float64{-1, math.NaN(), math.Inf(1), math.Inf(-1), -0.001} {
		wantErr(t, c.Add(bad), metrics.ErrInvalid, "must be finite and >= 0")
	}
	if got := c.Value(); got != 4.5 {
		t.Fatalf("value after refused adds %v, want 4.5", got)
	}
	f := family(t, r, "jobs_done_total")
	if f == nil || f.GetType() != dto.MetricType_COUNTER || f.GetHelp() != "Jobs done." {
		t.Fatalf("family %v", f)
	}
	if v := f.GetMetric()[0].GetCounter().GetValue(); v != 4.5 {
		t.Fatalf("exposed %v", v)
	}
}

func TestCountErrorsAndPanics(t *testing.T) {
	r := newReg(t, nil)
	c := metrics.Must(r.Counter(metrics.Opts{Name: "failures"}))
	boom := errors.New("boom")
	if err := c.CountErrors(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.CountErrors(func() error { return boom }); err != boom {
		t.Fatalf("err %v", err)
	}
	func() {
		defer func() {
			if recover() != "p" {
				t.Fatal("panic not propagated")
			}
		}()
		_ = c.CountErrors(func() error { panic("p") })
	}()
	c.CountPanics(func() {})
	func() {
		defer func() { _ = recover() }()
		c.CountPanics(func() { panic("q") })
	}()
	if got := c.Value(); got != 3 {
		t.Fatalf("counted %v, want 3", got)
	}
}

func TestGauge(t *testing.T) {
	now := time.Unix(1700000000, 500_000_000)
	r := newReg(t, &metrics.RegistryOptions{Now: func() time.Time { return now }})
	g := metrics.Must(r.Gauge(metrics.Opts{Name: "queue.depth", Help: "Depth."}))
	g.Set(10)
	g.Inc()
	g.Dec()
	g.Dec()
	g.Add(2.5)
	g.Sub(0.5)
	if got := g.Value(); got != 11 {
		t.Fatalf("value %v, want 11", got)
	}
	done := g.TrackInProgress()
	if g.Value() != 12 {
		t.Fatalf("in progress %v", g.Value())
	}
	done()
	if g.Value() != 11 {
		t.Fatalf("after %v", g.Value())
	}
	g.SetToCurrentTime()
	if g.Value() != 1700000000.5 {
		t.Fatalf("current time %v", g.Value())
	}
	g.Set(math.NaN())
	if !math.IsNaN(g.Value()) {
		t.Fatal("NaN gauge")
	}
	stop := g.Time()
	time.Sleep(2 * time.Millisecond)
	stop()
	if v := g.Value(); !(v >= 0.002 && v < 5) {
		t.Fatalf("timed %v s", v)
	}
	if f := family(t, r, "queue_depth"); f.GetType() != dto.MetricType_GAUGE {
		t.Fatalf("type %v", f.GetType())
	}
}

func TestHistogram(t *testing.T) {
	r := newReg(t, nil)
	h := metrics.Must(r.Histogram(metrics.HistogramOpts{
		Opts:    metrics.Opts{Name: "rpc.latency", Unit: time.Millisecond},
		Buckets: []float64{1, 5, 10},
	}))
	for _, v := range []float64{0.5, 1, 3, 5, 7, 100, math.Inf(-1), math.NaN()} {
		h.Observe(v)
	}
	h.ObserveAt(time.Unix(0, 0), 2) // event time: counts like any other in memory
	h.ObserveDuration(7 * time.Millisecond)
	bounds, cum := h.Buckets()
	if want := []uint64{3, 6, 8, 9}; !equalU(cum, want) || len(bounds) != 3 {
		t.Fatalf("buckets %v %v, want %v", bounds, cum, want)
	}
	if h.Count() != 9 {
		t.Fatalf("count %d (NaN must not count)", h.Count())
	}
	if !math.IsInf(h.Sum(), -1) {
		t.Fatalf("sum %v", h.Sum())
	}
	m := family(t, r, "rpc_latency").GetMetric()[0].GetHistogram()
	if m.GetSampleCount() != 9 || len(m.GetBucket()) != 4 || !math.IsInf(m.GetBucket()[3].GetUpperBound(), 1) {
		t.Fatalf("exposed %v", m)
	}
	if err := h.SetBuckets([]float64{1, 2}); !errors.Is(err, metrics.ErrNoEngine) {
		t.Fatalf("SetBuckets without engine: %v", err)
	}
	for _, b := range [][]float64{{1, 1}, {2, 1}, {math.NaN()}} {
		_, err := r.Histogram(metrics.HistogramOpts{Opts: metrics.Opts{Name: "bad.buckets"}, Buckets: b})
		wantErr(t, err, metrics.ErrInvalid, "bucket bound")
	}
	_, err := r.HistogramVec(metrics.HistogramOpts{Opts: metrics.Opts{Name: "bad.le", Labels: []string{"le"}}})
	wantErr(t, err, metrics.ErrInvalid, `"le" is reserved`)
	// Default buckets; a trailing +Inf is accepted and dropped.
	d := metrics.Must(r.Histogram(metrics.HistogramOpts{Opts: metrics.Opts{Name: "default.buckets"}}))
	if b, _ := d.Buckets(); len(b) != len(metrics.DefBuckets) {
		t.Fatalf("default buckets %v", b)
	}
	e := metrics.Must(r.Histogram(metrics.HistogramOpts{Opts: metrics.Opts{Name: "inf.buckets"}, Buckets: []float64{1, math.Inf(1)}}))
	if b, _ := e.Buckets(); len(b) != 1 {
		t.Fatalf("buckets %v", b)
	}
}

func equalU(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSummaryWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r := newReg(t, &metrics.RegistryOptions{Now: clock})
	s := metrics.Must(r.Summary(metrics.SummaryOpts{
		Opts:      metrics.Opts{Name: "req.size"},
		Quantiles: []float64{0, 0.5, 0.9, 1},
		MaxAge:    time.Minute,
	}))
	qs, n, sum := s.Quantiles()
	if n != 0 || sum != 0 || !math.IsNaN(qs[1]) {
		t.Fatalf("empty: %v %d %v", qs, n, sum)
	}
	for i := 1; i <= 10; i++ {
		s.Observe(float64(i))
	}
	qs, n, sum = s.Quantiles()
	// numpy: percentile([1..10], [0, 50, 90, 100]) = 1, 5.5, 9.1, 10
	if want := []float64{1, 5.5, 9.1, 10}; !closeAll(qs, want) || n != 10 || sum != 55 {
		t.Fatalf("quantiles %v count %d sum %v, want %v", qs, n, sum, want)
	}
	advance(45 * time.Second)
	s.Observe(100)
	advance(30 * time.Second) // the first ten leave the window
	qs, n, sum = s.Quantiles()
	if want := []float64{100, 100, 100, 100}; !closeAll(qs, want) || n != 11 || sum != 155 {
		t.Fatalf("after slide %v %d %v", qs, n, sum)
	}
	s.ObserveAt(now.Add(-2*time.Minute), 7) // too old for the window
	qs, _, _ = s.Quantiles()
	if qs[0] != 100 {
		t.Fatalf("old observation entered the window: %v", qs)
	}
	f := family(t, r, "req_size").GetMetric()[0].GetSummary()
	if f.GetSampleCount() != 12 || len(f.GetQuantile()) != 4 {
		t.Fatalf("exposed %v", f)
	}
	for _, q := range []float64{-0.1, 1.1, math.NaN()} {
		_, err := r.Summary(metrics.SummaryOpts{Opts: metrics.Opts{Name: "bad.q"}, Quantiles: []float64{q}})
		wantErr(t, err, metrics.ErrInvalid, "outside [0, 1]")
	}
}

func closeAll(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9 {
			return false
		}
	}
	return true
}

func TestTimer(t *testing.T) {
	r := newReg(t, nil)
	h := metrics.Must(r.Histogram(metrics.HistogramOpts{Opts: metrics.Opts{Name: "op.ms", Unit: time.Millisecond}, Buckets: []float64{1, 1000, 1e9}}))
	func() {
		defer h.Time()()
		time.Sleep(3 * time.Millisecond)
	}()
	if h.Count() != 1 || !(h.Sum() >= 3 && h.Sum() < 5000) {
		t.Fatalf("Time recorded %v ms (%d)", h.Sum(), h.Count())
	}
	var got float64
	tm := metrics.NewTimer(metrics.ObserverFunc(func(v float64) { got = v }), time.Microsecond)
	time.Sleep(2 * time.Millisecond)
	d := tm.ObserveDuration()
	if got != float64(d)/float64(time.Microsecond) || got < 2000 {
		t.Fatalf("timer observed %v for %v", got, d)
	}
	g := metrics.Must(r.Gauge(metrics.Opts{Name: "last.op"}))
	metrics.NewTimer(g, 0).ObserveDuration() // seconds
	if v := g.Value(); !(v >= 0 && v < 1) {
		t.Fatalf("gauge timer %v", v)
	}
	s := metrics.Must(r.Summary(metrics.SummaryOpts{Opts: metrics.Opts{Name: "op.summary"}}))
	s.Time()()
	if _, n, _ := s.Quantiles(); n != 1 {
		t.Fatalf("summary timer count %d", n)
	}
}

func TestNames(t *testing.T) {
	r := newReg(t, &metrics.RegistryOptions{Prefix: "app"})
	c := metrics.Must(r.Counter(metrics.Opts{Name: "http.server.requests"}))
	c.Inc()
	if family(t, r, "app_http_server_requests_total") == nil {
		t.Fatal("prefix and _total not applied")
	}
	metrics.Must(r.Counter(metrics.Opts{Name: "bytes_total"}))
	if family(t, r, "app_bytes_total") == nil {
		t.Fatal("_total doubled")
	}
	if got := r.DottedName("app_http_server_requests_total"); got != "http.server.requests" {
		t.Fatalf("dotted %q", got)
	}
	for _, bad := range []string{"", "a..b", ".a", "a.", "1a", "a-b", "a.b c", "é"} {
		_, err := r.Gauge(metrics.Opts{Name: bad})
		wantErr(t, err, metrics.ErrInvalid, "name")
	}
	if _, err := metrics.NewRegistry(&metrics.RegistryOptions{Prefix: "a.b"}); !errors.Is(err, metrics.ErrInvalid) {
		t.Fatalf("bad prefix: %v", err)
	}
	if _, err := metrics.NewRegistry(&metrics.RegistryOptions{TTL: -1}); !errors.Is(err, metrics.ErrInvalid) {
		t.Fatalf("bad TTL: %v", err)
	}
	if _, err := metrics.NewRegistry(&metrics.RegistryOptions{ConstLabels: metrics.Labels{"a b": "x"}}); !errors.Is(err, metrics.ErrInvalid) {
		t.Fatalf("bad const label: %v", err)
	}
}

func TestRegistryDuplicatesAndUnregister(t *testing.T) {
	r := newReg(t, nil)
	metrics.Must(r.Counter(metrics.Opts{Name: "a.b"}))
	_, err := r.Gauge(metrics.Opts{Name: "a.b"})
	wantErr(t, err, metrics.ErrDuplicate, `"a.b" is already registered (as a counter)`)
	// Different dotted names, same exposition name.
	_, err = r.Counter(metrics.Opts{Name: "a_b"})
	wantErr(t, err, metrics.ErrDuplicate, `"a_b_total" is already registered`)
	if !r.Unregister("a.b") {
		t.Fatal("unregister")
	}
	if r.Unregister("a.b") {
		t.Fatal("unregister twice")
	}
	if family(t, r, "a_b_total") != nil {
		t.Fatal("unregistered metric still exposed")
	}
	metrics.Must(r.Gauge(metrics.Opts{Name: "a.b"})) // the name is free again
	_, err = r.Counter(metrics.Opts{Name: "x", Labels: []string{"l"}})
	wantErr(t, err, metrics.ErrInvalid, "CounterVec")
	_, err = r.CounterVec(metrics.Opts{Name: "y"})
	wantErr(t, err, metrics.ErrInvalid, "declares no labels")
}

func TestConstLabels(t *testing.T) {
	r := newReg(t, &metrics.RegistryOptions{ConstLabels: metrics.Labels{"host": "h1", "empty": ""}})
	c := metrics.Must(r.CounterVec(metrics.Opts{Name: "c", Labels: []string{"k"}, ConstLabels: metrics.Labels{"svc": "api"}}))
	metrics.Must(c.With(metrics.Labels{"k": "v"})).Inc()
	m := family(t, r, "c_total").GetMetric()[0]
	want := map[string]string{"host": "h1", "svc": "api", "k": "v"}
	if got := labelsOf(m); len(got) != 3 || got["host"] != "h1" || got["svc"] != "api" || got["k"] != "v" {
		t.Fatalf("labels %v, want %v", got, want)
	}
	_, err := r.CounterVec(metrics.Opts{Name: "d", Labels: []string{"host"}})
	wantErr(t, err, metrics.ErrInvalid, "both constant and variable")
}

func TestLabels(t *testing.T) {
	r := newReg(t, nil)
	v := metrics.Must(r.CounterVec(metrics.Opts{
		Name:     "http.requests",
		Labels:   []string{"method", "code", "path"},
		Defaults: metrics.Labels{"code": "200"},
	}))
	// All at once.
	c1 := metrics.Must(v.With(metrics.Labels{"method": "GET", "code": "500", "path": "/"}))
	c1.Inc()
	// Step by step: partial values are cacheable and independent.
	get := metrics.Must(v.Bind(metrics.Labels{"method": "GET"}))
	post := metrics.Must(v.Bind(metrics.Labels{"method": "POST"}))
	getRoot := metrics.Must(get.Bind(metrics.Labels{"path": "/"}))
	metrics.Must(getRoot.With(nil)).Inc()                            // code defaults to 200
	metrics.Must(getRoot.With(metrics.Labels{"code": "404"})).Add(2) // default overridden
	metrics.Must(post.With(metrics.Labels{"path": "/x"})).Inc()      // post unaffected by get's binding
	metrics.Must(get.WithValues("500", "/")).Inc()                   // positional: code, path
	// The same label set reached four ways is one counter.
	if got := c1.Value(); got != 2 {
		t.Fatalf("GET 500 / counted %v, want 2", got)
	}
	if v.Len() != 4 {
		t.Fatalf("%d label sets, want 4", v.Len())
	}
	same := metrics.Must(v.WithValues("GET", "500", "/"))
	if same != c1 {
		t.Fatal("WithValues returned another handle for the same label set")
	}
	ok := metrics.Must(get.WithValues("", "/")) // empty value: the label is absent
	ok.Inc()
	m := family(t, r, "http_requests_total")
	found := false
	for _, mm := range m.GetMetric() {
		if ls := labelsOf(mm); ls["method"] == "GET" && ls["path"] == "/" && len(ls) == 2 {
			found = true
		}
	}
	if !found {
		t.Fatal("label set with an empty value not exposed without the label")
	}

	// Errors.
	_, err := v.With(metrics.Labels{"method": "GET"})
	wantErr(t, err, metrics.ErrLabels, `missing value for label "path"`)
	_, err = v.With(metrics.Labels{"method": "GET", "path": "/", "colour": "red"})
	wantErr(t, err, metrics.ErrLabels, `unknown label "colour" (declared: method, code, path)`)
	_, err = get.With(metrics.Labels{"method": "PUT", "path": "/"})
	wantErr(t, err, metrics.ErrLabels, `label "method" is already bound to "GET"`)
	_, err = get.Bind(metrics.Labels{"method": "PUT"})
	wantErr(t, err, metrics.ErrLabels, `already bound`)
	_, err = v.Bind(metrics.Labels{"nope": "1"})
	wantErr(t, err, metrics.ErrLabels, `unknown label "nope"`)
	_, err = get.WithValues()
	wantErr(t, err, metrics.ErrLabels, `missing value for label "path"`)
	_, err = get.WithValues("1", "2", "3")
	wantErr(t, err, metrics.ErrLabels, "3 label values given, 2 labels unbound")
	_, err = v.With(metrics.Labels{"method": string([]byte{0xff}), "path": "/"})
	wantErr(t, err, metrics.ErrInvalid, "not valid UTF-8")
	_, err = v.With(metrics.Labels{"method": "a\x00b", "path": "/"})
	wantErr(t, err, metrics.ErrInvalid, "NUL")
	var zero metrics.CounterVec
	if _, err := zero.With(nil); !errors.Is(err, metrics.ErrInvalid) {
		t.Fatalf("zero vec: %v", err)
	}

	// Declaration errors.
	_, err = r.CounterVec(metrics.Opts{Name: "d1", Labels: []string{"a", "a"}})
	wantErr(t, err, metrics.ErrInvalid, "declared twice")
	_, err = r.CounterVec(metrics.Opts{Name: "d2", Labels: []string{"a"}, Defaults: metrics.Labels{"b": "x"}})
	wantErr(t, err, metrics.ErrLabels, `default for undeclared label "b"`)
	_, err = r.CounterVec(metrics.Opts{Name: "d3", Labels: []string{"__a"}})
	wantErr(t, err, metrics.ErrInvalid, "reserved")
	_, err = r.CounterVec(metrics.Opts{Name: "d4", Labels: []string{"a-b"}})
	wantErr(t, err, metrics.ErrInvalid, `label name "a-b"`)

	// Delete.
	if !v.Delete(metrics.Labels{"method": "GET", "code": "500", "path": "/"}) {
		t.Fatal("delete")
	}
	if v.Delete(metrics.Labels{"method": "GET", "code": "500", "path": "/"}) {
		t.Fatal("delete twice")
	}
}
