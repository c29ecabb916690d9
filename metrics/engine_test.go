package metrics_test

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/metrics"
	"github.com/eventmetrics/eventmetrics/query"
)

func openDB(t testing.TB, o *engine.Options) *engine.DB {
	t.Helper()
	db, err := engine.Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

func flush(t testing.TB, r *metrics.Registry) {
	t.Helper()
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestEngineBinding(t *testing.T) {
	for _, through := range []bool{false, true} {
		t.Run(map[bool]string{false: "buffered", true: "write-through"}[through], func(t *testing.T) {
			testEngineBinding(t, through)
		})
	}
}

func testEngineBinding(t *testing.T, through bool) {
	db := openDB(t, nil)
	r := newReg(t, &metrics.RegistryOptions{Prefix: "app", ConstLabels: metrics.Labels{"host": "h1"}, Engine: db, WriteThrough: through})
	reqs := metrics.Must(r.CounterVec(metrics.Opts{Name: "http.requests", Labels: []string{"code"}}))
	ok := metrics.Must(reqs.WithValues("200"))
	ok.Inc()
	ok.Inc()
	if err := ok.Add(3); err != nil {
		t.Fatal(err)
	}
	flush(t, r)
	// The counter is stored as running totals.
	vals, err := db.Query("app_http_requests_total", query.Eq("code", "200"), query.Eq("host", "h1")).Values()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vals, []float64{1, 2, 5}) {
		t.Fatalf("stored totals %v", vals)
	}

	g := metrics.Must(r.Gauge(metrics.Opts{Name: "queue"}))
	g.Set(4)
	g.Add(-1)
	flush(t, r)
	gv, err := db.Query("app_queue").Values()
	if err != nil || !slices.Equal(gv, []float64{4, 3}) {
		t.Fatalf("gauge stored %v %v", gv, err)
	}

	// Histograms store raw observations at their event time.
	h := metrics.Must(r.Histogram(metrics.HistogramOpts{Opts: metrics.Opts{Name: "latency"}, Buckets: []float64{1, 10}}))
	t0 := time.Unix(1_600_000_000, 123456789)
	h.ObserveAt(t0, 0.5)
	h.ObserveAt(t0.Add(-time.Hour), 20) // late: event time kept
	h.Observe(5)
	flush(t, r)
	ts, vs, err := db.Query("app_latency").Points()
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 || ts[0] != t0.Add(-time.Hour).UnixNano() || ts[1] != t0.UnixNano() || !slices.Equal(vs, []float64{20, 0.5, 5}) {
		t.Fatalf("stored points %v %v", ts, vs)
	}

	// Summaries too.
	s := metrics.Must(r.Summary(metrics.SummaryOpts{Opts: metrics.Opts{Name: "size"}}))
	s.ObserveAt(t0, 7)
	flush(t, r)
	if n, err := db.Query("app_size").Scalar(query.Count); err != nil || n != 1 {
		t.Fatalf("summary stored %v %v", n, err)
	}
	if n, err := r.EngineErrors(); n != 0 {
		t.Fatalf("engine errors %d: %v", n, err)
	}
	// A new registry on the same engine continues the stored counter total.
	r2 := newReg(t, &metrics.RegistryOptions{Prefix: "app", ConstLabels: metrics.Labels{"host": "h1"}, Engine: db, WriteThrough: through})
	c2 := metrics.Must(metrics.Must(r2.CounterVec(metrics.Opts{Name: "http.requests", Labels: []string{"code"}})).WithValues("200"))
	c2.Inc()
	flush(t, r2)
	if last, _ := db.Query("app_http_requests_total", query.Eq("code", "200")).Scalar(query.Last); last != 6 || c2.Value() != 1 {
		t.Fatalf("continued total %v, memory %v", last, c2.Value())
	}
	if f := family(t, r, "eventmetrics_engine_write_errors_total"); f == nil {
		t.Fatal("engine error counter not exposed")
	}
}

func TestEngineAttachLater(t *testing.T) {
	db := openDB(t, nil)
	r := newReg(t, nil)
	v := metrics.Must(r.GaugeVec(metrics.Opts{Name: "temp", Labels: []string{"room"}}))
	k := metrics.Must(v.WithValues("kitchen"))
	k.Set(1) // memory only
	r.SetEngine(db)
	k.Set(2)
	metrics.Must(v.WithValues("hall")).Set(3)
	flush(t, r)
	if got, _ := db.Query("temp", query.Eq("room", "kitchen")).Values(); !slices.Equal(got, []float64{2}) {
		t.Fatalf("kitchen %v", got)
	}
	if got, _ := db.Query("temp", query.Eq("room", "hall")).Values(); !slices.Equal(got, []float64{3}) {
		t.Fatalf("hall %v", got)
	}
	r.SetEngine(nil)
	k.Set(4)
	flush(t, r)
	if got, _ := db.Query("temp", query.Eq("room", "kitchen")).Values(); len(got) != 1 {
		t.Fatalf("written after detach: %v", got)
	}
	if r.Engine() != nil {
		t.Fatal("engine still attached")
	}
}

// TestHistogramSetBuckets changes the buckets and checks that the recounted
// counts equal the query layer's over the stored observations.
func TestHistogramSetBuckets(t *testing.T) {
	db := openDB(t, nil)
	r := newReg(t, &metrics.RegistryOptions{Engine: db})
	hv := metrics.Must(r.HistogramVec(metrics.HistogramOpts{Opts: metrics.Opts{Name: "lat", Labels: []string{"op", "shard"}}, Buckets: []float64{1}}))
	rnd := testutil.Rand(t)
	a := metrics.Must(hv.WithValues("read", "1"))
	b := metrics.Must(hv.WithValues("read", "")) // shard absent: a subset of a's labels
	for range 500 {
		a.Observe(rnd.ExpFloat64())
		b.Observe(rnd.ExpFloat64() * 3)
	}
	before := a.Sum()
	bounds := []float64{0.1, 0.5, 1, 2, 5}
	if err := a.SetBuckets(bounds); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		h  *metrics.Histogram
		ms []query.Matcher
	}{
		{a, []query.Matcher{query.Eq("op", "read"), query.Eq("shard", "1")}},
		{b, []query.Matcher{query.Eq("op", "read"), query.Eq("shard", "")}},
	} {
		want, err := db.Query("lat", c.ms...).Buckets(bounds, true)
		if err != nil {
			t.Fatal(err)
		}
		gotB, got := c.h.Buckets()
		if !slices.Equal(gotB, bounds) || !slices.Equal(got, want) {
			t.Fatalf("recounted %v, query %v", got, want)
		}
		if got[len(got)-1] != 500 {
			t.Fatalf("count %d", got[len(got)-1])
		}
	}
	if math.Abs(a.Sum()-before) > 1e-9*before {
		t.Fatalf("sum %v, was %v", a.Sum(), before)
	}
	// New label sets use the new buckets; observations go on counting.
	c := metrics.Must(hv.WithValues("write", "2"))
	c.Observe(0.3)
	if bs, cum := c.Buckets(); len(bs) != 5 || cum[1] != 1 {
		t.Fatalf("new set %v %v", bs, cum)
	}
	a.Observe(0.05)
	if _, cum := a.Buckets(); cum[5] != 501 {
		t.Fatalf("after %v", cum)
	}
	if err := a.SetBuckets([]float64{2, 1}); err == nil {
		t.Fatal("descending buckets accepted")
	}
}

