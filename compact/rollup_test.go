package compact

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/eventmetrics/eventmetrics/query"
)

// TestBuildRollups checks every window of every tier against a brute-force
// summary of the same points, with NaN, ±Inf, -0, duplicate timestamps
// across chunks and negative timestamps.
func TestBuildRollups(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var chunks []RollupChunk
	type pt struct {
		t   int64
		v   float64
		seq uint64
	}
	var all []pt
	tm := int64(-90e9)
	for c := 0; c < 5; c++ {
		rc := RollupChunk{Seq: uint64(10 - c)} // creation order differs from time order
		for i := 0; i < 200; i++ {
			if rng.IntN(5) != 0 {
				tm += rng.Int64N(3e9)
			}
			v := rng.NormFloat64()
			switch rng.IntN(40) {
			case 0:
				v = math.NaN()
			case 1:
				v = math.Inf(1)
			case 2:
				v = math.Inf(-1)
			case 3:
				v = math.Copysign(0, -1)
			}
			rc.TS, rc.VS = append(rc.TS, tm), append(rc.VS, v)
			all = append(all, pt{tm, v, rc.Seq})
		}
		tm -= 20e9 // the next chunk overlaps this one's end
		chunks = append(chunks, rc)
	}
	widths := []int64{1e9, 60e9, 3600e9}
	tiers, err := BuildRollups(chunks, widths, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	for ti, w := range widths {
		want := map[int64][]pt{}
		for _, p := range all {
			if p.v == p.v {
				s := floorTo(p.t, w)
				want[s] = append(want[s], p)
			}
		}
		if len(tiers[ti].Windows) != len(want) {
			t.Fatalf("width %d: %d windows, want %d", w, len(tiers[ti].Windows), len(want))
		}
		for _, rw := range tiers[ti].Windows {
			ps := want[rw.Start]
			var sum float64
			var ninf, pinf uint64
			mn, mx := math.Inf(1), math.Inf(-1)
			first, last := ps[0], ps[0]
			for _, p := range ps {
				sum += p.v
				mn, mx = math.Min(mn, p.v), math.Max(mx, p.v)
				if p.t < first.t || p.t == first.t && p.seq < first.seq {
					first = p
				}
				if p.t > last.t || p.t == last.t && p.seq >= last.seq {
					last = p
				}
				if math.IsInf(p.v, 1) {
					pinf++
				}
				if math.IsInf(p.v, -1) {
					ninf++
				}
			}
			if rw.Count != uint64(len(ps)) || rw.PosInf != pinf || rw.NegInf != ninf || rw.Min != mn || rw.Max != mx ||
				rw.FirstT != first.t || rw.First != first.v || rw.LastT != last.t || rw.LastSeq != last.seq ||
				math.Float64bits(rw.Last) != math.Float64bits(last.v) {
				t.Fatalf("width %d window %d: %+v; want count %d, min %v, max %v, first %v@%d, last %v@%d seq %d", w, rw.Start, rw, len(ps), mn, mx, first.v, first.t, last.v, last.t, last.seq)
			}
			if !(sum == rw.Sum || math.Abs(sum-rw.Sum) <= 1e-9*math.Abs(sum) || math.IsNaN(sum) && math.IsNaN(rw.Sum)) {
				t.Fatalf("window %d: sum %v, want %v", rw.Start, rw.Sum, sum)
			}
		}
	}
	// Round trip.
	b := AppendRollups(nil, 0.01, tiers)
	relErr, got, err := DecodeRollups(b)
	if err != nil || relErr != 0.01 || len(got) != len(tiers) {
		t.Fatalf("decode: %v %v %d", err, relErr, len(got))
	}
	for i := range got {
		if got[i].Width != tiers[i].Width || !slices.EqualFunc(got[i].Windows, tiers[i].Windows, func(a, b query.RollupWindow) bool {
			return a.Start == b.Start && a.Count == b.Count && a.NegInf == b.NegInf && a.PosInf == b.PosInf &&
				math.Float64bits(a.Sum) == math.Float64bits(b.Sum) && a.Min == b.Min && a.Max == b.Max &&
				math.Float64bits(a.First) == math.Float64bits(b.First) && math.Float64bits(a.Last) == math.Float64bits(b.Last) &&
				a.FirstT == b.FirstT && a.LastT == b.LastT && a.LastSeq == b.LastSeq && bytes.Equal(a.Sketch, b.Sketch)
		}) {
			t.Fatalf("tier %d differs after a round trip", i)
		}
	}
	// Every truncation is an error, never a panic.
	for n := 0; n < len(b); n++ {
		if _, _, err := DecodeRollups(b[:n]); !errors.Is(err, ErrRollup) {
			t.Fatalf("cut to %d bytes: %v", n, err)
		}
	}
}

func TestValidateRollupWidths(t *testing.T) {
	for _, c := range []struct {
		ws []int64
		ok bool
	}{
		{nil, true},
		{[]int64{60e9, 3600e9}, true},
		{[]int64{3600e9, 60e9}, false},
		{[]int64{60e9, 60e9}, false},
		{[]int64{1e6}, false},
		{[]int64{1500e6}, false},
		{[]int64{1e9, 2e9, 3e9, 4e9, 5e9, 6e9, 7e9, 8e9, 9e9}, false},
	} {
		if err := ValidateRollupWidths(c.ws); (err == nil) != c.ok {
			t.Errorf("%v: %v", c.ws, err)
		}
	}
}

// Windows at the ends of time would overflow: that tier is left out.
func TestBuildRollupsExtremes(t *testing.T) {
	tiers, err := BuildRollups([]RollupChunk{{Seq: 1, TS: []int64{math.MinInt64, 0, math.MaxInt64}, VS: []float64{1, 2, 3}}}, []int64{60e9}, 0.01)
	if err != nil || len(tiers) != 0 {
		t.Fatalf("%v %v", tiers, err)
	}
}

// FuzzDecodeRollups: the decoder never panics and what it accepts
// re-encodes to itself.
func FuzzDecodeRollups(f *testing.F) {
	tiers, _ := BuildRollups([]RollupChunk{{Seq: 3, TS: []int64{1e9, 61e9, 62e9}, VS: []float64{1, math.Inf(1), -2}}}, []int64{1e9, 60e9}, 0.02)
	f.Add(AppendRollups(nil, 0.02, tiers))
	f.Fuzz(func(t *testing.T, b []byte) {
		relErr, tiers, err := DecodeRollups(b)
		if err != nil {
			return
		}
		if again := AppendRollups(nil, relErr, tiers); !bytes.Equal(again, b) {
			// Non-minimal varints decode too; the values must survive.
			r2, t2, err := DecodeRollups(again)
			if err != nil || r2 != relErr || len(t2) != len(tiers) {
				t.Fatalf("re-encoding does not decode the same: %v", err)
			}
		}
	})
}
