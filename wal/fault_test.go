package wal

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

var errInjected = errors.New("injected I/O error")

// failNth fails the n-th filesystem operation (counting from 0) and no
// other.
type failNth struct {
	n     int64
	count atomic.Int64
	fired atomic.Bool
}

func (f *failNth) String() string { return fmt.Sprintf("fail op %d", f.n) }

func (f *failNth) MaybeError(op errorfs.Op) error {
	if f.count.Add(1)-1 == f.n {
		f.fired.Store(true)
		return fmt.Errorf("%w (op %d: %v %s)", errInjected, f.n, op.Kind, op.Path)
	}
	return nil
}

// TestFaultInjection fails filesystem operation i of a workload, for i = 0,
// 1, 2, ... until the workload runs clean. Every failure must be an error
// (no panic); once a call failed, no later call succeeds; and after a
// process crash or a power loss the reopened log replays a prefix of what
// was appended that holds every record acknowledged durable.
func TestFaultInjection(t *testing.T) {
	checkLeaks(t)
	for _, mode := range []SyncMode{SyncAlways, SyncInterval, SyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			clean := false
			for i := int64(0); !clean; i++ {
				inj := &failNth{n: i}
				base := vfs.NewCrashableMem()
				attempted, durable := faultWorkload(t, errorfs.Wrap(base, inj), mode, i)
				clean = !inj.fired.Load()
				if clean {
					t.Logf("workload ran clean after failing each of its %d operations in turn", i)
				}
				// Power loss: only synced data survives.
				checkRecovery(t, base.CrashClone(vfs.CrashCloneCfg{}), attempted, durable, fmt.Sprintf("op %d, power loss", i))
				// Process crash: everything written survives.
				checkRecovery(t, base, attempted, durable, fmt.Sprintf("op %d, process crash", i))
			}
		})
	}
}

// faultWorkload appends, syncs and rotates through fs. It returns the
// records it tried to append, in order, and how many of the first ones were
// acknowledged durable.
func faultWorkload(t *testing.T, fs vfs.FS, mode SyncMode, op int64) (attempted [][]byte, durable int) {
	var failed error
	check := func(what string, err error) bool {
		if err != nil {
			if failed == nil {
				failed = err
				if !errors.Is(err, errInjected) {
					t.Fatalf("op %d: %s failed with an error that is not the injected one: %v", op, what, err)
				}
			}
			return false
		}
		if failed != nil {
			t.Fatalf("op %d: %s succeeded after an earlier failure: %v", op, what, failed)
		}
		return true
	}
	w, err := Open("wal", Options{FS: fs, Sync: mode, SegmentSize: 2048, BufferSize: 512, SyncEvery: time.Millisecond})
	if !check("Open", err) {
		return nil, 0
	}
	for k := 0; k < 40; k++ {
		rec := payload(uint64(k), 20+(k*131)%700)
		attempted = append(attempted, rec)
		if _, err := w.Append(rec); check("Append", err) && mode == SyncAlways {
			durable = len(attempted)
		}
		switch k % 10 {
		case 5:
			if check("Sync", w.Sync()) {
				durable = len(attempted)
			}
		case 8:
			if _, err := w.Rotate(); check("Rotate", err) {
				durable = len(attempted)
			}
		}
	}
	if check("Close", w.Close()) {
		durable = len(attempted)
	}
	if failed != nil {
		if w.Err() == nil {
			t.Fatalf("op %d: Err() is nil after %v", op, failed)
		}
		if !errors.Is(failed, ErrFailed) {
			t.Fatalf("op %d: failure does not say the log failed: %v", op, failed)
		}
	}
	return attempted, durable
}

// checkRecovery replays fs (as the engine does at start), reopens it and
// appends: the replayed records are a prefix of attempted holding the first
// durable ones, and the new record follows them.
func checkRecovery(t *testing.T, fs vfs.FS, attempted [][]byte, durable int, what string) {
	t.Helper()
	got, _, err := replayAll(fs, "wal", 0, false)
	if err != nil {
		t.Fatalf("%s: replay: %v", what, err)
	}
	checkPrefix(t, got, attempted, durable)
	w, err := Open("wal", Options{FS: fs})
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	if _, err := w.Append([]byte("after recovery")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got2, st, err := replayAll(fs, "wal", 0, false)
	if err != nil || st.TornTail {
		t.Fatalf("%s: replay after recovery: %v %+v", what, err, st)
	}
	if len(got2) != len(got)+1 || string(got2[len(got)].rec) != "after recovery" {
		t.Fatalf("%s: %d records after recovery, want %d", what, len(got2), len(got)+1)
	}
}

// TestReplayFaults fails operation i of a Replay that must truncate a torn
// tail or repair a corruption: the Replay fails cleanly, and a later Replay
// (after a process crash or a power loss) recovers the same records.
func TestReplayFaults(t *testing.T) {
	checkLeaks(t)
	rng := newRand(t)
	for _, tc := range []string{"torn tail", "repair"} {
		t.Run(tc, func(t *testing.T) {
			base := vfs.NewCrashableMem()
			ws := writeLog(t, rng, base, "wal", Options{SegmentSize: 4 << 10}, 100)
			base = base.CrashClone(vfs.CrashCloneCfg{})
			var keep []want
			switch tc {
			case "torn tail":
				last := ws[len(ws)-1]
				name := segPath(base, "wal", last.pos.Segment)
				writeFile(t, base, name, readFile(t, base, name)[:last.pos.Offset+3])
				keep = ws[:len(ws)-1]
			case "repair":
				i := slices.IndexFunc(ws, func(w want) bool { return w.pos.Segment == 2 }) + 1
				flipBit(t, base, segPath(base, "wal", 2), ws[i].pos.Offset+frameHeaderSize, 0)
				keep = ws[:i]
			}
			var recs [][]byte
			for _, w := range keep {
				recs = append(recs, w.rec)
			}
			clean := false
			for i := int64(0); !clean; i++ {
				fs := base.CrashClone(vfs.CrashCloneCfg{})
				inj := &failNth{n: i}
				_, _, err := replayAll(errorfs.Wrap(fs, inj), "wal", 0, tc == "repair")
				clean = !inj.fired.Load()
				if clean && err != nil {
					t.Fatalf("replay without faults: %v", err)
				}
				for _, after := range []struct {
					what string
					fs   vfs.FS
				}{{"power loss", fs.CrashClone(vfs.CrashCloneCfg{})}, {"process crash", fs}} {
					got, _, err := replayAll(after.fs, "wal", 0, tc == "repair")
					if err != nil {
						t.Fatalf("op %d, %s: second replay: %v", i, after.what, err)
					}
					checkExact(t, got, keep)
					checkRecovery(t, after.fs, recs, len(recs), fmt.Sprintf("op %d, %s", i, after.what))
				}
			}
		})
	}
}
