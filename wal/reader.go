package wal

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrSegmentMissing is matched (errors.Is) by the error of a Reader whose
// next segment is not in the directory: it was removed before the Reader
// got to it (a segment removed behind the Reader's position is fine).
var ErrSegmentMissing = errors.New("wal: segment missing")

// Reader reads the records of a log from a position on, across segment
// files, while a Writer may be appending to the same directory. It never
// reads at or past the limit given to Next, which the caller takes from
// Writer.Written: below it every byte is part of a complete frame. Sync
// marks are checked and skipped; a damaged frame below the limit is a
// *CorruptionError (never a torn tail: the Writer has not finished what is
// past the limit, and the Reader does not look there).
//
// A Reader does not lock the directory and takes no lock of the Writer. It
// is not safe for concurrent use.
type Reader struct {
	fs  vfs.FS
	dir string
	pos Pos // next frame to read; Offset < segmentHeaderSize = segment start

	f  vfs.File // segment pos.Segment, open; nil before it is opened
	sr segmentReader
	// finished is set once the open segment is known to be complete (the
	// limit is in a later segment) and its final size was taken.
	finished bool
	// skipped counts segments the Reader left at a position past their end
	// (see Next).
	skipped int
}

// NewReader returns a Reader of the log in dir whose first record is the
// one at from (from.Offset below the segment header size means the start
// of segment from.Segment). fs nil means vfs.Default. No file is opened
// before the first Next.
func NewReader(fs vfs.FS, dir string, from Pos) *Reader {
	if fs == nil {
		fs = vfs.Default
	}
	return &Reader{fs: fs, dir: dir, pos: from}
}

// Pos returns where the next record is read: the position after the last
// record Next returned (or the starting position). Sync marks after that
// record may lie before it.
func (r *Reader) Pos() Pos { return r.pos }

// PastEnd reports how many times the Reader found its position past the end
// of a finished segment and went on with the next one. That happens only
// after a power loss took bytes the Writer had handed to the OS without an
// fsync (the position was taken from Written before the loss, see
// DESIGN.md §17).
func (r *Reader) PastEnd() int { return r.skipped }

// before reports whether p is strictly before q.
func before(p, q Pos) bool {
	return p.Segment < q.Segment || (p.Segment == q.Segment && p.Offset < q.Offset)
}

// Next returns the next record before limit and its position. rec is valid
// until the next call. At limit it returns io.EOF (call again once limit
// moved). Segments before limit.Segment are read to their end, which the
// Writer finished before starting later ones; limit.Segment only up to
// limit.Offset. Errors: a *CorruptionError for a damaged frame or segment
// header below the limit, ErrSegmentMissing (wrapped) when the segment to
// read next is gone, ErrUnsupportedVersion, I/O errors. After an error the
// Reader stays at the record that failed.
func (r *Reader) Next(limit Pos) (rec []byte, at Pos, err error) {
	for {
		if !before(r.pos, limit) {
			return nil, Pos{}, io.EOF
		}
		if r.f == nil {
			empty, err := r.open(limit)
			if err != nil {
				return nil, Pos{}, err
			}
			if empty {
				r.next()
				continue
			}
		}
		var end int64
		if r.pos.Segment == limit.Segment {
			end = limit.Offset
			if end > r.sr.fileSize {
				if err := r.stat(); err != nil {
					return nil, Pos{}, err
				}
				if end > r.sr.fileSize {
					return nil, Pos{}, &CorruptionError{File: r.sr.path, Offset: r.sr.fileSize,
						Err: fmt.Errorf("segment is %d bytes, shorter than the written position %d", r.sr.fileSize, end)}
				}
			}
		} else {
			// A segment before the limit's is finished: its size is final.
			if !r.finished {
				if err := r.stat(); err != nil {
					return nil, Pos{}, err
				}
				r.finished = true
			}
			end = r.sr.fileSize
		}
		r.sr.size = end
		if r.pos.Offset >= end {
			if r.pos.Segment == limit.Segment {
				return nil, Pos{}, io.EOF
			}
			if r.pos.Offset > end {
				r.skipped++
			}
			r.next()
			continue
		}
		off := r.pos.Offset
		typ, payload, damage, err := r.sr.frame(off)
		if err != nil {
			return nil, Pos{}, err
		}
		if damage != nil {
			return nil, Pos{}, &CorruptionError{File: r.sr.path, Offset: off, Err: damage}
		}
		if typ == frameTypeSyncMark {
			if _, ok := parseSyncMark(payload, r.pos.Segment, off); !ok {
				return nil, Pos{}, &CorruptionError{File: r.sr.path, Offset: off, Err: errors.New("invalid sync mark")}
			}
			r.pos.Offset = off + int64(frameHeaderSize+len(payload))
			continue
		}
		r.pos.Offset = off + int64(frameHeaderSize+len(payload))
		return payload, Pos{Segment: r.pos.Segment, Offset: off}, nil
	}
}

// stat refreshes the size of the open segment.
func (r *Reader) stat() error {
	st, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("wal: stat segment %s: %w", r.sr.path, err)
	}
	r.sr.fileSize = st.Size()
	return nil
}

// open opens segment r.pos.Segment and checks its header. It reports empty
// for a 0-byte segment (a crash right after its creation) that is not the
// limit's.
func (r *Reader) open(limit Pos) (empty bool, err error) {
	seg := r.pos.Segment
	path := r.fs.PathJoin(r.dir, segmentName(seg))
	f, err := r.fs.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("%w: %s (removed before the reader at %s got to it)", ErrSegmentMissing, path, r.pos)
		}
		return false, fmt.Errorf("wal: open segment %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return false, fmt.Errorf("wal: stat segment %s: %w", path, err)
	}
	size := st.Size()
	if size == 0 && seg < limit.Segment {
		_ = f.Close()
		return true, nil
	}
	r.f = f
	r.finished = false
	r.sr = segmentReader{f: f, path: path, size: size, fileSize: size, buf: r.sr.buf[:0]}
	hn := int(min(size, segmentHeaderSize))
	h, err := r.sr.at(0, hn)
	if err != nil {
		r.closeFile()
		return false, err
	}
	damage, fatal := checkSegmentHeader(h, seg)
	if fatal != nil {
		r.closeFile()
		return false, fmt.Errorf("wal: segment %s: %w", path, fatal)
	}
	if damage != nil {
		r.closeFile()
		return false, &CorruptionError{File: path, Offset: 0, Err: damage}
	}
	if r.pos.Offset < segmentHeaderSize {
		r.pos.Offset = segmentHeaderSize
	}
	return false, nil
}

// next moves to the start of the following segment.
func (r *Reader) next() {
	r.closeFile()
	r.pos = Pos{Segment: r.pos.Segment + 1}
}

func (r *Reader) closeFile() {
	if r.f != nil {
		_ = r.f.Close()
		r.f = nil
	}
}

// Close closes the open segment file, if any. The Reader may be used again
// (it reopens its segment).
func (r *Reader) Close() error {
	r.closeFile()
	return nil
}
