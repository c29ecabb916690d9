package wal

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestSegmentName(t *testing.T) {
	for _, seg := range []uint64{0, 1, 42, 1<<64 - 1} {
		name := segmentName(seg)
		if len(name) != segmentDigits+len(segmentExt) {
			t.Fatalf("segmentName(%d) = %q", seg, name)
		}
		got, ok := parseSegmentName(name)
		if !ok || got != seg {
			t.Fatalf("parseSegmentName(%q) = %d, %v", name, got, ok)
		}
	}
	if got := segmentName(1); got != "00000000000000000001.wal" {
		t.Fatalf("segmentName(1) = %q", got)
	}
	for _, bad := range []string{"LOCK", "1.wal", "0000000000000000000a.wal", "00000000000000000001.wal.tmp", "00000000000000000001.log", "99999999999999999999.wal"} {
		if _, ok := parseSegmentName(bad); ok {
			t.Fatalf("parseSegmentName(%q) accepted", bad)
		}
	}
}

// TestRoundTrip appends many records of random sizes across rotations and
// reopenings, then checks Replay returns all of them, in order, with the
// positions Append returned.
func TestRoundTrip(t *testing.T) {
	checkLeaks(t)
	for _, tc := range []struct {
		name string
		fs   func(t *testing.T) (vfs.FS, string)
		n    int
	}{
		{"mem", func(t *testing.T) (vfs.FS, string) { return vfs.NewMem(), "wal" }, 3000},
		{"disk", func(t *testing.T) (vfs.FS, string) { return vfs.Default, t.TempDir() }, 600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := newRand(t)
			fs, dir := tc.fs(t)
			var ws []want
			var id uint64
			for round := 0; round < 4; round++ {
				// Replay before every Open, as the engine does.
				got, _, err := replayAll(fs, dir, 0, false)
				if err != nil {
					t.Fatal(err)
				}
				checkExact(t, got, ws)
				o := Options{
					Sync:        SyncMode(rng.IntN(3)),
					SyncEvery:   time.Millisecond * time.Duration(1+rng.IntN(20)),
					SegmentSize: int64(64<<10 + rng.IntN(512<<10)),
					BufferSize:  []int{0, 512, 4096, 64 << 10}[rng.IntN(4)],
				}
				t.Logf("round %d: %+v", round, o)
				w := mustOpen(t, fs, dir, o)
				for i := 0; i < tc.n/4; i++ {
					switch r := rng.IntN(100); {
					case r < 2:
						if _, err := w.Rotate(); err != nil {
							t.Fatal(err)
						}
					case r < 4:
						if err := w.Sync(); err != nil {
							t.Fatal(err)
						}
					case r < 10:
						recs := make([][]byte, 1+rng.IntN(5))
						for j := range recs {
							id++
							recs[j] = payload(id, randSize(rng))
						}
						ps, err := w.AppendBatch(recs, nil)
						if err != nil {
							t.Fatal(err)
						}
						for j := range recs {
							ws = append(ws, want{recs[j], ps[j]})
						}
					default:
						id++
						rec := payload(id, randSize(rng))
						pos, err := w.Append(rec)
						if err != nil {
							t.Fatal(err)
						}
						ws = append(ws, want{rec, pos})
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			got, st, err := replayAll(fs, dir, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			checkExact(t, got, ws)
			if st.TornTail || st.RepairedCorruption || st.Records != len(ws) {
				t.Fatalf("stats %+v", st)
			}
			segs, _ := Segments(fs, dir)
			t.Logf("%d records in %d segments, stats %+v", len(ws), len(segs), st)
			if len(segs) < 8 {
				t.Fatalf("only %d segments: rotation not exercised", len(segs))
			}
			// Replay from a later segment returns the records from there on.
			from := segs[len(segs)/2]
			got, _, err = replayAll(fs, dir, from, false)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(ws, func(w want) bool { return w.pos.Segment >= from })
			checkExact(t, got, ws[i:])
		})
	}
}

// TestConcurrentAppenders runs appenders, syncers and rotations at once in
// every mode: every record is replayed exactly once, each goroutine's in its
// own order, at the position Append returned.
func TestConcurrentAppenders(t *testing.T) {
	checkLeaks(t)
	for _, mode := range []SyncMode{SyncInterval, SyncAlways, SyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := vfs.NewMem()
			w := mustOpen(t, fs, "wal", Options{Sync: mode, SyncEvery: 2 * time.Millisecond, SegmentSize: 32 << 10, BufferSize: 2048})
			const goroutines, per = 8, 300
			var mu sync.Mutex
			byPos := map[Pos][]byte{}
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ {
				wg.Go(func() {
					var last Pos
					for i := 0; i < per; i++ {
						rec := payload(uint64(g<<32|i), 8+(i*7)%300)
						var pos Pos
						var err error
						switch i % 50 {
						case 10:
							err = w.Sync()
						case 20:
							_, err = w.Rotate()
						}
						if err != nil {
							t.Error(err)
							return
						}
						if i%3 == 0 {
							var ps []Pos
							ps, err = w.AppendBatch([][]byte{rec}, nil)
							if err == nil {
								pos = ps[0]
							}
						} else {
							pos, err = w.Append(rec)
						}
						if err != nil {
							t.Error(err)
							return
						}
						if pos.Segment < last.Segment || (pos.Segment == last.Segment && pos.Offset <= last.Offset) {
							t.Errorf("goroutine %d: position %v after %v", g, pos, last)
						}
						last = pos
						mu.Lock()
						byPos[pos] = rec
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, _, err := replayAll(fs, "wal", 0, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != goroutines*per {
				t.Fatalf("replayed %d records, want %d", len(got), goroutines*per)
			}
			for _, r := range got {
				if !bytes.Equal(byPos[r.pos], r.rec) {
					t.Fatalf("record at %v differs from the one appended there", r.pos)
				}
			}
		})
	}
}

// TestSyncAlwaysDurable: once Append returns, a crash that keeps only
// synced data still holds the record, with 1 and with 16 appenders.
func TestSyncAlwaysDurable(t *testing.T) {
	checkLeaks(t)
	for _, goroutines := range []int{1, 16} {
		t.Run(fmt.Sprint(goroutines), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			w := mustOpen(t, fs, "wal", Options{Sync: SyncAlways, SegmentSize: 16 << 10, BufferSize: 1024})
			var mu sync.Mutex
			acked := map[Pos][]byte{}
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ {
				wg.Go(func() {
					for i := 0; i < 200; i++ {
						rec := payload(uint64(g<<32|i), 8+i%200)
						pos, err := w.Append(rec)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						acked[pos] = rec
						mu.Unlock()
					}
				})
			}
			// Crash at moments while the appenders run: every record acked
			// before the crash is in the crashed copy.
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			for crashes := 0; ; crashes++ {
				mu.Lock()
				before := make(map[Pos][]byte, len(acked))
				for p, r := range acked {
					before[p] = r
				}
				mu.Unlock()
				crashed := fs.CrashClone(vfs.CrashCloneCfg{})
				got, _, err := replayAll(crashed, "wal", 0, false)
				if err != nil {
					t.Fatal(err)
				}
				have := map[Pos][]byte{}
				for _, r := range got {
					have[r.pos] = r.rec
				}
				for p, r := range before {
					if !bytes.Equal(have[p], r) {
						t.Fatalf("crash %d: record acked at %v is missing", crashes, p)
					}
				}
				select {
				case <-done:
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					t.Logf("%d crashes checked, %d records", crashes, len(acked))
					return
				default:
				}
			}
		})
	}
}

// durableCount returns how many records a crash right now would keep.
func durableCount(t *testing.T, fs *vfs.MemFS, dir string) int {
	t.Helper()
	got, _, err := replayAll(fs.CrashClone(vfs.CrashCloneCfg{}), dir, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	return len(got)
}

func TestSyncInterval(t *testing.T) {
	checkLeaks(t)
	t.Run("background", func(t *testing.T) {
		fs := vfs.NewCrashableMem()
		const every = 20 * time.Millisecond
		w := mustOpen(t, fs, "wal", Options{Sync: SyncInterval, SyncEvery: every})
		defer w.Close()
		for round := 1; round <= 3; round++ {
			for i := 0; i < 10; i++ {
				if _, err := w.Append(payload(uint64(round*100+i), 24)); err != nil {
					t.Fatal(err)
				}
			}
			acked := time.Now()
			for durableCount(t, fs, "wal") < round*10 {
				if time.Since(acked) > 2*every+time.Second { // slack for a loaded machine
					t.Fatalf("round %d: records not durable %v after they were acked", round, time.Since(acked))
				}
				time.Sleep(time.Millisecond)
			}
			t.Logf("round %d: durable after %v (interval %v)", round, time.Since(acked), every)
		}
	})
	t.Run("Sync", func(t *testing.T) {
		fs := vfs.NewCrashableMem()
		w := mustOpen(t, fs, "wal", Options{Sync: SyncInterval, SyncEvery: time.Hour})
		defer w.Close()
		for i := 0; i < 10; i++ {
			if _, err := w.Append(payload(uint64(i), 24)); err != nil {
				t.Fatal(err)
			}
		}
		if n := durableCount(t, fs, "wal"); n != 0 {
			t.Fatalf("%d records durable before Sync with a one-hour interval", n)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		if n := durableCount(t, fs, "wal"); n != 10 {
			t.Fatalf("%d records durable after Sync, want 10", n)
		}
	})
}

func TestSyncNever(t *testing.T) {
	checkLeaks(t)
	fs := vfs.NewCrashableMem()
	w := mustOpen(t, fs, "wal", Options{Sync: SyncNever, BufferSize: 4096})
	var ws []want
	for i := 0; i < 1000; i++ {
		rec := payload(uint64(i), 24)
		pos, err := w.Append(rec)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, want{rec, pos})
	}
	// The buffer filled several times: data reached the OS, unsynced.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := fs.Stat(segPath(fs, "wal", 1))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 4*4096 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment holds %d bytes: full buffers are not written", st.Size())
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if n := durableCount(t, fs, "wal"); n != 0 {
		t.Fatalf("%d records durable without Sync in SyncNever mode", n)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := durableCount(t, fs, "wal"); n != 1000 {
		t.Fatalf("%d records durable after Sync, want 1000", n)
	}
	for i := 1000; i < 1100; i++ {
		rec := payload(uint64(i), 24)
		pos, err := w.Append(rec)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, want{rec, pos})
	}
	if n := durableCount(t, fs, "wal"); n != 1000 {
		t.Fatalf("%d records durable, want the 1000 synced", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, _, err := replayAll(fs.CrashClone(vfs.CrashCloneCfg{}), "wal", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	checkExact(t, got, ws)
}

// TestSize: after Sync, Size is the bytes on disk, including segments
// present at Open.
func TestSize(t *testing.T) {
	checkLeaks(t)
	fs := vfs.NewMem()
	onDisk := func() int64 {
		segs, _ := Segments(fs, "wal")
		var n int64
		for _, s := range segs {
			st, err := fs.Stat(segPath(fs, "wal", s))
			if err != nil {
				t.Fatal(err)
			}
			n += st.Size()
		}
		return n
	}
	for round := 0; round < 2; round++ {
		w := mustOpen(t, fs, "wal", Options{Sync: SyncNever, SegmentSize: 8 << 10})
		for i := 0; i < 500; i++ {
			if _, err := w.Append(payload(uint64(i), 50)); err != nil {
				t.Fatal(err)
			}
			if i%100 == 0 {
				if err := w.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		if got, want := w.Size(), onDisk(); got != want {
			t.Fatalf("round %d: Size() = %d, segments hold %d bytes", round, got, want)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClosedAndLocked(t *testing.T) {
	checkLeaks(t)
	fs := vfs.NewMem()
	w := mustOpen(t, fs, "wal", Options{})
	if _, err := Open("wal", Options{FS: fs}); err == nil {
		t.Fatal("a second Open of a locked directory succeeded")
	}
	if _, err := Replay("wal", 0, ReplayOptions{FS: fs}, func([]byte, Pos) error { return nil }); err == nil {
		t.Fatal("Replay of a directory with an open Writer succeeded")
	}
	if _, err := w.Append([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := w.AppendBatch([][]byte{[]byte("x")}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendBatch after Close: %v", err)
	}
	if err := w.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if _, err := w.Rotate(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Rotate after Close: %v", err)
	}
	if err := w.RemoveBefore(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("RemoveBefore after Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Err after a clean Close: %v", err)
	}
	// The lock is released.
	w = mustOpen(t, fs, "wal", Options{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open("wal", Options{FS: fs, Sync: SyncMode(7)}); err == nil {
		t.Fatal("Open accepted an unknown sync mode")
	}
	if _, err := Open("wal", Options{FS: fs, SegmentSize: -1}); err == nil {
		t.Fatal("Open accepted a negative SegmentSize")
	}
}

// TestCloseWhileBusy: Close while appenders run returns; late callers get
// ErrClosed; nothing hangs and no goroutine is left.
func TestCloseWhileBusy(t *testing.T) {
	checkLeaks(t)
	for _, mode := range []SyncMode{SyncInterval, SyncAlways, SyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := vfs.NewMem()
			w := mustOpen(t, fs, "wal", Options{Sync: mode, BufferSize: 512, SyncEvery: time.Millisecond})
			var wg sync.WaitGroup
			var mu sync.Mutex
			var acked [][]byte
			for g := 0; g < 8; g++ {
				wg.Go(func() {
					for i := 0; ; i++ {
						rec := payload(uint64(g<<32|i), 100)
						_, err := w.Append(rec)
						if errors.Is(err, ErrClosed) {
							return
						}
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						acked = append(acked, rec)
						mu.Unlock()
					}
				})
			}
			time.Sleep(20 * time.Millisecond)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			got, _, err := replayAll(fs, "wal", 0, false)
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, r := range got {
				have[string(r.rec)] = true
			}
			for _, r := range acked {
				if !have[string(r)] {
					t.Fatal("a record acknowledged before Close is missing")
				}
			}
		})
	}
}

func TestRecordTooLarge(t *testing.T) {
	checkLeaks(t)
	fs := vfs.NewMem()
	w := mustOpen(t, fs, "wal", Options{})
	big := make([]byte, MaxRecordSize+1)
	if _, err := w.Append(big); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("Append of %d bytes: %v", len(big), err)
	}
	if _, err := w.AppendBatch([][]byte{{1}, big}, nil); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("AppendBatch with %d bytes: %v", len(big), err)
	}
	// The Writer is not broken, and the largest record round-trips.
	max := make([]byte, MaxRecordSize)
	max[0], max[len(max)/2], max[len(max)-1] = 1, 2, 3
	pos, err := w.Append(max)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, _, err := replayAll(fs, "wal", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	checkExact(t, got, []want{{max, pos}})
}

func TestAppendAllocs(t *testing.T) {
	for _, mode := range []SyncMode{SyncInterval, SyncNever} {
		fs := vfs.NewMem()
		w := mustOpen(t, fs, "wal", Options{Sync: mode, SyncEvery: time.Hour})
		rec := make([]byte, 24)
		for i := 0; i < 1<<17; i++ { // warm the buffer pool
			if _, err := w.Append(rec); err != nil {
				t.Fatal(err)
			}
		}
		if n := testing.AllocsPerRun(100000, func() {
			if _, err := w.Append(rec); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%v: Append of 24 bytes allocates %v times", mode, n)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
