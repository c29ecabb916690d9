package query

import (
	"fmt"
	"math"

	"github.com/DataDog/sketches-go/ddsketch"
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
	sk, err := ddsketch.NewDefaultDDSketch(relErr)
	if err != nil {
		return Approx{}, fmt.Errorf("query: %w", err)
	}
	var negInf, posInf, finite uint64
	var d decoder
	err = q.scan(func(it ChunkIterator, c *Chunk, _ bool) error {
		_, vs, err := d.points(it, c, q.mint, q.maxt)
		if err != nil {
			return err
		}
		for _, v := range vs {
			switch {
			case v != v:
			case math.IsInf(v, 1):
				posInf++
			case math.IsInf(v, -1):
				negInf++
			default:
				if err := sk.Add(v); err != nil {
					return fmt.Errorf("query: sketch: %w", err)
				}
				finite++
			}
		}
		return nil
	})
	if err != nil {
		return Approx{}, err
	}
	n := negInf + finite + posInf
	out := Approx{Values: make([]float64, len(ps)), RelativeError: relErr, Count: n}
	for i, p := range ps {
		if n == 0 {
			out.Values[i] = math.NaN()
			continue
		}
		rank := math.Floor(p / 100 * float64(n-1))
		switch {
		case rank < float64(negInf):
			out.Values[i] = math.Inf(-1)
		case rank >= float64(negInf+finite):
			out.Values[i] = math.Inf(1)
		default:
			qq := 0.0
			if finite > 1 {
				qq = (rank - float64(negInf)) / float64(finite-1)
			}
			v, err := sk.GetValueAtQuantile(qq)
			if err != nil {
				return Approx{}, fmt.Errorf("query: sketch: %w", err)
			}
			out.Values[i] = v
		}
	}
	return out, nil
}
