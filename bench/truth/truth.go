// Package truth computes the exact answers of the standard queries Q1–Q4 of
// WORKLOADS.md from the generated points of a workload (package
// bench/workload), independently of any engine, and checks an engine's
// answers against them. The Go benchmarks of package bench and the peers
// comparison (module bench/peers) share it, so that every engine is held to
// the same ground truth.
//
// Exactness: counts, timestamps and percentiles must match bit for bit
// (percentiles are numpy's "linear" method, implemented here
// independently of package query). A sum of floats depends on the order of
// its additions, so the exact sum is computed without rounding (an
// accumulator per binary exponent) and rounded once; an engine's sum must be
// within the error bound of recursive summation, n·2⁻⁵³·Σ|v|, of it, and
// bit-equal when every value is an integer and Σ|v| < 2⁵³ (W-scrape),
// where any order of additions is exact.
//
// The queries, as this package and its users run them:
//
//   - Q1: p50, p90, p99 of series 0 (service=svc-0, endpoint=/api/0,
//     status=200), every point.
//   - Q2: p99 of the 100 series with service=svc-3, points with timestamp
//     >= Q2From(cfg): the last 10% of the workload's nominal range
//     (workload.Config.Range).
//   - Q3: count and sum per 60 s tumbling window of the 50 series with
//     endpoint=/api/7, every point; windows aligned to the Unix epoch (the
//     engine's rule for a range unbounded below), empty windows omitted.
//   - Q4: count and sum of every point.
//
// Concurrency: a Data is read-only after New; its methods may be called
// from many goroutines.
package truth

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strconv"

	"github.com/eventmetrics/eventmetrics/bench/workload"
)

// Q3Step is the window of Q3 in nanoseconds.
const Q3Step = int64(60e9)

// Q1Labels are the labels of the one series of Q1 (series 0).
var Q1Labels = map[string]string{"service": "svc-0", "endpoint": "/api/0", "status": "200"}

// Q2Service and Q3Endpoint are the label values Q2 and Q3 select.
const (
	Q2Service  = "svc-3"
	Q3Endpoint = "/api/7"
)

// Q2From returns the inclusive lower bound (Unix ns) of Q2: the last 10% of
// the nominal range.
func Q2From(cfg workload.Config) int64 {
	lo, hi := cfg.Range()
	return hi - (hi-lo)/10
}

// Data holds every generated point by series, in generation order (time
// order for the standard workloads, which have no late points).
type Data struct {
	Cfg workload.Config
	TS  [][]int64   // TS[s]: timestamps of series s (Unix ns)
	VS  [][]float64 // VS[s]: values of series s
	N   int         // total points

	labels []map[string]string
}

// New groups pts (as generated for cfg) by series.
func New(cfg workload.Config, pts []workload.Point) *Data {
	d := &Data{Cfg: cfg, N: len(pts)}
	n := cfg.Series
	counts := make([]int, n)
	for _, p := range pts {
		counts[p.Series]++
	}
	d.TS = make([][]int64, n)
	d.VS = make([][]float64, n)
	d.labels = make([]map[string]string, n)
	for s := range n {
		d.TS[s] = make([]int64, 0, counts[s])
		d.VS[s] = make([]float64, 0, counts[s])
		d.labels[s] = workload.Labels(s)
	}
	for _, p := range pts {
		d.TS[p.Series] = append(d.TS[p.Series], p.T)
		d.VS[p.Series] = append(d.VS[p.Series], p.V)
	}
	return d
}

