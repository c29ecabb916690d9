package promapi_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/promapi"
	"github.com/eventmetrics/eventmetrics/query"
)

func newQueryable(t testing.TB, db *engine.DB, opts promapi.QueryableOptions) *promapi.Queryable {
	t.Helper()
	q, err := promapi.NewQueryable(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// observe writes one point (ns) or fails the test.
func observe(t testing.TB, db *engine.DB, name string, ls engine.Labels, ns int64, v float64) {
	t.Helper()
	if err := db.ObserveAt(nsTime(ns), name, v, ls); err != nil {
		t.Fatal(err)
	}
}

// got is a Select's result: series in order with their samples.
type got struct {
	keys    []string
	samples map[string][]sample
}

func selectSeries(t testing.TB, q storage.Querier, hints *storage.SelectHints, ms ...*labels.Matcher) got {
	t.Helper()
	ss := q.Select(context.Background(), true, hints, ms...)
	g := got{samples: map[string][]sample{}}
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		k := keyOf(s.Labels().Map())
		g.keys = append(g.keys, k)
		it = s.Iterator(it)
		var out []sample
		last := int64(math.MinInt64)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				t.Fatalf("%s: value type %v", k, vt)
			}
			ts, v := it.At()
			if ts <= last {
				t.Fatalf("%s: timestamp %d after %d", k, ts, last)
			}
			if it.AtT() != ts {
				t.Fatalf("AtT %d, At %d", it.AtT(), ts)
			}
			last = ts
			out = append(out, sample{ts, v})
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		g.samples[k] = out
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return g
}

func matchers(t testing.TB, sel string) []*labels.Matcher {
	t.Helper()
	ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestSelectMatchers(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	model := []labels.Labels{
		labels.FromStrings("__name__", "a", "x", "1"),
		labels.FromStrings("__name__", "a", "x", "2"),
		labels.FromStrings("__name__", "b", "x", "1", "y", "z"),
		labels.FromStrings("__name__", "b", "y", "w"),
		labels.FromStrings("__name__", "c"),
		labels.FromStrings("__name__", "c", "x", "line\nbreak"),
	}
	for i, ls := range model {
		m := ls.Map()
		name := m["__name__"]
		delete(m, "__name__")
		observe(t, db, name, m, 1e9, float64(i))
	}
	q, err := newQueryable(t, db, promapi.QueryableOptions{}).Querier(0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, sel := range []string{
		`{__name__="a"}`,
		`{__name__=~"a|b"}`,
		`{__name__=~".+", x!="1"}`,
		`{__name__=~".+", x=""}`,
		`{__name__=~".+", x=~""}`,
		`{__name__=~".+", x=~"1|2"}`,
		`b{y!~"z"}`,
		`{__name__!="a", x="1"}`,
		`{__name__=~"[ab]", x=~".*"}`,
		`{x=~"line.break"}`,
		`{__name__="nosuch"}`,
		`{x="3"}`,
	} {
		t.Run(sel, func(t *testing.T) {
			ms := matchers(t, sel)
			// Prometheus' own matchers over the model are the reference.
			var want []string
			for _, ls := range model {
				ok := true
				for _, m := range ms {
					ok = ok && m.Matches(ls.Get(m.Name))
				}
				if ok {
					want = append(want, keyOf(ls.Map()))
				}
			}
			g := selectSeries(t, q, nil, ms...)
			if !slices.Equal(g.keys, want) {
				t.Errorf("%q, want %q", g.keys, want)
			}
		})
	}
}

func TestSelectTimeRange(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	ls := engine.Labels{"k": "v"}
	// Around ms 100 and ms 200: the last ns before, the first ns of, the
	// last ns of, the first ns after.
	for _, ns := range []int64{100e6 - 1, 100e6, 150e6, 200e6 + 999_999, 201e6} {
		observe(t, db, "m", ls, ns, float64(ns))
	}
	qy := newQueryable(t, db, promapi.QueryableOptions{})
	for _, c := range []struct {
		name       string
		mint, maxt int64
		hints      *storage.SelectHints
		want       []sample
	}{
		{"querier range", 100, 200, nil, []sample{{100, 100e6}, {150, 150e6}, {200, 200e6 + 999_999}}},
		{"hints narrow", 0, 1000, &storage.SelectHints{Start: 101, End: 200}, []sample{{150, 150e6}, {200, 200e6 + 999_999}}},
		{"hints cannot widen", 150, 150, &storage.SelectHints{Start: 0, End: 1000}, []sample{{150, 150e6}}},
		{"one ms", 99, 99, nil, []sample{{99, 100e6 - 1}}},
		{"unbounded", math.MinInt64, math.MaxInt64, nil, []sample{{99, 100e6 - 1}, {100, 100e6}, {150, 150e6}, {200, 200e6 + 999_999}, {201, 201e6}}},
		{"empty range", 300, 200, nil, nil},
		{"no points in range", 151, 199, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := qy.Querier(c.mint, c.maxt)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			g := selectSeries(t, q, c.hints, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
			if c.want == nil {
				if len(g.keys) != 0 {
					t.Errorf("got %v, want no series", g.samples)
				}
				return
			}
			if s := g.samples[`m{k="v"}`]; !slices.Equal(s, c.want) {
				t.Errorf("%v, want %v", s, c.want)
			}
		})
	}
}

// TestSameMillisecond pins the rule: points in time order (equal
// timestamps in write order, also across chunks of different ages), the
// last of each millisecond kept.
func TestSameMillisecond(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	ls := engine.Labels{}
	observe(t, db, "h", ls, 1_000_100, 1)  // ms 1
	observe(t, db, "h", ls, 1_000_500, 2)  // ms 1
	observe(t, db, "h", ls, 1_000_500, 3)  // ms 1, same ns, written later: wins over 2
	observe(t, db, "h", ls, 1_000_300, 4)  // ms 1, late but earlier in time: loses
	observe(t, db, "h", ls, -1, 7)         // ms -1 (floor before 1970), its greatest ns: wins
	observe(t, db, "h", ls, -1_000_000, 8) // ms -1, written later but earlier in time
	observe(t, db, "h", ls, -1_000_001, 9) // ms -2
	observe(t, db, "c", ls, 2_000_000, 10) // a counter: running totals
	observe(t, db, "c", ls, 2_000_000, 11) // two events at one ns
	observe(t, db, "c", ls, 2_999_999, 13) // a third in the same ms
	observe(t, db, "c", ls, 3_000_000, 14)
	observe(t, db, "g", ls, 5_000_000, 5) // chunk A
	observe(t, db, "g", ls, 9_000_000, 6)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Chunk B, written later, starts before chunk A and shares its
	// timestamp 5 ms: the store keeps it before A (by min time), but its
	// point is the later write and must win.
	db = openDB(t, dir)
	observe(t, db, "g", ls, 4_000_000, 20)
	observe(t, db, "g", ls, 5_000_000, 21)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	observe(t, db, "g", ls, 9_000_000, 22) // in the head: the latest write at 9 ms

	// The premise: the source hands out a younger chunk before an older one.
	var order []uint64
	err := db.Select("g", nil, math.MinInt64, math.MaxInt64, query.Hints{}, func(_ uint64, _ string, _ []index.Label, it query.ChunkIterator) error {
		for it.Next() {
			order = append(order, it.At().Seq)
		}
		return it.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if slices.IsSorted(order) {
		t.Fatalf("chunk seqs in source order %v: the test does not exercise out-of-seq chunks", order)
	}

	q, err := newQueryable(t, db, promapi.QueryableOptions{}).Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	g := selectSeries(t, q, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", "g|h|c"))
	for k, want := range map[string][]sample{
		"h{}": {{-2, 9}, {-1, 7}, {1, 3}},
		"c{}": {{2, 13}, {3, 14}},
		"g{}": {{4, 20}, {5, 21}, {9, 22}},
	} {
		if !slices.Equal(g.samples[k], want) {
			t.Errorf("%s: %v, want %v", k, g.samples[k], want)
		}
	}
}

func TestSpecialValues(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	nan := math.Float64frombits(0x7ff8_0000_dead_beef)
	vals := []float64{nan, math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.MaxFloat64, math.SmallestNonzeroFloat64}
	for i, v := range vals {
		observe(t, db, "s", nil, int64(i+1)*1e6, v)
	}
	qy := newQueryable(t, db, promapi.QueryableOptions{})
	q, err := qy.Querier(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	g := selectSeries(t, q, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "s"))
	s := g.samples["s{}"]
	if len(s) != len(vals) {
		t.Fatalf("%v", s)
	}
	for i, v := range vals {
		if math.Float64bits(s[i].v) != math.Float64bits(v) || s[i].t != int64(i+1) {
			t.Errorf("sample %d: %d %x, want %d %x", i, s[i].t, math.Float64bits(s[i].v), i+1, math.Float64bits(v))
		}
	}

	// Through PromQL: NaN and ±Inf are values; a stored staleness marker
	// ends the series for instant selectors.
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	instantAt := func(expr string, ms int64) promql.Vector {
		t.Helper()
		qry, err := eng.NewInstantQuery(context.Background(), qy, nil, expr, time.UnixMilli(ms))
		if err != nil {
			t.Fatal(err)
		}
		defer qry.Close()
		res := qry.Exec(context.Background())
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		v, err := res.Vector()
		if err != nil {
			t.Fatal(err)
		}
		return slices.Clone(v)
	}
	if v := instantAt("s", 1); len(v) != 1 || !math.IsNaN(v[0].F) {
		t.Errorf("NaN: %v", v)
	}
	if v := instantAt("s", 2); len(v) != 1 || !math.IsInf(v[0].F, 1) {
		t.Errorf("+Inf: %v", v)
	}
	if v := instantAt("sum(s)", 3); len(v) != 1 || !math.IsInf(v[0].F, -1) {
		t.Errorf("sum of -Inf: %v", v)
	}
	if v := instantAt("max_over_time(s[3ms])", 6); len(v) != 1 || v[0].F != math.MaxFloat64 {
		t.Errorf("max_over_time: %v", v)
	}
	observe(t, db, "s", nil, 50e6, math.Float64frombits(value.StaleNaN))
	if v := instantAt("s", 49); len(v) != 1 {
		t.Errorf("before the staleness marker: %v", v)
	}
	if v := instantAt("s", 50); len(v) != 0 {
		t.Errorf("at the staleness marker: %v, want nothing", v)
	}
	if v := instantAt("s", 60); len(v) != 0 {
		t.Errorf("after the staleness marker: %v, want nothing", v)
	}
}

func TestSelectEmptyAndLabelsOnly(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	observe(t, db, "m", engine.Labels{"a": "1"}, 10e6, 1)
	observe(t, db, "m", engine.Labels{"a": "2"}, 1000e6, 2)
	q, err := newQueryable(t, db, promapi.QueryableOptions{}).Querier(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if g := selectSeries(t, q, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "none")); len(g.keys) != 0 {
		t.Errorf("no such metric: %v", g.keys)
	}
	// Only a=1 has points in [0, 100] ms.
	g := selectSeries(t, q, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	if want := []string{`m{a="1"}`}; !slices.Equal(g.keys, want) {
		t.Errorf("%q, want %q", g.keys, want)
	}
	// Labels only: the series, without samples.
	g = selectSeries(t, q, &storage.SelectHints{Start: 0, End: 100, Func: "series"}, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	if want := []string{`m{a="1"}`}; !slices.Equal(g.keys, want) || len(g.samples[want[0]]) != 0 {
		t.Errorf("labels only: %v, want %q without samples", g.samples, want)
	}
	// A limit.
	q2, err := newQueryable(t, db, promapi.QueryableOptions{}).Querier(0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	g = selectSeries(t, q2, &storage.SelectHints{Start: 0, End: 10_000, Limit: 1}, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	if want := []string{`m{a="1"}`}; !slices.Equal(g.keys, want) {
		t.Errorf("limit 1: %q, want %q", g.keys, want)
	}
}

func TestSampleIteratorSeek(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	for _, ms := range []int64{10, 20, 30, 40} {
		observe(t, db, "m", nil, ms*1e6, float64(ms))
	}
	q, err := newQueryable(t, db, promapi.QueryableOptions{}).Querier(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	if !ss.Next() {
		t.Fatal("no series")
	}
	s := ss.At()
	if ss.Next() || ss.At() != nil {
		t.Fatal("a second series")
	}
	it := s.Iterator(nil)
	steps := []struct {
		seek  int64 // -1: Next
		want  chunkenc.ValueType
		wantT int64
	}{
		{5, chunkenc.ValFloat, 10},
		{10, chunkenc.ValFloat, 10},
		{21, chunkenc.ValFloat, 30},
		{15, chunkenc.ValFloat, 30}, // never backwards
		{-1, chunkenc.ValFloat, 40},
		{40, chunkenc.ValFloat, 40},
		{41, chunkenc.ValNone, 0},
		{-1, chunkenc.ValNone, 0},
		{0, chunkenc.ValNone, 0},
	}
	for i, st := range steps {
		var vt chunkenc.ValueType
		if st.seek < 0 {
			vt = it.Next()
		} else {
			vt = it.Seek(st.seek)
		}
		if vt != st.want {
			t.Fatalf("step %d: %v, want %v", i, vt, st.want)
		}
		if vt == chunkenc.ValFloat {
			if ts, v := it.At(); ts != st.wantT || v != float64(st.wantT) {
				t.Fatalf("step %d: At %d %v, want %d", i, ts, v, st.wantT)
			}
		}
	}
	if it.AtST() != 0 || it.Err() != nil {
		t.Error("AtST or Err")
	}
	// Reuse: the same iterator restarts on the series.
	it2 := s.Iterator(it)
	if it2 != it {
		t.Error("the iterator was not reused")
	}
	if it2.Next() != chunkenc.ValFloat || it2.AtT() != 10 {
		t.Errorf("reused iterator at %d", it2.AtT())
	}
}

func TestLabelNamesAndValues(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	observe(t, db, "up", engine.Labels{"job": "api", "zone": "eu"}, 1e9, 1)
	observe(t, db, "up", engine.Labels{"job": "db"}, 2e9, 1)
	observe(t, db, "temp", engine.Labels{"room": "hall", "zone": "us"}, 100e9, 1)
	qy := newQueryable(t, db, promapi.QueryableOptions{})
	ctx := context.Background()
	for _, c := range []struct {
		name       string
		mint, maxt int64
		sel        string
		hints      *storage.LabelHints
		names      []string
		zones      []string
	}{
		{"everything", math.MinInt64, math.MaxInt64, "", nil, []string{"__name__", "job", "room", "zone"}, []string{"eu", "us"}},
		{"matched", math.MinInt64, math.MaxInt64, `up`, nil, []string{"__name__", "job", "zone"}, []string{"eu"}},
		{"matched regexp", math.MinInt64, math.MaxInt64, `{job=~"d.*"}`, nil, []string{"__name__", "job"}, []string{}},
		{"no match", math.MinInt64, math.MaxInt64, `{job="x"}`, nil, []string{}, []string{}},
		{"time range", 0, 50_000, "", nil, []string{"__name__", "job", "zone"}, []string{"eu"}},
		{"time range and matcher", 1500, 50_000, `up`, nil, []string{"__name__", "job"}, []string{}},
		{"late range", 50_000, 200_000, "", nil, []string{"__name__", "room", "zone"}, []string{"us"}},
		{"limit", math.MinInt64, math.MaxInt64, "", &storage.LabelHints{Limit: 2}, []string{"__name__", "job"}, []string{"eu", "us"}},
		{"limit 1", math.MinInt64, math.MaxInt64, "", &storage.LabelHints{Limit: 1}, []string{"__name__"}, []string{"eu"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := qy.Querier(c.mint, c.maxt)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			var ms []*labels.Matcher
			if c.sel != "" {
				ms = matchers(t, c.sel)
			}
			names, _, err := q.LabelNames(ctx, c.hints, ms...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names, c.names) {
				t.Errorf("names %q, want %q", names, c.names)
			}
			zones, _, err := q.LabelValues(ctx, "zone", c.hints, ms...)
			if err != nil {
				t.Fatal(err)
			}
			if c.hints != nil {
				c.zones = c.zones[:min(len(c.zones), c.hints.Limit)]
			}
			if !slices.Equal(zones, c.zones) {
				t.Errorf("zones %q, want %q", zones, c.zones)
			}
		})
	}
	q, err := qy.Querier(0, 50_000)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	vals, _, err := q.LabelValues(ctx, "__name__", nil)
	if err != nil || !slices.Equal(vals, []string{"up"}) {
		t.Errorf("metric names in range: %q %v", vals, err)
	}
}

func TestSelectErrors(t *testing.T) {
	db := openDB(t, t.TempDir())
	for i := range 100 {
		for j := range 10 {
			observe(t, db, "m", engine.Labels{"i": fmt.Sprint(i)}, int64(j)*1e6, 1)
		}
	}
	if _, err := promapi.NewQueryable(nil, promapi.QueryableOptions{}); err == nil {
		t.Error("nil db: no error")
	}
	if _, err := promapi.NewQueryable(db, promapi.QueryableOptions{MaxSelectPoints: -1}); err == nil {
		t.Error("negative MaxSelectPoints: no error")
	}
	all := labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")
	q, err := newQueryable(t, db, promapi.QueryableOptions{MaxSelectPoints: 999}).Querier(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if ss := q.Select(context.Background(), false, nil, all); ss.Next() || !errors.Is(ss.Err(), promapi.ErrTooManyPoints) {
		t.Errorf("999 points allowed, 1000 selected: %v", ss.Err())
	}
	q, err = newQueryable(t, db, promapi.QueryableOptions{MaxSelectPoints: 1000}).Querier(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if g := selectSeries(t, q, nil, all); len(g.keys) != 100 {
		t.Errorf("1000 points allowed: %d series", len(g.keys))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ss := q.Select(ctx, false, nil, all); ss.Next() || !errors.Is(ss.Err(), context.Canceled) {
		t.Errorf("canceled: %v", ss.Err())
	}
	if _, _, err := q.LabelNames(ctx, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")); err == nil {
		// Unbounded queriers answer from the postings without reading
		// series; this one is bounded, so it reads them and sees ctx.
		t.Error("canceled LabelNames: no error")
	}
	bad := &labels.Matcher{Type: labels.MatchType(42), Name: "x", Value: "y"}
	if ss := q.Select(context.Background(), false, nil, bad); ss.Next() || ss.Err() == nil {
		t.Error("unknown matcher type: no error")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if ss := q.Select(context.Background(), false, nil, all); ss.Next() || !errors.Is(ss.Err(), engine.ErrClosed) {
		t.Errorf("closed DB: %v", ss.Err())
	}
}
