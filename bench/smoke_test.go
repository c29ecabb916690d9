package bench

import (
	"flag"
	"testing"
)

// TestBenchmarksSmoke runs the body of every benchmark of the suite once,
// on tiny workloads (1,000 series of 20 points; 1k and 2k series for the
// index), so that a plain `go test ./bench/` proves each of them works and
// each query answer is right, without long work. A failing case says which
// benchmark to run with -bench to see the error.
func TestBenchmarksSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	f := flag.Lookup("test.benchtime")
	if f == nil {
		t.Skip("no -test.benchtime flag")
	}
	old := f.Value.String()
	if err := f.Value.Set("1x"); err != nil {
		t.Fatal(err)
	}
	defer f.Value.Set(old)

	s := newSuite(sizes{
		series:      1000,
		points:      20,
		encSeries:   2,
		encPoints:   1024,
		indexSeries: []int{1000, 2000},
		batch:       1000,
	})
	defer s.closeFixtures()
	layers := []struct {
		bench string
		cases []benchCase
	}{
		{"BenchmarkEncode", s.encodeCases()},
		{"BenchmarkWAL", s.walCases()},
		{"BenchmarkIndex", s.indexCases()},
		{"BenchmarkAppend", s.appendCases()},
		{"BenchmarkQuery", s.queryCases()},
	}
	for _, l := range layers {
		for _, c := range l.cases {
			t.Run(l.bench+"/"+c.name, func(t *testing.T) {
				if r := testing.Benchmark(c.run); r.N == 0 {
					t.Errorf("%s/%s failed: run go test -run='^$' -bench='^%s$/^%s$' ./bench/ to see why", l.bench, c.name, l.bench, c.name)
				}
			})
		}
	}
}
