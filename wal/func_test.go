package wal

import (
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestAppendFuncRotateFunc checks the promise the engine builds on: what
// AppendFunc's fn does is atomic with RotateFunc, so state counted in fn at
// the moment of a rotation matches exactly the records of the earlier
// segments.
func TestAppendFuncRotateFunc(t *testing.T) {
	checkLeaks(t)
	for _, mode := range []SyncMode{SyncInterval, SyncAlways, SyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := vfs.NewMem()
			w := mustOpen(t, fs, "wal", Options{Sync: mode, SyncEvery: time.Millisecond, BufferSize: 4096})
			applied := 0 // guarded by the Writer's lock
			type cut struct {
				seg     uint64
				applied int
			}
			var cuts []cut
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for g := 0; g < 4; g++ {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := w.AppendFunc([]byte{byte(g), byte(i)}, func() { applied++ }); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			for r := 0; r < 20; r++ {
				time.Sleep(time.Millisecond)
				if _, err := w.RotateFunc(func(next uint64) { cuts = append(cuts, cut{next, applied}) }); err != nil {
					t.Fatal(err)
				}
			}
			close(stop)
			wg.Wait()
			var total int
			w.Do(func() { total = applied })
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			perSeg := map[uint64]int{}
			if _, err := Replay("wal", 0, ReplayOptions{FS: fs}, func(rec []byte, pos Pos) error {
				perSeg[pos.Segment]++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			all := 0
			for _, n := range perSeg {
				all += n
			}
			if all != total {
				t.Fatalf("replayed %d records, fn ran %d times", all, total)
			}
			for _, c := range cuts {
				before := 0
				for seg, n := range perSeg {
					if seg < c.seg {
						before += n
					}
				}
				if before != c.applied {
					t.Fatalf("rotation to %d: fn had run %d times, segments before hold %d records", c.seg, c.applied, before)
				}
			}
		})
	}
}
