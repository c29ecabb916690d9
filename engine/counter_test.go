package engine_test

import (
	"math"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/query"
)

// TestCounterIncrease checks Increase and Rate per window against a
// reference, on counters with resets written partly out of order.
func TestCounterIncrease(t *testing.T) {
	rng := testutil.Rand(t)
	db := open(t, t.TempDir(), &engine.Options{ChunkPoints: 32})
	defer db.Close()
	const nseries = 3
	base := int64(1_700_000_000) * 1e9
	step := int64(time.Minute)
	// reference increase per window (summed over series)
	ref := map[int64]float64{}
	var total float64
	for s := 0; s < nseries; s++ {
		h, _ := db.Series("ctr", engine.Labels{"s": string(rune('a' + s))})
		type pt struct {
			t int64
			v float64
		}
		var pts []pt
		v := 0.0
		tt := base
		for i := 0; i < 500; i++ {
			tt += 1 + rng.Int64N(2e9)
			if rng.IntN(50) == 0 {
				v = float64(rng.IntN(3)) // reset
			} else {
				v += float64(rng.IntN(5))
			}
			pts = append(pts, pt{tt, v})
		}
		for i := 1; i < len(pts); i++ {
			d := pts[i].v - pts[i-1].v
			if d < 0 {
				d = pts[i].v
			}
			w := base + (pts[i].t-base)/step*step
			ref[w] += d
			total += d
		}
		// Write with some local shuffling (late points).
		for i := 0; i < len(pts); i += 10 {
			j := min(i+10, len(pts))
			chunk := pts[i:j]
			rng.Shuffle(len(chunk), func(a, b int) { chunk[a], chunk[b] = chunk[b], chunk[a] })
			for _, p := range chunk {
				if err := h.ObserveAtNanos(p.t, p.v); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, compact := range []bool{false, true} {
		if compact {
			if err := db.Compact(); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := db.Query("ctr").FromNanos(base).Step(time.Minute).AggregateBy(query.Increase, query.Rate)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 {
			t.Fatalf("%d rows", len(rows))
		}
		var sum float64
		for i, w := range rows[0].Times {
			got := rows[0].Values[i]
			if got[0] != ref[w] {
				t.Fatalf("window %d: increase %v, want %v", w, got[0], ref[w])
			}
			if math.Abs(got[1]-ref[w]/60) > 1e-9 {
				t.Fatalf("window %d: rate %v, want %v", w, got[1], ref[w]/60)
			}
			sum += got[0]
		}
		if sum != total {
			t.Fatalf("windows add up to %v, the total increase is %v", sum, total)
		}
		all, err := db.Query("ctr").AggregateBy(query.Increase)
		if err != nil || all[0].Values[0][0] != total {
			t.Fatalf("increase over everything %v (%v), want %v", all, err, total)
		}
	}
}
