package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// writeLog appends n records of random sizes with a writer in mode and
// closes it (or, with crash, returns a crash clone that keeps everything
// written, as after a process crash). It returns the records with their
// positions.
func writeLog(t *testing.T, rng *rand.Rand, fs vfs.FS, dir string, o Options, n int) []want {
	t.Helper()
	w := mustOpen(t, fs, dir, o)
	var ws []want
	for i := 0; i < n; i++ {
		rec := payload(uint64(i), 8+rng.IntN(300))
		pos, err := w.Append(rec)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, want{rec, pos})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return ws
}

func frameEnd(w want) int64 { return w.pos.Offset + frameHeaderSize + int64(len(w.rec)) }

// TestTornTail cuts the last segment at every byte offset inside its last
// record, optionally followed by garbage or zeros: Replay truncates the
// segment, returns the other records, and a Writer opened afterwards appends
// records that a later Replay returns after them.
func TestTornTail(t *testing.T) {
	checkLeaks(t)
	rng := newRand(t)
	for _, mode := range []SyncMode{SyncNever, SyncAlways} {
		for _, tail := range []string{"cut", "garbage", "zeros"} {
			t.Run(mode.String()+"/"+tail, func(t *testing.T) {
				base := vfs.NewCrashableMem()
				ws := writeLog(t, rng, base, "wal", Options{Sync: mode, SegmentSize: 4 << 10}, 100)
				lastSeg := ws[len(ws)-1].pos.Segment
				if lastSeg < 3 {
					t.Fatalf("want several segments, have %d", lastSeg)
				}
				orig := readFile(t, base, segPath(base, "wal", lastSeg))
				last := ws[len(ws)-1]
				for cut := last.pos.Offset; cut < frameEnd(last); cut++ {
					fs := base.CrashClone(vfs.CrashCloneCfg{}) // a copy: all of it is synced
					data := slices.Clone(orig[:cut])
					switch tail {
					case "garbage":
						g := make([]byte, 1+rng.IntN(200))
						for i := range g {
							g[i] = byte(rng.Uint32())
						}
						// The first byte differs from the one it replaces, or
						// the garbage could complete the record.
						g[0] = orig[cut] ^ byte(1+rng.IntN(255))
						data = append(data, g...)
					case "zeros":
						data = append(data, make([]byte, 1+rng.IntN(5000))...)
					}
					if tail == "zeros" && !slices.ContainsFunc(orig[cut:frameEnd(last)], func(b byte) bool { return b != 0 }) {
						continue // the zeros complete the record
					}
					writeFile(t, fs, segPath(fs, "wal", lastSeg), data)

					got, st, err := replayAll(fs, "wal", 0, false)
					if err != nil {
						t.Fatalf("cut at %d: %v", cut, err)
					}
					checkExact(t, got, ws[:len(ws)-1])
					if torn := int64(len(data)) > last.pos.Offset; st.TornTail != torn || st.TruncatedBytes != int64(len(data))-last.pos.Offset {
						t.Fatalf("cut at %d (+%s, %d bytes): stats %+v", cut, tail, len(data), st)
					}
					if st, err := fs.Stat(segPath(fs, "wal", lastSeg)); err != nil || st.Size() != last.pos.Offset {
						t.Fatalf("cut at %d: segment not truncated to %d: %v %v", cut, last.pos.Offset, st, err)
					}
					// Recovery is idempotent.
					got, st, err = replayAll(fs, "wal", 0, false)
					if err != nil || st.TornTail {
						t.Fatalf("second replay: %v %+v", err, st)
					}
					checkExact(t, got, ws[:len(ws)-1])

					w := mustOpen(t, fs, "wal", Options{Sync: mode})
					more := slices.Clone(ws[:len(ws)-1])
					for i := 0; i < 3; i++ {
						rec := payload(uint64(1000+i), 50)
						pos, err := w.Append(rec)
						if err != nil {
							t.Fatal(err)
						}
						more = append(more, want{rec, pos})
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					got, _, err = replayAll(fs, "wal", 0, false)
					if err != nil {
						t.Fatal(err)
					}
					checkExact(t, got, more)
				}
			})
		}
	}
	// A clean log followed by garbage or zeros loses nothing.
	for _, tail := range []string{"garbage", "zeros"} {
		t.Run("whole/"+tail, func(t *testing.T) {
			fs := vfs.NewMem()
			ws := writeLog(t, rng, fs, "wal", Options{}, 30)
			name := segPath(fs, "wal", 1)
			data := readFile(t, fs, name)
			n := len(data)
			if tail == "zeros" {
				data = append(data, make([]byte, 4096)...)
			} else {
				for i := 0; i < 4096; i++ {
					data = append(data, byte(rng.Uint32()))
				}
			}
			writeFile(t, fs, name, data)
			got, st, err := replayAll(fs, "wal", 0, false)
			if err != nil {
				t.Fatal(err)
			}
			checkExact(t, got, ws)
			if !st.TornTail || st.TruncatedBytes != 4096 {
				t.Fatalf("stats %+v", st)
			}
			if st, _ := fs.Stat(name); st.Size() != int64(n) {
				t.Fatalf("segment is %d bytes, want %d", st.Size(), n)
			}
		})
	}
	// A last segment whose header is torn (crash right after its creation)
	// is emptied, and a new segment is started after it.
	t.Run("header", func(t *testing.T) {
		for cut := 1; cut < segmentHeaderSize+frameHeaderSize; cut++ {
			fs := vfs.NewMem()
			ws := writeLog(t, rng, fs, "wal", Options{}, 5)
			w := mustOpen(t, fs, "wal", Options{})
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			name := segPath(fs, "wal", 2)
			writeFile(t, fs, name, readFile(t, fs, name)[:cut])
			got, st, err := replayAll(fs, "wal", 0, false)
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			checkExact(t, got, ws)
			wantTorn := cut != segmentHeaderSize
			if st.TornTail != wantTorn {
				t.Fatalf("cut %d: stats %+v", cut, st)
			}
			w = mustOpen(t, fs, "wal", Options{})
			pos, err := w.Append([]byte("after"))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, _, err = replayAll(fs, "wal", 0, false)
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			checkExact(t, got, append(slices.Clone(ws), want{[]byte("after"), pos}))
		}
	})
}

// flipBit flips one bit of byte off of a file.
func flipBit(t *testing.T, fs vfs.FS, name string, off int64, bit uint) {
	t.Helper()
	data := readFile(t, fs, name)
	data[off] ^= 1 << bit
	writeFile(t, fs, name, data)
}

// frameAt returns the index of the record whose frame holds byte off of
// segment seg.
func frameAt(ws []want, seg uint64, off int64) int {
	for i, w := range ws {
		if w.pos.Segment == seg && off >= w.pos.Offset && off < frameEnd(w) {
			return i
		}
	}
	return -1
}

// TestCorruption flips a bit in the middle of the log: Replay fails with a
// *CorruptionError naming the file and the offset of the damaged frame, and
// with Repair keeps every record before it.
func TestCorruption(t *testing.T) {
	checkLeaks(t)
	rng := newRand(t)
	cases := []struct {
		name  string
		opts  Options
		crash bool // crash (without Close) after the records are synced
		seg   func(last uint64) uint64
	}{
		{"non-last segment", Options{SegmentSize: 8 << 10}, false, func(last uint64) uint64 { return last / 2 }},
		{"last segment, closed", Options{SegmentSize: 1 << 30}, false, func(last uint64) uint64 { return last }},
		{"last segment, crashed, SyncAlways", Options{Sync: SyncAlways, SegmentSize: 1 << 30}, true, func(last uint64) uint64 { return last }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for iter := 0; iter < 50; iter++ {
				base := vfs.NewCrashableMem()
				var ws []want
				if tc.crash {
					w := mustOpen(t, base, "wal", tc.opts)
					for i := 0; i < 100; i++ {
						rec := payload(uint64(i), 8+rng.IntN(300))
						pos, err := w.Append(rec)
						if err != nil {
							t.Fatal(err)
						}
						ws = append(ws, want{rec, pos})
					}
					crashed := base.CrashClone(vfs.CrashCloneCfg{})
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					base = crashed
				} else {
					ws = writeLog(t, rng, base, "wal", tc.opts, 100)
				}
				seg := tc.seg(ws[len(ws)-1].pos.Segment)
				// A byte inside a record frame of seg, not in the last
				// record (so that valid frames follow).
				var i int
				for {
					i = rng.IntN(len(ws) - 1)
					if ws[i].pos.Segment == seg {
						break
					}
				}
				off := ws[i].pos.Offset + rng.Int64N(frameEnd(ws[i])-ws[i].pos.Offset)
				fs := base.CrashClone(vfs.CrashCloneCfg{}) // a copy of what is synced
				name := segPath(fs, "wal", seg)
				flipBit(t, fs, name, off, uint(rng.IntN(8)))
				before := readFile(t, fs, name)
				got, _, err := replayAll(fs, "wal", 0, false)
				var ce *CorruptionError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("bit flip at %s:%d: err = %v", name, off, err)
				}
				if ce.File != name || ce.Offset != ws[i].pos.Offset {
					t.Fatalf("bit flip at %s:%d in the frame at %d: error names %s:%d (%v)", name, off, ws[i].pos.Offset, ce.File, ce.Offset, err)
				}
				checkExact(t, got, ws[:i])
				if after := readFile(t, fs, name); !bytes.Equal(before, after) {
					t.Fatal("Replay without Repair changed the damaged segment")
				}

				got, st, err := replayAll(fs, "wal", 0, true)
				if err != nil {
					t.Fatal(err)
				}
				checkExact(t, got, ws[:i])
				if !st.RepairedCorruption || st.DroppedBytes == 0 {
					t.Fatalf("repair stats %+v", st)
				}
				got, st, err = replayAll(fs, "wal", 0, false)
				if err != nil || st.TornTail || st.RepairedCorruption {
					t.Fatalf("replay after repair: %v %+v", err, st)
				}
				checkExact(t, got, ws[:i])
				segs, _ := Segments(fs, "wal")
				if segs[len(segs)-1] != seg {
					t.Fatalf("segments after repair %v, want the last to be %d", segs, seg)
				}
			}
		})
	}
	t.Run("header", func(t *testing.T) {
		fs := vfs.NewMem()
		ws := writeLog(t, rng, fs, "wal", Options{SegmentSize: 4 << 10}, 100)
		name := segPath(fs, "wal", 2)
		flipBit(t, fs, name, 10, 3)
		got, _, err := replayAll(fs, "wal", 0, false)
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.File != name || ce.Offset != 0 {
			t.Fatalf("err = %v", err)
		}
		checkExact(t, got, ws[:slices.IndexFunc(ws, func(w want) bool { return w.pos.Segment == 2 })])
	})
	t.Run("missing segment", func(t *testing.T) {
		fs := vfs.NewMem()
		ws := writeLog(t, rng, fs, "wal", Options{SegmentSize: 4 << 10}, 100)
		if err := fs.Remove(segPath(fs, "wal", 3)); err != nil {
			t.Fatal(err)
		}
		n := slices.IndexFunc(ws, func(w want) bool { return w.pos.Segment == 3 })
		got, _, err := replayAll(fs, "wal", 0, false)
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.File != segPath(fs, "wal", 3) {
			t.Fatalf("err = %v", err)
		}
		checkExact(t, got, ws[:n])
		got, st, err := replayAll(fs, "wal", 0, true)
		if err != nil || !st.RepairedCorruption {
			t.Fatalf("repair: %v %+v", err, st)
		}
		checkExact(t, got, ws[:n])
		if segs, _ := Segments(fs, "wal"); !slices.Equal(segs, []uint64{1, 2}) {
			t.Fatalf("segments after repair: %v", segs)
		}
	})
}

