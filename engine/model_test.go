package engine_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/query"
)

// modelPoint is one write as the model keeps it.
type modelPoint struct {
	series int
	t      int64
	v      float64
	order  int // global write order
}

type model struct {
	labels []map[string]string
	points []modelPoint
}

func (m *model) selectPoints(match func(l map[string]string) bool, mint, maxt int64) []modelPoint {
	var out []modelPoint
	for _, p := range m.points {
		if p.t >= mint && p.t <= maxt && match(m.labels[p.series]) {
			out = append(out, p)
		}
	}
	// Time order; equal timestamps of one series in write order.
	sort.SliceStable(out, func(i, j int) bool { return out[i].t < out[j].t })
	return out
}

func randomValue(rng *rand.Rand) float64 {
	switch rng.IntN(12) {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(1 - 2*rng.IntN(2))
	case 2:
		return math.Copysign(0, -1)
	case 3, 4, 5:
		return float64(rng.IntN(20))
	default:
		return rng.NormFloat64() * 100
	}
}

// TestModel applies a random log of writes, checkpoints and reopens to the
// engine (with randomized options) and to a plain in-memory model, and
// compares every query.
func TestModel(t *testing.T) {
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	rng := testutil.Rand(t)
	for round := 0; round < rounds; round++ {
		t.Run(fmt.Sprint(round), func(t *testing.T) { runModel(t, rng) })
	}
}

