package wal

import (
	"errors"
	"runtime"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FuzzReplay writes arbitrary bytes as a segment file and replays it, as the
// last segment and as a middle one: Replay never panics, allocates memory
// bounded by the input (never by a length read from it), fails only with a
// corruption or a version error, and a successful Replay leaves a log that
// replays again to the same records with nothing left to repair.
func FuzzReplay(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, last := range []bool{true, false} {
			fs := vfs.NewMem()
			if err := fs.MkdirAll("wal", 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, fs, segPath(fs, "wal", 1), data)
			if !last {
				var h [segmentHeaderSize]byte
				writeFile(t, fs, segPath(fs, "wal", 2), appendSegmentHeader(h[:0], 2))
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			got, st, err := replayAll(fs, "wal", 0, false)
			runtime.ReadMemStats(&ms)
			// The records' copies plus the read window and a truncation
			// buffer, each bounded by the input size.
			if alloc, bound := ms.TotalAlloc-before, uint64(8*len(data)+2*readAhead+1<<20); alloc > bound {
				t.Fatalf("replay of %d bytes allocated %d bytes (bound %d)", len(data), alloc, bound)
			}
			var ce *CorruptionError
			switch {
			case err == nil:
			case errors.As(err, &ce):
				if ce.Offset < 0 || ce.Offset > int64(len(data)) {
					t.Fatalf("corruption offset %d outside a %d-byte file", ce.Offset, len(data))
				}
				if st.TornTail {
					t.Fatalf("both a torn tail and %v", err)
				}
				// Repair always leaves a log that replays.
				repaired, rst, rerr := replayAll(fs, "wal", 0, true)
				if rerr != nil || !rst.RepairedCorruption || len(repaired) != len(got) {
					t.Fatalf("repair after %v: %v, %+v, %d records (had %d)", err, rerr, rst, len(repaired), len(got))
				}
				continue
			case errors.Is(err, ErrUnsupportedVersion):
				continue
			default:
				t.Fatalf("unexpected error: %v", err)
			}
			if !last && st.TornTail {
				t.Fatal("torn tail reported for a segment that is not the last")
			}
			for i := 1; i < len(got); i++ {
				if got[i].pos.Offset <= got[i-1].pos.Offset {
					t.Fatalf("positions out of order: %v then %v", got[i-1].pos, got[i].pos)
				}
			}
			again, st2, err := replayAll(fs, "wal", 0, false)
			if err != nil || st2.TornTail || len(again) != len(got) {
				t.Fatalf("second replay: %v, %+v, %d records (first: %d)", err, st2, len(again), len(got))
			}
			for i := range got {
				if string(got[i].rec) != string(again[i].rec) || got[i].pos != again[i].pos {
					t.Fatalf("second replay differs at record %d", i)
				}
			}
		}
	})
}

// fuzzSeeds returns segment files: valid logs, with sync marks, and damaged
// ones. The committed corpus in testdata/fuzz/FuzzReplay holds more.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, mode := range []SyncMode{SyncNever, SyncAlways} {
		fs := vfs.NewMem()
		w := mustOpen(t, fs, "wal", Options{Sync: mode})
		for i := 0; i < 5; i++ {
			if _, err := w.Append(payload(uint64(i), i*7)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		seg := readFile(t, fs, segPath(fs, "wal", 1))
		seeds = append(seeds, seg, seg[:len(seg)-5], seg[:segmentHeaderSize])
		flipped := append([]byte(nil), seg...)
		flipped[segmentHeaderSize+10] ^= 4
		seeds = append(seeds, flipped)
	}
	return append(seeds, nil, []byte(segmentMagic), make([]byte, 64))
}
