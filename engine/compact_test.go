package engine_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

// snapshotQueries runs a fixed set of queries whose answers must not change
// across a compaction.
func snapshotQueries(t *testing.T, db *engine.DB, metric string) []string {
	t.Helper()
	var out []string
	add := func(v ...any) {
		for _, x := range v {
			switch x := x.(type) {
			case float64:
				out = append(out, formatBits(x))
			default:
				out = append(out, fmtAny(x))
			}
		}
	}
	ts, vs, err := db.Query(metric).Points()
	if err != nil {
		t.Fatal(err)
	}
	// Points as a multiset per timestamp (equal timestamps of different
	// series have no defined order).
	keys := make([]string, len(ts))
	for i := range ts {
		keys[i] = fmtAny(ts[i]) + "/" + formatBits(vs[i])
	}
	slices.Sort(keys)
	out = append(out, keys...)
	sc, _ := db.Query(metric).Scalars(query.Count, query.Min, query.Max)
	add(sc[0], sc[1], sc[2])
	ps, _ := db.Query(metric, query.Eq("service", "svc-3")).Percentiles(50, 99)
	add(ps[0], ps[1])
	rows, _ := db.Query(metric).GroupBy("endpoint").Step(time.Minute).AggregateBy(query.Count)
	for _, r := range rows {
		add(r.Labels[0].Value, len(r.Times))
		for i := range r.Times {
			add(r.Times[i], r.Values[i][0])
		}
	}
	return out
}

func formatBits(v float64) string { return fmtAny(math.Float64bits(v)) }
func fmtAny(v any) string         { return fmtSprint(v) }

// TestCompactionKeepsAnswers: W-event-like data with 5% out-of-order
// points, duplicates and NaN, checkpointed often (many small and
// overlapping chunks); compaction merges them into fewer, full,
// non-overlapping chunks, shrinks the store, and every query answers the
// same before and after (and after reopening).
func TestCompactionKeepsAnswers(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, &engine.Options{ChunkPoints: 128, CheckpointBytes: 64 << 10})
	cfg := workload.Config{Kind: workload.Event, Series: 60, Points: 2000, OutOfOrder: 0.05, Duplicates: 0.02}
	pts, cfg := loadWorkload(cfg)
	for i := range pts {
		if i%97 == 0 {
			pts[i].V = math.NaN()
		}
	}
	ingest(t, db, cfg, pts, 1, 500)
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	before := snapshotQueries(t, db, cfg.Metric())
	db.Close() // final checkpoint only: small and overlapping chunks stay
	db = open(t, dir, &engine.Options{ChunkPoints: 128})
	defer func() { db.Close() }()
	sizeBefore := dirSize(t, dir)
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	st := db.LastCompaction()
	t.Logf("compaction: %+v", st)
	if st.ChunksMerged == 0 || st.ChunksWritten >= st.ChunksMerged {
		t.Fatalf("nothing merged: %+v", st)
	}
	after := snapshotQueries(t, db, cfg.Metric())
	if !slices.Equal(before, after) {
		t.Fatalf("answers changed across compaction")
	}
	// Running it again finds (almost) nothing left to merge: only the
	// small tails where a run was cut at its size bound.
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if st2 := db.LastCompaction(); st2.ChunksMerged > st.ChunksMerged/20 {
		t.Fatalf("a second compaction merged %d chunks again (the first: %d)", st2.ChunksMerged, st.ChunksMerged)
	}
	if again := snapshotQueries(t, db, cfg.Metric()); !slices.Equal(before, again) {
		t.Fatalf("answers changed across the second compaction")
	}
	if r, err := db.Check(); err != nil || !r.OK() {
		t.Fatalf("check: %v %v", err, r.Problems)
	}
	db.Close()
	sizeAfter := dirSize(t, dir)
	t.Logf("disk: %d -> %d bytes (%.2f -> %.2f B/point)", sizeBefore, sizeAfter, float64(sizeBefore)/float64(len(pts)), float64(sizeAfter)/float64(len(pts)))
	if sizeAfter >= sizeBefore {
		t.Fatalf("compaction did not shrink the store: %d -> %d", sizeBefore, sizeAfter)
	}
	db = open(t, dir, nil)
	if again := snapshotQueries(t, db, cfg.Metric()); !slices.Equal(before, again) {
		t.Fatalf("answers changed after reopening")
	}
}

// TestRetention: points older than Options.Retention vanish from queries at
// once, and from disk at the next compaction.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	opts := &engine.Options{Retention: 24 * time.Hour, Now: clock, ChunkPoints: 256}
	db := open(t, dir, opts)
	defer func() { db.Close() }()
	s, _ := db.Series("r", nil)
	var b engine.Batch
	// 10 days of points, one a minute.
	start := now.Add(-10 * 24 * time.Hour)
	n := 10 * 24 * 60
	for i := 0; i < n; i++ {
		b.Add(s, start.Add(time.Duration(i)*time.Minute).UnixNano(), float64(i))
	}
	if err := db.Append(&b); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	full := dirSize(t, dir)
	db = open(t, dir, opts)
	count := func() float64 {
		c, err := db.Query("r").Scalar(query.Count)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The last 24 hours (exclusive of the oldest instant): 24*60 points.
	if c := count(); c != 24*60 {
		t.Fatalf("count with retention %v, want %d", c, 24*60)
	}
	mn, _ := db.Query("r").Scalar(query.Min)
	if mn != float64(n-24*60) {
		t.Fatalf("oldest visible value %v, want %d", mn, n-24*60)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if st := db.LastCompaction(); st.ChunksExpired == 0 {
		t.Fatalf("no chunk expired: %+v", st)
	}
	if c := count(); c != 24*60 {
		t.Fatalf("count after compaction %v", c)
	}
	db.Close()
	small := dirSize(t, dir)
	t.Logf("disk: %d bytes before retention, %d after", full, small)
	if small >= full {
		t.Fatalf("disk usage did not fall: %d -> %d", full, small)
	}
	db = open(t, dir, opts)
}

// TestBackgroundCompaction: with no call to Compact, the background
// compaction merges out-of-order chunks while writes go on, and queries
// keep their answers.
func TestBackgroundCompaction(t *testing.T) {
	db := open(t, t.TempDir(), &engine.Options{ChunkPoints: 64, CheckpointBytes: 16 << 10, CompactEvery: 20 * time.Millisecond})
	defer db.Close()
	s, _ := db.Series("bg", nil)
	n := 20000
	// Even points first, then the odd ones: the second pass is out of
	// order, and its chunks overlap the first pass's.
	for pass := 1; pass <= 2; pass++ {
		for i := pass; i <= n; i += 2 {
			if err := s.ObserveAtNanos(int64(i)*1e9, float64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for db.CompactionTotals().ChunksMerged == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := db.CompactionTotals()
	if st.ChunksMerged == 0 {
		t.Fatal("the background compaction merged nothing")
	}
	t.Logf("background compaction: %+v", st)
	vs, err := db.Query("bg").Values()
	if err != nil || len(vs) != n {
		t.Fatalf("%d values, %v", len(vs), err)
	}
	for i, v := range vs {
		if v != float64(i+1) {
			t.Fatalf("value %d = %v", i, v)
		}
	}
}