// TestCrashRandomUnsynced crashes at random moments keeping a random share
// of the unsynced blocks and directory entries: Replay never fails and
// returns a prefix of the appended records holding every one acknowledged
// durable; the recovered log accepts new records.
func TestCrashRandomUnsynced(t *testing.T) {
	checkLeaks(t)
	rng := newRand(t)
	iters := 300
	if testing.Short() {
		iters = 50
	}
	var torn, beyond int
	defer func() { t.Logf("%d crashes: %d torn tails, %d kept unsynced records", iters, torn, beyond) }()
	for iter := 0; iter < iters; iter++ {
		mode := []SyncMode{SyncNever, SyncAlways, SyncInterval}[iter%3]
		fs := vfs.NewCrashableMem()
		o := Options{Sync: mode, SegmentSize: int64(2048 + rng.IntN(64<<10)), BufferSize: 256 + rng.IntN(8192), SyncEvery: time.Duration(rng.IntN(int(time.Millisecond)))}
		w := mustOpen(t, fs, "wal", o)
		var ws []want
		durable := 0
		n := rng.IntN(400)
		crashAt := rng.IntN(n + 1)
		var crashed *vfs.MemFS
		var crashDurable, crashAppended int
		crash := func() {
			crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
			crashDurable, crashAppended = durable, len(ws)
		}
		for i := 0; i < n; i++ {
			if i == crashAt {
				crash()
			}
			rec := payload(uint64(i), randSize(rng)/4)
			pos, err := w.Append(rec)
			if err != nil {
				t.Fatal(err)
			}
			ws = append(ws, want{rec, pos})
			if mode == SyncAlways {
				durable = len(ws)
			}
			switch rng.IntN(60) {
			case 0:
				if err := w.Sync(); err != nil {
					t.Fatal(err)
				}
				durable = len(ws)
			case 1:
				if _, err := w.Rotate(); err != nil {
					t.Fatal(err)
				}
				durable = len(ws)
			}
		}
		if crashed == nil {
			crash()
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(2) == 0 {
			// A torn write: cut the last segment anywhere after its last
			// durable record.
			segs, err := Segments(crashed, "wal")
			if err != nil {
				t.Fatal(err)
			}
			last := segs[len(segs)-1]
			var keep int64
			for _, w := range ws[:crashDurable] {
				if w.pos.Segment == last {
					keep = frameEnd(w)
				}
			}
			name := segPath(crashed, "wal", last)
			data := readFile(t, crashed, name)
			if int64(len(data)) > keep {
				writeFile(t, crashed, name, data[:keep+rng.Int64N(int64(len(data))-keep)])
			}
		}
		recs := make([][]byte, crashAppended)
		for i := range recs {
			recs[i] = ws[i].rec
		}
		got, st, err := replayAll(crashed, "wal", 0, false)
		if err != nil {
			t.Fatalf("iter %d (%v): replay after crash: %v\n%s", iter, mode, err, crashed.String())
		}
		checkPrefix(t, got, recs, crashDurable)
		if st.TornTail {
			torn++
		}
		if len(got) > crashDurable {
			beyond++
		}
		// Recovery is idempotent, and the log accepts records after it.
		w = mustOpen(t, crashed, "wal", Options{})
		if _, err := w.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got2, st, err := replayAll(crashed, "wal", 0, false)
		if err != nil || st.TornTail {
			t.Fatalf("iter %d: replay after recovery: %v %+v", iter, err, st)
		}
		if len(got2) != len(got)+1 || string(got2[len(got)].rec) != "after" {
			t.Fatalf("iter %d: %d records after recovery, want %d", iter, len(got2), len(got)+1)
		}
	}
}

func TestSegmentsAndRemoveBefore(t *testing.T) {
	checkLeaks(t)
	fs := vfs.NewMem()
	if segs, err := Segments(fs, "missing"); err != nil || len(segs) != 0 {
		t.Fatalf("Segments of a missing dir: %v %v", segs, err)
	}
	if st, err := Replay("missing", 0, ReplayOptions{FS: fs}, nil); err != nil || st != (ReplayStats{}) {
		t.Fatalf("Replay of a missing dir: %+v %v", st, err)
	}
	w := mustOpen(t, fs, "wal", Options{})
	var ws []want
	for s := 1; s <= 5; s++ {
		rec := []byte(fmt.Sprint("record in segment ", s))
		pos, err := w.Append(rec)
		if err != nil {
			t.Fatal(err)
		}
		if pos.Segment != uint64(s) {
			t.Fatalf("record %d at %v", s, pos)
		}
		ws = append(ws, want{rec, pos})
		if s < 5 {
			next, err := w.Rotate()
			if err != nil || next != uint64(s+1) {
				t.Fatalf("Rotate = %d, %v", next, err)
			}
		}
	}
	writeFile(t, fs, "wal/junk", []byte("x"))
	writeFile(t, fs, "wal/00000000000000000002.wal.tmp", []byte("x"))
	if segs, err := Segments(fs, "wal"); err != nil || !slices.Equal(segs, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("Segments = %v, %v", segs, err)
	}
	if err := w.RemoveBefore(3); err != nil {
		t.Fatal(err)
	}
	if segs, _ := Segments(fs, "wal"); !slices.Equal(segs, []uint64{3, 4, 5}) {
		t.Fatalf("after RemoveBefore(3): %v", segs)
	}
	if err := w.RemoveBefore(6); err == nil {
		t.Fatal("RemoveBefore(6) would remove the segment being written")
	}
	// Rotation queued by Append, then RemoveBefore of it: waits for it.
	if err := w.RemoveBefore(5); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, _, err := replayAll(fs, "wal", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	checkExact(t, got, ws[4:])
	if strings.Contains(listDir(t, fs, "wal"), ".tmp") {
		t.Fatalf("Replay left a temporary file: %s", listDir(t, fs, "wal"))
	}
	got, _, err = replayAll(fs, "wal", 5, false)
	if err != nil {
		t.Fatal(err)
	}
	checkExact(t, got, ws[4:])
	got, _, err = replayAll(fs, "wal", 6, false)
	if err != nil || len(got) != 0 {
		t.Fatalf("Replay from 6: %d records, %v", len(got), err)
	}
}

func TestNewerVersionRefused(t *testing.T) {
	fs := vfs.NewMem()
	writeLog(t, newRand(t), fs, "wal", Options{}, 3)
	name := segPath(fs, "wal", 1)
	data := readFile(t, fs, name)
	data[4] = formatVersion + 1
	writeFile(t, fs, name, data)
	_, _, err := replayAll(fs, "wal", 0, true)
	if !errors.Is(err, ErrUnsupportedVersion) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("error does not say which file and version: %v", err)
	}
	if after := readFile(t, fs, name); !bytes.Equal(after, data) {
		t.Fatal("Replay changed a segment of a newer version")
	}
}

// TestRotateDurable: records before Rotate survive a crash that keeps only
// synced data, in any mode; records after Rotate land in the new segment.
func TestRotateDurable(t *testing.T) {
	checkLeaks(t)
	for _, mode := range []SyncMode{SyncNever, SyncInterval} {
		fs := vfs.NewCrashableMem()
		w := mustOpen(t, fs, "wal", Options{Sync: mode, SyncEvery: 1 << 40})
		var ws []want
		for i := 0; i < 10; i++ {
			rec := payload(uint64(i), 30)
			pos, err := w.Append(rec)
			if err != nil {
				t.Fatal(err)
			}
			ws = append(ws, want{rec, pos})
		}
		next, err := w.Rotate()
		if err != nil || next != 2 {
			t.Fatalf("Rotate = %d, %v", next, err)
		}
		pos, err := w.Append([]byte("x"))
		if err != nil || pos.Segment != 2 {
			t.Fatalf("Append after Rotate at %v, %v", pos, err)
		}
		got, _, err := replayAll(fs.CrashClone(vfs.CrashCloneCfg{}), "wal", 0, false)
		if err != nil {
			t.Fatal(err)
		}
		checkExact(t, got, ws)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLostBlockBeforeValidFrames: a crash can lose an unsynced block while a
// later unsynced block survives (the crashable FS and real disks both do
// this). Valid frames after the hole do not make it corruption unless a sync
// mark proves the hole had been fsynced.
func TestLostBlockBeforeValidFrames(t *testing.T) {
	checkLeaks(t)
	for _, syncedAfter := range []bool{false, true} {
		t.Run(fmt.Sprint("synced=", syncedAfter), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			w := mustOpen(t, fs, "wal", Options{Sync: SyncNever, BufferSize: 1024})
			var ws []want
			add := func(n int) {
				for i := 0; i < n; i++ {
					rec := payload(uint64(len(ws)), 100)
					pos, err := w.Append(rec)
					if err != nil {
						t.Fatal(err)
					}
					ws = append(ws, want{rec, pos})
				}
			}
			add(50)
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			synced := frameEnd(ws[49])
			add(300)
			if syncedAfter {
				if err := w.Sync(); err != nil {
					t.Fatal(err)
				}
				add(1) // carries a sync mark promising all of the above
				if err := w.Sync(); err != nil {
					t.Fatal(err)
				}
			} else {
				// Let the full buffers reach the file, unsynced.
				for {
					st, err := fs.Stat(segPath(fs, "wal", 1))
					if err != nil {
						t.Fatal(err)
					}
					if st.Size() > synced+20000 {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(1, 2))})
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			name := segPath(crashed, "wal", 1)
			data := readFile(t, crashed, name)
			hole := (synced/4096 + 2) * 4096
			clear(data[hole : hole+4096])
			writeFile(t, crashed, name, data)
			i := frameAt(ws, 1, hole)

			got, st, err := replayAll(crashed, "wal", 0, false)
			if syncedAfter {
				var ce *CorruptionError
				if !errors.As(err, &ce) || ce.Offset != ws[i].pos.Offset {
					t.Fatalf("hole at %d in fsynced data: err = %v, want corruption at %d", hole, err, ws[i].pos.Offset)
				}
				return
			}
			if err != nil {
				t.Fatalf("hole at %d in unsynced data: %v", hole, err)
			}
			if !st.TornTail || st.TruncatedBytes != int64(len(data))-ws[i].pos.Offset {
				t.Fatalf("stats %+v", st)
			}
			checkExact(t, got, ws[:i])
		})
	}
}