func runModel(t *testing.T, rng *rand.Rand) {
	dir := t.TempDir()
	opts := &engine.Options{
		ChunkPoints:     2 + rng.IntN(60),
		CheckpointBytes: int64(1+rng.IntN(64)) << 10,
		Sync:            engine.SyncMode(rng.IntN(3)),
	}
	if rng.IntN(2) == 0 {
		opts.Rollups = []time.Duration{time.Second, time.Minute, time.Hour}[rng.IntN(3):]
	}
	t.Logf("options: chunk %d, checkpoint bytes %d, sync %v, rollups %v", opts.ChunkPoints, opts.CheckpointBytes, opts.Sync, opts.Rollups)
	db := open(t, dir, opts)
	defer func() { db.Close() }()
	m := &model{}
	envs := []string{"prod", "dev", ""}
	for i := 0; i < 12; i++ {
		l := map[string]string{"svc": fmt.Sprintf("s%d", i%4), "env": envs[i%3]}
		m.labels = append(m.labels, l)
	}
	handles := make([]*engine.Series, len(m.labels))
	for i, l := range m.labels {
		h, err := db.Series("m", l)
		if err != nil {
			t.Fatal(err)
		}
		handles[i] = h
	}
	base := int64(1_700_000_000_000_000_000)
	lastT := make([]int64, len(m.labels))
	for i := range lastT {
		lastT[i] = base
	}
	order := 0
	nops := 400 + rng.IntN(800)
	for op := 0; op < nops; op++ {
		switch r := rng.IntN(100); {
		case r < 2:
			if err := db.Compact(); err != nil {
				t.Fatal(err)
			}
		case r < 4:
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = open(t, dir, opts)
			for i, l := range m.labels {
				h, err := db.Series("m", l)
				if err != nil {
					t.Fatal(err)
				}
				handles[i] = h
			}
		default:
			var b engine.Batch
			n := 1 + rng.IntN(30)
			for k := 0; k < n; k++ {
				s := rng.IntN(len(m.labels))
				var ts int64
				switch x := rng.IntN(20); {
				case x == 0: // far in the past (backfill: days, up to a year)
					ts = base - rng.Int64N(365*24*3600*1e9)
				case x < 3: // a little late
					ts = lastT[s] - rng.Int64N(100e9)
				case x < 5: // duplicate timestamp
					ts = lastT[s]
				case x == 5: // a gap of hours
					ts = lastT[s] + rng.Int64N(20*3600*1e9)
				default:
					ts = lastT[s] + rng.Int64N(2e9)
				}
				if ts > lastT[s] {
					lastT[s] = ts
				}
				v := randomValue(rng)
				m.points = append(m.points, modelPoint{series: s, t: ts, v: v, order: order})
				order++
				b.Add(handles[s], ts, v)
			}
			if err := db.Append(&b); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Queries.
	matchers := []struct {
		ms    []query.Matcher
		match func(map[string]string) bool
	}{
		{nil, func(map[string]string) bool { return true }},
		{[]query.Matcher{query.Eq("svc", "s1")}, func(l map[string]string) bool { return l["svc"] == "s1" }},
		{[]query.Matcher{query.Eq("env", "")}, func(l map[string]string) bool { return l["env"] == "" }},
		{[]query.Matcher{query.Neq("env", "prod")}, func(l map[string]string) bool { return l["env"] != "prod" }},
		{[]query.Matcher{query.Re("svc", "s[12]"), query.NotRe("env", "d.*")}, func(l map[string]string) bool {
			return (l["svc"] == "s1" || l["svc"] == "s2") && !(len(l["env"]) > 0 && l["env"][0] == 'd')
		}},
	}
	for qi := 0; qi < 60; qi++ {
		mt := matchers[rng.IntN(len(matchers))]
		mint, maxt := int64(math.MinInt64), int64(math.MaxInt64)
		q := db.Query("m", mt.ms...)
		if rng.IntN(3) > 0 {
			mint = base - rng.Int64N(400*24*3600*1e9)
			maxt = mint + rng.Int64N(500*24*3600*1e9)
			if rng.IntN(2) == 0 {
				mint = base + rng.Int64N(1000e9)
				maxt = mint + rng.Int64N(1000e9)
			}
			q = q.FromNanos(mint).ToNanos(maxt + 1)
		}
		want := m.selectPoints(mt.match, mint, maxt)
		what := fmt.Sprintf("query %d (%v, [%d, %d])", qi, mt.ms, mint, maxt)
		checkQuery(t, q, want, what)
		checkGroups(t, rng, q, m, want, mint, what)
	}
}

func checkQuery(t *testing.T, q *query.Query, want []modelPoint, what string) {
	t.Helper()
	ts, vs, err := q.Points()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(ts) != len(want) {
		t.Fatalf("%s: %d points, want %d", what, len(ts), len(want))
	}
	// Compare as multisets per timestamp (order among equal timestamps of
	// different series is unspecified).
	gotKeys := make([]string, len(ts))
	wantKeys := make([]string, len(ts))
	for i := range ts {
		if ts[i] != want[i].t {
			t.Fatalf("%s: point %d at %d, want %d", what, i, ts[i], want[i].t)
		}
		gotKeys[i] = fmt.Sprintf("%d/%x", ts[i], math.Float64bits(vs[i]))
		wantKeys[i] = fmt.Sprintf("%d/%x", want[i].t, math.Float64bits(want[i].v))
	}
	slices.Sort(gotKeys)
	slices.Sort(wantKeys)
	if !slices.Equal(gotKeys, wantKeys) {
		t.Fatalf("%s: points differ", what)
	}
	// Aggregations.
	var vals []float64
	var sum, scale float64
	for _, p := range want {
		if p.v == p.v {
			vals = append(vals, p.v)
			sum += p.v
			if !math.IsInf(p.v, 0) {
				scale += math.Abs(p.v)
			}
		}
	}
	slices.Sort(vals)
	cnt, _ := q.Scalar(query.Count)
	if int(cnt) != len(vals) {
		t.Fatalf("%s: count %v, want %d", what, cnt, len(vals))
	}
	gotSum, _ := q.Scalar(query.Sum)
	if !closeEnough(gotSum, sum, scale) {
		t.Fatalf("%s: sum %v, want %v", what, gotSum, sum)
	}
	mn, _ := q.Scalar(query.Min)
	mx, _ := q.Scalar(query.Max)
	if len(vals) == 0 {
		if !math.IsNaN(mn) || !math.IsNaN(mx) {
			t.Fatalf("%s: min/max of nothing %v %v", what, mn, mx)
		}
	} else if mn != vals[0] || mx != vals[len(vals)-1] {
		t.Fatalf("%s: min/max %v %v, want %v %v", what, mn, mx, vals[0], vals[len(vals)-1])
	}
	ps, err := q.Percentiles(0, 25, 50, 90, 99, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []float64{0, 25, 50, 90, 99, 100} {
		w := query.PercentileSorted(vals, p)
		// -0 and 0 sort as equals, so which one a rank lands on may differ.
		if ps[i] != w && !(math.IsNaN(ps[i]) && math.IsNaN(w)) {
			t.Fatalf("%s: p%v = %v, want %v", what, p, ps[i], w)
		}
	}
	bounds := []float64{-10, 0, 5, 100}
	bk, err := q.Buckets(bounds, false)
	if err != nil {
		t.Fatal(err)
	}
	wb := make([]uint64, len(bounds)+1)
	for _, v := range vals {
		i := 0
		for i < len(bounds) && v > bounds[i] {
			i++
		}
		wb[i]++
	}
	if !slices.Equal(bk, wb) {
		t.Fatalf("%s: buckets %v, want %v", what, bk, wb)
	}
	// Last: greatest timestamp; among equal ones the last written.
	last := math.NaN()
	var lastP *modelPoint
	for i := range want {
		p := &want[i]
		if p.v != p.v {
			continue
		}
		if lastP == nil || p.t > lastP.t || (p.t == lastP.t && p.order > lastP.order) {
			lastP = p
		}
	}
	if lastP != nil {
		last = lastP.v
	}
	gotLast, _ := q.Scalar(query.Last)
	if lastP != nil {
		// Ties across chunks are broken by chunk creation order, which
		// equals write order except when a tied point went to an
		// out-of-order chunk: accept any value at the greatest timestamp.
		ok := false
		for _, p := range want {
			if p.t == lastP.t && math.Float64bits(p.v) == math.Float64bits(gotLast) {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("%s: last %v, want %v (at %d)", what, gotLast, last, lastP.t)
		}
	} else if !math.IsNaN(gotLast) {
		t.Fatalf("%s: last of nothing = %v", what, gotLast)
	}
}

func closeEnough(a, b, scale float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if math.IsInf(a, 0) || math.IsInf(b, 0) {
		return a == b
	}
	return math.Abs(a-b) <= 1e-12*math.Max(1, scale)
}
