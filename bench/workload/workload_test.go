package workload

import "testing"

// TestOutOfOrderDeterministic: the same config yields the same points, and
// every point comes out exactly once, with the configured share delayed.
func TestOutOfOrderDeterministic(t *testing.T) {
	cfg := Config{Kind: Event, Series: 50, Points: 200, OutOfOrder: 0.1, Duplicates: 0.05}
	a, b := New(cfg), New(cfg)
	seen := map[[2]int64]int{}
	late := 0
	last := map[int]int64{}
	for {
		p, ok := a.Next()
		q, ok2 := b.Next()
		if ok != ok2 || p != q {
			t.Fatalf("two generators with one seed differ: %+v %+v", p, q)
		}
		if !ok {
			break
		}
		seen[[2]int64{int64(p.Series), p.T}]++
		if p.T < last[p.Series] {
			late++
		}
		last[p.Series] = max(last[p.Series], p.T)
	}
	n := 0
	for _, c := range seen {
		n += c
	}
	if n != 50*200 {
		t.Fatalf("%d points, want %d", n, 50*200)
	}
	if late < 200 || late > 2000 {
		t.Fatalf("%d late points for a 10%% out-of-order share", late)
	}
}
