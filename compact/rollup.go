package compact

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/eventmetrics/eventmetrics/query"
)

// RollupChunk is the points of one chunk of a block, in time order.
type RollupChunk struct {
	Seq uint64
	TS  []int64
	VS  []float64
}

// Rollup tier limits (DESIGN.md §12.3). MaxRollupTiers and the width
// bounds are part of the format: do not change.
const (
	MaxRollupTiers    = 8
	MinRollupWidth    = int64(1e9)                   // 1 s
	MaxRollupWidth    = int64(366 * 24 * 3600 * 1e9) // a year
	maxRollupWindows  = 1 << 20                      // per tier of one block (decoder limit)
	maxRollupSketchSz = 1 << 20
)

// BuildRollups summarizes the points of a block's chunks per window of
// each width (aligned to the Unix epoch): count, sum, min, max, first,
// last, ±Inf counts and a DDSketch of relative accuracy relErr of the
// finite values. NaN values are skipped; windows without a non-NaN value
// are left out.
func BuildRollups(chunks []RollupChunk, widths []int64, relErr float64) ([]query.RollupTier, error) {
	sk, err := query.NewSketch(relErr)
	if err != nil {
		return nil, fmt.Errorf("compact: rollups: %w", err)
	}
	// Every point once, in time order; equal timestamps keep their chunks'
	// order (creation, by seq) and their order within a chunk, so that
	// First and Last follow the query layer's rules.
	type pt struct {
		t   int64
		v   float64
		seq uint64
	}
	var pts []pt
	order := slices.Clone(chunks)
	slices.SortStableFunc(order, func(a, b RollupChunk) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, c := range order {
		for i, t := range c.TS {
			if v := c.VS[i]; v == v {
				pts = append(pts, pt{t, v, c.Seq})
			}
		}
	}
	slices.SortStableFunc(pts, func(a, b pt) int { return cmp.Compare(a.t, b.t) })
	tiers := make([]query.RollupTier, 0, len(widths))
	for _, w := range widths {
		if len(pts) > 0 && (pts[0].t < math.MinInt64+w || pts[len(pts)-1].t > math.MaxInt64-w) {
			continue // windows at the ends of time would overflow: no such tier here
		}
		tier := query.RollupTier{Width: w}
		for i := 0; i < len(pts); {
			start := floorTo(pts[i].t, w)
			j := i
			rw := query.RollupWindow{Start: start, Min: pts[i].v, Max: pts[i].v, First: pts[i].v, FirstT: pts[i].t}
			sk.Clear()
			for ; j < len(pts) && floorTo(pts[j].t, w) == start; j++ {
				p := pts[j]
				rw.Count++
				rw.Sum += p.v
				if p.v < rw.Min {
					rw.Min = p.v
				}
				if p.v > rw.Max {
					rw.Max = p.v
				}
				// Last: the greatest timestamp; of equal ones the later
				// chunk (seq), then the later point in it: the sort's
				// last.
				rw.Last, rw.LastT, rw.LastSeq = p.v, p.t, p.seq
				switch {
				case math.IsInf(p.v, 1):
					rw.PosInf++
				case math.IsInf(p.v, -1):
					rw.NegInf++
				default:
					if err := sk.Add(p.v); err != nil {
						return nil, fmt.Errorf("compact: rollups: %w", err)
					}
				}
			}
			if !sk.IsEmpty() {
				sk.Encode(&rw.Sketch, true)
			}
			tier.Windows = append(tier.Windows, rw)
			i = j
		}
		tiers = append(tiers, tier)
	}
	return tiers, nil
}

// floorTo is the start of the width-w window (aligned to 0) holding t.
func floorTo(t, w int64) int64 {
	s := t / w * w
	if s > t {
		s -= w
	}
	return s
}

// ValidateRollupWidths checks tier widths as Options give them.
func ValidateRollupWidths(widths []int64) error {
	if len(widths) > MaxRollupTiers {
		return fmt.Errorf("%d rollup tiers, at most %d", len(widths), MaxRollupTiers)
	}
	for i, w := range widths {
		if w < MinRollupWidth || w > MaxRollupWidth || w%MinRollupWidth != 0 {
			return fmt.Errorf("rollup width %v: must be a whole number of seconds from 1 s to a year", w)
		}
		if i > 0 && w <= widths[i-1] {
			return fmt.Errorf("rollup widths must ascend: %d after %d", w, widths[i-1])
		}
	}
	return nil
}

// ErrRollup is wrapped by every error about bad rollup bytes.
var ErrRollup = errors.New("compact: corrupt rollup")

// AppendRollups encodes tiers after dst (format: DESIGN.md §12.3).
func AppendRollups(dst []byte, relErr float64, tiers []query.RollupTier) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(relErr))
	dst = binary.AppendUvarint(dst, uint64(len(tiers)))
	for _, t := range tiers {
		dst = binary.AppendUvarint(dst, uint64(t.Width))
		dst = binary.AppendUvarint(dst, uint64(len(t.Windows)))
		prev := int64(0)
		for i := range t.Windows {
			w := &t.Windows[i]
			dst = binary.AppendVarint(dst, w.Start-prev)
			prev = w.Start
			dst = binary.AppendUvarint(dst, w.Count)
			dst = binary.AppendUvarint(dst, w.NegInf)
			dst = binary.AppendUvarint(dst, w.PosInf)
			for _, f := range [...]float64{w.Sum, w.Min, w.Max, w.First, w.Last} {
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
			}
			dst = binary.AppendUvarint(dst, uint64(w.FirstT-w.Start))
			dst = binary.AppendUvarint(dst, uint64(w.LastT-w.Start))
			dst = binary.AppendUvarint(dst, w.LastSeq)
			dst = binary.AppendUvarint(dst, uint64(len(w.Sketch)))
			dst = append(dst, w.Sketch...)
		}
	}
	return dst
}

