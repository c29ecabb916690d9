package wal

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// readAll reads every record before limit.
func readAll(t testing.TB, r *Reader, limit Pos) []replayed {
	t.Helper()
	var out []replayed
	for {
		rec, at, err := r.Next(limit)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reader at %s: %v", r.Pos(), err)
		}
		out = append(out, replayed{append([]byte(nil), rec...), at})
	}
}

// TestReaderFollowsWriter reads the log while a Writer appends to it and
// rotates segments, in every sync mode, and gets every record in order,
// exactly once, at the positions Append returned; a second Reader started
// at a position in the middle gets the rest.
func TestReaderFollowsWriter(t *testing.T) {
	for _, mode := range []SyncMode{SyncInterval, SyncAlways, SyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			rng := newRand(t)
			fs := vfs.NewMem()
			w := mustOpen(t, fs, "wal", Options{Sync: mode, SyncEvery: 2 * time.Millisecond, SegmentSize: 16 << 10, BufferSize: 4 << 10})
			const n = 2000
			sizes := make([]int, n)
			for i := range sizes {
				sizes[i] = rng.IntN(300)
			}
			var (
				mu   sync.Mutex
				poss []Pos
			)
			done := make(chan error, 1)
			go func() {
				for i := 0; i < n; i++ {
					p, err := w.Append(payload(uint64(i), sizes[i]))
					if err != nil {
						done <- err
						return
					}
					mu.Lock()
					poss = append(poss, p)
					mu.Unlock()
					if i%500 == 250 {
						if _, err := w.Rotate(); err != nil {
							done <- err
							return
						}
					}
				}
				done <- w.Sync()
			}()
			r := NewReader(fs, "wal", Pos{Segment: 1})
			defer r.Close()
			var got []replayed
			deadline := time.Now().Add(20 * time.Second)
			for len(got) < n {
				if time.Now().After(deadline) {
					t.Fatalf("read %d of %d records", len(got), n)
				}
				limit, ch := w.WrittenChan()
				got = append(got, readAll(t, r, limit)...)
				select {
				case <-ch:
				case <-time.After(50 * time.Millisecond):
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for i, g := range got {
				if !bytes.Equal(g.rec, payload(uint64(i), sizes[i])) || g.pos != poss[i] {
					t.Fatalf("record %d: got %d bytes at %s, want %d bytes at %s", i, len(g.rec), g.pos, sizes[i], poss[i])
				}
			}
			if w.Written().Segment < 3 {
				t.Fatalf("the log was not rotated: written %s", w.Written())
			}
			// From the middle: the position of record k, and the position
			// after record k-1 (Pos), give the same records.
			k := n / 2
			r2 := NewReader(fs, "wal", poss[k])
			rest := readAll(t, r2, w.Written())
			r2.Close()
			if len(rest) != n-k || rest[0].pos != poss[k] {
				t.Fatalf("from %s: %d records, want %d", poss[k], len(rest), n-k)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestReaderLimit: the reader never returns a record at or past its limit,
// and picks up once the limit moves.
func TestReaderLimit(t *testing.T) {
	fs := vfs.NewMem()
	w := mustOpen(t, fs, "wal", Options{Sync: SyncAlways})
	var poss []Pos
	for i := 0; i < 10; i++ {
		p, err := w.Append(payload(uint64(i), 20))
		if err != nil {
			t.Fatal(err)
		}
		poss = append(poss, p)
	}
	r := NewReader(fs, "wal", Pos{Segment: 1})
	defer r.Close()
	if got := readAll(t, r, poss[4]); len(got) != 4 {
		t.Fatalf("limit at record 4: read %d records", len(got))
	}
	if r.Pos() != poss[4] {
		t.Fatalf("Pos %s, want %s", r.Pos(), poss[4])
	}
	if got := readAll(t, r, w.Written()); len(got) != 6 || got[0].pos != poss[4] {
		t.Fatalf("after the limit moved: %d records", len(got))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReaderRemovedSegments: segments removed behind the reader do not
// matter, the open one may be removed under it (POSIX keeps it readable),
// and a missing segment ahead of it is a clear error.
func TestReaderRemovedSegments(t *testing.T) {
	defer checkLeaks(t)
	fs := vfs.NewMem()
	w := mustOpen(t, fs, "wal", Options{Sync: SyncAlways})
	write := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := w.Append(payload(uint64(i), 10)); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(3)
	if _, err := w.Rotate(); err != nil { // segment 2
		t.Fatal(err)
	}
	write(3)
	r := NewReader(fs, "wal", Pos{Segment: 1})
	defer r.Close()
	if _, _, err := r.Next(w.Written()); err != nil {
		t.Fatal(err)
	}
	// Segment 1 is open in the reader: removing it is harmless.
	if err := w.RemoveBefore(2); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r, w.Written()); len(got) != 5 {
		t.Fatalf("read %d records after the removal, want 5", len(got))
	}
	// A reader behind a removed segment fails clearly.
	r2 := NewReader(fs, "wal", Pos{Segment: 1, Offset: 20})
	defer r2.Close()
	if _, _, err := r2.Next(w.Written()); !errors.Is(err, ErrSegmentMissing) {
		t.Fatalf("reading a removed segment: %v, want ErrSegmentMissing", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReaderDamage: a flipped byte below the limit is a CorruptionError
// naming the file and offset; a position past the end of a finished
// segment (bytes lost to a power loss) goes on with the next segment and is
// counted.
func TestReaderDamage(t *testing.T) {
	fs := vfs.NewMem()
	w := mustOpen(t, fs, "wal", Options{Sync: SyncAlways})
	var poss []Pos
	for i := 0; i < 4; i++ {
		p, err := w.Append(payload(uint64(i), 30))
		if err != nil {
			t.Fatal(err)
		}
		poss = append(poss, p)
	}
	if _, err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	p5, err := w.Append(payload(5, 30))
	if err != nil {
		t.Fatal(err)
	}
	limit := w.Written()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := segPath(fs, "wal", 1)
	good := readFile(t, fs, path)

	bad := append([]byte(nil), good...)
	bad[poss[2].Offset+12] ^= 1
	writeFile(t, fs, path, bad)
	r := NewReader(fs, "wal", Pos{Segment: 1})
	got := 0
	for {
		_, _, err := r.Next(limit)
		var ce *CorruptionError
		if errors.As(err, &ce) {
			if ce.Offset != poss[2].Offset || ce.File != path || got != 2 {
				t.Fatalf("corruption at %s offset %d after %d records, want offset %d after 2", ce.File, ce.Offset, got, poss[2].Offset)
			}
			break
		}
		if err != nil {
			t.Fatalf("want a CorruptionError, got %v", err)
		}
		got++
	}
	r.Close()

	// Past the end of a finished segment.
	writeFile(t, fs, path, good[:poss[2].Offset])
	r = NewReader(fs, "wal", poss[3])
	rec, at, err := r.Next(limit)
	if err != nil || at != p5 || !bytes.Equal(rec, payload(5, 30)) || r.PastEnd() != 1 {
		t.Fatalf("past the end: %v at %s (want %s), PastEnd %d", err, at, p5, r.PastEnd())
	}
	r.Close()

	// A damaged header.
	hb := append([]byte(nil), good...)
	hb[9] ^= 1
	writeFile(t, fs, path, hb)
	r = NewReader(fs, "wal", Pos{Segment: 1})
	if _, _, err := r.Next(limit); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged header: %v", err)
	}
	r.Close()
}

// FuzzReader reads arbitrary bytes as a segment (the limit segment, and a
// finished one before an empty limit segment): the Reader never panics,
// fails only with a corruption, a version error or a missing segment, and
// allocates memory bounded by the input.
func FuzzReader(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed, uint16(len(seed)))
	}
	f.Fuzz(func(t *testing.T, data []byte, lim uint16) {
		for _, last := range []bool{true, false} {
			fs := vfs.NewMem()
			if err := fs.MkdirAll("wal", 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, fs, segPath(fs, "wal", 1), data)
			limit := Pos{Segment: 1, Offset: int64(lim)}
			if !last {
				var h [segmentHeaderSize]byte
				writeFile(t, fs, segPath(fs, "wal", 2), appendSegmentHeader(h[:0], 2))
				limit = Pos{Segment: 2, Offset: segmentHeaderSize}
			}
			r := NewReader(fs, "wal", Pos{Segment: 1})
			for i := 0; ; i++ {
				rec, _, err := r.Next(limit)
				if err == io.EOF {
					break
				}
				if err != nil {
					if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
						t.Fatalf("unexpected error kind: %v", err)
					}
					break
				}
				if len(rec) > len(data) || i > len(data) {
					t.Fatalf("record of %d bytes from %d bytes of input", len(rec), len(data))
				}
			}
			r.Close()
		}
	})
}
