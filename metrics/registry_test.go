package metrics_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/metrics"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

func TestLevels(t *testing.T) {
	r := newReg(t, nil)
	reqs := metrics.Must(r.Counter(metrics.Opts{Name: "http.server.requests"}))
	lat := metrics.Must(r.Histogram(metrics.HistogramOpts{Opts: metrics.Opts{Name: "http.server.latency"}}))
	dbg := metrics.Must(r.Gauge(metrics.Opts{Name: "http.server.conns", Debug: true}))
	other := metrics.Must(r.Counter(metrics.Opts{Name: "db.queries"}))
	reqs.Inc()
	lat.Observe(1)
	dbg.Set(1) // Debug metric at Runtime: not recorded
	if reqs.Value() != 1 || lat.Count() != 1 || dbg.Value() != 0 {
		t.Fatalf("runtime: %v %v %v", reqs.Value(), lat.Count(), dbg.Value())
	}
	// A parent switched to Disabled stops every Inherit child.
	if err := r.SetLevel("http", metrics.Disabled); err != nil {
		t.Fatal(err)
	}
	reqs.Inc()
	if err := reqs.Add(5); err != nil {
		t.Fatal(err)
	}
	lat.Observe(1)
	other.Inc()
	if reqs.Value() != 1 || lat.Count() != 1 || other.Value() != 1 {
		t.Fatalf("disabled parent: %v %v (other %v)", reqs.Value(), lat.Count(), other.Value())
	}
	if set, eff := r.Level("http.server.requests"); set != metrics.Inherit || eff != metrics.Disabled {
		t.Fatalf("level %v %v", set, eff)
	}
	// A child with its own level is not affected by the parent.
	if err := r.SetLevel("http.server.latency", metrics.Runtime); err != nil {
		t.Fatal(err)
	}
	lat.Observe(1)
	reqs.Inc()
	if lat.Count() != 2 || reqs.Value() != 1 {
		t.Fatalf("overridden child: %v %v", lat.Count(), reqs.Value())
	}
	// Debug at the parent turns the debug metric on, back to Inherit restores.
	if err := r.SetLevel("http", metrics.Debug); err != nil {
		t.Fatal(err)
	}
	dbg.Set(3)
	reqs.Inc()
	if dbg.Value() != 3 || reqs.Value() != 2 {
		t.Fatalf("debug: %v %v", dbg.Value(), reqs.Value())
	}
	if err := r.SetLevel("http", metrics.Inherit); err != nil {
		t.Fatal(err)
	}
	dbg.Set(4)
	if dbg.Value() != 3 {
		t.Fatal("debug metric recorded at inherited Runtime")
	}
	// The root: disabling it stops everything inheriting.
	if err := r.SetLevel("", metrics.Disabled); err != nil {
		t.Fatal(err)
	}
	other.Inc()
	lat.Observe(1) // has its own Runtime level
	if other.Value() != 1 || lat.Count() != 3 {
		t.Fatalf("root disabled: %v %v", other.Value(), lat.Count())
	}
	// Levels set before the metric exists apply when it is registered.
	if err := r.SetLevel("later.x", metrics.Disabled); err != nil {
		t.Fatal(err)
	}
	if err := r.SetLevel("", metrics.Runtime); err != nil {
		t.Fatal(err)
	}
	later := metrics.Must(r.Counter(metrics.Opts{Name: "later.x.y"}))
	later.Inc()
	if later.Value() != 0 {
		t.Fatal("level set before registration ignored")
	}
	// A metric's Opts.Level sets its node.
	own := metrics.Must(r.Counter(metrics.Opts{Name: "later.x.z", Level: metrics.Runtime}))
	own.Inc()
	if own.Value() != 1 {
		t.Fatal("Opts.Level ignored")
	}
	if err := r.SetLevel("a", metrics.Level(9)); !errors.Is(err, metrics.ErrInvalid) {
		t.Fatalf("invalid level: %v", err)
	}
	if err := r.SetLevel("a..b", metrics.Debug); !errors.Is(err, metrics.ErrInvalid) {
		t.Fatalf("invalid name: %v", err)
	}
	for _, s := range []string{"disabled", "RUNTIME", "Debug", "inherit"} {
		if _, err := metrics.ParseLevel(s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := metrics.ParseLevel("loud"); err == nil {
		t.Fatal("ParseLevel accepted loud")
	}
}

func TestLabelBudget(t *testing.T) {
	r := newReg(t, &metrics.RegistryOptions{MaxLabelSets: 3})
	v := metrics.Must(r.CounterVec(metrics.Opts{Name: "per.user", Labels: []string{"user"}}))
	for i := range 3 {
		metrics.Must(v.WithValues(fmt.Sprint(i))).Inc()
	}
	for i := range 2 {
		_, err := v.WithValues(fmt.Sprint("x", i))
		wantErr(t, err, metrics.ErrLabelBudget, "per_user_total holds 3 label sets")
	}
	// Known label sets still work past the budget.
	metrics.Must(v.WithValues("0")).Inc()
	if v.Overflow() != 2 {
		t.Fatalf("overflow %d", v.Overflow())
	}
	f := family(t, r, "eventmetrics_label_sets_overflow_total")
	if f == nil || f.GetMetric()[0].GetCounter().GetValue() != 2 || labelsOf(f.GetMetric()[0])["metric"] != "per_user_total" {
		t.Fatalf("overflow not reported: %v", f)
	}
	// A per-metric budget overrides the registry's.
	w := metrics.Must(r.GaugeVec(metrics.Opts{Name: "small", Labels: []string{"k"}, MaxLabelSets: 1}))
	metrics.Must(w.WithValues("a"))
	if _, err := w.WithValues("b"); !errors.Is(err, metrics.ErrLabelBudget) {
		t.Fatal(err)
	}
}

func TestTTLExpiry(t *testing.T) {
	now := time.Unix(5000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r := newReg(t, &metrics.RegistryOptions{TTL: time.Minute, Now: clock})
	v := metrics.Must(r.CounterVec(metrics.Opts{Name: "sessions", Labels: []string{"id"}}))
	single := metrics.Must(r.Counter(metrics.Opts{Name: "total"}))
	a := metrics.Must(v.WithValues("a"))
	b := metrics.Must(v.WithValues("b"))
	a.Inc()
	b.Inc()
	single.Inc()
	count := func() int {
		f := family(t, r, "sessions_total")
		return len(f.GetMetric())
	}
	if count() != 2 {
		t.Fatal("want 2 label sets")
	}
	for range 4 { // b stays busy, a idles for 2 minutes
		advance(30 * time.Second)
		b.Inc()
		count()
	}
	if n := count(); n != 1 || v.Len() != 1 {
		t.Fatalf("after TTL: %d exposed, %d held, want 1", n, v.Len())
	}
	if family(t, r, "total_total") == nil {
		t.Fatal("a metric without labels expired")
	}
	// The held handle of an expired set comes back on its next use, value kept.
	a.Inc()
	if v.Len() != 2 || a.Value() != 2 {
		t.Fatalf("revived: %d sets, value %v", v.Len(), a.Value())
	}
	// Expired, then replaced by a fresh handle: the old one forwards to it.
	for range 4 {
		advance(30 * time.Second)
		b.Inc()
		count()
	}
	if v.Len() != 1 {
		t.Fatalf("a did not expire again: %d", v.Len())
	}
	a2 := metrics.Must(v.WithValues("a"))
	if a2 == a || a2.Value() != 0 {
		t.Fatal("want a fresh handle")
	}
	a.Inc()
	if a2.Value() != 1 {
		t.Fatalf("old handle did not forward: %v", a2.Value())
	}
}

func TestCollectors(t *testing.T) {
	r := newReg(t, nil)
	metrics.Must(r.Counter(metrics.Opts{Name: "own"}))
	calls := 0
	c := metrics.CollectorFunc(func() ([]*dto.MetricFamily, error) {
		calls++
		return []*dto.MetricFamily{{
			Name: proto.String("custom_temperature"), Help: proto.String("Temp."), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(21.5)}}},
		}}, nil
	})
	if err := r.RegisterCollector(c); err != nil {
		t.Fatal(err)
	}
	f := family(t, r, "custom_temperature")
	if f == nil || f.GetMetric()[0].GetGauge().GetValue() != 21.5 {
		t.Fatalf("collector family %v", f)
	}
	// A collector whose family collides with a metric or another collector.
	dup := metrics.CollectorFunc(func() ([]*dto.MetricFamily, error) {
		return []*dto.MetricFamily{{Name: proto.String("own_total"), Type: dto.MetricType_COUNTER.Enum()}}, nil
	})
	wantErr(t, r.RegisterCollector(dup), metrics.ErrDuplicate, `"own_total" is already registered`)
	_, err := r.Gauge(metrics.Opts{Name: "custom_temperature"})
	wantErr(t, err, metrics.ErrDuplicate, "already registered")
	bad := metrics.CollectorFunc(func() ([]*dto.MetricFamily, error) {
		return []*dto.MetricFamily{{Name: proto.String("bad name")}}, nil
	})
	wantErr(t, r.RegisterCollector(bad), metrics.ErrInvalid, `"bad name"`)
	failing := metrics.CollectorFunc(func() ([]*dto.MetricFamily, error) { return nil, errors.New("sensor offline") })
	if err := r.RegisterCollector(failing); err == nil || !strings.Contains(err.Error(), "sensor offline") {
		t.Fatalf("failing collector: %v", err)
	}
	// A collector that starts failing after registration: Gather returns
	// the rest and the error.
	fail := false
	flaky := metrics.CollectorFunc(func() ([]*dto.MetricFamily, error) {
		if fail {
			return nil, errors.New("flaky down")
		}
		return []*dto.MetricFamily{{Name: proto.String("flaky_up"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}}, nil
	})
	if err := r.RegisterCollector(flaky); err != nil {
		t.Fatal(err)
	}
	fail = true
	fams, err := r.Gather()
	if err == nil || !strings.Contains(err.Error(), "flaky down") || len(fams) < 2 {
		t.Fatalf("gather with a failing collector: %d families, %v", len(fams), err)
	}
	if !r.UnregisterCollector(flaky) || r.UnregisterCollector(flaky) {
		t.Fatal("unregister collector")
	}
	if err := r.RegisterCollector(c); !errors.Is(err, metrics.ErrDuplicate) {
		t.Fatalf("collector registered twice: %v", err)
	}
	if !r.UnregisterCollector(c) || family(t, r, "custom_temperature") != nil {
		t.Fatal("collector not removed")
	}
	if calls < 2 {
		t.Fatalf("collector called %d times", calls)
	}
}

func TestShortAPI(t *testing.T) {
	// The package-level functions use Default; names are unique to this test.
	if err := metrics.Incr("short.jobs", 1); err != nil {
		t.Fatal(err)
	}
	if err := metrics.Incr("short.jobs", 2); err != nil {
		t.Fatal(err)
	}
	if err := metrics.Set("short.users", 42); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		if err := metrics.Record("short.latency", float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if f := family(t, metrics.Default, "short_jobs_total"); f.GetMetric()[0].GetCounter().GetValue() != 3 {
		t.Fatalf("incr: %v", f)
	}
	if f := family(t, metrics.Default, "short_users"); f.GetMetric()[0].GetGauge().GetValue() != 42 {
		t.Fatalf("set: %v", f)
	}
	if f := family(t, metrics.Default, "short_latency"); f.GetMetric()[0].GetSummary().GetSampleCount() != 4 {
		t.Fatalf("record: %v", f)
	}
	wantErr(t, metrics.Set("short.jobs", 1), metrics.ErrType, `"short.jobs" is a counter, not a gauge`)
	wantErr(t, metrics.Incr("short.jobs", -1), metrics.ErrInvalid, "finite and >= 0")
	wantErr(t, metrics.Record("not a name", 1), metrics.ErrInvalid, "name")
	// Concurrent first use of one name from many goroutines.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if err := metrics.Incr("short.race", 1); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if f := family(t, metrics.Default, "short_race_total"); f.GetMetric()[0].GetCounter().GetValue() != 800 {
		t.Fatalf("lost increments: %v", f)
	}
}

// TestConcurrent hammers every type, label binding, levels, expiry and
// gathering at once; run it with -race.
func TestConcurrent(t *testing.T) {
	now := time.Unix(0, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Second); return now }
	r := newReg(t, &metrics.RegistryOptions{TTL: 10 * time.Second, Now: clock})
	cv := metrics.Must(r.CounterVec(metrics.Opts{Name: "c", Labels: []string{"k"}}))
	gv := metrics.Must(r.GaugeVec(metrics.Opts{Name: "g", Labels: []string{"k"}}))
	hv := metrics.Must(r.HistogramVec(metrics.HistogramOpts{Opts: metrics.Opts{Name: "h", Labels: []string{"k"}}}))
	sv := metrics.Must(r.SummaryVec(metrics.SummaryOpts{Opts: metrics.Opts{Name: "s", Labels: []string{"k"}}}))
	total := metrics.Must(r.Counter(metrics.Opts{Name: "total"}))
	const workers, n = 4, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range n {
				k := fmt.Sprint(i % 7)
				metrics.Must(cv.WithValues(k)).Inc()
				metrics.Must(gv.WithValues(k)).Add(1)
				metrics.Must(hv.WithValues(k)).Observe(float64(i))
				if i%10 == 0 {
					metrics.Must(sv.WithValues(k)).Observe(float64(w))
				}
				total.Inc()
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			if _, err := r.Gather(); err != nil {
				t.Error(err)
				return
			}
			_ = r.SetLevel("zzz", metrics.Debug)
		}
	})
	wg.Wait()
	if got := total.Value(); got != workers*n {
		t.Fatalf("total %v, want %d", got, workers*n)
	}
}
