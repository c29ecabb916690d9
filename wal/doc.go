// Package wal is the write-ahead log: it frames opaque records in numbered
// segment files, makes them durable according to a sync mode, and replays
// them after a restart, repairing a torn tail.
//
// # What it owns
//
// wal owns framing (length, CRC32C, frame type), segment files and their
// rotation, fsync policy and group commit, and telling a torn tail from
// corruption at replay. It does not know what a record means: the engine
// encodes records and decides, after a checkpoint, which segments are no
// longer needed (RemoveBefore). The byte layout is in FORMAT.md.
//
// A log directory holds segment files named by their number in 20 decimal
// digits ("00000000000000000001.wal"), a LOCK file held by an open Writer or
// a running Replay, and, only after a crash during a repair, a
// "<segment>.wal.tmp" file that the next Replay removes. All file access
// goes through a pebble vfs.FS, so tests inject faults and crashes.
//
// # Example
//
//	// At start: replay what the log holds (this also repairs a torn tail),
//	// then open it for appending. Open always starts a new segment.
//	stats, err := wal.Replay(dir, checkpointSeg, wal.ReplayOptions{}, func(rec []byte, pos wal.Pos) error {
//		return apply(rec) // rec is valid only during the call
//	})
//	if err != nil {
//		return err // errors.Is(err, wal.ErrCorrupt): retry with Repair: true only if losing the tail is acceptable
//	}
//	w, err := wal.Open(dir, wal.Options{Sync: wal.SyncAlways})
//	if err != nil {
//		return err
//	}
//	defer w.Close()
//	pos, err := w.Append(rec) // durable when it returns, in SyncAlways mode
//
//	// Checkpoint: start a new segment, persist the state elsewhere, then
//	// drop the segments the checkpoint covers.
//	next, err := w.Rotate()
//	... write the checkpoint, recording next ...
//	err = w.RemoveBefore(next)
//
// # Durability
//
//   - SyncAlways: Append returns nil only once its record is fsynced.
//     Concurrent appenders share one write and one fsync (group commit).
//   - SyncInterval (default): records are buffered; a background goroutine
//     writes and fsyncs every Options.SyncEvery (1s), so a record acknowledged
//     more than one interval (plus an fsync) before a crash survives it.
//   - SyncNever: records are durable after Sync, Rotate or Close returns;
//     full buffers are written to the OS but not fsynced.
//
// In every mode Sync makes everything appended before it durable; Rotate
// fsyncs the segment it finishes and the new one, and the directory.
//
// Failures are fail-stop: after any write or fsync error the Writer is
// broken. Every later call returns the same error, which matches ErrFailed
// and wraps the I/O error; an fsync is never retried and then reported as
// success. Reopen the log (Replay, then Open) to go on. After Close, calls
// return ErrClosed.
//
// # Replay: torn tails and corruption
//
// After each fsync the next frame appended is a small sync mark saying "this
// segment was durable up to offset X", and Close ends the segment with one
// covering all of it. Replay stops at the first bad frame of a segment
// (checksum mismatch, length out of range, cut short, unknown type):
//
//   - in the last segment, if no later sync mark promises that the bad bytes
//     had been fsynced, it is a torn tail: bytes that were being written at
//     the crash, whatever follows them (zeros, garbage, or frames written
//     later whose blocks reached the disk first). The segment is truncated
//     before the bad frame, ReplayStats says so, and Replay succeeds;
//   - anywhere else it is a *CorruptionError naming the file and offset, and
//     nothing is changed, unless ReplayOptions.Repair asks to cut the log
//     there.
//
// Damage inside the last fsync batch of a last segment that was not closed
// cleanly looks exactly like a torn write and is treated as one.
//
// # Concurrency
//
// Writer methods are safe for concurrent use. A Writer has one background
// goroutine, the flusher, that does every write, fsync and rotation of the
// open segment; appenders only copy their frame into a buffer under a mutex
// (no I/O, no channel per record), and wait on a condition variable for the
// flusher when they need durability or buffer space. Close stops the
// flusher. Positions returned by concurrent appenders are in log order.
//
// Replay calls fn sequentially on the calling goroutine. Replay and a Writer
// must not use the same directory at once; the LOCK file (vfs.FS.Lock)
// enforces it, also against other processes, so the log must live on a
// local POSIX filesystem (not NFS).
package wal
