// Package compact owns the rules for rewriting what is already stored:
// which chunks of a series to merge, and how to merge their points into new
// chunks. It is pure: no I/O, no goroutines. The engine reads the chunks,
// applies these rules and writes the result atomically (DESIGN.md §12).
//
// Concurrency: every function is safe for concurrent use.
package compact

import (
	"slices"
)

// Chunk describes one stored chunk of a series.
type Chunk struct {
	MinT, MaxT int64
	Count      int
	Seq        uint64
	Pinned     bool // may not be rewritten (e.g. still open in memory)
}

// Policy says what is worth rewriting.
type Policy struct {
	// Full is the number of points of a full chunk (the engine's
	// ChunkPoints). Chunks with fewer than Full/2 points are undersized.
	Full int
	// MaxSpan bounds MaxT-MinT of every chunk written.
	MaxSpan int64
	// MaxGroupPoints bounds the points merged at once (memory).
	MaxGroupPoints int
}

// Groups returns the runs of chunks (indexes into cs, which must be sorted
// by MinT then Seq) to merge: maximal runs of consecutive unpinned chunks
// in which each chunk overlaps the run so far or is undersized, holding at
// least two chunks, at most MaxGroupPoints points. Chunks that only share a
// boundary timestamp do not overlap. Chunks of a run are
// merged into full, non-overlapping chunks.
func Groups(cs []Chunk, p Policy) [][]int {
	var out [][]int
	var cur []int
	var curMax int64
	var curPoints int
	flush := func() {
		if len(cur) >= 2 && worth(cs, cur, p) {
			out = append(out, cur)
		}
		cur, curPoints = nil, 0
	}
	for i, c := range cs {
		if c.Pinned {
			flush()
			continue
		}
		joins := len(cur) > 0 &&
			(c.MinT < curMax || c.Count < p.Full/2 || cs[cur[len(cur)-1]].Count < p.Full/2) &&
			curPoints+c.Count <= p.MaxGroupPoints
		if !joins {
			flush()
		}
		if len(cur) == 0 {
			curMax = c.MaxT
		}
		cur = append(cur, i)
		curPoints += c.Count
		curMax = max(curMax, c.MaxT)
	}
	flush()
	return out
}

// worth reports whether rewriting the run reduces the chunk count or
// removes an overlap.
func worth(cs []Chunk, run []int, p Policy) bool {
	n := 0
	for i, j := range run {
		n += cs[j].Count
		if i > 0 && cs[j].MinT < cs[run[i-1]].MaxT {
			return true // overlap (chunks may share a boundary timestamp: duplicates cut apart)
		}
	}
	need := (n + p.Full - 1) / p.Full
	return need < len(run)
}

// Merge merges runs of points, each sorted by time, into one run sorted by
// time; points with equal timestamps keep the order of their runs (the
// caller passes runs in creation order) and, within a run, their order.
func Merge(ts [][]int64, vs [][]float64) ([]int64, []float64) {
	n := 0
	for _, t := range ts {
		n += len(t)
	}
	type ref struct {
		t   int64
		run int32
		idx int32
	}
	refs := make([]ref, 0, n)
	for r, t := range ts {
		for i, x := range t {
			refs = append(refs, ref{x, int32(r), int32(i)})
		}
	}
	slices.SortStableFunc(refs, func(a, b ref) int {
		switch {
		case a.t < b.t:
			return -1
		case a.t > b.t:
			return 1
		}
		return 0
	})
	outT := make([]int64, n)
	outV := make([]float64, n)
	for i, r := range refs {
		outT[i] = r.t
		outV[i] = vs[r.run][r.idx]
	}
	return outT, outV
}

// Cut splits sorted points into chunks of at most full points spanning at
// most maxSpan each, returning the end index of each chunk.
func Cut(ts []int64, full int, maxSpan int64) []int {
	var ends []int
	start := 0
	for i := range ts {
		if i-start >= full || uint64(ts[i]-ts[start]) > uint64(maxSpan) {
			ends = append(ends, i)
			start = i
		}
	}
	if start < len(ts) {
		ends = append(ends, len(ts))
	}
	return ends
}
