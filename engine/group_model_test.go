package engine_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/query"
)

// floorWindow is the reference window start of t.
func floorWindow(t, origin, step int64) int64 {
	k := math.Floor((float64(t) - float64(origin)) / float64(step))
	w := origin + int64(k)*step
	// Correct float rounding.
	for w > t {
		w -= step
	}
	for w+step <= t {
		w += step
	}
	return w
}

// checkGroups compares AggregateBy, PercentilesBy and BucketsBy with a
// brute-force evaluation over the model's points.
func checkGroups(t *testing.T, rng *rand.Rand, q *query.Query, m *model, want []modelPoint, mint int64, what string) {
	t.Helper()
	steps := []time.Duration{0, time.Second, time.Minute, time.Hour, 24 * time.Hour}
	step := steps[rng.IntN(len(steps))]
	by := rng.IntN(3)
	if step != 0 {
		q = q.Step(step)
	}
	keyOf := func(s int) string { return "" }
	switch by {
	case 1:
		q = q.GroupBy("svc")
		keyOf = func(s int) string { return "svc=" + m.labels[s]["svc"] }
	case 2:
		q = q.BySeries()
		keyOf = func(s int) string { return fmt.Sprintf("svc=%s,env=%s", m.labels[s]["svc"], m.labels[s]["env"]) }
	}
	origin := int64(0)
	if mint != math.MinInt64 {
		origin = mint
	}
	type cell struct {
		vals []float64
		last *modelPoint
		inc  float64
	}
	ref := map[string]map[int64]*cell{}
	prev := map[int]float64{}
	for i := range want {
		p := &want[i]
		k := keyOf(p.series)
		w := int64(math.MinInt64)
		if step != 0 {
			w = floorWindow(p.t, origin, int64(step))
		} else if mint != math.MinInt64 {
			w = mint
		}
		if ref[k] == nil {
			ref[k] = map[int64]*cell{}
		}
		c := ref[k][w]
		if c == nil {
			c = &cell{}
			ref[k][w] = c
		}
		if p.v != p.v {
			continue
		}
		c.vals = append(c.vals, p.v)
		if c.last == nil || p.t > c.last.t || (p.t == c.last.t && p.order > c.last.order) {
			c.last = p
		}
		if pv, ok := prev[p.series]; ok {
			if p.v >= pv {
				c.inc += p.v - pv
			} else {
				c.inc += p.v
			}
		}
		prev[p.series] = p.v
	}
	rowKey := func(r query.Row) string {
		switch by {
		case 1:
			return "svc=" + r.Label("svc")
		case 2:
			return fmt.Sprintf("svc=%s,env=%s", r.Label("svc"), r.Label("env"))
		}
		return ""
	}
	rows, err := q.AggregateBy(query.Count, query.Sum, query.Min, query.Max, query.Last, query.Increase)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	prows, err := q.PercentilesBy(50, 99)
	if err != nil {
		t.Fatal(err)
	}
	brows, err := q.BucketsBy([]float64{0, 10}, true)
	if err != nil {
		t.Fatal(err)
	}
	// The same from rollups (when the store has them): the same windows,
	// count/min/max/last identical, sums up to the order of additions,
	// percentiles exact or within their stated bound.
	rrows, err := q.UseRollups().AggregateBy(query.Count, query.Sum, query.Min, query.Max, query.Last)
	if err != nil {
		t.Fatalf("%s: rollups: %v", what, err)
	}
	rprows, err := q.UseRollups().PercentilesBy(50, 99)
	if err != nil {
		t.Fatalf("%s: rollups: %v", what, err)
	}
	if len(rrows) != len(rows) || len(rprows) != len(prows) {
		t.Fatalf("%s: %d/%d rows from rollups, %d/%d from points", what, len(rrows), len(rprows), len(rows), len(prows))
	}
	for ri, r := range rows {
		rr := rrows[ri]
		if !slices.Equal(r.Times, rr.Times) || !rr.Exact() {
			t.Fatalf("%s (step %v): rollup windows %v, point windows %v", what, step, rr.Times, r.Times)
		}
		for i := range r.Values {
			a, b := r.Values[i], rr.Values[i]
			scale := math.Abs(a[2]) + math.Abs(a[3])
			if a[0] != b[0] || a[2] != b[2] || a[3] != b[3] || math.Float64bits(a[4]) != math.Float64bits(b[4]) ||
				!(closeEnough(b[1], a[1], scale*a[0]) || math.IsNaN(a[1]) && math.IsNaN(b[1])) {
				t.Fatalf("%s (step %v): row %d window %d: %v from points, %v from rollups", what, step, ri, r.Times[i], a, b)
			}
		}
		pr, rp := prows[ri], rprows[ri]
		for i := range pr.Values {
			if rp.RelErr == nil || rp.RelErr[i] == 0 {
				if !slices.EqualFunc(pr.Values[i], rp.Values[i], func(x, y float64) bool { return x == y || x != x && y != y }) {
					t.Fatalf("%s: exact percentiles from rollups %v, from points %v", what, rp.Values[i], pr.Values[i])
				}
				continue
			}
			c := ref[rowKey(pr)][pr.Times[i]]
			if step == 0 && mint == math.MinInt64 {
				c = ref[rowKey(pr)][math.MinInt64]
			}
			vals := slices.Clone(c.vals)
			slices.Sort(vals)
			for j, p := range []float64{50, 99} {
				x := vals[int(math.Floor(p/100*float64(len(vals)-1)))]
				if got := rp.Values[i][j]; !(got == x || math.Abs(got-x) <= rp.RelErr[i]*math.Abs(x)*(1+1e-9)) {
					t.Fatalf("%s: p%v from rollups %v, exact value at its rank %v, bound %v", what, p, got, x, rp.RelErr[i])
				}
			}
		}
	}
	for _, set := range [][]query.Row{rows, prows, brows} {
		n := 0
		for _, r := range set {
			n += len(r.Times)
		}
		// Windows holding only NaN points exist in the reference but may
		// be absent in results: count only windows with values.
		nref := 0
		for _, ws := range ref {
			for _, c := range ws {
				if len(c.vals) > 0 {
					nref++
				}
			}
		}
		if n < nref {
			t.Fatalf("%s (step %v, by %d): %d windows, want at least %d", what, step, by, n, nref)
		}
	}
	for ri, r := range rows {
		k := rowKey(r)
		for i, w := range r.Times {
			c := ref[k][w]
			if step == 0 && mint == math.MinInt64 {
				c = ref[k][math.MinInt64]
			}
			if c == nil {
				t.Fatalf("%s (step %v, by %d): row %q window %d not in reference", what, step, by, k, w)
			}
			vals := slices.Clone(c.vals)
			slices.Sort(vals)
			got := r.Values[i]
			if int(got[0]) != len(vals) {
				t.Fatalf("%s (step %v, by %d): row %q window %d: count %v, want %d", what, step, by, k, w, got[0], len(vals))
			}
			var sum, scale float64
			for _, v := range vals {
				sum += v
				if !math.IsInf(v, 0) {
					scale += math.Abs(v)
				}
			}
			if !closeEnough(got[1], sum, scale) {
				t.Fatalf("%s: row %q window %d: sum %v, want %v", what, k, w, got[1], sum)
			}
			if len(vals) > 0 && (got[2] != vals[0] || got[3] != vals[len(vals)-1]) {
				t.Fatalf("%s: row %q window %d: min/max %v/%v, want %v/%v", what, k, w, got[2], got[3], vals[0], vals[len(vals)-1])
			}
			if c.last != nil {
				ok := false
				for _, v := range c.vals {
					if math.Float64bits(v) == math.Float64bits(got[4]) {
						ok = true
					}
				}
				if !ok {
					t.Fatalf("%s: row %q window %d: last %v not a value of the window", what, k, w, got[4])
				}
			}
			// Increase depends on the order of equal timestamps and is
			// meaningless over infinities: TestCounterIncrease checks it.
			if pr := prows[ri]; len(pr.Values) > i {
				for j, p := range []float64{50, 99} {
					if want := query.PercentileSorted(vals, p); pr.Values[i][j] != want && !(math.IsNaN(want) && math.IsNaN(pr.Values[i][j])) {
						t.Fatalf("%s: row %q window %d: p%v %v, want %v", what, k, w, p, pr.Values[i][j], want)
					}
				}
			}
			if br := brows[ri]; len(br.Values) > i {
				var le0, le10 float64
				for _, v := range vals {
					if v <= 0 {
						le0++
					}
					if v <= 10 {
						le10++
					}
				}
				if got := br.Values[i]; got[0] != le0 || got[1] != le10 || got[2] != float64(len(vals)) {
					t.Fatalf("%s: row %q window %d: buckets %v, want [%v %v %v]", what, k, w, got, le0, le10, len(vals))
				}
			}
		}
	}
}
