package query

import (
	"fmt"
)

// Approx is an approximate result that states its error bound.
type Approx struct {
	// Values holds one value per requested percentile.
	Values []float64
	// RelativeError bounds the error: each value v is within
	// RelativeError·|x| of the exact value x at the percentile's rank
	// (the rank ⌊p/100·(n−1)⌋ of the n selected values, without
	// interpolation).
	RelativeError float64
	// Count is the number of values summarized.
	Count uint64
}

// ApproxPercentiles computes percentiles (0..100) with a DDSketch of
// relative accuracy relErr (for example 0.01 for 1%), in memory bounded by
// the spread of the values (about log(max/min)/relErr buckets) instead of
// their number: for ranges too large to hold. ±Inf values are counted
// exactly; NaN is skipped.
func (q *Query) ApproxPercentiles(relErr float64, ps ...float64) (Approx, error) {
	if !(relErr > 0 && relErr < 1) {
		return Approx{}, fmt.Errorf("query: relative error %g must be in (0, 1)", relErr)
	}
	for _, p := range ps {
		if !(p >= 0 && p <= 100) {
			return Approx{}, fmt.Errorf("query: percentile %g is outside [0, 100]", p)
		}
	}
	cell, err := newApproxCell(relErr)
	if err != nil {
		return Approx{}, err
	}
	var d decoder
	err = q.scan(func(it ChunkIterator, c *Chunk, _ bool) error {
		_, vs, err := d.points(it, c, q.mint, q.maxt)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if err := cell.add(v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Approx{}, err
	}
	vals, err := cell.quantiles(ps)
	if err != nil {
		return Approx{}, err
	}
	return Approx{Values: vals, RelativeError: relErr, Count: cell.count()}, nil
}
