package engine_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/query"
)

// faultRun writes sequential points to a few series (point i of series g
// has timestamp crashTS(i) and value crashValue(g, i)) and records what
// was acknowledged, and what was made durable by Sync.
type faultRun struct {
	series, points int
	acked          []atomic.Int64 // per series: points acknowledged
	synced         []atomic.Int64 // per series: acknowledged before the last successful Sync
}

func newFaultRun(series, points int) *faultRun {
	return &faultRun{series: series, points: points, acked: make([]atomic.Int64, series), synced: make([]atomic.Int64, series)}
}

// run performs the workload; it stops at the first error and returns it.
// It never leaves the DB open.
func (f *faultRun) run(fs vfs.FS, o engine.Options) (err error) {
	o.FS = fs
	db, err := engine.Open("db", &o)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	hs := make([]*engine.Series, f.series)
	for g := range hs {
		if hs[g], err = db.Series("crash", engine.Labels{"g": strconv.Itoa(g)}); err != nil {
			return err
		}
	}
	var b engine.Batch
	for i := 0; i < f.points; i++ {
		if i%5 == 4 {
			b.Reset()
			for g, h := range hs {
				b.Add(h, crashTS(i), crashValue(g, i))
			}
			if err := db.Append(&b); err != nil {
				return err
			}
		} else {
			for g, h := range hs {
				if err := h.ObserveAtNanos(crashTS(i), crashValue(g, i)); err != nil {
					return err
				}
			}
		}
		for g := range hs {
			f.acked[g].Store(int64(i + 1))
		}
		if i%7 == 6 {
			if err := db.Sync(); err != nil {
				return err
			}
			for g := range hs {
				f.synced[g].Store(int64(i + 1))
			}
		}
		if i%50 == 49 {
			if err := db.Compact(); err != nil {
				return err
			}
		}
	}
	return nil
}

// verify opens the store in fs and checks that each series holds exactly
// points 0..n-1, bit-exact, with n >= need[g].
func verifyStore(t *testing.T, fs vfs.FS, series int, need []int64, what string) {
	t.Helper()
	db, err := engine.Open("db", &engine.Options{FS: fs})
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	defer db.Close()
	for g := 0; g < series; g++ {
		ts, vs, err := db.Query("crash", query.Eq("g", strconv.Itoa(g))).Points()
		if err != nil {
			t.Fatalf("%s: series %d: %v", what, g, err)
		}
		for i := range vs {
			if ts[i] != crashTS(i) || math.Float64bits(vs[i]) != math.Float64bits(crashValue(g, i)) {
				t.Fatalf("%s: series %d point %d is (%d, %v): a hole, a duplicate or a point never written", what, g, i, ts[i], vs[i])
			}
		}
		if int64(len(vs)) < need[g] {
			t.Fatalf("%s: series %d has %d points, %d were acknowledged durable", what, g, len(vs), need[g])
		}
	}
	r, err := db.Check()
	if err != nil || !r.OK() {
		t.Fatalf("%s: check after reopen: %v %v", what, err, r.Problems)
	}
}

// opCounter counts filesystem operations and runs a hook at one of them.
type opCounter struct {
	n    atomic.Int64
	at   int64
	hook func(errorfs.Op) error
}

func (c *opCounter) String() string { return "opCounter" }
func (c *opCounter) MaybeError(op errorfs.Op) error {
	if n := c.n.Add(1); n == c.at && c.hook != nil {
		return c.hook(op)
	}
	return nil
}

// sweep returns the operation indexes to try out of total: all of them
// when few, else an evenly spread sample plus random ones.
func sweep(rng *rand.Rand, total int64, max int) []int64 {
	var ks []int64
	if total <= int64(max) {
		for k := int64(1); k <= total; k++ {
			ks = append(ks, k)
		}
		return ks
	}
	step := total / int64(max/2)
	for k := int64(1); k <= total; k += step {
		ks = append(ks, k)
	}
	for len(ks) < max {
		ks = append(ks, 1+rng.Int64N(total))
	}
	return ks
}

