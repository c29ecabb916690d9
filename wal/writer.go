package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// SyncMode says when appended records are made durable.
type SyncMode int

const (
	// SyncInterval (the default) buffers records; a background goroutine
	// writes and fsyncs them every Options.SyncEvery.
	SyncInterval SyncMode = iota
	// SyncAlways makes Append return only once its record is fsynced.
	// Concurrent appenders share one fsync (group commit).
	SyncAlways
	// SyncNever fsyncs only on Sync and Close. Buffered records are written
	// to the OS when the buffer fills.
	SyncNever
)

func (m SyncMode) String() string {
	switch m {
	case SyncInterval:
		return "interval"
	case SyncAlways:
		return "always"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// Options configure a Writer. The zero value of every field means its default.
type Options struct {
	FS          vfs.FS        // nil = vfs.Default
	Sync        SyncMode      // default SyncInterval
	SyncEvery   time.Duration // SyncInterval period; 0 = 1s
	SegmentSize int64         // 0 = 64 MiB: rotate when the current segment would exceed it
	BufferSize  int           // 0 = 1 MiB user-space buffer before a write(2)
}

const (
	defaultSyncEvery   = time.Second
	defaultSegmentSize = 64 << 20
	defaultBufferSize  = 1 << 20
	// pooledBuffers is how many BufferSize buffers a Writer keeps: one being
	// filled while the others wait for, or are in, a write(2).
	pooledBuffers = 4
)

func (o Options) withDefaults() (Options, error) {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	switch o.Sync {
	case SyncInterval, SyncAlways, SyncNever:
	default:
		return o, fmt.Errorf("wal: unknown sync mode %d", int(o.Sync))
	}
	if o.SyncEvery < 0 || o.SegmentSize < 0 || o.BufferSize < 0 {
		return o, fmt.Errorf("wal: negative option (SyncEvery %v, SegmentSize %d, BufferSize %d)", o.SyncEvery, o.SegmentSize, o.BufferSize)
	}
	if o.SyncEvery == 0 {
		o.SyncEvery = defaultSyncEvery
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = defaultSegmentSize
	}
	if o.BufferSize == 0 {
		o.BufferSize = defaultBufferSize
	}
	return o, nil
}

// Pos identifies a record: the segment number and the byte offset of its
// frame in that segment file.
type Pos struct {
	Segment uint64
	Offset  int64
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Segment, p.Offset) }

var (
	// ErrClosed is returned by every call on a Writer after Close.
	ErrClosed = errors.New("wal: closed")
	// ErrFailed is matched (errors.Is) by the sticky error of a Writer that
	// saw a write or fsync failure; errors.Unwrap gives the I/O error.
	ErrFailed = errors.New("wal: log failed")
	// ErrRecordTooLarge is returned (wrapped) by Append for a record longer
	// than MaxRecordSize. It does not break the Writer.
	ErrRecordTooLarge = errors.New("wal: record too large")
)

// failedError is the sticky error of a broken Writer.
type failedError struct{ err error }

func (e *failedError) Error() string {
	return "wal: log failed, no further writes are accepted: " + e.err.Error()
}
func (e *failedError) Unwrap() error        { return e.err }
func (e *failedError) Is(target error) bool { return target == ErrFailed }

// chunk is a run of frames handed from appenders to the flusher goroutine.
type chunk struct {
	// newSeg, when non-zero, asks the flusher first to finish the open
	// segment (write, fsync, close) and to create segment newSeg with its
	// header (fsynced, directory fsynced).
	newSeg uint64
	data   []byte // whole frames for the open segment (after newSeg, if any)
	end    int64  // Writer.mu.appended after this chunk
}

// Writer appends records to the log in a directory. Its methods are safe
// for concurrent use. See the package documentation for the protocol.
type Writer struct {
	// Immutable after Open.
	fs        vfs.FS
	dir       string
	mode      SyncMode
	every     time.Duration
	segSize   int64
	bufSize   int
	maxSealed int64     // backpressure: bytes sealed and not yet written
	lock      io.Closer // the directory's LOCK file
	kick      chan struct{}
	done      chan struct{} // closed when the flusher exits

	// f is owned by the flusher goroutine (and by Open before it starts):
	// no lock. Other goroutines learn about it only through mu.
	f struct {
		file       vfs.File // nil after a failed rotation or Close
		seg        uint64
		off        int64 // bytes written to file
		synced     int64 // bytes of file fsynced
		seqWritten int64 // logical position (see mu.appended) written
		seqSynced  int64 // logical position fsynced
		spare      []chunk
	}

	mu struct {
		sync.Mutex
		// cond is broadcast when durable, written, the buffer pool, fileSeg
		// or err change, and on Close.
		cond sync.Cond

		err    error // sticky *failedError; set once, never cleared
		closed bool  // Close was called

		// Where the next frame goes.
		seg uint64
		off int64

		buf         []byte // frames not yet sealed (nil: take one from free)
		free        [][]byte
		nbufs       int     // pooled buffers allocated
		sealed      []chunk // sealed chunks for the flusher, in log order
		sealedBytes int64   // bytes sealed and not yet written

		// Logical positions: bytes framed since Open, counting segment
		// headers and sync marks, monotonic across segments.
		// durable <= written <= appended.
		appended int64
		written  int64
		durable  int64
		syncWant int64 // someone waits for durable >= syncWant

		// mark is set when segment seg has been fsynced up to markOff and no
		// frame since says so: the next frame appended is a sync mark.
		mark    bool
		markOff int64

		fileSeg  uint64 // segment the flusher has open
		baseSize int64  // bytes of the segments present at Open

		// writtenPos is the position after the last frame handed to the OS
		// (see Written); writtenCh is closed and replaced when it moves, and
		// closed when the flusher exits.
		writtenPos Pos
		writtenCh  chan struct{}
	}
}

// Open opens the log in dir for appending, creating dir if needed. It never
// appends to an existing segment: it starts a new segment numbered after the
// highest one present. Replay the existing segments before calling Open: a
// torn tail is repaired only by Replay, and only while its segment is the
// last one.
//
// The directory is locked (file LOCK) until Close; a second Open, or a
// Replay, of a locked directory fails.
func Open(dir string, opts Options) (*Writer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	fs := opts.FS
	if err := makeDir(fs, dir); err != nil {
		return nil, err
	}
	lock, err := fs.Lock(fs.PathJoin(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("wal: lock %s (is a Writer open on it?): %w", dir, err)
	}
	w := &Writer{
		fs:      fs,
		dir:     dir,
		mode:    opts.Sync,
		every:   opts.SyncEvery,
		segSize: opts.SegmentSize,
		bufSize: opts.BufferSize,
		lock:    lock,
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	w.maxSealed = int64(pooledBuffers * w.bufSize)
	w.mu.cond.L = &w.mu.Mutex

	segs, err := Segments(fs, dir)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	var next uint64 = 1
	for _, s := range segs {
		st, err := fs.Stat(fs.PathJoin(dir, segmentName(s)))
		if err != nil {
			_ = lock.Close()
			return nil, fmt.Errorf("wal: stat segment %s: %w", segmentName(s), err)
		}
		w.mu.baseSize += st.Size()
	}
	if len(segs) > 0 {
		next = segs[len(segs)-1] + 1
	}
	if err := w.startSegment(next); err != nil {
		if w.f.file != nil {
			_ = w.f.file.Close()
		}
		_ = lock.Close()
		return nil, fmt.Errorf("wal: open: %w", err)
	}
	w.mu.seg = next
	w.mu.off = segmentHeaderSize
	w.mu.fileSeg = next
	w.mu.appended = segmentHeaderSize
	w.mu.written = segmentHeaderSize
	w.mu.durable = segmentHeaderSize
	w.f.seqWritten = segmentHeaderSize
	w.f.seqSynced = segmentHeaderSize
	w.mu.writtenPos = Pos{Segment: next, Offset: segmentHeaderSize}
	w.mu.writtenCh = make(chan struct{})
	go w.run()
	return w, nil
}

// makeDir creates dir if it does not exist and makes its entry durable.
func makeDir(fs vfs.FS, dir string) error {
	if _, err := fs.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("wal: stat %s: %w", dir, err)
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("wal: create %s: %w", dir, err)
	}
	return syncDir(fs, fs.PathDir(dir))
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("wal: open directory %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("wal: sync directory %s: %w", dir, err)
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("wal: close directory %s: %w", dir, err)
	}
	return nil
}

// Append frames rec (copying it: the caller may reuse rec at once) and
// returns the position of its frame. In SyncAlways mode it returns only once
// the record is durable. After a write or fsync failure it returns the
// sticky error (errors.Is(err, ErrFailed)); after Close, ErrClosed.
func (w *Writer) Append(rec []byte) (Pos, error) {
	if len(rec) > MaxRecordSize {
		return Pos{}, tooLarge(len(rec))
	}
	w.mu.Lock()
	pos, err := w.appendLocked(rec)
	if err == nil && w.mode == SyncAlways {
		err = w.waitDurableLocked(w.mu.appended)
	}
	w.mu.Unlock()
	if err != nil {
		return Pos{}, err
	}
	return pos, nil
}

// AppendFunc is Append that also calls fn, under the Writer's lock, right
// after the record is framed (and only if it was). Everything fn does is
// therefore atomic with respect to Rotate, RotateFunc and Do: a caller can
// keep in-memory state that matches the log exactly, segment by segment
// (the engine applies points to its head here). fn must be short and must
// not call the Writer. In SyncAlways mode AppendFunc returns once the
// record is durable (fn has run before that).
func (w *Writer) AppendFunc(rec []byte, fn func()) (Pos, error) {
	if len(rec) > MaxRecordSize {
		return Pos{}, tooLarge(len(rec))
	}
	w.mu.Lock()
	pos, err := w.appendLocked(rec)
	if err == nil {
		fn()
		if w.mode == SyncAlways {
			err = w.waitDurableLocked(w.mu.appended)
		}
	}
	w.mu.Unlock()
	if err != nil {
		return Pos{}, err
	}
	return pos, nil
}

// Do calls fn under the Writer's lock, atomic with respect to AppendFunc and
// RotateFunc; it works on a closed or failed Writer too. fn must be short
// and must not call the Writer.
func (w *Writer) Do(fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn()
}

// AppendBatch frames recs one after the other under one lock acquisition,
// appends their positions to dst and returns it. Semantics are Append's: in
// SyncAlways mode it returns once all of them are durable; on error none of
// them is acknowledged (some may still reach the log, as with Append).
func (w *Writer) AppendBatch(recs [][]byte, dst []Pos) ([]Pos, error) {
	for _, r := range recs {
		if len(r) > MaxRecordSize {
			return dst, tooLarge(len(r))
		}
	}
	n := len(dst)
	w.mu.Lock()
	var err error
	for _, r := range recs {
		var p Pos
		if p, err = w.appendLocked(r); err != nil {
			break
		}
		dst = append(dst, p)
	}
	if err == nil && w.mode == SyncAlways {
		err = w.waitDurableLocked(w.mu.appended)
	}
	w.mu.Unlock()
	if err != nil {
		return dst[:n], err
	}
	return dst, nil
}

func tooLarge(n int) error {
	return fmt.Errorf("%w: %d bytes, MaxRecordSize is %d", ErrRecordTooLarge, n, MaxRecordSize)
}

// usableLocked returns why the Writer accepts no more calls, if it does not.
func (w *Writer) usableLocked() error {
	if w.mu.closed {
		return ErrClosed
	}
	return w.mu.err
}

// appendLocked frames rec into the current buffer, sealing buffers, rotating
// segments and waiting for buffer space as needed.
func (w *Writer) appendLocked(rec []byte) (Pos, error) {
	n := frameHeaderSize + len(rec)
	for {
		if err := w.usableLocked(); err != nil {
			return Pos{}, err
		}
		need := n
		if w.mu.mark {
			need += syncMarkFrameSize
		}
		if w.mu.off > segmentHeaderSize && w.mu.off+int64(need) > w.segSize {
			w.rotateLocked()
			continue
		}
		if len(w.mu.buf)+need <= cap(w.mu.buf) {
			break
		}
		if len(w.mu.buf) > 0 {
			w.sealLocked()
		}
		if !w.takeBufferLocked(need) {
			w.mu.cond.Wait()
		}
	}
	if w.mu.mark {
		w.appendSyncMarkLocked()
	}
	pos := Pos{Segment: w.mu.seg, Offset: w.mu.off}
	b := w.mu.buf
	l := len(b)
	b = b[:l+n]
	putFrame(b[l:], frameTypeRecord, rec)
	w.mu.buf = b
	w.mu.off += int64(n)
	w.mu.appended += int64(n)
	return pos, nil
}

// takeBufferLocked makes w.mu.buf an empty buffer with room for need bytes
// and reports true, or reports false if the caller must wait for the flusher.
func (w *Writer) takeBufferLocked(need int) bool {
	if need > w.bufSize {
		// A frame larger than the buffer gets a buffer of its own; bound the
		// memory held by such frames.
		if w.mu.sealedBytes > 0 && w.mu.sealedBytes+int64(need) > w.maxSealed {
			return false
		}
		w.mu.buf = make([]byte, 0, need)
		return true
	}
	if k := len(w.mu.free); k > 0 {
		w.mu.buf = w.mu.free[k-1]
		w.mu.free[k-1] = nil
		w.mu.free = w.mu.free[:k-1]
		return true
	}
	if w.mu.nbufs < pooledBuffers {
		w.mu.nbufs++
		w.mu.buf = make([]byte, 0, w.bufSize)
		return true
	}
	return false
}

// appendSyncMarkLocked frames the due sync mark; the caller made room.
func (w *Writer) appendSyncMarkLocked() {
	b := w.mu.buf
	l := len(b)
	b = b[:l+syncMarkFrameSize]
	putSyncMark(b[l:], w.mu.seg, w.mu.markOff)
	w.mu.buf = b
	w.mu.off += syncMarkFrameSize
	w.mu.appended += syncMarkFrameSize
	w.mu.mark = false
}

// sealLocked hands the current buffer to the flusher.
func (w *Writer) sealLocked() {
	if len(w.mu.buf) == 0 {
		return
	}
	w.mu.sealed = append(w.mu.sealed, chunk{data: w.mu.buf, end: w.mu.appended})
	w.mu.sealedBytes += int64(len(w.mu.buf))
	w.mu.buf = nil
	w.kickFlusher()
}

// rotateLocked seals the current buffer and queues the start of the next
// segment; frames appended from now on go to it.
func (w *Writer) rotateLocked() {
	w.sealLocked()
	next := w.mu.seg + 1
	w.mu.appended += segmentHeaderSize
	w.mu.sealed = append(w.mu.sealed, chunk{newSeg: next, end: w.mu.appended})
	w.mu.seg = next
	w.mu.off = segmentHeaderSize
	w.mu.mark = false
	w.kickFlusher()
}

func (w *Writer) kickFlusher() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// waitDurableLocked waits until every logical byte before target is durable.
// A record made durable before a failure is reported durable.
func (w *Writer) waitDurableLocked(target int64) error {
	if w.mu.durable >= target {
		return nil
	}
	if w.mu.syncWant < target {
		w.mu.syncWant = target
	}
	w.kickFlusher()
	for w.mu.durable < target {
		if w.mu.err != nil {
			return w.mu.err
		}
		if w.mu.closed && w.flusherDone() {
			return ErrClosed
		}
		w.mu.cond.Wait()
	}
	return nil
}

func (w *Writer) flusherDone() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// Sync makes every record appended before the call durable: it writes the
// buffer and fsyncs. Safe for concurrent use; concurrent calls share fsyncs.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	return w.waitDurableLocked(w.mu.appended)
}

// Rotate finishes the current segment N (write, fsync, close), creates
// segment N+1 (fsyncing it and the directory) and returns N+1. Every record
// appended after Rotate returns lands in a segment >= N+1.
func (w *Writer) Rotate() (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return 0, err
	}
	w.rotateLocked()
	next := w.mu.seg
	if err := w.waitDurableLocked(w.mu.appended); err != nil {
		return 0, err
	}
	return next, nil
}

