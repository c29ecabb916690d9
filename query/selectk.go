package query

import (
	"math/bits"
	"slices"
)

// percentilesOf returns numpy-linear percentiles of vals (no NaN), which it
// reorders. For a few percentiles it selects the needed order statistics in
// linear expected time instead of sorting everything.
func percentilesOf(vals []float64, ps []float64) []float64 {
	out := make([]float64, len(ps))
	n := len(vals)
	if n < 256 || len(ps) > 4 {
		slices.Sort(vals)
		for i, p := range ps {
			out[i] = PercentileSorted(vals, p)
		}
		return out
	}
	// The ranks each percentile needs: floor(h) and floor(h)+1.
	ranks := make([]int, 0, 2*len(ps))
	for _, p := range ps {
		lo, _ := percentileRank(n, p)
		ranks = append(ranks, lo)
		if lo+1 < n {
			ranks = append(ranks, lo+1)
		}
	}
	slices.Sort(ranks)
	ranks = slices.Compact(ranks)
	// Select them in increasing order: after selecting rank r, everything
	// after r is >= vals[r], so the next select works on vals[r+1:].
	from := 0
	for _, r := range ranks {
		nthElement(vals[from:], r-from)
		from = r + 1
	}
	for i, p := range ps {
		lo, frac := percentileRank(n, p)
		if lo >= n-1 {
			out[i] = vals[n-1]
			continue
		}
		out[i] = lerp(vals[lo], vals[lo+1], frac)
	}
	return out
}

// percentileRank returns floor((n-1)·p/100) and the fraction above it,
// computed as PercentileSorted does.
func percentileRank(n int, p float64) (int, float64) {
	h := float64(n-1) * (p / 100)
	lo := int(h)
	if lo < 0 {
		lo = 0
	}
	if lo > n-1 {
		lo = n - 1
	}
	return lo, h - float64(lo)
}

// nthElement reorders a so that a[k] is the element that would be there if
// a were sorted, everything before it is <= a[k] and everything after it
// is >= a[k]. It uses a three-way partition (robust to many equal values)
// and falls back to sorting if the partitions stay unbalanced.
func nthElement(a []float64, k int) {
	lo, hi := 0, len(a) // work on a[lo:hi], k inside it
	budget := 2 * bits.Len(uint(len(a)))
	for hi-lo > 16 {
		if budget == 0 {
			slices.Sort(a[lo:hi])
			return
		}
		budget--
		pivot := median3(a[lo], a[lo+(hi-lo)/2], a[hi-1])
		// Partition a[lo:hi] into < pivot | == pivot | > pivot.
		lt, i, gt := lo, lo, hi
		for i < gt {
			switch v := a[i]; {
			case v < pivot:
				a[lt], a[i] = a[i], a[lt]
				lt++
				i++
			case v > pivot:
				gt--
				a[gt], a[i] = a[i], a[gt]
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt
		case k >= gt:
			lo = gt
		default:
			return // a[k] == pivot, in its final place
		}
	}
	slices.Sort(a[lo:hi])
}

func median3(a, b, c float64) float64 {
	if a > b {
		a, b = b, a
	}
	if b > c {
		b = c
		if a > b {
			b = a
		}
	}
	return b
}
