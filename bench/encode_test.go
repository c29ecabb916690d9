package bench

import (
	"math"
	"testing"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/encode"
)

// chunkPoints is the engine's default chunk size (engine.Options.ChunkPoints).
const chunkPoints = 1024

// chunkSet is a set of 1024-point chunks cut from the series of a workload:
// several, so that the branch predictor cannot learn one by heart.
type chunkSet struct {
	ts     [][]int64
	vs     [][]float64
	chunks [][]byte
	bytes  int
}

func (s *suite) chunks(tb testing.TB, kind workload.Kind) *chunkSet {
	d := s.workloadData(kind, s.sz.encSeries, s.sz.encPoints)
	cs := &chunkSet{}
	for ser := range d.truth.TS {
		ts, vs := d.truth.TS[ser], d.truth.VS[ser]
		for lo := 0; lo+chunkPoints <= len(ts); lo += chunkPoints {
			c, err := encode.AppendChunk(nil, ts[lo:lo+chunkPoints], vs[lo:lo+chunkPoints])
			if err != nil {
				tb.Fatal(err)
			}
			cs.ts = append(cs.ts, ts[lo:lo+chunkPoints])
			cs.vs = append(cs.vs, vs[lo:lo+chunkPoints])
			cs.chunks = append(cs.chunks, c)
			cs.bytes += len(c)
		}
	}
	if len(cs.chunks) == 0 {
		tb.Fatalf("no %d-point chunk in %d points per series", chunkPoints, s.sz.encPoints)
	}
	return cs
}

func (cs *chunkSet) report(b *testing.B, ops int) {
	b.ReportMetric(perSecond(float64(ops)*chunkPoints, b.Elapsed()), "points/s")
	b.ReportMetric(float64(cs.bytes)/float64(len(cs.chunks)*chunkPoints), "B/point")
}

func (s *suite) encodeCases() []benchCase {
	var cases []benchCase
	for _, kind := range kinds {
		cases = append(cases,
			benchCase{kind.String() + "/encode", func(b *testing.B) {
				cs := s.chunks(b, kind)
				dst := make([]byte, 0, 64<<10)
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					k := n % len(cs.chunks)
					var err error
					if dst, err = encode.AppendChunk(dst[:0], cs.ts[k], cs.vs[k]); err != nil {
						b.Fatal(err)
					}
					n++
				}
				cs.report(b, n)
			}},
			benchCase{kind.String() + "/decode", func(b *testing.B) {
				cs := s.chunks(b, kind)
				// Check the round trip once, bit for bit, before timing.
				for k, c := range cs.chunks {
					_, ts, vs, err := encode.DecodeAll(c, nil, nil)
					if err != nil {
						b.Fatal(err)
					}
					for i := range ts {
						if ts[i] != cs.ts[k][i] || math.Float64bits(vs[i]) != math.Float64bits(cs.vs[k][i]) {
							b.Fatalf("chunk %d point %d: decoded (%d, %v), want (%d, %v)", k, i, ts[i], vs[i], cs.ts[k][i], cs.vs[k][i])
						}
					}
				}
				ts, vs := make([]int64, 0, chunkPoints), make([]float64, 0, chunkPoints)
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					var err error
					if _, ts, vs, err = encode.DecodeAll(cs.chunks[n%len(cs.chunks)], ts[:0], vs[:0]); err != nil {
						b.Fatal(err)
					}
					n++
				}
				cs.report(b, n)
			}},
		)
	}
	return cases
}

// BenchmarkEncode encodes and decodes 1024-point chunks (the engine's
// default chunk size) cut from W-event and W-scrape series, through
// encode.AppendChunk and encode.DecodeAll. B/point is the encoded size.
func BenchmarkEncode(b *testing.B) { runCases(b, std().encodeCases()) }
