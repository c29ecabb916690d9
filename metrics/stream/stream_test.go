package stream_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/metrics/stream"
	"github.com/eventmetrics/eventmetrics/query"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/cockroachdb/pebble/v2.(*ConcurrencyLimitScheduler).periodicGranter"))
}

// collector is a callback sink that keeps what it receives.
type collector struct {
	mu  sync.Mutex
	els []stream.Element
}

func (c *collector) sink() stream.Sink {
	return stream.SinkFunc(func(els []stream.Element) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.els = append(c.els, els...)
		return nil
	})
}

func (c *collector) get() []stream.Element {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]stream.Element(nil), c.els...)
}

func openDB(t testing.TB) *engine.DB {
	t.Helper()
	db, err := engine.Open(t.TempDir(), nil)
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

func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// TestWindowsEqualQueryLayer sends random observations (late and out of
// order within the allowed lateness, with NaNs) to a time-windowed stream
// and to the engine, and checks every emitted aggregate against the query
// layer's GroupBy + Step over the stored observations.
func TestWindowsEqualQueryLayer(t *testing.T) {
	rnd := testutil.Rand(t)
	db := openDB(t)
	var got collector
	const window = 10 * time.Second
	s, err := stream.New(stream.Options{
		Name:     "latency",
		Aggs:     []stream.Agg{stream.Sum, stream.Count, stream.Mean, stream.Min, stream.Max, stream.P(50), stream.P(99)},
		Window:   window,
		Lateness: 30 * time.Second,
		Sinks:    []stream.Sink{got.sink()},
	})
	if err != nil {
		t.Fatal(err)
	}
	routes := []string{"/a", "/b", "/c"}
	base := time.Unix(1_700_000_000, 0)
	for i := range 3000 {
		// Event times advance ~0.1 s per point with up to 20 s of jitter
		// backwards (within Lateness).
		ts := base.Add(time.Duration(i)*100*time.Millisecond - time.Duration(rnd.Int64N(int64(20*time.Second))))
		v := rnd.NormFloat64()*10 + 50
		if rnd.IntN(50) == 0 {
			v = math.NaN()
		}
		tags := map[string]string{"route": routes[rnd.IntN(len(routes))]}
		if err := db.ObserveAt(ts, "latency", v, tags); err != nil {
			t.Fatal(err)
		}
		if err := s.SendAt(ts, v, tags); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if s.Late() != 0 {
		t.Fatalf("%d late", s.Late())
	}
	q := db.Query("latency").GroupBy("route").Step(window)
	aggs, err := q.AggregateBy(query.Sum, query.Count, query.Mean, query.Min, query.Max)
	if err != nil {
		t.Fatal(err)
	}
	pcts, err := q.PercentilesBy(50, 99)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	names := []string{"sum", "count", "mean", "min", "max"}
	for _, row := range aggs {
		for i, start := range row.Times {
			for j, n := range names {
				want[fmt.Sprintf("latency.%s|%s|%d", n, row.Label("route"), start)] = row.Values[i][j]
			}
		}
	}
	for _, row := range pcts {
		for i, start := range row.Times {
			want[fmt.Sprintf("latency.p50|%s|%d", row.Label("route"), start)] = row.Values[i][0]
			want[fmt.Sprintf("latency.p99|%s|%d", row.Label("route"), start)] = row.Values[i][1]
		}
	}
	els := got.get()
	seen := map[string]bool{}
	for _, el := range els {
		k := fmt.Sprintf("%s|%s|%d", el.Name, el.Tags["route"], el.Time)
		if seen[k] {
			t.Fatalf("%s emitted twice", k)
		}
		seen[k] = true
		w, ok := want[k]
		if !ok {
			// A group whose values are all NaN: the query layer has no
			// row for it; the stream reports count 0.
			if el.Name == "latency.count" && el.Value != 0 {
				t.Fatalf("%s = %v not in the query result", k, el.Value)
			}
			continue
		}
		if !near(el.Value, w) {
			t.Fatalf("%s: stream %v, query %v", k, el.Value, w)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Fatalf("query has %s, the stream did not emit it", k)
		}
	}
	if len(want) < 7*3*25 {
		t.Fatalf("only %d aggregates compared", len(want))
	}
}

func TestCountWindowsAndTags(t *testing.T) {
	var got collector
	s, err := stream.New(stream.Options{
		Name:        "m",
		Aggs:        []stream.Agg{stream.Sum},
		DefaultTags: map[string]string{"foo": "BAR!"},
		Batch:       3,
		Sinks:       []stream.Sink{got.sink()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(100, 0)
	for i, e := range []struct {
		v    float64
		tags map[string]string
	}{{1, nil}, {2, nil}, {1, map[string]string{"foo": "bar"}}, {5, map[string]string{"x": "y"}}} {
		if err := s.SendAt(t0.Add(time.Duration(i)*time.Second), e.v, e.tags); err != nil {
			t.Fatal(err)
		}
	}
	els := got.get()
	if len(els) != 2 || els[0].Value != 3 || els[0].Tags["foo"] != "BAR!" || els[1].Value != 1 || els[1].Tags["foo"] != "bar" || els[0].Time != t0.UnixNano() {
		t.Fatalf("first batch %+v", els)
	}
	if err := s.Flush(); err != nil { // the partial batch
		t.Fatal(err)
	}
	els = got.get()
	if len(els) != 3 || els[2].Value != 5 || els[2].Tags["x"] != "y" || els[2].Tags["foo"] != "BAR!" || els[2].Name != "m.sum" {
		t.Fatalf("flushed %+v", els)
	}
}

func TestLateAndFlushBefore(t *testing.T) {
	var got collector
	s, err := stream.New(stream.Options{Name: "x", Aggs: []stream.Agg{stream.Count}, Window: time.Minute, Sinks: []stream.Sink{got.sink()}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(600, 0) // a window start
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SendAt(t0, 1, nil))
	must(s.SendAt(t0.Add(59*time.Second), 1, nil))
	must(s.SendAt(t0.Add(61*time.Second), 1, nil)) // closes the first window
	if els := got.get(); len(els) != 1 || els[0].Value != 2 || els[0].Time != t0.UnixNano() {
		t.Fatalf("%+v", els)
	}
	err = s.SendAt(t0.Add(time.Second), 1, nil)
	if !errors.Is(err, stream.ErrLate) || s.Late() != 1 {
		t.Fatalf("late: %v (%d)", err, s.Late())
	}
	must(s.FlushBefore(t0.Add(2 * time.Minute)))
	if els := got.get(); len(els) != 2 || els[1].Value != 1 {
		t.Fatalf("%+v", els)
	}
	must(s.FlushBefore(t0.Add(10 * time.Minute))) // nothing open: nothing emitted
	if len(got.get()) != 2 {
		t.Fatal("empty window emitted")
	}
}

func TestSinks(t *testing.T) {
	db := openDB(t)
	var buf bytes.Buffer
	s, err := stream.New(stream.Options{
		Name:   "req.latency",
		Aggs:   []stream.Agg{stream.Max, stream.P(99.9)},
		Window: time.Second,
		Sinks:  []stream.Sink{stream.EngineSink(db), stream.WriterSink(&buf)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0).UTC()
	for i := range 10 {
		if err := s.SendAt(t0.Add(time.Duration(i)*100*time.Millisecond), float64(i), map[string]string{"route": `a"b\c`}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "2023-11-14T22:13:20Z req.latency.max{route=\"a\\\"b\\\\c\"} 9\n" +
		"2023-11-14T22:13:20Z req.latency.p99.9{route=\"a\\\"b\\\\c\"} 8.991000000000001\n"
	if buf.String() != want {
		t.Fatalf("writer sink:\n%s\nwant:\n%s", buf.String(), want)
	}
	ts, vs, err := db.Query("req.latency.max", query.Eq("route", `a"b\c`)).Points()
	if err != nil || len(vs) != 1 || vs[0] != 9 || ts[0] != t0.UnixNano() {
		t.Fatalf("engine sink: %v %v %v", ts, vs, err)
	}
	// A failing sink's error is returned by the send that emits.
	fail, err := stream.New(stream.Options{Name: "f", Aggs: []stream.Agg{stream.Sum}, Batch: 1,
		Sinks: []stream.Sink{stream.SinkFunc(func([]stream.Element) error { return errors.New("disk full") })}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fail.Send(1, nil); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("sink error: %v", err)
	}
}

func TestOptionsErrors(t *testing.T) {
	sum := []stream.Agg{stream.Sum}
	for _, c := range []struct {
		o    stream.Options
		want string
	}{
		{stream.Options{Aggs: sum, Window: time.Second}, "empty stream name"},
		{stream.Options{Name: "a", Aggs: sum}, "either Window or Batch"},
		{stream.Options{Name: "a", Aggs: sum, Window: time.Second, Batch: 2}, "either Window or Batch"},
		{stream.Options{Name: "a", Aggs: sum, Window: time.Second, Lateness: -1}, "must not be negative"},
		{stream.Options{Name: "a", Window: time.Second}, "no aggregation"},
		{stream.Options{Name: "a", Aggs: []stream.Agg{stream.Sum, stream.Sum}, Window: time.Second}, `"sum" given twice`},
		{stream.Options{Name: "a", Aggs: []stream.Agg{{Name: "x"}}, Window: time.Second}, "needs a name and a function"},
		{stream.Options{Name: "a", Aggs: sum, Window: time.Second, Sinks: []stream.Sink{nil}}, "nil sink"},
		{stream.Options{Name: "a", Aggs: []stream.Agg{stream.P(101)}, Window: time.Second}, "percentile 101 is outside [0, 100]"},
		{stream.Options{Name: "a", Aggs: []stream.Agg{stream.P(math.NaN())}, Window: time.Second}, "outside [0, 100]"},
	} {
		_, err := stream.New(c.o)
		if !errors.Is(err, stream.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
}

func TestCoordinator(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var a, b collector
	c := stream.NewCoordinator(clock)
	lat, _ := stream.New(stream.Options{Name: "lat", Aggs: []stream.Agg{stream.Mean, stream.P(90)}, Window: time.Second})
	req, _ := stream.New(stream.Options{Name: "req", Aggs: []stream.Agg{stream.Count}, Window: time.Second})
	if err := c.Add(lat, a.sink(), b.sink()); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(req, b.sink()); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(req); !errors.Is(err, stream.ErrInvalid) {
		t.Fatalf("duplicate stream: %v", err)
	}
	for i := range 5 {
		if err := c.Send("lat", float64(i), nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Send("req", 1, map[string]string{"code": "200"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Send("nope", 1, nil); !errors.Is(err, stream.ErrInvalid) {
		t.Fatalf("unknown stream: %v", err)
	}
	if err := c.Start(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(time.Millisecond); err == nil {
		t.Fatal("started twice")
	}
	mu.Lock()
	now = now.Add(2 * time.Second) // the windows end: the timer closes them
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for len(b.get()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("timer did not close the windows: %+v", b.get())
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.SendAt("lat", now, 7, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // flushes the new window
		t.Fatal(err)
	}
	ae := a.get()
	if len(ae) != 4 || ae[0].Name != "lat.mean" || ae[0].Value != 2 || ae[1].Name != "lat.p90" || !near(ae[1].Value, 3.6) || ae[2].Value != 7 {
		t.Fatalf("sink a: %+v", ae)
	}
	var count float64
	for _, el := range b.get() {
		if el.Name == "req.count" {
			count += el.Value
		}
	}
	if count != 5 {
		t.Fatalf("req.count %v", count)
	}
}

func TestTimerAndConcurrentSend(t *testing.T) {
	var got collector
	s, _ := stream.New(stream.Options{Name: "op", Aggs: []stream.Agg{stream.Count, stream.Sum}, Batch: 100, Sinks: []stream.Sink{got.sink()}})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 250 {
				if err := s.Time(time.Millisecond, nil)(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var n float64
	for _, el := range got.get() {
		if el.Name == "op.count" {
			n += el.Value
		}
	}
	if n != 1000 {
		t.Fatalf("count %v", n)
	}
}

func BenchmarkSend(b *testing.B) {
	s, _ := stream.New(stream.Options{Name: "lat", Aggs: []stream.Agg{stream.Sum, stream.P(99)}, Window: time.Second,
		Sinks: []stream.Sink{stream.SinkFunc(func([]stream.Element) error { return nil })}})
	tags := map[string]string{"route": "/api"}
	t0 := time.Unix(0, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.SendAt(t0.Add(time.Duration(i)*time.Millisecond), float64(i%100), tags); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
