package dashboard

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

func TestMinMax(t *testing.T) {
	// Within the limit: unchanged.
	ts := []int64{1, 2, 3}
	vs := []float64{5, 6, 7}
	gt, gv := minMax(nil, nil, ts, vs, 10)
	if fmt.Sprint(gt, gv) != fmt.Sprint(ts, vs) {
		t.Fatalf("%v %v", gt, gv)
	}
	// A spike and a dip survive; at most maxPts points; times ascending.
	n := 10000
	ts, vs = make([]int64, n), make([]float64, n)
	for i := range n {
		ts[i], vs[i] = int64(i)*1000-5_000_000, math.Sin(float64(i)/100)
	}
	vs[4321], vs[777] = 50, -50
	vs[9000] = math.NaN()
	for _, maxPts := range []int{2, 3, 10, 101, 1000} {
		gt, gv = minMax(nil, nil, ts, vs, maxPts)
		if len(gt) > maxPts || len(gt) != len(gv) || !slices.IsSorted(gt) {
			t.Fatalf("maxPts %d: %d points, sorted %v", maxPts, len(gt), slices.IsSorted(gt))
		}
		if !slices.Contains(gv, 50) || !slices.Contains(gv, -50) {
			t.Fatalf("maxPts %d: spike or dip lost", maxPts)
		}
	}
	// A bucket of only NaN keeps a NaN (a gap).
	gt, gv = minMax(nil, nil, []int64{0, 1, 2, 3, 4, 5}, []float64{1, 2, math.NaN(), math.NaN(), 3, 4}, 6)
	if len(gt) != 6 {
		t.Fatalf("%v", gv)
	}
	_, gv = minMax(nil, nil, []int64{0, 1, 2, 3, 4, 5, 6, 7}, []float64{1, 2, math.NaN(), math.NaN(), math.NaN(), math.NaN(), 3, 4}, 6)
	if !slices.ContainsFunc(gv, math.IsNaN) {
		t.Fatalf("gap lost: %v", gv)
	}
	// Extreme timestamps do not overflow.
	gt, _ = minMax(nil, nil, []int64{math.MinInt64, 0, math.MaxInt64}, []float64{1, 2, 3}, 2)
	if len(gt) > 2 || !slices.IsSorted(gt) {
		t.Fatalf("%v", gt)
	}
}

func TestAutoBounds(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		n      int
		want   string
	}{
		{0, 10, 10, "[1 2 3 4 5 6 7 8 9 10]"},
		{0.05, 0.578, 10, "[0.1 0.2 0.3 0.4 0.5 0.6]"},
		{-3, 97, 20, "[0 5 10 15 20 25 30 35 40 45 50 55 60 65 70 75 80 85 90 95 100]"},
		{1e-9, 7e-9, 3, "[2e-09 4e-09 6e-09 8e-09]"},
		{3, 3, 10, "[3]"},
		{math.NaN(), math.NaN(), 10, "[]"},
		{math.Inf(-1), 1, 10, "[]"},
		{-1e308, 1e308, 10, ""}, // only: ascending, covering hi
		{1, 1 + 1e-15, 10, ""},
	} {
		got := autoBounds(tc.lo, tc.hi, tc.n)
		if tc.want != "" && fmt.Sprint(got) != tc.want {
			t.Errorf("autoBounds(%v, %v, %d) = %v, want %s", tc.lo, tc.hi, tc.n, got, tc.want)
		}
		if len(got) > MaxBounds || !slices.IsSorted(got) || slices.ContainsFunc(got, func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }) {
			t.Errorf("autoBounds(%v, %v, %d) = %v: not finite ascending within the limit", tc.lo, tc.hi, tc.n, got)
		}
		if len(got) > 0 && tc.lo == tc.lo && !math.IsInf(tc.hi, 0) && got[len(got)-1] < tc.hi && len(got) < MaxBounds {
			t.Errorf("autoBounds(%v, %v, %d) = %v: does not reach hi", tc.lo, tc.hi, tc.n, got)
		}
	}
}

func TestParseMatcher(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a=b", `a="b"`},
		{"a!=b", `a!="b"`},
		{"a=~b.*", `a=~"b.*"`},
		{"a!~b|c", `a!~"b|c"`},
		{"a=", `a=""`},
		{"a==b", `a="=b"`},
		{"a=b=c", `a="b=c"`},
	} {
		m, err := parseMatcher(tc.in)
		if err != nil || m.String() != tc.want {
			t.Errorf("parseMatcher(%q) = %v, %v; want %s", tc.in, m, err, tc.want)
		}
	}
	for _, in := range []string{"", "a", "=b", "!=b", "a!b", "a=~(", "\xff=1"} {
		if _, err := parseMatcher(in); err == nil {
			t.Errorf("parseMatcher(%q): no error", in)
		}
	}
}

func TestFormatStep(t *testing.T) {
	for _, tc := range []struct {
		ns   int64
		want string
	}{
		{int64(30 * time.Second), "30s"}, {int64(2 * time.Hour), "2h"}, {int64(90 * time.Minute), "90m"},
		{int64(7 * 24 * time.Hour), "7d"}, {int64(time.Millisecond), "1ms"}, {1500, "1.5µs"},
	} {
		if got := formatStep(tc.ns); got != tc.want {
			t.Errorf("formatStep(%d) = %q, want %q", tc.ns, got, tc.want)
		}
	}
}
