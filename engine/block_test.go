package engine_test

import (
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/query"
)

// fixedNow is a clock well after the workloads' timestamps (2023).
var fixedNow = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return fixedNow }

// compactSettled compacts until the chunks just written are settled: a
// series written after it left memory starts a new open chunk, which stays
// pinned until the series is idle again and collected. It returns what the
// compactions did together.
func compactSettled(t *testing.T, db *engine.DB) engine.CompactStats {
	t.Helper()
	before := db.CompactionTotals()
	for range 2 {
		if err := db.Compact(); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		runtime.GC()
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	after := db.CompactionTotals()
	return engine.CompactStats{
		ChunksMerged:  after.ChunksMerged - before.ChunksMerged,
		ChunksBlocked: after.ChunksBlocked - before.ChunksBlocked,
		BlocksWritten: after.BlocksWritten - before.BlocksWritten,
		BlocksOpened:  after.BlocksOpened - before.BlocksOpened,
	}
}

func mustCheck(t *testing.T, db *engine.DB) *engine.CheckReport {
	t.Helper()
	r, err := db.Check()
	if err != nil || !r.OK() {
		t.Fatalf("check: %v %v", err, r.Problems)
	}
	return r
}

// TestColdBlocks: compaction packs cold chunks into blocks; every query
// answers as on a store that was never compacted (the reference), before
// and after late points land in a block's range, after the block is
// unpacked and merged, and after a reopen; a second compaction has nothing
// to do; and the blocks make W-scrape smaller on disk.
func TestColdBlocks(t *testing.T) {
	cfg := workload.Config{Kind: workload.Scrape, Series: 20, Points: 3000, Duplicates: 0.01}
	pts, cfg := loadWorkload(cfg)
	for i := range pts {
		if i%101 == 0 {
			pts[i].V = math.NaN()
		}
	}
	_, hi := cfg.Range()
	// The last ~4 hours of the 12.5 are not cold yet.
	now := time.Unix(0, hi).Add(2 * time.Hour)
	opts := func() *engine.Options {
		return &engine.Options{ChunkPoints: 128, ColdAfter: 6 * time.Hour, Now: func() time.Time { return now }, NoBackgroundCompaction: true}
	}
	refDir, dir := t.TempDir(), t.TempDir()
	ref := open(t, refDir, opts())
	defer func() { ref.Close() }()
	db := open(t, dir, opts())
	defer func() { db.Close() }()
	ingest(t, ref, cfg, pts, 1, 500)
	ingest(t, db, cfg, pts, 1, 500)
	want := snapshotQueries(t, ref, cfg.Metric())

	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	st := db.LastCompaction()
	t.Logf("compaction: %+v", st)
	if st.BlocksWritten == 0 || st.ChunksBlocked < 2*st.BlocksWritten {
		t.Fatalf("no cold blocks: %+v", st)
	}
	r := mustCheck(t, db)
	if r.Blocks != st.BlocksWritten || r.Chunks <= st.ChunksBlocked {
		t.Fatalf("check sees %d blocks and %d chunks; compaction wrote %d blocks of %d chunks (the newest chunks are not cold)", r.Blocks, r.Chunks, st.BlocksWritten, st.ChunksBlocked)
	}
	if r.Points != int64(len(pts)) {
		t.Fatalf("check counts %d points, want %d", r.Points, len(pts))
	}
	if got := snapshotQueries(t, db, cfg.Metric()); !slices.Equal(got, want) {
		t.Fatal("answers changed when cold chunks moved into blocks")
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if st2 := db.LastCompaction(); st2.BlocksWritten != 0 || st2.BlocksOpened != 0 || st2.ChunksMerged != 0 {
		t.Fatalf("a second compaction did work: %+v", st2)
	}

	// Late points inside blocked ranges (one repeats a stored timestamp:
	// both are kept), written to both stores.
	late := []workload.Point{}
	for s := 0; s < cfg.Series; s += 3 {
		i := (s * 131) % 2000
		late = append(late, workload.Point{Series: s, T: pts[i*cfg.Series+s].T, V: -1})
		late = append(late, workload.Point{Series: s, T: pts[i*cfg.Series+s].T + 7e9, V: float64(-s)})
	}
	ingest(t, ref, cfg, late, 1, 10)
	ingest(t, db, cfg, late, 1, 10)
	want = snapshotQueries(t, ref, cfg.Metric())
	if got := snapshotQueries(t, db, cfg.Metric()); !slices.Equal(got, want) {
		t.Fatal("late points into cold blocks: answers differ from the reference")
	}
	st3 := compactSettled(t, db)
	t.Logf("compaction after late points: %+v", st3)
	if st3.BlocksOpened == 0 || st3.BlocksWritten < st3.BlocksOpened {
		t.Fatalf("late points did not unpack and repack their blocks: %+v", st3)
	}
	mustCheck(t, db)
	if got := snapshotQueries(t, db, cfg.Metric()); !slices.Equal(got, want) {
		t.Fatal("answers changed when late points merged into cold blocks")
	}
	db.Close()
	db = open(t, dir, opts())
	if got := snapshotQueries(t, db, cfg.Metric()); !slices.Equal(got, want) {
		t.Fatal("answers changed after reopening")
	}
	db.Close()

	// On disk: the same data compacted with and without cold blocks.
	size := func(coldAfter time.Duration) int64 {
		d := t.TempDir()
		o := opts()
		o.ChunkPoints, o.ColdAfter = 1024, coldAfter
		x := open(t, d, o)
		ingest(t, x, cfg, pts, 1, 1000)
		if err := x.Compact(); err != nil {
			t.Fatal(err)
		}
		x.Close()
		return dirSize(t, d)
	}
	withBlocks, without := size(time.Minute), size(100*365*24*time.Hour)
	t.Logf("W-scrape on disk: %d bytes with cold blocks, %d without", withBlocks, without)
	if withBlocks >= without {
		t.Fatalf("cold blocks did not make the store smaller: %d >= %d", withBlocks, without)
	}
}

// TestColdBlockBlob: values that repeat a fixed sequence compress well
// with zstd even after the chunk codec, so the payloads move into a blob;
// answers stay the same, including after late points unpack the block.
func TestColdBlockBlob(t *testing.T) {
	rng := testutil.Rand(t)
	pattern := make([]float64, 64)
	for i := range pattern {
		pattern[i] = rng.NormFloat64() * 1000
	}
	opts := &engine.Options{ChunkPoints: 512, Now: fixedClock, NoBackgroundCompaction: true}
	dir, refDir := t.TempDir(), t.TempDir()
	db, ref := open(t, dir, opts), open(t, refDir, opts)
	defer func() { db.Close(); ref.Close() }()
	write := func(d *engine.DB, t0, n int) {
		s, err := d.Series("pattern", engine.Labels{"endpoint": "/a", "service": "svc-3"})
		if err != nil {
			t.Fatal(err)
		}
		var b engine.Batch
		for i := t0; i < t0+n; i++ {
			b.Add(s, int64(1_700_000_000_000+i*1000)*1e6, pattern[i%len(pattern)])
		}
		if err := d.Append(&b); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []*engine.DB{db, ref} {
		write(d, 0, 20000)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	st := db.LastCompaction()
	t.Logf("compaction: %+v", st)
	if st.BlobsWritten == 0 {
		t.Fatalf("no payload blob: %+v", st)
	}
	if st.BytesAfter*2 > st.BytesBefore {
		t.Fatalf("blobs saved less than half: %d -> %d bytes", st.BytesBefore, st.BytesAfter)
	}
	mustCheck(t, db)
	check := func(what string) {
		t.Helper()
		a, b := snapshotQueries(t, db, "pattern"), snapshotQueries(t, ref, "pattern")
		if !slices.Equal(a, b) {
			t.Fatalf("%s: answers differ from the reference", what)
		}
		q := func(d *engine.DB) []float64 {
			v, err := d.Query("pattern").Between(time.Unix(1_700_000_100, 0), time.Unix(1_700_007_000, 0)).Values()
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		if !slices.Equal(q(db), q(ref)) {
			t.Fatalf("%s: a range inside the blob differs", what)
		}
	}
	check("blob")
	for _, d := range []*engine.DB{db, ref} {
		write(d, 5000, 10) // duplicates of stored timestamps
	}
	check("late points")
	if st := compactSettled(t, db); st.BlocksOpened == 0 {
		t.Fatalf("the late points did not unpack their block: %+v", st)
	}
	mustCheck(t, db)
	check("after merging the late points")
}

// TestRetentionRemovesBlocks: points of cold blocks older than the
// retention leave queries at once and the disk at the next compaction (a
// partly expired block is unpacked; its live chunks are packed again).
func TestRetentionRemovesBlocks(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1_800_000_000, 0).UnixNano())
	opts := &engine.Options{Retention: 3 * 24 * time.Hour, ColdAfter: time.Hour, ChunkPoints: 256, NoBackgroundCompaction: true,
		Now: func() time.Time { return time.Unix(0, now.Load()) }}
	dir := t.TempDir()
	db := open(t, dir, opts)
	defer func() { db.Close() }()
	s, _ := db.Series("r", nil)
	var b engine.Batch
	start := now.Load() - int64(3*24*time.Hour) + int64(time.Minute)
	n := 3*24*60 - 1 // one a minute, all inside the retention
	rng := testutil.Rand(t)
	for i := 0; i < n; i++ {
		b.Add(s, start+int64(i)*int64(time.Minute), rng.Float64())
	}
	if err := db.Append(&b); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if st := db.LastCompaction(); st.BlocksWritten == 0 {
		t.Fatalf("no blocks: %+v", st)
	}
	db.Close()
	full := dirSize(t, dir)
	db = open(t, dir, opts)
	now.Add(int64(2 * 24 * time.Hour)) // two of the three days expire
	c, err := db.Query("r").Scalar(query.Count)
	if want := n - (2*24*60 - 1); err != nil || c != float64(want) {
		t.Fatalf("count %v (%v), want %d", c, err, want)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	st := db.LastCompaction()
	if st.ChunksExpired == 0 || st.BlocksOpened == 0 {
		t.Fatalf("no chunk of the block expired: %+v", st)
	}
	mustCheck(t, db)
	if c2, _ := db.Query("r").Scalar(query.Count); c2 != c {
		t.Fatalf("count %v after compaction, %v before", c2, c)
	}
	db.Close()
	small := dirSize(t, dir)
	t.Logf("disk: %d -> %d bytes; %+v", full, small, st)
	if small >= full*2/3 {
		t.Fatalf("disk usage did not fall with two thirds of the data: %d -> %d", full, small)
	}
}

// TestQueriesDuringCompaction: queries running while compactions merge,
// pack and unpack chunks always see every point exactly once (a query
// reads headers, blocks and payloads from one view of the store).
func TestQueriesDuringCompaction(t *testing.T) {
	db := open(t, t.TempDir(), &engine.Options{ChunkPoints: 64, CheckpointBytes: 8 << 10, ColdAfter: time.Minute, Now: fixedClock, NoBackgroundCompaction: true})
	defer db.Close()
	s, _ := db.Series("q", nil)
	var written atomic.Int64
	write := func(from, to, step int) {
		var b engine.Batch
		for i := from; i < to; i += step {
			b.Add(s, int64(1_700_000_000+i)*1e9, 1)
			if b.Len() == 256 {
				if err := db.Append(&b); err != nil {
					t.Error(err)
					return
				}
				written.Add(int64(b.Len()))
				b.Reset()
			}
		}
		if b.Len() > 0 {
			if err := db.Append(&b); err != nil {
				t.Error(err)
			}
			written.Add(int64(b.Len()))
		}
	}
	write(0, 40000, 2) // even seconds now, odd ones late, during compactions
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for round := 0; round < 8; round++ {
			write(round*5000+1, (round+1)*5000, 2)
			if err := db.Compact(); err != nil {
				t.Error(err)
			}
		}
		close(stop)
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			lo := written.Load()
			c, err := db.Query("q").Scalar(query.Count)
			hi := written.Load()
			if err != nil {
				t.Error(err)
				return
			}
			if c < float64(lo) || c > float64(hi) {
				t.Errorf("count %v while %d..%d points were acknowledged", c, lo, hi)
				return
			}
			vs, err := db.Query("q").Values()
			if err != nil {
				t.Error(err)
				return
			}
			if len(vs) < int(lo) {
				t.Errorf("%d values, %d acknowledged before", len(vs), lo)
				return
			}
		}
	}()
	wg.Wait()
	if st := db.CompactionTotals(); st.BlocksOpened == 0 || st.ChunksMerged == 0 {
		t.Fatalf("the compactions did not unpack and merge: %+v", st)
	}
	mustCheck(t, db)
}
