package encode

import (
	"math"
	"math/rand/v2"
	"testing"
)

var benchSink uint64

// benchPoints is the number of points per chunk in the benchmarks.
const benchPoints = 1024

// benchShape is one data shape of the benchmark matrix.
type benchShape struct {
	name string
	gen  func(r *rand.Rand, n int) ([]int64, []float64)
}

func benchShapes() []benchShape {
	times := []struct {
		name string
		gen  func(r *rand.Rand, n int) []int64
	}{
		{"regular", func(_ *rand.Rand, n int) []int64 { return tsRegular(n, 15*sec) }},
		{"jittered", tsJittered},
		{"gappy", tsGappy},
	}
	values := []struct {
		name string
		gen  func(r *rand.Rand, n int) []float64
	}{
		{"constant", func(_ *rand.Rand, n int) []float64 { return vsConst(n, 42) }},
		{"counter", vsCounter},
		{"gauge", vsGauge},
		{"random", vsRandom},
	}
	var shapes []benchShape
	for _, t := range times {
		for _, v := range values {
			shapes = append(shapes, benchShape{t.name + "-" + v.name, func(r *rand.Rand, n int) ([]int64, []float64) {
				return t.gen(r, n), v.gen(r, n)
			}})
		}
	}
	return append(shapes,
		benchShape{"W-event", func(r *rand.Rand, n int) ([]int64, []float64) { return tsEvent(r, n), vsLognormal(r, n) }},
		benchShape{"W-scrape", func(r *rand.Rand, n int) ([]int64, []float64) { return tsRegular(n, 15*sec), vsWalk(r, n) }},
	)
}

// benchData is a few chunks of one shape, so that the branch predictor does
// not learn a single chunk by heart.
type benchData struct {
	ts     [][]int64
	vs     [][]float64
	chunks [][]byte
	bytes  int
}

func makeBenchData(b *testing.B, s benchShape) *benchData {
	r := newRand(b, 100)
	d := &benchData{}
	for range 8 {
		ts, vs := s.gen(r, benchPoints)
		c, err := AppendChunk(nil, ts, vs)
		if err != nil {
			b.Fatal(err)
		}
		d.ts, d.vs, d.chunks = append(d.ts, ts), append(d.vs, vs), append(d.chunks, c)
		d.bytes += len(c)
	}
	return d
}

func (d *benchData) report(b *testing.B) {
	b.ReportMetric(float64(b.N)*benchPoints/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(float64(d.bytes)/float64(len(d.chunks)*benchPoints), "B/point")
}

func BenchmarkEncode(b *testing.B) {
	for _, s := range benchShapes() {
		b.Run(s.name, func(b *testing.B) {
			d := makeBenchData(b, s)
			dst := make([]byte, 0, 64<<10)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % len(d.chunks)
				dst, _ = AppendChunk(dst[:0], d.ts[k], d.vs[k])
				i++
			}
			d.report(b)
		})
	}
}

func BenchmarkDecodeAll(b *testing.B) {
	for _, s := range benchShapes() {
		b.Run(s.name, func(b *testing.B) {
			d := makeBenchData(b, s)
			ts, vs := make([]int64, 0, benchPoints), make([]float64, 0, benchPoints)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_, ts, vs, _ = DecodeAll(d.chunks[i%len(d.chunks)], ts[:0], vs[:0])
				i++
			}
			d.report(b)
		})
	}
}

func BenchmarkIterator(b *testing.B) {
	for _, s := range benchShapes() {
		b.Run(s.name, func(b *testing.B) {
			d := makeBenchData(b, s)
			var it Iterator
			var sum uint64
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				it.Reset(d.chunks[i%len(d.chunks)])
				for it.Next() {
					t, v := it.At()
					sum += uint64(t) ^ math.Float64bits(v)
				}
				i++
			}
			benchSink = sum
			d.report(b)
		})
	}
}

func BenchmarkDecodeHeader(b *testing.B) {
	r := newRand(b, 101)
	c, _ := AppendChunk(nil, tsEvent(r, benchPoints), vsLognormal(r, benchPoints))
	b.ReportAllocs()
	for b.Loop() {
		DecodeHeader(c)
	}
}