type rollupReader struct {
	b   []byte
	err error
}

func (r *rollupReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrRollup, what)
	}
}

func (r *rollupReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rollupReader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rollupReader) f64(what string) float64 {
	if len(r.b) < 8 {
		r.fail(what)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

// DecodeRollups decodes what AppendRollups wrote. The windows' sketches
// alias b. It checks the structure (counts, widths, window order and
// alignment, timestamps inside their windows), not the aggregates.
func DecodeRollups(b []byte) (relErr float64, tiers []query.RollupTier, err error) {
	r := &rollupReader{b: b}
	relErr = r.f64("relative error")
	if r.err == nil && !(relErr > 0 && relErr < 1) {
		r.fail("relative error out of (0, 1)")
	}
	n := r.uvarint("tier count")
	if r.err == nil && n > MaxRollupTiers {
		r.fail("too many tiers")
	}
	for i := uint64(0); r.err == nil && i < n; i++ {
		w := r.uvarint("width")
		nw := r.uvarint("window count")
		if r.err != nil || w < uint64(MinRollupWidth) || w > uint64(MaxRollupWidth) || nw > maxRollupWindows || nw > uint64(len(r.b)) {
			r.fail("tier header")
			break
		}
		t := query.RollupTier{Width: int64(w), Windows: make([]query.RollupWindow, 0, nw)}
		prev := int64(0)
		for j := uint64(0); r.err == nil && j < nw; j++ {
			var rw query.RollupWindow
			d := r.varint("window start")
			if d > 0 && prev > math.MaxInt64-d || d < 0 && prev < math.MinInt64-d {
				r.fail("window start")
				break
			}
			rw.Start = prev + d
			if j > 0 && rw.Start <= prev || floorTo(rw.Start, t.Width) != rw.Start || rw.Start > math.MaxInt64-t.Width {
				r.fail("window start")
				break
			}
			prev = rw.Start
			rw.Count = r.uvarint("count")
			rw.NegInf = r.uvarint("-Inf count")
			rw.PosInf = r.uvarint("+Inf count")
			rw.Sum, rw.Min, rw.Max = r.f64("sum"), r.f64("min"), r.f64("max")
			rw.First, rw.Last = r.f64("first"), r.f64("last")
			ft, lt := r.uvarint("first time"), r.uvarint("last time")
			rw.LastSeq = r.uvarint("last seq")
			sl := r.uvarint("sketch length")
			if r.err != nil {
				break
			}
			if ft >= uint64(t.Width) || lt >= uint64(t.Width) || rw.Count == 0 || rw.NegInf+rw.PosInf > rw.Count || rw.NegInf > rw.Count || sl > maxRollupSketchSz || sl > uint64(len(r.b)) {
				r.fail("window")
				break
			}
			rw.FirstT, rw.LastT = rw.Start+int64(ft), rw.Start+int64(lt)
			rw.Sketch = r.b[:sl:sl]
			r.b = r.b[sl:]
			t.Windows = append(t.Windows, rw)
		}
		if r.err == nil && i > 0 && t.Width <= tiers[i-1].Width {
			r.fail("tier widths do not ascend")
		}
		tiers = append(tiers, t)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return 0, nil, r.err
	}
	return relErr, tiers, nil
}