// RotateFunc is Rotate that calls fn(next) under the Writer's lock at the
// moment of the switch: every record framed before fn runs is in a segment
// < next, every record framed after it in a segment >= next. It returns
// once the finished segment is durable.
func (w *Writer) RotateFunc(fn func(next uint64)) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return 0, err
	}
	w.rotateLocked()
	next := w.mu.seg
	fn(next)
	if err := w.waitDurableLocked(w.mu.appended); err != nil {
		return 0, err
	}
	return next, nil
}

// RemoveBefore deletes every segment numbered below seg and fsyncs the
// directory. Call it once a checkpoint has made their records durable
// elsewhere. seg may not exceed the segment being written.
func (w *Writer) RemoveBefore(seg uint64) error {
	w.mu.Lock()
	if err := w.usableLocked(); err != nil {
		w.mu.Unlock()
		return err
	}
	if seg > w.mu.seg {
		cur := w.mu.seg
		w.mu.Unlock()
		return fmt.Errorf("wal: RemoveBefore(%d): segment %d is still being written", seg, cur)
	}
	// A segment below seg may still be open in the flusher, waiting for a
	// queued rotation: let it finish first.
	for w.mu.fileSeg < seg {
		if err := w.usableLocked(); err != nil {
			w.mu.Unlock()
			return err
		}
		w.kickFlusher()
		w.mu.cond.Wait()
	}
	w.mu.Unlock()

	segs, err := Segments(w.fs, w.dir)
	if err != nil {
		return err
	}
	removed := false
	for _, s := range segs {
		if s >= seg {
			break
		}
		name := w.fs.PathJoin(w.dir, segmentName(s))
		if err := w.fs.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("wal: remove segment %s: %w", name, err)
		}
		removed = true
	}
	if !removed {
		return nil
	}
	if err := syncDir(w.fs, w.dir); err != nil {
		// Any failed fsync is fatal for the writer (see package doc).
		w.mu.Lock()
		if w.mu.err == nil {
			w.mu.err = &failedError{err}
			w.mu.cond.Broadcast()
		}
		err = w.mu.err
		w.mu.Unlock()
		return err
	}
	return nil
}

