package query

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// RollupWindow summarizes the points of one block of chunks of one series
// that fall in one window [Start, Start+Width) of its tier. Windows are
// aligned to the Unix epoch. NaN values are not counted; ±Inf are (in
// Count, Sum, Min and Max), and NegInf and PosInf say how many, since the
// sketch holds only finite values.
type RollupWindow struct {
	Start          int64
	Count          uint64 // non-NaN values
	NegInf, PosInf uint64
	Sum, Min, Max  float64
	First, Last    float64 // the values with the smallest and greatest timestamp
	FirstT, LastT  int64
	LastSeq        uint64 // seq of the chunk holding Last (ties between chunks go to the higher seq)
	Sketch         []byte // a DDSketch of the finite values (sketches-go encoding, index mapping omitted)
}

// RollupTier holds the windows of one width, in ascending Start order.
type RollupTier struct {
	Width   int64
	Windows []RollupWindow
}

// Rollup is one tier of the precomputed summary of one block of chunks.
type Rollup struct {
	Tier   RollupTier
	RelErr float64 // relative accuracy of the sketches
	// MinT is the lowest timestamp the source serves (its retention may
	// raise it above the query's): windows starting before it are not
	// whole and must not be used.
	MinT int64
}

// RollupIterator is implemented by ChunkIterators whose chunks may belong
// to blocks with precomputed rollups (Chunk.Block != 0).
type RollupIterator interface {
	// Rollup returns the coarsest tier of the current chunk's block whose
	// width accept accepts, or nil when it has none. The memory belongs to
	// the iterator and is valid until its next call.
	Rollup(accept func(width int64) bool) (*Rollup, error)
}

// UseRollups lets the *By methods read precomputed rollups of cold data
// (see engine Options.Rollups) for the windows they cover wholly, instead
// of every point: much faster over long ranges. Count, Sum, Min, Max, Mean
// and Last stay exact (Sum up to the order of floating-point additions);
// percentiles from rollups are approximate, within the sketches' relative
// error, and Row.RelErr says so for each window. Increase, Rate and
// buckets always read the points.
func (q *Query) UseRollups() *Query { c := q.clone(); c.rollups = true; return c }

// mappings caches the DDSketch index mapping of each relative accuracy.
var mappings sync.Map // float64 -> mapping.IndexMapping

func mappingFor(relErr float64) (mapping.IndexMapping, error) {
	if m, ok := mappings.Load(relErr); ok {
		return m.(mapping.IndexMapping), nil
	}
	m, err := mapping.NewDefaultMapping(relErr)
	if err != nil {
		return nil, err
	}
	mappings.Store(relErr, m)
	return m, nil
}

// NewSketch returns an empty DDSketch of relative accuracy relErr, in the
// form rollups store (RollupWindow.Sketch). Its stores are dense: merging
// many sketches into one (as queries over rollups do) adds counts in
// place, where the default paginated store buffers and sorts.
func NewSketch(relErr float64) (*ddsketch.DDSketch, error) {
	m, err := mappingFor(relErr)
	if err != nil {
		return nil, err
	}
	return ddsketch.NewDDSketchFromStoreProvider(m, store.DenseStoreConstructor), nil
}

// approxCell accumulates percentiles approximately: a sketch of the finite
// values plus exact counts of ±Inf.
type approxCell struct {
	sk             *ddsketch.DDSketch
	relErr         float64 // the bound of sk's answers
	negInf, posInf uint64
}

func newApproxCell(relErr float64) (*approxCell, error) {
	sk, err := NewSketch(relErr)
	if err != nil {
		return nil, fmt.Errorf("query: sketch: %w", err)
	}
	return &approxCell{sk: sk, relErr: relErr}, nil
}

func (a *approxCell) add(v float64) error {
	switch {
	case v != v:
	case math.IsInf(v, 1):
		a.posInf++
	case math.IsInf(v, -1):
		a.negInf++
	default:
		if err := a.sk.Add(v); err != nil {
			return fmt.Errorf("query: sketch: %w", err)
		}
	}
	return nil
}

// count is the number of values added (NaN aside).
func (a *approxCell) count() uint64 {
	return a.negInf + a.posInf + uint64(math.Round(a.sk.GetCount()))
}

// merge adds a rollup window's values. A sketch of another accuracy is
// re-binned value by value (each bin at its representative value), which
// adds its error to the bound.
func (a *approxCell) merge(rw *RollupWindow, relErr float64) error {
	a.negInf += rw.NegInf
	a.posInf += rw.PosInf
	if len(rw.Sketch) == 0 {
		return nil
	}
	if relErr == a.relErr {
		if err := a.sk.DecodeAndMergeWith(rw.Sketch); err != nil {
			return fmt.Errorf("query: rollup sketch: %w", err)
		}
		return nil
	}
	m, err := mappingFor(relErr)
	if err != nil {
		return err
	}
	other, err := ddsketch.DecodeDDSketch(rw.Sketch, store.DenseStoreConstructor, m)
	if err != nil {
		return fmt.Errorf("query: rollup sketch: %w", err)
	}
	other.ForEach(func(v, n float64) bool {
		err = a.sk.AddWithCount(v, n)
		return err != nil
	})
	a.relErr += relErr
	return err
}

// quantiles returns the percentiles ps at ranks ⌊p/100·(n−1)⌋ of the n
// values (NaN for none): the representative value of the sketch bin
// holding that rank. (Ranks are found on the bins themselves: asking the
// sketch for quantile rank/(n-1) can land one rank off through float
// rounding.)
func (a *approxCell) quantiles(ps []float64) ([]float64, error) {
	type bin struct{ v, n float64 }
	var bins []bin
	a.sk.ForEach(func(v, n float64) bool {
		if n > 0 {
			bins = append(bins, bin{v, n})
		}
		return false
	})
	slices.SortFunc(bins, func(x, y bin) int { return cmp.Compare(x.v, y.v) })
	finite := uint64(0)
	for _, b := range bins {
		finite += uint64(math.Round(b.n))
	}
	n := a.negInf + finite + a.posInf
	out := make([]float64, len(ps))
	for i, p := range ps {
		if n == 0 {
			out[i] = math.NaN()
			continue
		}
		rank := uint64(math.Floor(p / 100 * float64(n-1)))
		switch {
		case rank < a.negInf:
			out[i] = math.Inf(-1)
		case rank >= a.negInf+finite:
			out[i] = math.Inf(1)
		default:
			r, cum := rank-a.negInf, uint64(0)
			for _, b := range bins {
				cum += uint64(math.Round(b.n))
				if cum > r {
					out[i] = b.v
					break
				}
			}
		}
	}
	return out, nil
}

// rollupUse is what the evaluator took from the current block's rollups.
type rollupUse struct {
	block    uint64
	width    int64
	consumed []int64 // window starts answered by the rollups, ascending
	skipped  []int64 // window starts of the block not answered (points read), ascending
}

// floorDiv is the start of the width-w window (aligned to 0) holding t.
func floorDiv(t, w int64) int64 {
	s := t / w * w
	if s > t {
		s -= w
	}
	return s
}

func containsSorted(a []int64, x int64) bool {
	i := sort.Search(len(a), func(i int) bool { return a[i] >= x })
	return i < len(a) && a[i] == x
}

// anyIn reports whether a (ascending) holds a value in [lo, hi].
func anyIn(a []int64, lo, hi int64) bool {
	i := sort.Search(len(a), func(i int) bool { return a[i] >= lo })
	return i < len(a) && a[i] <= hi
}