// TestPowerLossAtEveryOperation simulates a power loss at operation k of a
// workload, for k swept over the whole run: the filesystem keeps only
// synced data (and, in half the rounds, a random share of unsynced data).
// After reopening, every point acknowledged durable is there, exactly once,
// and each series' survivors are a gap-free prefix.
func TestPowerLossAtEveryOperation(t *testing.T) {
	rng := testutil.Rand(t)
	max := 120
	if testing.Short() {
		max = 25
	}
	for _, mode := range []engine.SyncMode{engine.SyncAlways, engine.SyncInterval} {
		t.Run(mode.String(), func(t *testing.T) {
			opts := engine.Options{Sync: mode, ChunkPoints: 16, CheckpointBytes: 4 << 10, WALSegmentSize: 8 << 10}
			// Count the operations of a whole run.
			counter := &opCounter{}
			if err := newFaultRun(3, 120).run(errorfs.Wrap(vfs.NewCrashableMem(), counter), opts); err != nil {
				t.Fatal(err)
			}
			total := counter.n.Load()
			ks := sweep(rng, total, max)
			t.Logf("%d operations in a run; crashing at %d of them", total, len(ks))
			for _, k := range ks {
				mem := vfs.NewCrashableMem()
				f := newFaultRun(3, 120)
				var crashed *vfs.MemFS
				need := make([]int64, 3)
				unsynced := 0
				if rng.IntN(2) == 0 {
					unsynced = 1 + rng.IntN(99)
				}
				c := &opCounter{at: k, hook: func(errorfs.Op) error {
					for g := range need {
						if mode == engine.SyncAlways {
							need[g] = f.acked[g].Load()
						} else {
							need[g] = f.synced[g].Load()
						}
					}
					cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced}
					if unsynced > 0 {
						cfg.RNG = rand.New(rand.NewPCG(uint64(k), 7))
					}
					crashed = mem.CrashClone(cfg)
					return nil
				}}
				if err := f.run(errorfs.Wrap(mem, c), opts); err != nil {
					t.Fatalf("k=%d: the workload itself failed: %v", k, err)
				}
				if crashed == nil {
					continue // the run was shorter this time
				}
				verifyStore(t, crashed, 3, need, fmt.Sprintf("power loss at op %d (unsynced kept %d%%)", k, unsynced))
				// Recovery is idempotent: a crash right after recovery
				// (keeping only what recovery synced) opens to the same.
				again := crashed.CrashClone(vfs.CrashCloneCfg{})
				verifyStore(t, again, 3, need, fmt.Sprintf("power loss at op %d, then again after recovery", k))
			}
		})
	}
}

// TestFailEachOperation fails filesystem operation i, for i = 1, 2, … until
// the workload succeeds: every failure must surface as an error (no panic,
// no leaked goroutine: goleak checks at the end), and the store must reopen
// consistent with every acknowledged point.
func TestFailEachOperation(t *testing.T) {
	rng := testutil.Rand(t)
	max := 150
	if testing.Short() {
		max = 30
	}
	opts := engine.Options{Sync: engine.SyncAlways, ChunkPoints: 16, CheckpointBytes: 4 << 10, WALSegmentSize: 8 << 10}
	counter := &opCounter{}
	if err := newFaultRun(2, 80).run(errorfs.Wrap(vfs.NewMem(), counter), opts); err != nil {
		t.Fatal(err)
	}
	total := counter.n.Load()
	ks := sweep(rng, total, max)
	t.Logf("%d operations in a run; failing each of %d of them", total, len(ks))
	errs := map[string]int{}
	for _, k := range ks {
		for _, injected := range []error{syscall.EIO, syscall.ENOSPC} {
			mem := vfs.NewMem()
			f := newFaultRun(2, 80)
			c := &opCounter{at: k, hook: func(op errorfs.Op) error {
				return fmt.Errorf("%w (injected at op kind %d on %s)", injected, int(op.Kind), op.Path)
			}}
			err := f.run(errorfs.Wrap(mem, c), opts)
			if err == nil {
				continue // the failed operation was retried or harmless (e.g. a failed read-ahead)
			}
			if !errors.Is(err, injected) && !strings.Contains(err.Error(), injected.Error()) {
				t.Errorf("op %d: the error does not say what failed: %v", k, err)
			}
			errs[strings.SplitN(err.Error(), ":", 2)[0]]++
			need := make([]int64, 2)
			for g := range need {
				need[g] = f.acked[g].Load()
			}
			// Reopen without faults: as after a process crash (MemFS keeps
			// everything written).
			verifyStore(t, mem, 2, need, fmt.Sprintf("op %d failed with %v", k, injected))
		}
	}
	t.Logf("failures surfaced as: %v", errs)
}