// Size returns the bytes of the segments present at Open plus every byte
// framed since (segment headers, frames, sync marks), whether written yet or
// not. It is cheap: meant for checkpoint triggers.
func (w *Writer) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.baseSize + w.mu.appended
}

// Written returns the position after the last frame handed to the OS
// (written with write(2), not necessarily fsynced). Every byte before it,
// in its segment and in the segments before, belongs to a complete frame,
// readable through another file handle (see Reader). It never moves back.
func (w *Writer) Written() Pos {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.writtenPos
}

// WrittenChan returns Written and a channel that is closed once Written
// moves past it, or once the Writer's background goroutine has stopped
// (after Close; the channel is then already closed). In SyncInterval mode frames are
// handed to the OS every SyncEvery (or when a buffer fills), so Written
// moves in steps.
func (w *Writer) WrittenChan() (Pos, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.writtenCh == nil {
		return w.mu.writtenPos, closedChan
	}
	return w.mu.writtenPos, w.mu.writtenCh
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Err returns the sticky failure of the Writer, or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.err
}

// Close makes every appended record durable, closes the segment, stops the
// background goroutine and releases the directory lock. It returns the
// sticky failure if the Writer failed. Every later call returns ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.mu.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.mu.closed = true
	w.sealLocked()
	w.mu.cond.Broadcast() // appenders waiting for buffer space give up
	w.mu.Unlock()
	w.kickFlusher()
	<-w.done

	w.mu.Lock()
	err := w.mu.err
	w.mu.Unlock()
	if lerr := w.lock.Close(); lerr != nil && err == nil {
		err = fmt.Errorf("wal: release lock: %w", lerr)
	}
	return err
}