// Matching returns the series whose labels carry every name=value of want,
// in ascending order.
func (d *Data) Matching(want map[string]string) []int {
	var out []int
	for s, l := range d.labels {
		ok := true
		for k, v := range want {
			if l[k] != v {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// Percentile is numpy.percentile(a, p, method="linear") for sorted a
// without NaN (NaN when a is empty): virtual index (n-1)·(p/100), then
// numpy's _lerp, which computes from b's side when the fraction is >= 0.5.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	vi := float64(n-1) * (p / 100)
	lo := math.Floor(vi)
	if vi >= float64(n-1) {
		return sorted[n-1]
	}
	i := int(lo)
	g := vi - lo
	a, b := sorted[i], sorted[i+1]
	diff := b - a
	if g >= 0.5 {
		return b - diff*(1-g)
	}
	return a + diff*g
}

// Percentiles sorts vals in place and returns the percentiles ps of it.
func Percentiles(vals []float64, ps ...float64) []float64 {
	slices.Sort(vals)
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = Percentile(vals, p)
	}
	return out
}

// Sum is an exact float64 accumulator: every finite value is added without
// rounding (one 128-bit integer per binary exponent), and Float64 rounds the
// exact total once, to nearest even. The zero value is an empty sum.
type Sum struct {
	// acc[sign][k] holds Σ m·2^r, as a 192-bit integer {hi, mid, lo}, of
	// the values v = m·2^(32k+r-1074) added (m the 53-bit significand).
	acc      [2][64][3]uint64
	abs      float64 // Σ|v|, plainly added: for error bounds
	n        int
	nonFin   float64 // NaN or ±Inf seen: the result is their plain sum
	integral bool    // every value so far is an integer
}

// Add adds v.
func (s *Sum) Add(v float64) {
	if s.n == 0 {
		s.integral = true
	}
	s.n++
	if math.IsNaN(v) || math.IsInf(v, 0) {
		s.nonFin += v
		s.integral = false
		return
	}
	s.abs += math.Abs(v)
	if s.integral && v != math.Trunc(v) {
		s.integral = false
	}
	b := math.Float64bits(v)
	e := (b >> 52) & 0x7ff
	m := b & (1<<52 - 1)
	if e == 0 {
		e = 1 // subnormal: same scale as the smallest normal exponent
	} else {
		m |= 1 << 52
	}
	idx := e - 1 // v = m · 2^(idx - 1074)
	k, r := idx/32, idx%32
	lo, hi := m<<r, uint64(0)
	if r > 0 {
		hi = m >> (64 - r)
	}
	a := &s.acc[b>>63][k]
	var c uint64
	a[2], c = bits.Add64(a[2], lo, 0)
	a[1], c = bits.Add64(a[1], hi, c)
	a[0] += c
}

// N returns the number of values added.
func (s *Sum) N() int { return s.n }

// Abs returns Σ|v| (plainly added).
func (s *Sum) Abs() float64 { return s.abs }

// Integral reports whether every value added is an integer.
func (s *Sum) Integral() bool { return s.n > 0 && s.integral }

// Float64 returns the exact sum rounded to the nearest float64.
func (s *Sum) Float64() float64 {
	if s.nonFin != 0 || math.IsNaN(s.nonFin) {
		return s.nonFin
	}
	total := new(big.Int)
	t, w := new(big.Int), new(big.Int)
	for sign := range s.acc {
		for k, a := range s.acc[sign] {
			if a == [3]uint64{} {
				continue
			}
			t.SetUint64(a[0])
			for _, x := range a[1:] {
				t.Lsh(t, 64)
				t.Or(t, w.SetUint64(x))
			}
			t.Lsh(t, uint(32*k))
			if sign == 0 {
				total.Add(total, t)
			} else {
				total.Sub(total, t)
			}
		}
	}
	f := new(big.Float).SetInt(total)
	f.SetMantExp(f, -1074)
	v, _ := f.Float64()
	return v
}

// CheckSum reports whether got is an acceptable float64 sum of the values
// of exact: bit-equal to the exact sum when every value is an integer and
// Σ|v| < 2⁵³ (then any order of additions is exact), otherwise within
// n·2⁻⁵³·Σ|v| of it. It returns the relative error of got.
func CheckSum(got float64, exact *Sum) (relErr float64, err error) {
	want := exact.Float64()
	if want != 0 {
		relErr = math.Abs(got-want) / math.Abs(want)
	} else if got != 0 {
		relErr = math.Inf(1)
	}
	if exact.Integral() && exact.Abs() < 1<<53 {
		if math.Float64bits(got) != math.Float64bits(want) {
			return relErr, fmt.Errorf("sum %v (bits %#x), want exactly %v (bits %#x)", got, math.Float64bits(got), want, math.Float64bits(want))
		}
		return relErr, nil
	}
	bound := float64(exact.N()) * 0x1p-53 * exact.Abs() * 1.01
	if math.IsNaN(got) != math.IsNaN(want) || math.Abs(got-want) > bound {
		return relErr, fmt.Errorf("sum %v, exact %v: error %g exceeds the summation bound %g", got, want, math.Abs(got-want), bound)
	}
	return relErr, nil
}

// Q1 returns p50, p90, p99 of every point of series 0.
func (d *Data) Q1() []float64 {
	return Percentiles(slices.Clone(d.VS[d.Matching(Q1Labels)[0]]), 50, 90, 99)
}

// Q2Series returns the series of Q2 (service=svc-3).
func (d *Data) Q2Series() []int { return d.Matching(map[string]string{"service": Q2Service}) }

// Q2 returns the p99 of Q2 and the number of points it selects.
func (d *Data) Q2() (p99 float64, n int) {
	from := Q2From(d.Cfg)
	var vals []float64
	for _, s := range d.Q2Series() {
		for i, t := range d.TS[s] {
			if t >= from {
				vals = append(vals, d.VS[s][i])
			}
		}
	}
	return Percentiles(vals, 99)[0], len(vals)
}

// Q3Series returns the series of Q3 (endpoint=/api/7).
func (d *Data) Q3Series() []int { return d.Matching(map[string]string{"endpoint": Q3Endpoint}) }

// Windows is the answer of Q3: one entry per non-empty window, by start.
type Windows struct {
	Start []int64 // window starts (Unix ns), ascending
	Count []uint64
	Sum   []*Sum
}

// WindowStart returns the start of the Q3 window holding t.
func WindowStart(t int64) int64 {
	w := t / Q3Step
	if t%Q3Step < 0 {
		w--
	}
	return w * Q3Step
}

// Q3 returns the exact per-window counts and sums of Q3.
func (d *Data) Q3() Windows {
	idx := map[int64]*Sum{}
	cnt := map[int64]uint64{}
	for _, s := range d.Q3Series() {
		for i, t := range d.TS[s] {
			w := WindowStart(t)
			acc := idx[w]
			if acc == nil {
				acc = new(Sum)
				idx[w] = acc
			}
			acc.Add(d.VS[s][i])
			cnt[w]++
		}
	}
	var out Windows
	for w := range idx {
		out.Start = append(out.Start, w)
	}
	slices.Sort(out.Start)
	for _, w := range out.Start {
		out.Count = append(out.Count, cnt[w])
		out.Sum = append(out.Sum, idx[w])
	}
	return out
}

// Q4 returns the exact count and sum of every point.
func (d *Data) Q4() *Sum {
	var s Sum
	for _, vs := range d.VS {
		for _, v := range vs {
			s.Add(v)
		}
	}
	return &s
}

// Truth is every answer of Q1–Q4, computed once.
type Truth struct {
	Q1      []float64 // p50, p90, p99
	Q2      float64   // p99
	Q2N     int       // points Q2 selects
	Q3      Windows
	Q3N     int // points Q3 selects
	Q4      *Sum
	Q2From  int64
	Q1Count int // points of Q1's series
}

// All computes every answer.
func (d *Data) All() *Truth {
	t := &Truth{Q1: d.Q1(), Q4: d.Q4(), Q2From: Q2From(d.Cfg)}
	t.Q2, t.Q2N = d.Q2()
	t.Q3 = d.Q3()
	for _, c := range t.Q3.Count {
		t.Q3N += int(c)
	}
	t.Q1Count = len(d.VS[d.Matching(Q1Labels)[0]])
	return t
}

// CheckPercentiles compares got with want bit for bit.
func CheckPercentiles(what string, got, want []float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d percentiles, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			return fmt.Errorf("%s: percentile %d is %v (bits %#x), want %v (bits %#x)", what, i, got[i], math.Float64bits(got[i]), want[i], math.Float64bits(want[i]))
		}
	}
	return nil
}

