package dashboard

import (
	"math"
	"strconv"
)

// minMax downsamples points sorted by time to at most maxPts (>= 2) for
// drawing: it cuts the time span into maxPts/2 equal buckets and keeps, of
// each, the point with the smallest and the one with the largest value, in
// time order. Spikes and dips survive, which averaging or taking every k-th
// point would hide; a bucket holding only NaN points keeps one of them, so
// that gaps stay gaps. Points within maxPts are returned as they are. The
// result is appended to dstT and dstV.
func minMax(dstT []int64, dstV []float64, ts []int64, vs []float64, maxPts int) ([]int64, []float64) {
	n := len(ts)
	if n <= maxPts {
		return append(dstT, ts...), append(dstV, vs...)
	}
	nb := uint64(max(1, maxPts/2))
	t0 := ts[0]
	span := uint64(ts[n-1] - t0) // the span of an int64 range fits uint64
	width := max(1, span/nb)
	bucket := func(t int64) uint64 { return min(uint64(t-t0)/width, nb-1) }
	for i := 0; i < n; {
		b := bucket(ts[i])
		lo, hi, nan := -1, -1, i
		j := i
		for ; j < n && bucket(ts[j]) == b; j++ {
			v := vs[j]
			if v != v {
				continue
			}
			if lo < 0 || v < vs[lo] {
				lo = j
			}
			if hi < 0 || v > vs[hi] {
				hi = j
			}
		}
		switch {
		case lo < 0:
			dstT, dstV = append(dstT, ts[nan]), append(dstV, vs[nan])
		case lo == hi:
			dstT, dstV = append(dstT, ts[lo]), append(dstV, vs[lo])
		default:
			a, c := min(lo, hi), max(lo, hi)
			dstT, dstV = append(dstT, ts[a], ts[c]), append(dstV, vs[a], vs[c])
		}
		i = j
	}
	return dstT, dstV
}

// numbers encodes as a JSON array of numbers with null for NaN and ±Inf
// (JSON has no such numbers; the charts draw null as a gap); a nil numbers
// is null.
type numbers []float64

// MarshalJSON implements json.Marshaler.
func (a numbers) MarshalJSON() ([]byte, error) {
	if a == nil {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 2+len(a)*12)
	b = append(b, '[')
	for i, v := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNumber(b, v)
	}
	return append(b, ']'), nil
}

// number is one float encoded like numbers.
type number float64

// MarshalJSON implements json.Marshaler.
func (v number) MarshalJSON() ([]byte, error) { return appendNumber(nil, float64(v)), nil }

func appendNumber(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// millis converts Unix ns to Unix milliseconds for the page (JavaScript's
// time unit); sub-millisecond parts stay as fractions.
func millis(dst numbers, ts []int64) numbers {
	for _, t := range ts {
		dst = append(dst, float64(t)/1e6)
	}
	return dst
}