// run is the flusher goroutine: the only one that touches the open segment
// file after Open.
func (w *Writer) run() {
	defer close(w.done)
	defer func() {
		w.mu.Lock()
		close(w.mu.writtenCh)
		w.mu.writtenCh = nil
		w.mu.Unlock()
	}()
	var tick <-chan time.Time
	if w.mode == SyncInterval {
		t := time.NewTicker(w.every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-w.kick:
		case <-tick:
			w.mu.Lock()
			if w.mu.syncWant < w.mu.appended {
				w.mu.syncWant = w.mu.appended
			}
			w.mu.Unlock()
		}
		if w.flush() {
			return
		}
	}
}

// flush writes the sealed chunks and, if someone waits for durability (or
// the Writer is closing), seals the current buffer too and fsyncs. It
// reports whether the flusher must exit.
func (w *Writer) flush() (exit bool) {
	w.mu.Lock()
	closing := w.mu.closed
	if w.mu.err != nil {
		// Broken: no more I/O, in particular no fsync retry (fsyncgate).
		w.recycleLocked(w.mu.sealed)
		w.mu.sealed = w.mu.sealed[:0]
		w.mu.sealedBytes = 0
		w.mu.cond.Broadcast()
		w.mu.Unlock()
		if closing {
			w.closeFile()
		}
		return closing
	}
	wantSync := closing || w.mu.syncWant > w.mu.durable
	if wantSync {
		w.sealLocked()
	}
	batch := w.mu.sealed
	w.mu.sealed = w.f.spare[:0]
	w.mu.Unlock()

	var err error
	var wrote int64
	wpos := Pos{Segment: w.f.seg, Offset: w.f.off}
	for i := range batch {
		c := &batch[i]
		if c.newSeg != 0 {
			if err = w.finishSegment(); err != nil {
				break
			}
			if err = w.startSegment(c.newSeg); err != nil {
				break
			}
			if invariants && w.f.seqWritten+segmentHeaderSize != c.end {
				panic(fmt.Sprintf("wal: rotation chunk ends at %d, flusher at %d", c.end, w.f.seqWritten))
			}
			w.f.seqWritten = c.end
			w.f.seqSynced = c.end
			wpos = Pos{Segment: w.f.seg, Offset: w.f.off}
		}
		if len(c.data) > 0 {
			if err = w.writeFile(c.data); err != nil {
				break
			}
			wrote += int64(len(c.data))
			if invariants && w.f.seqWritten+int64(len(c.data)) != c.end {
				panic(fmt.Sprintf("wal: chunk ends at %d, flusher at %d+%d", c.end, w.f.seqWritten, len(c.data)))
			}
			w.f.seqWritten = c.end
			wpos = Pos{Segment: w.f.seg, Offset: w.f.off}
		}
	}
	synced := false
	if err == nil && wantSync && w.f.seqSynced < w.f.seqWritten {
		if err = w.syncFile(); err == nil {
			synced = true
		}
	}
	if err == nil && closing {
		err = w.writeCloseMark()
	}

	w.mu.Lock()
	w.recycleLocked(batch)
	w.f.spare = batch[:0]
	w.mu.sealedBytes -= wrote
	w.mu.written = w.f.seqWritten
	w.mu.durable = w.f.seqSynced
	w.mu.fileSeg = w.f.seg
	if wpos != w.mu.writtenPos && wpos.Segment != 0 {
		w.mu.writtenPos = wpos
		close(w.mu.writtenCh)
		w.mu.writtenCh = make(chan struct{})
	}
	if err != nil {
		w.mu.err = &failedError{err}
		w.mu.sealedBytes = 0
		w.recycleLocked(w.mu.sealed)
		w.mu.sealed = w.mu.sealed[:0]
	} else if synced && w.mu.seg == w.f.seg {
		// Frames appended from now on land after the synced bytes of this
		// segment: the first of them says so.
		w.mu.mark = true
		w.mu.markOff = w.f.synced
	}
	w.mu.cond.Broadcast()
	w.mu.Unlock()
	if closing {
		w.closeFile()
	}
	return closing
}

