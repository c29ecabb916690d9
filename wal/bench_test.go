package wal

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Benchmarks run on the real disk under b.TempDir(). Run them with
//
//	go test -run XXX -bench . -benchtime 2s ./wal/
//
// SyncAlways with one appender measures the fsync latency of the disk;
// with more appenders, how well group commit shares fsyncs.

var recordSizes = []int{24, 1024}

func reportRecords(b *testing.B, records int64) {
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkAppend(b *testing.B) {
	for _, mode := range []SyncMode{SyncInterval, SyncNever, SyncAlways} {
		for _, size := range recordSizes {
			b.Run(fmt.Sprintf("%v/%dB", mode, size), func(b *testing.B) {
				w, err := Open(b.TempDir(), Options{Sync: mode})
				if err != nil {
					b.Fatal(err)
				}
				rec := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := w.Append(rec); err != nil {
						b.Fatal(err)
					}
				}
				reportRecords(b, int64(b.N))
				b.StopTimer()
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkAppendBatch frames 16 records per call.
func BenchmarkAppendBatch(b *testing.B) {
	const batch = 16
	for _, size := range recordSizes {
		b.Run(fmt.Sprintf("%v/%dB", SyncNever, size), func(b *testing.B) {
			w, err := Open(b.TempDir(), Options{Sync: SyncNever})
			if err != nil {
				b.Fatal(err)
			}
			recs := make([][]byte, batch)
			for i := range recs {
				recs[i] = make([]byte, size)
			}
			pos := make([]Pos, 0, batch)
			b.SetBytes(int64(size * batch))
			b.ReportAllocs()
			for b.Loop() {
				if pos, err = w.AppendBatch(recs, pos[:0]); err != nil {
					b.Fatal(err)
				}
			}
			reportRecords(b, int64(b.N)*batch)
			b.StopTimer()
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// syncCountingFS counts the fsyncs of the files it creates.
type syncCountingFS struct {
	vfs.FS
	syncs *atomic.Int64
}

func (fs syncCountingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	if err != nil {
		return nil, err
	}
	return syncCountingFile{f, fs.syncs}, nil
}

type syncCountingFile struct {
	vfs.File
	syncs *atomic.Int64
}

func (f syncCountingFile) SyncData() error { f.syncs.Add(1); return f.File.SyncData() }
func (f syncCountingFile) Sync() error     { f.syncs.Add(1); return f.File.Sync() }

// BenchmarkSyncAlwaysParallel: n goroutines append in SyncAlways mode; each
// Append returns once durable. records/fsync shows group commit at work.
func BenchmarkSyncAlwaysParallel(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		for _, size := range recordSizes {
			b.Run(fmt.Sprintf("appenders=%d/%dB", n, size), func(b *testing.B) {
				var syncs atomic.Int64
				w, err := Open(b.TempDir(), Options{Sync: SyncAlways, FS: syncCountingFS{vfs.Default, &syncs}})
				if err != nil {
					b.Fatal(err)
				}
				rec := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				syncs.Store(0)
				b.ResetTimer()
				var next atomic.Int64
				var wg sync.WaitGroup
				for g := 0; g < n; g++ {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if _, err := w.Append(rec); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				reportRecords(b, int64(b.N))
				b.ReportMetric(float64(b.N)/float64(max(syncs.Load(), 1)), "records/fsync")
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

func BenchmarkReplay(b *testing.B) {
	for _, size := range recordSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			dir := b.TempDir()
			w, err := Open(dir, Options{Sync: SyncNever})
			if err != nil {
				b.Fatal(err)
			}
			records := (64 << 20) / (size + frameHeaderSize)
			rec := make([]byte, size)
			for i := 0; i < records; i++ {
				if _, err := w.Append(rec); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(records * size))
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				if _, err := Replay(dir, 0, ReplayOptions{}, func(rec []byte, _ Pos) error {
					n++
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				if n != records {
					b.Fatalf("replayed %d records, want %d", n, records)
				}
			}
			reportRecords(b, int64(b.N)*int64(records))
		})
	}
}

// discardFS is a MemFS whose created files drop what is written to them and
// sync instantly: BenchmarkAppendCPU measures the CPU cost of Append without
// the disk.
type discardFS struct{ vfs.FS }

func (fs discardFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	if err != nil {
		return nil, err
	}
	return discardFile{f}, nil
}

type discardFile struct{ vfs.File }

func (discardFile) Write(p []byte) (int, error) { return len(p), nil }
func (discardFile) SyncData() error             { return nil }
func (discardFile) Sync() error                 { return nil }

func BenchmarkAppendCPU(b *testing.B) {
	for _, mode := range []SyncMode{SyncInterval, SyncNever, SyncAlways} {
		for _, size := range recordSizes {
			b.Run(fmt.Sprintf("%v/%dB", mode, size), func(b *testing.B) {
				w, err := Open("wal", Options{Sync: mode, FS: discardFS{vfs.NewMem()}})
				if err != nil {
					b.Fatal(err)
				}
				rec := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := w.Append(rec); err != nil {
						b.Fatal(err)
					}
				}
				reportRecords(b, int64(b.N))
				b.StopTimer()
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
