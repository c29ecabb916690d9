package compact

import (
	"slices"
	"testing"
)

func TestGroups(t *testing.T) {
	p := Policy{Full: 100, MaxSpan: 1 << 40, MaxGroupPoints: 1000}
	cases := []struct {
		name string
		cs   []Chunk
		want [][]int
	}{
		{"full and ordered: nothing", []Chunk{{0, 99, 100, 1, false}, {100, 199, 100, 2, false}}, nil},
		{"overlap", []Chunk{{0, 99, 100, 1, false}, {50, 60, 10, 5, false}}, [][]int{{0, 1}}},
		{"small ones merge", []Chunk{{0, 9, 10, 1, false}, {10, 19, 10, 2, false}, {20, 29, 10, 3, false}}, [][]int{{0, 1, 2}}},
		{"shared boundary is not overlap", []Chunk{{0, 99, 100, 1, false}, {99, 199, 100, 2, false}}, nil},
		{"pinned breaks a run", []Chunk{{0, 9, 10, 1, false}, {10, 19, 10, 2, true}, {20, 29, 10, 3, false}}, nil},
		{"one small alone: nothing", []Chunk{{0, 99, 100, 1, false}, {100, 109, 10, 2, false}}, nil},
	}
	for _, c := range cases {
		got := Groups(c.cs, p)
		if !slices.EqualFunc(got, c.want, func(a, b []int) bool { return slices.Equal(a, b) }) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// The group size bound holds.
	var many []Chunk
	for i := 0; i < 50; i++ {
		many = append(many, Chunk{MinT: int64(i * 10), MaxT: int64(i*10 + 9), Count: 40, Seq: uint64(i)})
	}
	for _, g := range Groups(many, p) {
		n := 0
		for _, i := range g {
			n += many[i].Count
		}
		if n > p.MaxGroupPoints {
			t.Fatalf("group of %d points over the bound", n)
		}
	}
}

func TestMergeAndCut(t *testing.T) {
	ts, vs := Merge([][]int64{{1, 3, 3, 7}, {2, 3, 8}}, [][]float64{{10, 30, 31, 70}, {20, 32, 80}})
	if !slices.Equal(ts, []int64{1, 2, 3, 3, 3, 7, 8}) || !slices.Equal(vs, []float64{10, 20, 30, 31, 32, 70, 80}) {
		t.Fatalf("merge: %v %v", ts, vs)
	}
	if ends := Cut(ts, 3, 1<<40); !slices.Equal(ends, []int{3, 6, 7}) {
		t.Fatalf("cut by count: %v", ends)
	}
	if ends := Cut(ts, 100, 4); !slices.Equal(ends, []int{5, 7}) {
		t.Fatalf("cut by span: %v", ends)
	}
	if ends := Cut(nil, 3, 10); len(ends) != 0 {
		t.Fatalf("cut of nothing: %v", ends)
	}
}