// recycleLocked returns pooled buffers of written chunks to the free list.
func (w *Writer) recycleLocked(cs []chunk) {
	for i := range cs {
		if d := cs[i].data; cap(d) == w.bufSize {
			w.mu.free = append(w.mu.free, d[:0])
		}
		cs[i] = chunk{}
	}
}

func (w *Writer) segPath(seg uint64) string { return w.fs.PathJoin(w.dir, segmentName(seg)) }

// startSegment creates segment seg with its header, fsyncs it and the
// directory, and makes it the open file. Flusher (or Open) only.
func (w *Writer) startSegment(seg uint64) error {
	name := w.segPath(seg)
	f, err := w.fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create segment %s: %w", name, err)
	}
	w.f.file = f
	w.f.seg = seg
	w.f.off = 0
	w.f.synced = 0
	var h [segmentHeaderSize]byte
	if err := w.writeFile(appendSegmentHeader(h[:0], seg)); err != nil {
		return err
	}
	if err := w.syncFile(); err != nil {
		return err
	}
	if err := syncDir(w.fs, w.dir); err != nil {
		return err
	}
	return nil
}

// finishSegment fsyncs and closes the open segment. Flusher only.
func (w *Writer) finishSegment() error {
	if w.f.synced < w.f.off {
		if err := w.syncFile(); err != nil {
			return err
		}
	}
	f := w.f.file
	w.f.file = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("close segment %s: %w", w.segPath(w.f.seg), err)
	}
	return nil
}

