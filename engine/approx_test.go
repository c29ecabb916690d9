package engine_test

import (
	"math"
	"slices"
	"testing"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
)

func TestApproxPercentiles(t *testing.T) {
	rng := testutil.Rand(t)
	db := open(t, t.TempDir(), nil)
	defer db.Close()
	s, _ := db.Series("lat", nil)
	var vals []float64
	var b engine.Batch
	for i := 0; i < 50_000; i++ {
		v := math.Exp(-3 + rng.NormFloat64())
		if i%1000 == 0 {
			v = -v // some negatives
		}
		vals = append(vals, v)
		b.Add(s, int64(i), v)
	}
	b.Add(s, 50_000, math.Inf(1))
	b.Add(s, 50_001, math.NaN())
	vals = append(vals, math.Inf(1))
	if err := db.Append(&b); err != nil {
		t.Fatal(err)
	}
	slices.Sort(vals)
	ps := []float64{0, 1, 50, 90, 99, 100}
	for _, relErr := range []float64{0.01, 0.001} {
		a, err := db.Query("lat").ApproxPercentiles(relErr, ps...)
		if err != nil {
			t.Fatal(err)
		}
		if a.Count != uint64(len(vals)) || a.RelativeError != relErr {
			t.Fatalf("count %d, error %v", a.Count, a.RelativeError)
		}
		for i, p := range ps {
			exact := vals[int(math.Floor(p/100*float64(len(vals)-1)))]
			got := a.Values[i]
			if math.IsInf(exact, 0) {
				if got != exact {
					t.Errorf("p%v: %v, want %v", p, got, exact)
				}
				continue
			}
			if math.Abs(got-exact) > relErr*math.Abs(exact)*1.0000001 {
				t.Errorf("relErr %v p%v: %v, exact %v: error %v beyond the bound", relErr, p, got, exact, math.Abs(got-exact)/math.Abs(exact))
			}
		}
	}
	if _, err := db.Query("lat").ApproxPercentiles(0, 50); err == nil {
		t.Error("relative error 0 accepted")
	}
	a, err := db.Query("none").ApproxPercentiles(0.01, 50)
	if err != nil || !math.IsNaN(a.Values[0]) || a.Count != 0 {
		t.Errorf("empty selection: %+v %v", a, err)
	}
}
