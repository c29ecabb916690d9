package remote

import (
	"testing"

	"github.com/eventmetrics/eventmetrics/engine"
)

// TestTrackerCommitRule: the committable position is that of the last
// ticket of the longest completed prefix, whatever order shards finish in;
// empty tickets complete at once; the state goes with its ticket.
func TestTrackerCommitRule(t *testing.T) {
	var tr tracker
	tr.init(engine.FeedPos{Segment: 1}, nil)
	pos := func(o int64) engine.FeedPos { return engine.FeedPos{Segment: 2, Offset: o} }
	a := tr.add(pos(10), []byte("a"), 3)
	b := tr.add(pos(20), []byte("b"), 2)
	c := tr.add(pos(30), []byte("c"), 1)
	if _, _, ok := tr.take(); ok {
		t.Fatal("ready before anything was acknowledged")
	}
	tr.done(c, 1) // shard of c finishes first
	tr.done(b, 2)
	if _, _, ok := tr.take(); ok {
		t.Fatal("ready while a is pending")
	}
	tr.done(a, 2)
	if _, _, ok := tr.take(); ok {
		t.Fatal("ready while one sample of a is pending")
	}
	tr.done(a, 1)
	p, st, ok := tr.take()
	if !ok || p != pos(30) || string(st) != "c" {
		t.Fatalf("ready %v %q %v, want 2:30 c", p, st, ok)
	}
	if _, _, ok := tr.take(); ok {
		t.Fatal("take twice")
	}
	d := tr.add(pos(40), nil, 0) // nothing to send: ready at once
	_ = d
	if p, _, ok := tr.take(); !ok || p != pos(40) {
		t.Fatalf("empty ticket: %v %v", p, ok)
	}
	e := tr.add(pos(50), nil, 1)
	tr.add(pos(60), nil, 0)
	if _, _, ok := tr.take(); ok {
		t.Fatal("an empty ticket behind a pending one is not ready")
	}
	tr.done(e, 1)
	if p, _, ok := tr.take(); !ok || p != pos(60) {
		t.Fatalf("got %v %v, want 2:60", p, ok)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("releasing a finished ticket did not panic")
		}
	}()
	tr.done(e, 1)
}

// FuzzAggState restores arbitrary bytes as the aggregated shape's stored
// state (read from disk): no panic; a state that restores re-encodes to a
// state that restores to the same values.
func FuzzAggState(f *testing.F) {
	a := &aggProc{width: 10e9, watermark: 123, emitted: 100}
	f.Add(a.state(engine.FeedPos{Segment: 2, Offset: 99, Index: 3}))
	f.Add([]byte{1})
	f.Add([]byte{2, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		x := &aggProc{width: 10e9}
		if err := x.restore(b); err != nil {
			return
		}
		y := &aggProc{width: 10e9}
		if err := y.restore(x.state(x.replayEnd)); err != nil || y.watermark != x.watermark || y.emitted != x.emitted || y.replayEnd != x.replayEnd {
			t.Fatalf("%x: restored %+v, re-encoded restores %+v (%v)", b, x, y, err)
		}
	})
}