func (w *Writer) writeFile(p []byte) error {
	n, err := w.f.file.Write(p)
	w.f.off += int64(n)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write segment %s at offset %d: %w", w.segPath(w.f.seg), w.f.off, err)
	}
	return nil
}

func (w *Writer) syncFile() error {
	if err := w.f.file.SyncData(); err != nil {
		return fmt.Errorf("sync segment %s: %w", w.segPath(w.f.seg), err)
	}
	w.f.synced = w.f.off
	w.f.seqSynced = w.f.seqWritten
	return nil
}

// writeCloseMark ends a cleanly closed segment with a sync mark covering
// all of it, and fsyncs it, so that Replay reports damage anywhere in it as
// corruption rather than as a torn tail. Flusher only, after the final sync.
func (w *Writer) writeCloseMark() error {
	if w.f.file == nil {
		return nil
	}
	var m [syncMarkFrameSize]byte
	putSyncMark(m[:], w.f.seg, w.f.synced)
	if err := w.writeFile(m[:]); err != nil {
		return err
	}
	w.f.seqWritten += syncMarkFrameSize
	return w.syncFile()
}

// closeFile closes the open segment, if any, ignoring errors: it runs after
// the final fsync, or after a failure that is already reported.
func (w *Writer) closeFile() {
	if w.f.file != nil {
		_ = w.f.file.Close()
		w.f.file = nil
	}
}