// TestFsyncFailureIsFatal: an fsync error of the log stops the DB from
// acknowledging writes, for good; nothing acknowledged is lost.
func TestFsyncFailureIsFatal(t *testing.T) {
	mem := vfs.NewMem()
	var fail atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if fail.Load() && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) && strings.Contains(op.Path, "wal") {
			return fmt.Errorf("%w (injected)", syscall.EIO)
		}
		return nil
	})
	db, err := engine.Open("db", &engine.Options{FS: errorfs.Wrap(mem, inj), Sync: engine.SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := db.Series("m", nil)
	for i := 0; i < 10; i++ {
		if err := s.ObserveAtNanos(int64(i), float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	fail.Store(true)
	if err := s.ObserveAtNanos(10, 10); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write during a failing fsync: %v", err)
	}
	fail.Store(false) // the disk "recovers": the DB must not
	for i := 0; i < 3; i++ {
		if err := s.ObserveAtNanos(int64(11+i), 1); !errors.Is(err, engine.ErrFailed) {
			t.Fatalf("write after a failed fsync: %v, want ErrFailed", err)
		}
	}
	if err := db.Sync(); err == nil {
		t.Fatal("Sync after a failed fsync succeeded")
	}
	// Queries keep working.
	if n, err := db.Query("m").Scalar(query.Count); err != nil || n < 10 {
		t.Fatalf("query after failure: %v %v", n, err)
	}
	db.Close()
	db, err = engine.Open("db", &engine.Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	vs, _ := db.Query("m").Values()
	if len(vs) < 10 {
		t.Fatalf("%d points after reopen, 10 were acknowledged", len(vs))
	}
	for i := 0; i < 10; i++ {
		if vs[i] != float64(i) {
			t.Fatalf("point %d = %v", i, vs[i])
		}
	}
}

// TestReadErrorFailsOnlyThatQuery: EIO on reading stored data fails the
// query that needed it; writes and later queries keep working.
func TestReadErrorFailsOnlyThatQuery(t *testing.T) {
	mem := vfs.NewMem()
	var fail atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if fail.Load() && (op.Kind == errorfs.OpFileReadAt || op.Kind == errorfs.OpFileRead) && strings.HasSuffix(op.Path, ".sst") {
			return fmt.Errorf("%w (injected)", syscall.EIO)
		}
		return nil
	})
	fs := errorfs.Wrap(mem, inj)
	db, err := engine.Open("db", &engine.Options{FS: fs, CacheSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := db.Series("m", nil)
	var b engine.Batch
	for i := 0; i < 5000; i++ {
		b.Add(s, int64(i), float64(i))
	}
	if err := db.Append(&b); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = engine.Open("db", &engine.Options{FS: fs, CacheSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err = db.Series("m", nil) // resolved (read from the store) before reads fail
	if err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	if _, err := db.Query("m").Values(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("query over unreadable data: %v, want EIO", err)
	}
	if err := s.ObserveAtNanos(1e12, 1); err != nil {
		t.Fatalf("write while reads fail: %v", err)
	}
	fail.Store(false)
	vs, err := db.Query("m").Values()
	if err != nil || len(vs) != 5001 {
		t.Fatalf("query after reads recover: %d values, %v", len(vs), err)
	}
}

// TestCrashDuringRecovery crashes the recovery itself, at each operation of
// opening a crashed store (log replay, torn-tail repair, first
// checkpoint): the store still opens to the same data afterwards.
func TestCrashDuringRecovery(t *testing.T) {
	rng := testutil.Rand(t)
	max := 60
	if testing.Short() {
		max = 15
	}
	opts := engine.Options{Sync: engine.SyncAlways, ChunkPoints: 16, CheckpointBytes: 1 << 30, WALSegmentSize: 8 << 10}
	mem := vfs.NewCrashableMem()
	f := newFaultRun(3, 100)
	var image *vfs.MemFS
	need := make([]int64, 3)
	c := &opCounter{at: 600, hook: func(errorfs.Op) error {
		for g := range need {
			need[g] = f.acked[g].Load()
		}
		// Keep some unsynced bytes: a torn tail for recovery to repair.
		image = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(1, 2))})
		return nil
	}}
	if err := f.run(errorfs.Wrap(mem, c), opts); err != nil {
		t.Fatal(err)
	}
	if image == nil {
		t.Fatal("the workload was too short to crash")
	}
	// Count the operations of a recovery.
	counter := &opCounter{}
	probe := image.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(3, 4))})
	db, err := engine.Open("db", &engine.Options{FS: errorfs.Wrap(probe, counter)})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	total := counter.n.Load()
	ks := sweep(rng, total, max)
	t.Logf("recovery takes %d operations; crashing it at %d of them", total, len(ks))
	for _, k := range ks {
		fs := image.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(3, 4))})
		var crashed *vfs.MemFS
		c := &opCounter{at: k, hook: func(errorfs.Op) error {
			crashed = fs.CrashClone(vfs.CrashCloneCfg{})
			return nil
		}}
		db, err := engine.Open("db", &engine.Options{FS: errorfs.Wrap(fs, c)})
		if err != nil {
			t.Fatalf("recovery %d: %v", k, err)
		}
		db.Close()
		if crashed == nil {
			continue
		}
		verifyStore(t, crashed, 3, need, fmt.Sprintf("crash at op %d of the recovery", k))
	}
}
