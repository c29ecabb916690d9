package engine_test

import (
	"testing"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/query"
)

// TestQueryAllocsDoNotScaleWithPoints guards "zero allocations per point
// while iterating": the allocations of a query must not grow with the
// number of points it scans (decoded or read from chunk headers).
func TestQueryAllocsDoNotScaleWithPoints(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("the race detector changes allocation counts; .ci/run runs this test without it")
	}
	allocs := func(points int) (scalar, decode float64) {
		dir := t.TempDir()
		db := open(t, dir, nil)
		s, _ := db.Series("m", engine.Labels{"a": "b"})
		var b engine.Batch
		for i := 0; i < points; i++ {
			b.Add(s, int64(i)*1e9, float64(i%100)+0.5)
		}
		if err := db.Append(&b); err != nil {
			t.Fatal(err)
		}
		db.Close()
		db = open(t, dir, nil)
		defer db.Close()
		full := db.Query("m")
		part := db.Query("m").FromNanos(500e9) // cuts a chunk: decodes
		scalar = testing.AllocsPerRun(5, func() {
			if _, err := full.Scalars(query.Count, query.Sum, query.Max); err != nil {
				t.Fatal(err)
			}
		})
		decode = testing.AllocsPerRun(5, func() {
			if _, err := part.Scalars(query.Count, query.Sum, query.Max); err != nil {
				t.Fatal(err)
			}
		})
		return scalar, decode
	}
	s1, d1 := allocs(20_000)
	s2, d2 := allocs(200_000)
	t.Logf("allocations: header path %v -> %v, decoding path %v -> %v (20k -> 200k points)", s1, s2, d1, d2)
	if s2 > s1+2 || d2 > d1+2 {
		t.Fatalf("allocations grow with the points scanned: %v -> %v and %v -> %v", s1, s2, d1, d2)
	}
}
