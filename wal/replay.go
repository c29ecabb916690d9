package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrCorrupt is matched (errors.Is) by every *CorruptionError.
var ErrCorrupt = errors.New("wal: corrupt")

// CorruptionError reports damage to the log that is not a torn tail: a bad
// frame in a segment that is not the last one, a bad frame in the last
// segment that a later sync mark proves had been fsynced, or a missing
// segment. errors.As finds it; errors.Is(err, ErrCorrupt) is true.
type CorruptionError struct {
	File   string // path of the damaged (or missing) segment
	Offset int64  // offset of the first bad frame in File
	Err    error  // what is wrong there
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: corrupt segment %s at offset %d: %v", e.File, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// Is reports whether target is ErrCorrupt.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

// ReplayOptions configure Replay.
type ReplayOptions struct {
	FS vfs.FS // nil = vfs.Default
	// Repair cuts the log at a corruption instead of failing: the damaged
	// segment is truncated before its first bad frame and every later
	// segment is removed.
	Repair bool
}

// ReplayStats describe what Replay read and repaired.
type ReplayStats struct {
	Segments int   // segment files read
	Records  int   // records passed to fn
	Bytes    int64 // total length of the records passed to fn
	// TornTail is set when the last segment ended in a torn write and was
	// truncated by TruncatedBytes to the end of its last good frame.
	TornTail       bool
	TruncatedBytes int64
	// RepairedCorruption is set when ReplayOptions.Repair cut the log at a
	// corruption, dropping DroppedBytes of segment data (the damaged
	// segment's tail and every later segment).
	RepairedCorruption bool
	DroppedBytes       int64
}

// Segments returns the numbers of the segment files in dir, sorted. A
// missing dir has none.
func Segments(fs vfs.FS, dir string) ([]uint64, error) {
	if fs == nil {
		fs = vfs.Default
	}
	names, err := fs.List(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	var segs []uint64
	for _, n := range names {
		if s, ok := parseSegmentName(n); ok {
			segs = append(segs, s)
		}
	}
	slices.Sort(segs)
	return segs, nil
}

// Replay reads every segment numbered >= from in dir, in order, and calls fn
// for each record with its position. rec is valid only during the call. If
// fn returns an error, Replay stops and returns it.
//
// The end of the log:
//   - a clean end is fine;
//   - a torn tail in the last segment (a frame cut short, or a bad frame
//     that no later sync mark proves fsynced, with whatever follows it) is
//     cut off: the segment is truncated to the end of its last good frame
//     (through the FS, fsynced), ReplayStats.TornTail is set, and Replay
//     succeeds;
//   - any other bad frame, or a missing segment, is a *CorruptionError and
//     nothing is changed; with opts.Repair the log is cut there instead
//     (that segment truncated, every later segment removed) and
//     ReplayStats.RepairedCorruption is set.
//
// Records before the damage have been passed to fn in every case. A segment
// in a newer format is refused with ErrUnsupportedVersion. Replay locks dir
// (it fails while a Writer is open on it) and removes leftover temporary
// files of an interrupted truncation.
func Replay(dir string, from uint64, opts ReplayOptions, fn func(rec []byte, pos Pos) error) (ReplayStats, error) {
	var stats ReplayStats
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	segs, err := Segments(fs, dir)
	if err != nil || len(segs) == 0 {
		return stats, err
	}
	lock, err := fs.Lock(fs.PathJoin(dir, lockName))
	if err != nil {
		return stats, fmt.Errorf("wal: lock %s (is a Writer open on it?): %w", dir, err)
	}
	defer func() { _ = lock.Close() }()
	if err := removeTemps(fs, dir); err != nil {
		return stats, err
	}
	last := segs[len(segs)-1]
	first, _ := slices.BinarySearch(segs, from)
	rd := &replayer{fs: fs, dir: dir, repair: opts.Repair, fn: fn, stats: &stats}
	for k := first; k < len(segs); k++ {
		seg := segs[k]
		if k > first && seg != segs[k-1]+1 {
			missing := segs[k-1] + 1
			cerr := &CorruptionError{
				File: fs.PathJoin(dir, segmentName(missing)),
				Err:  fmt.Errorf("segment missing between %d and %d", segs[k-1], seg),
			}
			if !opts.Repair {
				return stats, cerr
			}
			return stats, rd.cut(segs[k-1], 0, 0, nil)
		}
		stop, err := rd.segment(seg, seg == last)
		if err != nil || stop {
			return stats, err
		}
	}
	return stats, nil
}

// replayer holds the state of one Replay call.
type replayer struct {
	fs     vfs.FS
	dir    string
	repair bool
	fn     func([]byte, Pos) error
	stats  *ReplayStats
	rbuf   []byte // read window, reused across segments
}

func (rd *replayer) path(seg uint64) string { return rd.fs.PathJoin(rd.dir, segmentName(seg)) }

// segment replays one segment. It reports stop once the log has been cut.
func (rd *replayer) segment(seg uint64, isLast bool) (stop bool, err error) {
	path := rd.path(seg)
	f, err := rd.fs.Open(path)
	if err != nil {
		return true, fmt.Errorf("wal: open segment %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return true, fmt.Errorf("wal: stat segment %s: %w", path, err)
	}
	r := &segmentReader{f: f, path: path, size: st.Size(), buf: rd.rbuf[:0]}
	defer func() { rd.rbuf = r.buf }()
	rd.stats.Segments++
	if r.size == 0 {
		// Created, then a crash before its header was durable.
		return false, nil
	}
	bad, damage, err := rd.frames(r, seg)
	if err != nil || damage == nil {
		return err != nil, err
	}
	if isLast {
		proven, err := r.syncedPast(seg, bad)
		if err != nil {
			return true, err
		}
		if !proven {
			if err := truncateSegment(rd.fs, rd.dir, seg, r, bad); err != nil {
				return true, err
			}
			rd.stats.TornTail = true
			rd.stats.TruncatedBytes = r.size - bad
			return true, nil
		}
		damage = fmt.Errorf("%w (a later sync mark shows it had been fsynced)", damage)
	}
	if !rd.repair {
		return true, &CorruptionError{File: path, Offset: bad, Err: damage}
	}
	return true, rd.cut(seg, bad, r.size, r)
}

// frames passes the records of segment r to fn. It returns the offset of
// the first bad frame and what is wrong with it, or damage == nil at a clean
// end; err is an I/O error, an unsupported version or fn's error.
func (rd *replayer) frames(r *segmentReader, seg uint64) (bad int64, damage, err error) {
	h, err := r.at(0, int(min(r.size, segmentHeaderSize)))
	if err != nil {
		return 0, nil, err
	}
	damage, fatal := checkSegmentHeader(h, seg)
	if fatal != nil {
		return 0, nil, fmt.Errorf("wal: segment %s: %w", r.path, fatal)
	}
	if damage != nil {
		return 0, damage, nil
	}
	off := int64(segmentHeaderSize)
	for off < r.size {
		typ, payload, damage, err := r.frame(off)
		if err != nil {
			return 0, nil, err
		}
		if damage != nil {
			return off, damage, nil
		}
		switch typ {
		case frameTypeRecord:
			if err := rd.fn(payload, Pos{Segment: seg, Offset: off}); err != nil {
				return 0, nil, err
			}
			rd.stats.Records++
			rd.stats.Bytes += int64(len(payload))
		case frameTypeSyncMark:
			if _, ok := parseSyncMark(payload, seg, off); !ok {
				return off, errors.New("invalid sync mark"), nil
			}
		}
		off += int64(frameHeaderSize + len(payload))
	}
	return 0, nil, nil
}

// cut repairs a corruption: it removes every segment after seg, then
// truncates segment seg to keep bytes (r is that segment open for reading,
// size its size; r == nil keeps it whole). Later segments go first, highest
// first: a crash in between leaves the damage in place for the next Replay
// to find, never a hole in the log.
func (rd *replayer) cut(seg uint64, keep, size int64, r *segmentReader) error {
	segs, err := Segments(rd.fs, rd.dir)
	if err != nil {
		return err
	}
	removed := false
	for i := len(segs) - 1; i >= 0 && segs[i] > seg; i-- {
		p := rd.path(segs[i])
		st, err := rd.fs.Stat(p)
		if err != nil {
			return fmt.Errorf("wal: repair: stat %s: %w", p, err)
		}
		if err := rd.fs.Remove(p); err != nil {
			return fmt.Errorf("wal: repair: remove %s: %w", p, err)
		}
		rd.stats.DroppedBytes += st.Size()
		removed = true
	}
	if removed {
		if err := syncDir(rd.fs, rd.dir); err != nil {
			return fmt.Errorf("wal: repair: %w", err)
		}
	}
	if r != nil {
		if err := truncateSegment(rd.fs, rd.dir, seg, r, keep); err != nil {
			return err
		}
		rd.stats.DroppedBytes += size - keep
	}
	rd.stats.RepairedCorruption = true
	return nil
}

// removeTemps removes the temporary files of an interrupted truncation.
func removeTemps(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("wal: list %s: %w", dir, err)
	}
	for _, n := range names {
		base, ok := strings.CutSuffix(n, tmpExt)
		if _, seg := parseSegmentName(base); !ok || !seg {
			continue
		}
		if err := fs.Remove(fs.PathJoin(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("wal: remove leftover %s: %w", n, err)
		}
	}
	return nil
}

// truncateSegment cuts segment seg to its first keep bytes. vfs.File has no
// Truncate, so the kept prefix is copied to a temporary file, fsynced and
// renamed over the segment, and the directory is fsynced: a crash leaves
// either the old or the new segment, and perhaps a temporary file that the
// next Replay removes.
func truncateSegment(fs vfs.FS, dir string, seg uint64, r *segmentReader, keep int64) error {
	path := fs.PathJoin(dir, segmentName(seg))
	tmp := path + tmpExt
	out, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("wal: truncate %s: create %s: %w", path, tmp, err)
	}
	fail := func(err error) error {
		_ = out.Close()
		_ = fs.Remove(tmp)
		return fmt.Errorf("wal: truncate %s to %d bytes: %w", path, keep, err)
	}
	buf := make([]byte, min(keep, 1<<20))
	for off := int64(0); off < keep; {
		n := int(min(int64(len(buf)), keep-off))
		if k, err := r.f.ReadAt(buf[:n], off); k < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fail(err)
		}
		if _, err := out.Write(buf[:n]); err != nil {
			return fail(err)
		}
		off += int64(n)
	}
	if err := out.Sync(); err != nil {
		return fail(err)
	}
	if err := out.Close(); err != nil {
		_ = fs.Remove(tmp)
		return fmt.Errorf("wal: truncate %s: close %s: %w", path, tmp, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		_ = fs.Remove(tmp)
		return fmt.Errorf("wal: truncate %s: rename %s: %w", path, tmp, err)
	}
	if err := syncDir(fs, dir); err != nil {
		return fmt.Errorf("wal: truncate %s: %w", path, err)
	}
	return nil
}

// segmentReader reads frames of one segment through a window buffer. It
// never allocates more than the larger of readAhead and one frame, and a
// frame's length is checked against MaxRecordSize and the file size first.
type segmentReader struct {
	f    vfs.File
	path string
	size int64  // bytes that may be read
	buf  []byte // file bytes [bufOff, bufOff+len(buf))
	// fileSize is the file's size as last seen (Reader only: the segment
	// being written grows).
	fileSize int64
	bufOff   int64
}

const readAhead = 256 << 10

// at returns file bytes [off, off+n); the caller checked off+n <= size. The
// slice is valid until the next call.
func (r *segmentReader) at(off int64, n int) ([]byte, error) {
	if off >= r.bufOff && off+int64(n) <= r.bufOff+int64(len(r.buf)) {
		s := off - r.bufOff
		return r.buf[s : s+int64(n)], nil
	}
	want := max(n, readAhead)
	if rem := r.size - off; int64(want) > rem {
		want = int(rem)
	}
	if cap(r.buf) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	k, err := r.f.ReadAt(r.buf, off)
	if k < want {
		r.buf = r.buf[:0]
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("wal: read segment %s at offset %d: %w", r.path, off, err)
	}
	r.bufOff = off
	return r.buf[:n], nil
}

// frame decodes the frame at off: its type and payload, or damage saying why
// it is bad; err is an I/O error.
func (r *segmentReader) frame(off int64) (typ byte, payload []byte, damage, err error) {
	rem := r.size - off
	if rem < frameHeaderSize {
		return 0, nil, fmt.Errorf("frame header cut short: %d of %d bytes", rem, frameHeaderSize), nil
	}
	h, err := r.at(off, frameHeaderSize)
	if err != nil {
		return 0, nil, nil, err
	}
	length := binary.LittleEndian.Uint32(h[4:8])
	typ = h[8]
	if length > MaxRecordSize {
		return 0, nil, fmt.Errorf("frame length %d exceeds the maximum %d", length, MaxRecordSize), nil
	}
	if int64(length) > rem-frameHeaderSize {
		return 0, nil, fmt.Errorf("frame cut short: %d payload bytes, %d left in the file", length, rem-frameHeaderSize), nil
	}
	b, err := r.at(off, frameHeaderSize+int(length))
	if err != nil {
		return 0, nil, nil, err
	}
	if got, want := binary.LittleEndian.Uint32(b[0:4]), checksum(b[4:]); got != want {
		return 0, nil, fmt.Errorf("frame checksum mismatch: stored %#08x, computed %#08x", got, want), nil
	}
	if typ != frameTypeRecord && typ != frameTypeSyncMark {
		return 0, nil, fmt.Errorf("unknown frame type %d", typ), nil
	}
	return typ, b[frameHeaderSize:], nil, nil
}

// syncedPast reports whether a valid sync mark after offset bad promises
// that the segment had been fsynced beyond bad: then the bad frame at bad is
// corruption of durable data, not a torn write. Marks have a fixed size, so
// the scan costs O(size - bad) whatever the bytes are.
func (r *segmentReader) syncedPast(seg uint64, bad int64) (bool, error) {
	for p := bad + 1; p+syncMarkFrameSize <= r.size; {
		n := min(int64(readAhead), r.size-p)
		win, err := r.at(p, int(n))
		if err != nil {
			return false, err
		}
		for i := 0; i+syncMarkFrameSize <= len(win); i++ {
			m := win[i : i+syncMarkFrameSize]
			if m[8] != frameTypeSyncMark || binary.LittleEndian.Uint32(m[4:8]) != syncMarkPayloadSize {
				continue
			}
			if binary.LittleEndian.Uint32(m[0:4]) != checksum(m[4:]) {
				continue
			}
			if s, ok := parseSyncMark(m[frameHeaderSize:], seg, p+int64(i)); ok && s > bad {
				return true, nil
			}
		}
		p += n - syncMarkFrameSize + 1
	}
	return false, nil
}