// TestEngineConcurrentCounter: totals written by concurrent increments
// are in timestamp order, so the query layer's Increase equals the count.
func TestEngineConcurrentCounter(t *testing.T) {
	db := openDB(t, nil)
	r := newReg(t, &metrics.RegistryOptions{Engine: db, FlushPoints: 7})
	c := metrics.Must(r.Counter(metrics.Opts{Name: "hits"}))
	g := metrics.Must(r.Gauge(metrics.Opts{Name: "level"}))
	var wg sync.WaitGroup
	const workers, n = 4, 500
	for range workers {
		wg.Go(func() {
			for range n {
				c.Inc()
				g.Inc()
			}
		})
	}
	wg.Wait()
	flush(t, r)
	last, err := db.Query("hits_total").Scalar(query.Last)
	if err != nil || last != workers*n {
		t.Fatalf("last total %v %v", last, err)
	}
	rows, err := db.Query("hits_total").AggregateBy(query.Increase)
	if err != nil {
		t.Fatal(err)
	}
	// The first point is the baseline: increase = total - 1.
	if got := rows[0].Values[0][0]; got != workers*n-1 {
		t.Fatalf("increase %v, want %d (totals out of timestamp order)", got, workers*n-1)
	}
	if gl, _ := db.Query("level").Scalar(query.Last); gl != workers*n || g.Value() != workers*n {
		t.Fatalf("gauge last %v, memory %v", gl, g.Value())
	}
}

