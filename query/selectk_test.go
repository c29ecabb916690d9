package query

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPercentilesNumpy pins the interpolation to numpy's
// percentile(a, p, method="linear") on hand-checked cases.
func TestPercentilesNumpy(t *testing.T) {
	cases := []struct {
		a    []float64
		p    float64
		want float64
	}{
		{[]float64{1, 2, 3, 4}, 50, 2.5},
		{[]float64{1, 2, 3, 4}, 25, 1.75},
		{[]float64{1, 2, 3, 4}, 75, 3.25},
		{[]float64{1, 2, 3, 4}, 0, 1},
		{[]float64{1, 2, 3, 4}, 100, 4},
		{[]float64{15, 20, 35, 40, 50}, 40, 29},
		{[]float64{15, 20, 35, 40, 50}, 90, 46},
		{[]float64{7}, 99, 7},
		{[]float64{1, 10}, 99, 9.91},
		{[]float64{0, 1}, 10, 0.1},
		{[]float64{-5, 5}, 50, 0},
		{[]float64{math.Inf(-1), 1}, 0, math.Inf(-1)},
		{[]float64{1, math.Inf(1)}, 100, math.Inf(1)},
		{[]float64{2, 2, 2}, 37, 2},
	}
	for _, c := range cases {
		a := slices.Clone(c.a)
		slices.Sort(a)
		got := PercentileSorted(a, c.p)
		if math.Abs(got-c.want) > 1e-12 && got != c.want {
			t.Errorf("percentile(%v, %v) = %v, numpy says %v", c.a, c.p, got, c.want)
		}
	}
	if !math.IsNaN(PercentileSorted(nil, 50)) {
		t.Error("percentile of nothing is not NaN")
	}
}

func TestPercentilesOfMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 300; round++ {
		n := 1 + rng.IntN(5000)
		vals := make([]float64, n)
		for i := range vals {
			switch round % 3 {
			case 0:
				vals[i] = rng.NormFloat64()
			case 1:
				vals[i] = float64(rng.IntN(5)) // many duplicates
			default:
				vals[i] = float64(i) // sorted input
			}
		}
		ps := []float64{rng.Float64() * 100, 50, 99, 100}[:1+rng.IntN(4)]
		sorted := slices.Clone(vals)
		slices.Sort(sorted)
		got := percentilesOf(vals, ps)
		for i, p := range ps {
			if want := PercentileSorted(sorted, p); got[i] != want {
				t.Fatalf("round %d n=%d p%v: %v, want %v", round, n, p, got[i], want)
			}
		}
	}
}

func BenchmarkPercentiles(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := make([]float64, 100_000)
	for i := range src {
		src[i] = math.Exp(-3 + rng.NormFloat64())
	}
	vals := make([]float64, len(src))
	b.Run("select", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			copy(vals, src)
			percentilesOf(vals, []float64{50, 90, 99})
		}
	})
	b.Run("sort", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			copy(vals, src)
			slices.Sort(vals)
		}
	})
}
