package engine_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

// rollupData is W-event-like data with out-of-order points, duplicates,
// NaN and ±Inf.
func rollupData(series, points int) ([]workload.Point, workload.Config) {
	cfg := workload.Config{Kind: workload.Event, Series: series, Points: points, OutOfOrder: 0.05, Duplicates: 0.02}
	pts, cfg := loadWorkload(cfg)
	for i := range pts {
		switch i % 211 {
		case 7:
			pts[i].V = math.NaN()
		case 100:
			pts[i].V = math.Inf(1)
		case 150:
			pts[i].V = math.Inf(-1)
		}
	}
	return pts, cfg
}

func sameFloat(a, b float64, sum bool) bool {
	if math.Float64bits(a) == math.Float64bits(b) || a == b {
		return true
	}
	if !sum || math.IsInf(a, 0) || math.IsInf(b, 0) || a != a || b != b {
		return false
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// TestRollups: windowed aggregates read from rollups equal the raw ones
// (count, min, max, last exactly; sum and mean up to the order of float
// additions), percentiles stay within the stated bound of the exact value
// at their rank and say they are approximate, late points are counted,
// and a store with rollups passes Check.
func TestRollups(t *testing.T) {
	pts, cfg := rollupData(12, 12000) // ~3.3 hours per series
	opts := &engine.Options{ChunkPoints: 256, Now: fixedClock, NoBackgroundCompaction: true,
		Rollups: []time.Duration{time.Minute, 10 * time.Minute, time.Hour}, RollupAccuracy: 0.01}
	db := open(t, t.TempDir(), opts)
	defer db.Close()
	ingest(t, db, cfg, pts, 1, 1000)
	st := compactSettled(t, db)
	if tot := db.CompactionTotals(); tot.RollupsWritten == 0 || tot.RollupsWritten != tot.BlocksWritten {
		t.Fatalf("rollups: %+v", tot)
	}
	t.Logf("compaction: %+v", st)
	if r := mustCheck(t, db); r.Rollups == 0 {
		t.Fatalf("check saw no rollups: %+v", r)
	}
	lo, _ := cfg.Range()
	metric := cfg.Metric()
	aggs := []query.Agg{query.Count, query.Sum, query.Min, query.Max, query.Mean, query.Last}
	type shape struct {
		name string
		q    func() *query.Query
	}
	base := time.Unix(0, lo).Truncate(time.Hour)
	shapes := []shape{
		{"hourly, unbounded", func() *query.Query { return db.Query(metric).GroupBy("service").Step(time.Hour) }},
		{"10 min from an aligned start", func() *query.Query {
			return db.Query(metric, query.Eq("status", "200")).From(base.Add(20 * time.Minute)).Step(10 * time.Minute).BySeries()
		}},
		{"whole range, bounds inside windows", func() *query.Query {
			return db.Query(metric).Between(time.Unix(0, lo).Add(17*time.Minute+3*time.Second), time.Unix(0, lo).Add(2*time.Hour+time.Second)).GroupBy("endpoint")
		}},
		{"step no tier divides", func() *query.Query { return db.Query(metric).Step(7 * time.Second).GroupBy("service") }},
	}
	compareAggs := func(what string) {
		for _, sh := range shapes {
			raw, err := sh.q().AggregateBy(aggs...)
			if err != nil {
				t.Fatal(err)
			}
			ro, err := sh.q().UseRollups().AggregateBy(aggs...)
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) != len(ro) {
				t.Fatalf("%s, %s: %d rows raw, %d from rollups", what, sh.name, len(raw), len(ro))
			}
			for i := range raw {
				a, b := raw[i], ro[i]
				if !slices.Equal(a.Times, b.Times) || !b.Exact() {
					t.Fatalf("%s, %s, row %v: windows %v vs %v (exact %v)", what, sh.name, a.Labels, len(a.Times), len(b.Times), b.Exact())
				}
				for w := range a.Values {
					for j, agg := range aggs {
						x, y := a.Values[w][j], b.Values[w][j]
						if !sameFloat(x, y, agg == query.Sum || agg == query.Mean) {
							t.Fatalf("%s, %s, row %v window %d: %v raw %v, from rollups %v", what, sh.name, a.Labels, a.Times[w], agg, x, y)
						}
					}
				}
			}
		}
	}
	compareAggs("after compaction")

	// Percentiles: within the bound of the exact value at the rank.
	ps := []float64{0, 50, 90, 99, 100}
	rows, err := db.Query(metric).GroupBy("service").Step(time.Hour).UseRollups().PercentilesBy(ps...)
	if err != nil {
		t.Fatal(err)
	}
	approx := 0
	for _, r := range rows {
		for w, start := range r.Times {
			vals, err := db.Query(metric, query.Eq("service", r.Label("service"))).Between(time.Unix(0, start), time.Unix(0, start).Add(time.Hour)).Values()
			if err != nil {
				t.Fatal(err)
			}
			vals = slices.DeleteFunc(vals, func(v float64) bool { return v != v })
			slices.Sort(vals)
			bound := 0.0
			if r.RelErr != nil {
				bound = r.RelErr[w]
			}
			if bound == 0 {
				continue // exact window (no rollup in it)
			}
			approx++
			if bound != 0.01 {
				t.Fatalf("bound %v, want the configured 0.01", bound)
			}
			for j, p := range ps {
				x := vals[int(math.Floor(p/100*float64(len(vals)-1)))]
				got := r.Values[w][j]
				if math.IsInf(x, 0) {
					if got != x {
						t.Fatalf("p%v: %v, want %v", p, got, x)
					}
					continue
				}
				if math.Abs(got-x) > bound*math.Abs(x)+1e-12 {
					t.Fatalf("%s window %d p%v: %v, exact %v: off by more than %v", r.Label("service"), start, p, got, x, bound)
				}
			}
		}
	}
	if approx == 0 {
		t.Fatal("no window was answered from rollups")
	}
	exact, err := db.Query(metric).GroupBy("service").Step(time.Hour).PercentilesBy(ps...)
	if err != nil || len(exact) == 0 || !exact[0].Exact() {
		t.Fatalf("without UseRollups percentiles must be exact: %v", err)
	}

	// Late points into rolled-up windows: read raw beside the rollups.
	late := make([]workload.Point, 0, 40)
	for s := 0; s < cfg.Series; s++ {
		late = append(late, workload.Point{Series: s, T: lo + int64(s)*int64(5*time.Minute), V: 1000 + float64(s)})
		late = append(late, workload.Point{Series: s, T: pts[s].T, V: -5}) // a duplicate timestamp
	}
	ingest(t, db, cfg, late, 1, 7)
	compareAggs("with late points")
	if st := compactSettled(t, db); st.BlocksOpened == 0 {
		t.Fatalf("the late points unpacked no block: %+v", st)
	}
	compareAggs("after merging the late points")
	// Every block, repacked ones included, has its three tiers (kept or
	// marked as not paying).
	if r := mustCheck(t, db); r.Rollups != 3*r.Blocks {
		t.Fatalf("%d rollup tiers for %d blocks", r.Rollups, r.Blocks)
	}
}

// TestRollupsAndRetention: windows below the retention cutoff are never
// taken from rollups (their expired points would count).
func TestRollupsAndRetention(t *testing.T) {
	now := time.Unix(1_800_000_000, 0).Truncate(time.Hour)
	opts := &engine.Options{ChunkPoints: 128, ColdAfter: time.Minute, Retention: 2 * time.Hour, Rollups: []time.Duration{time.Hour}, NoBackgroundCompaction: true,
		Now: func() time.Time { return now }}
	db := open(t, t.TempDir(), opts)
	defer db.Close()
	s, _ := db.Series("r", nil)
	var b engine.Batch
	for i := 0; i < 3*3600; i += 10 { // the last 3 hours, 1 point per 10 s
		b.Add(s, now.Add(-3*time.Hour).Add(time.Duration(i)*time.Second).UnixNano(), float64(i))
	}
	if err := db.Append(&b); err != nil {
		t.Fatal(err)
	}
	// The oldest hour is past the retention: a block keeps the chunk that
	// straddles the cutoff, and its rollup the window before it.
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	raw, err := db.Query("r").Step(time.Hour).AggregateBy(query.Count)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := db.Query("r").Step(time.Hour).UseRollups().AggregateBy(query.Count)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1 || len(ro) != 1 || !slices.Equal(raw[0].Times, ro[0].Times) {
		t.Fatalf("rows %v vs %v", raw, ro)
	}
	for i := range raw[0].Values {
		if raw[0].Values[i][0] != ro[0].Values[i][0] {
			t.Fatalf("window %d: %v raw, %v from rollups", raw[0].Times[i], raw[0].Values[i][0], ro[0].Values[i][0])
		}
	}
	if total := raw[0].Values[0][0] + raw[0].Values[1][0]; len(raw[0].Times) != 2 || total != 720 {
		t.Fatalf("want the last two hours (720 points): %v %v", raw[0].Times, raw[0].Values)
	}
}

// TestRollupTierSkipped: a tier whose windows hold too few points to pay
// is not kept (a marker says so and compaction does not retry); queries
// that could use it read the points, or a coarser tier.
func TestRollupTierSkipped(t *testing.T) {
	opts := &engine.Options{Now: fixedClock, NoBackgroundCompaction: true, Rollups: []time.Duration{time.Minute, time.Hour}}
	db := open(t, t.TempDir(), opts)
	defer db.Close()
	s, _ := db.Series("sparse", nil)
	var b engine.Batch
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 30000; i++ { // one point per 10 s: 6 per minute
		b.Add(s, start.Add(time.Duration(i)*10*time.Second).UnixNano(), math.Exp(math.Sin(float64(i))*2))
	}
	if err := db.Append(&b); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if st := db.LastCompaction(); st.RollupsWritten == 0 {
		t.Fatalf("no rollups: %+v", st)
	}
	r := mustCheck(t, db)
	t.Logf("check: %+v", r)
	for _, step := range []time.Duration{time.Minute, time.Hour} {
		ps, err := db.Query("sparse").Step(step).UseRollups().PercentilesBy(50)
		if err != nil {
			t.Fatal(err)
		}
		if exact := ps[0].Exact(); exact != (step == time.Minute) {
			t.Fatalf("step %v: exact %v (the minute tier does not pay, the hour tier does)", step, exact)
		}
		raw, _ := db.Query("sparse").Step(step).AggregateBy(query.Count, query.Max)
		ro, _ := db.Query("sparse").Step(step).UseRollups().AggregateBy(query.Count, query.Max)
		if len(raw[0].Values) != len(ro[0].Values) {
			t.Fatalf("step %v: %d windows vs %d", step, len(raw[0].Values), len(ro[0].Values))
		}
		for i := range raw[0].Values {
			if !slices.Equal(raw[0].Values[i], ro[0].Values[i]) {
				t.Fatalf("step %v window %d: %v vs %v", step, i, raw[0].Values[i], ro[0].Values[i])
			}
		}
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if st := db.LastCompaction(); st.RollupsWritten != 0 {
		t.Fatalf("a second compaction rebuilt rollups: %+v", st)
	}
}