// CheckWindows compares a Q3 answer (window starts, counts, sums) with the
// truth; it returns the largest relative error of the sums.
func CheckWindows(starts []int64, counts, sums []float64, want Windows) (maxRelErr float64, err error) {
	if len(starts) != len(want.Start) || len(counts) != len(starts) || len(sums) != len(starts) {
		return 0, fmt.Errorf("Q3: %d windows (%d counts, %d sums), want %d", len(starts), len(counts), len(sums), len(want.Start))
	}
	for i, w := range want.Start {
		if starts[i] != w {
			return 0, fmt.Errorf("Q3: window %d starts at %d, want %d", i, starts[i], w)
		}
		if counts[i] != float64(want.Count[i]) {
			return 0, fmt.Errorf("Q3: window %d (start %d): count %v, want %d", i, w, counts[i], want.Count[i])
		}
		rel, err := CheckSum(sums[i], want.Sum[i])
		if err != nil {
			return rel, fmt.Errorf("Q3: window %d (start %d): %w", i, w, err)
		}
		maxRelErr = max(maxRelErr, rel)
	}
	return maxRelErr, nil
}

// CheckScalars compares a Q4 answer with the truth; it returns the relative
// error of the sum.
func CheckScalars(count, sum float64, want *Sum) (relErr float64, err error) {
	if count != float64(want.N()) {
		return 0, fmt.Errorf("Q4: count %v, want %d", count, want.N())
	}
	rel, err := CheckSum(sum, want)
	if err != nil {
		return rel, fmt.Errorf("Q4: %w", err)
	}
	return rel, nil
}

// Describe formats a float for reports with all its digits.
func Describe(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