// TestEngineErrorsCounted: a write the engine refuses is counted, not lost
// silently, and the metric keeps working in memory.
func TestEngineErrorsCounted(t *testing.T) {
	db, err := engine.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newReg(t, &metrics.RegistryOptions{Engine: db})
	c := metrics.Must(r.Counter(metrics.Opts{Name: "after.close"}))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	c.Inc()
	if err := r.Flush(); err == nil {
		t.Fatal("flush to a closed engine succeeded")
	}
	n, last := r.EngineErrors()
	if n != 1 || last == nil || c.Value() != 1 {
		t.Fatalf("errors %d %v, value %v", n, last, c.Value())
	}
	// A label set created after Close cannot resolve its series: counted too.
	v := metrics.Must(r.GaugeVec(metrics.Opts{Name: "g", Labels: []string{"k"}}))
	metrics.Must(v.WithValues("x")).Set(1)
	_ = r.Flush()
	if n, _ := r.EngineErrors(); n != 2 {
		t.Fatalf("errors %d", n)
	}
	f := family(t, r, "eventmetrics_engine_write_errors_total")
	if f.GetMetric()[0].GetCounter().GetValue() != 2 {
		t.Fatalf("exposed %v", f)
	}
}

// TestEngineFlushTimer: buffered observations reach the engine without an
// explicit Flush, within FlushEvery.
func TestEngineFlushTimer(t *testing.T) {
	db := openDB(t, nil)
	r := newReg(t, &metrics.RegistryOptions{Engine: db, FlushEvery: 5 * time.Millisecond})
	c := metrics.Must(r.Counter(metrics.Opts{Name: "ticks"}))
	c.Inc()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := db.Query("ticks_total").Scalar(query.Count)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("observation not flushed by the timer")
		}
		time.Sleep(2 * time.Millisecond)
	}
	r.SetEngine(nil) // stops the timer
}

// TestSummaryEqualsQuery: a summary's windowed quantiles equal the query
// layer's percentiles over the stored observations of the same window.
func TestSummaryEqualsQuery(t *testing.T) {
	rnd := testutil.Rand(t)
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	db := openDB(t, nil)
	r := newReg(t, &metrics.RegistryOptions{Engine: db, Now: clock})
	s := metrics.Must(r.Summary(metrics.SummaryOpts{Opts: metrics.Opts{Name: "sz"}, Quantiles: []float64{0, 0.25, 0.5, 0.9, 0.99, 1}, MaxAge: time.Minute}))
	for range 2000 {
		mu.Lock()
		now = now.Add(time.Duration(rnd.Int64N(int64(100 * time.Millisecond))))
		mu.Unlock()
		s.Observe(rnd.ExpFloat64())
	}
	flush(t, r)
	qs, n, _ := s.Quantiles()
	end := clock().UnixNano()
	ps, err := db.Query("sz").FromNanos(end-int64(time.Minute)).ToNanos(end+1).Percentiles(0, 25, 50, 90, 99, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !closeAll(qs, ps) || n != 2000 {
		t.Fatalf("summary %v, query %v (count %d)", qs, ps, n)
	}
}
