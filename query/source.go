package query

import (
	"github.com/eventmetrics/eventmetrics/encode"
	"github.com/eventmetrics/eventmetrics/index"
)

// Chunk is one run of points of one series, sorted by timestamp. It is
// either an encoded chunk (Encoded: Header describes it, and the iterator's
// Data method loads its bytes, in the format of package encode, only when
// the points are needed) or raw points (TS and VS). Chunks of one series may
// overlap in time (late and out-of-order points); Seq orders them by
// creation.
//
// The memory of a Chunk belongs to the Source and is valid only until the
// ChunkIterator moves on; it must not be modified.
type Chunk struct {
	Seq        uint64
	MinT, MaxT int64
	Encoded    bool
	Header     encode.Header // when Encoded
	TS         []int64       // when not Encoded
	VS         []float64
	// Block identifies the stored block the chunk belongs to (0: none);
	// its chunks come one after the other. See RollupIterator.
	Block uint64
}

// ChunkIterator walks the chunks of one series that may hold points of the
// selected range. At is invalid before the first Next.
type ChunkIterator interface {
	Next() bool
	At() *Chunk
	// Data returns the encoded bytes of the current chunk (when
	// Encoded), valid until Next.
	Data() ([]byte, error)
	Err() error
}

// SeriesFunc receives one selected series. labels belongs to the Source and
// is valid during the call only.
type SeriesFunc func(id uint64, name string, labels []index.Label, chunks ChunkIterator) error

// Hints tell a Source what a query needs.
type Hints struct {
	// Labels: fn needs each series' name and labels. Without it the
	// Source may pass an empty name and nil labels (and skip loading them).
	Labels bool
}

// Source is the storage a query runs on: the engine implements it.
type Source interface {
	// Select calls fn for every series named name (every series if name is
	// empty) that satisfies every matcher, in id order, with the chunks
	// that may hold points in [mint, maxt] (inclusive). A query sees every
	// point acknowledged before Select was called.
	Select(name string, ms []Matcher, mint, maxt int64, hints Hints, fn SeriesFunc) error
}
