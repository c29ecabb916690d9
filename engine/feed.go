package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/wal"
)

// A feed is a named, durable cursor over the engine's log: it hands out
// the points of the samples records in log order, and the log segments it
// still needs are kept until its committed cursor passes them (or it falls
// more than Options.MaxFeedLag behind). See DESIGN.md §17.

// FeedPos is a position in a feed: the log position of a samples record
// and how many of its points come before the position. Positions compare
// in log order (Less).
type FeedPos struct {
	Segment uint64
	Offset  int64
	Index   uint32
}

// Less reports whether p comes before q in log order.
func (p FeedPos) Less(q FeedPos) bool {
	if p.Segment != q.Segment {
		return p.Segment < q.Segment
	}
	if p.Offset != q.Offset {
		return p.Offset < q.Offset
	}
	return p.Index < q.Index
}

func (p FeedPos) String() string { return fmt.Sprintf("%d:%d+%d", p.Segment, p.Offset, p.Index) }

// FeedPoint is one point handed out by a feed.
type FeedPoint struct {
	Series uint64  // series id: labels with DB.SeriesLabels
	T      int64   // Unix ns
	V      float64 // bit-exact as written
	// Pos is the point's own position: a cursor committed at Pos delivers
	// this point again; everything before Pos was handed out before it.
	Pos FeedPos
}

// FeedStats describe a feed.
type FeedStats struct {
	Committed FeedPos // durable cursor
	Read      FeedPos // where the next Next reads
	Delivered int64   // points handed out by Next since the feed was opened
	// Skipped counts the points the feed lost since the DB was opened
	// because it fell more than Options.MaxFeedLag behind: the checkpoint
	// moved it forward to the oldest kept segment. SkippedBytes is the log
	// bytes it jumped over.
	Skipped      int64
	SkippedBytes int64
	// PastEnd counts positions found past the end of a log segment (bytes
	// lost to a power loss after they were handed out, or a log cut by
	// RepairWAL): the feed went on with the next segment.
	PastEnd int64
}

// Errors of feeds.
var (
	// ErrFeedOpen is returned by DB.Feed for a feed that is already open.
	ErrFeedOpen = errors.New("engine: feed is already open")
	// ErrFeedClosed is returned by the calls on a closed Feed.
	ErrFeedClosed = errors.New("engine: feed closed")
)

// feedKeyPrefix is the meta key prefix of feed cursors: 0x01 "feed/" name.
// Part of the format: do not change.
var feedKeyPrefix = []byte{prefixMeta, 'f', 'e', 'e', 'd', '/'}

// feedValueVersion is the version byte of a feed cursor value. Part of the
// format: do not change.
const feedValueVersion = 1

// maxFeedState bounds the state a consumer stores with its cursor.
const maxFeedState = 1 << 20

// feedCursor is a feed's durable record (the value of its meta key):
//
//	version (1 byte, =1) | uvarint segment | uvarint offset | uvarint index |
//	uvarint len(state) | state
type feedCursor struct {
	pos   FeedPos
	state []byte
}

func (c feedCursor) marshal() []byte {
	b := make([]byte, 0, 32+len(c.state))
	b = append(b, feedValueVersion)
	b = binary.AppendUvarint(b, c.pos.Segment)
	b = binary.AppendUvarint(b, uint64(c.pos.Offset))
	b = binary.AppendUvarint(b, uint64(c.pos.Index))
	b = binary.AppendUvarint(b, uint64(len(c.state)))
	return append(b, c.state...)
}

func (c *feedCursor) unmarshal(b []byte) error {
	if len(b) < 1 {
		return errors.New("empty feed cursor")
	}
	if b[0] != feedValueVersion {
		return fmt.Errorf("feed cursor version %d, this build reads version %d", b[0], feedValueVersion)
	}
	b = b[1:]
	var v [4]uint64
	for i := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("truncated feed cursor")
		}
		v[i] = x
		b = b[n:]
	}
	if v[1] > math.MaxInt64 || v[2] > math.MaxUint32 || v[3] != uint64(len(b)) {
		return errors.New("malformed feed cursor")
	}
	c.pos = FeedPos{Segment: v[0], Offset: int64(v[1]), Index: uint32(v[2])}
	c.state = append([]byte(nil), b...)
	return nil
}

func feedKey(name string) []byte { return append(append([]byte(nil), feedKeyPrefix...), name...) }

func validFeedName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("%w: feed name %q: 1 to 128 bytes", ErrInvalid, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%w: feed name %q: only letters, digits, '_', '-' and '.'", ErrInvalid, name)
		}
	}
	return nil
}

// feedEntry is the DB's record of one feed, open or not. Guarded by
// DB.ckptMu.
type feedEntry struct {
	cur  feedCursor
	open *Feed // nil when no Feed is open on it
	// Counters kept across opens of the feed within this DB.
	skipped, skippedBytes int64
}

// loadFeeds reads every feed cursor at Open. first is the first segment of
// this run's log: a cursor at or after it points past everything the log
// kept (a RepairWAL cut), and is moved to its start.
func (db *DB) loadFeeds(first uint64) error {
	db.feeds = make(map[string]*feedEntry)
	upper := append(append([]byte(nil), feedKeyPrefix[:len(feedKeyPrefix)-1]...), '/'+1)
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: feedKeyPrefix, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("engine: load feeds: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		name := string(it.Key()[len(feedKeyPrefix):])
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("engine: load feed %q: %w", name, err)
		}
		e := &feedEntry{}
		if err := e.cur.unmarshal(v); err != nil {
			return fmt.Errorf("engine: %s: feed %q: %w", db.dir, name, err)
		}
		if e.cur.pos.Segment >= first {
			e.cur.pos = FeedPos{Segment: first}
		}
		db.feeds[name] = e
	}
	return it.Error()
}

// Feed opens the feed named name (letters, digits, '_', '-', '.'),
// creating it if it does not exist. A new feed starts at the end of the
// log: it delivers every point written after Feed returns (and perhaps
// some written concurrently); its cursor is durable before Feed returns.
// An existing feed resumes at its committed cursor. One Feed per name may
// be open at a time (ErrFeedOpen).
func (db *DB) Feed(name string) (*Feed, error) {
	if err := validFeedName(name); err != nil {
		return nil, err
	}
	db.readMu.RLock()
	defer db.readMu.RUnlock()
	if db.closed.Load() {
		return nil, ErrClosed
	}
	db.ckptMu.Lock()
	defer db.ckptMu.Unlock()
	e := db.feeds[name]
	if e == nil {
		if err := db.Err(); err != nil {
			return nil, err
		}
		seg, err := db.log.Rotate()
		if err != nil {
			return nil, db.logError("create feed", err)
		}
		e = &feedEntry{cur: feedCursor{pos: FeedPos{Segment: seg}}}
		if err := db.putFeedCursorLocked(name, e.cur); err != nil {
			return nil, err
		}
		db.feeds[name] = e
	} else if e.open != nil {
		return nil, fmt.Errorf("%w: %q", ErrFeedOpen, name)
	}
	f := &Feed{db: db, name: name, entry: e}
	f.mu.pos = e.cur.pos
	f.mu.committed = e.cur.pos
	f.mu.rd = wal.NewReader(db.fs, db.fs.PathJoin(db.dir, walDir), wal.Pos{Segment: e.cur.pos.Segment, Offset: e.cur.pos.Offset})
	f.mu.skipIdx = e.cur.pos.Index
	e.open = f
	return f, nil
}

// FeedState returns the state stored with the committed cursor of the feed
// name (see Feed.Commit), and whether the feed exists.
func (db *DB) FeedState(name string) ([]byte, bool) {
	db.ckptMu.Lock()
	defer db.ckptMu.Unlock()
	e := db.feeds[name]
	if e == nil {
		return nil, false
	}
	return append([]byte(nil), e.cur.state...), true
}

// DropFeed deletes the feed name (which must not be open): its log
// segments are no longer kept for it. Dropping an unknown feed is a no-op.
func (db *DB) DropFeed(name string) error {
	db.readMu.RLock()
	defer db.readMu.RUnlock()
	if db.closed.Load() {
		return ErrClosed
	}
	db.ckptMu.Lock()
	defer db.ckptMu.Unlock()
	e := db.feeds[name]
	if e == nil {
		return nil
	}
	if e.open != nil {
		return fmt.Errorf("%w: %q: close it before dropping it", ErrFeedOpen, name)
	}
	if err := db.pdb.Delete(feedKey(name), pebble.NoSync); err != nil {
		return fmt.Errorf("engine: drop feed %q: %w", name, err)
	}
	if err := db.flushStore(); err != nil {
		return fmt.Errorf("engine: drop feed %q: %w", name, err)
	}
	delete(db.feeds, name)
	return nil
}

// putFeedCursorLocked writes a feed cursor durably. Pebble's WAL is off (the
// engine's log is the durability log), so pebble refuses a pebble.Sync
// commit ("WAL disabled"): a write is durable once pebble has flushed its
// memtable (sstable and MANIFEST fsynced). Caller holds ckptMu.
func (db *DB) putFeedCursorLocked(name string, c feedCursor) error {
	b := db.pdb.NewBatch()
	defer b.Close()
	if err := b.Set(feedKey(name), c.marshal(), nil); err != nil {
		return fmt.Errorf("engine: feed %q: %w", name, err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("engine: feed %q: write cursor: %w", name, err)
	}
	if err := db.flushStore(); err != nil {
		return fmt.Errorf("engine: feed %q: write cursor: %w", name, err)
	}
	return nil
}

// SeriesLabels returns the metric name and labels of series id (as in
// FeedPoint.Series), from memory or the store.
func (db *DB) SeriesLabels(id uint64) (string, []index.Label, error) {
	if db.closed.Load() {
		return "", nil, ErrClosed
	}
	return db.labelsOf(id)
}

// Feed is an open feed: a durable cursor over the points of the log. Next
// and Commit may be called from different goroutines; Next calls are
// serialized.
type Feed struct {
	db    *DB
	name  string
	entry *feedEntry // the DB's record; its fields are guarded by DB.ckptMu

	mu struct {
		sync.Mutex
		closed    bool
		rd        *wal.Reader
		pos       FeedPos // where the next point is read
		committed FeedPos
		skipIdx   uint32 // points of the record at pos to skip (resuming inside a record)
		dec       sampleDecoder
		decAt     wal.Pos // position of the record dec decodes
		delivered int64
		pastEnd   int64
	}
}

// Name returns the feed's name.
func (f *Feed) Name() string { return f.name }

// Next returns the points of the samples records after the feed's read
// position, in log order, at most max of them (max <= 0 means 4096), and
// the position after them. It blocks until there is at least one point
// handed to the OS by the log (Writer.Written: in SyncInterval mode the
// log hands its buffer over every SyncEvery, so points arrive in steps),
// or ctx ends (ctx.Err()), or the DB or the feed closes (ErrClosed,
// ErrFeedClosed). The read position moves past the returned points; the
// cursor moves only with Commit. dst is reused for the result.
func (f *Feed) Next(ctx context.Context, dst []FeedPoint, max int) ([]FeedPoint, FeedPos, error) {
	if max <= 0 {
		max = 4096
	}
	for {
		if f.db.closed.Load() {
			return dst[:0], FeedPos{}, ErrClosed
		}
		limit, ch := f.db.log.WrittenChan()
		f.mu.Lock()
		if f.mu.closed {
			f.mu.Unlock()
			return dst[:0], FeedPos{}, ErrFeedClosed
		}
		pts, end, err := f.readLocked(dst[:0], max, limit)
		f.mu.Unlock()
		if err != nil || len(pts) > 0 {
			return pts, end, err
		}
		select {
		case <-ctx.Done():
			return pts, end, ctx.Err()
		case <-ch:
		case <-f.db.stop:
		}
	}
}

// readLocked reads up to max points before limit.
func (f *Feed) readLocked(dst []FeedPoint, max int, limit wal.Pos) ([]FeedPoint, FeedPos, error) {
	m := &f.mu
	for len(dst) < max {
		if m.dec.active() {
			id, t, v, err := m.dec.next()
			if err != nil {
				return dst, m.pos, fmt.Errorf("engine: feed %q: log record at %s: %w", f.name, m.decAt, err)
			}
			dst = append(dst, FeedPoint{Series: id, T: t, V: v, Pos: m.pos})
			m.pos.Index++
			if !m.dec.active() {
				p := m.rd.Pos()
				m.pos = FeedPos{Segment: p.Segment, Offset: p.Offset}
			}
			continue
		}
		before := m.rd.PastEnd()
		rec, at, err := m.rd.Next(limit)
		m.pastEnd += int64(m.rd.PastEnd() - before)
		if err == io.EOF {
			p := m.rd.Pos()
			if p.Segment != m.pos.Segment || p.Offset > m.pos.Offset {
				m.pos = FeedPos{Segment: p.Segment, Offset: p.Offset}
			}
			break
		}
		if err != nil {
			return dst, m.pos, fmt.Errorf("engine: feed %q: %w", f.name, err)
		}
		if len(rec) == 0 {
			return dst, m.pos, fmt.Errorf("engine: feed %q: log record at %s: empty", f.name, at)
		}
		skip := uint32(0)
		if m.skipIdx > 0 {
			if at.Segment == m.pos.Segment && at.Offset == m.pos.Offset {
				skip = m.skipIdx
			}
			m.skipIdx = 0
		}
		switch rec[0] {
		case recSeries:
			p := m.rd.Pos()
			m.pos = FeedPos{Segment: p.Segment, Offset: p.Offset}
		case recSamples:
			if err := m.dec.reset(rec); err != nil {
				return dst, m.pos, fmt.Errorf("engine: feed %q: log record at %s: %w", f.name, at, err)
			}
			m.decAt = at
			m.pos = FeedPos{Segment: at.Segment, Offset: at.Offset}
			for ; skip > 0 && m.dec.active(); skip-- {
				if _, _, _, err := m.dec.next(); err != nil {
					return dst, m.pos, fmt.Errorf("engine: feed %q: log record at %s: %w", f.name, at, err)
				}
				m.pos.Index++
			}
			if !m.dec.active() {
				p := m.rd.Pos()
				m.pos = FeedPos{Segment: p.Segment, Offset: p.Offset}
			}
		default:
			return dst, m.pos, fmt.Errorf("engine: feed %q: log record at %s: unknown type %d", f.name, at, rec[0])
		}
	}
	m.delivered += int64(len(dst))
	return dst, m.pos, nil
}

// Commit makes pos the feed's durable cursor, with state (at most 1 MiB,
// copied) stored beside it for the consumer (DB.FeedState returns it): after
// a crash or a reopen the feed resumes at pos. Everything before pos may
// be removed from the log. A pos behind the committed cursor does not move
// it back (the state is stored all the same). It is durable when Commit
// returns (one store flush: commit about once a second, not per point).
func (f *Feed) Commit(pos FeedPos, state []byte) error {
	if len(state) > maxFeedState {
		return fmt.Errorf("%w: feed %q: state of %d bytes, at most %d", ErrInvalid, f.name, len(state), maxFeedState)
	}
	db := f.db
	db.readMu.RLock()
	defer db.readMu.RUnlock()
	if db.closed.Load() {
		return ErrClosed
	}
	if err := db.Err(); err != nil {
		return err
	}
	db.ckptMu.Lock()
	defer db.ckptMu.Unlock()
	f.mu.Lock()
	closed, read := f.mu.closed, f.mu.pos
	f.mu.Unlock()
	if closed {
		return ErrFeedClosed
	}
	if read.Less(pos) {
		return fmt.Errorf("%w: feed %q: commit at %s, past the read position %s", ErrInvalid, f.name, pos, read)
	}
	c := feedCursor{pos: f.entry.cur.pos, state: append([]byte(nil), state...)}
	if c.pos.Less(pos) {
		c.pos = pos
	}
	if err := db.putFeedCursorLocked(f.name, c); err != nil {
		return err
	}
	f.entry.cur = c
	f.mu.Lock()
	f.mu.committed = c.pos
	f.mu.Unlock()
	return nil
}

// Stats describe the feed.
func (f *Feed) Stats() FeedStats {
	f.db.ckptMu.Lock()
	skipped, skippedBytes := f.entry.skipped, f.entry.skippedBytes
	f.db.ckptMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	return FeedStats{
		Committed:    f.mu.committed,
		Read:         f.mu.pos,
		Delivered:    f.mu.delivered,
		Skipped:      skipped,
		SkippedBytes: skippedBytes,
		PastEnd:      f.mu.pastEnd,
	}
}

// Close closes the feed (its cursor stays: the next DB.Feed of its name
// resumes there). Calls after Close return ErrFeedClosed.
func (f *Feed) Close() error {
	f.db.ckptMu.Lock()
	defer f.db.ckptMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.closed {
		return ErrFeedClosed
	}
	f.mu.closed = true
	if f.entry.open == f {
		f.entry.open = nil
	}
	return f.mu.rd.Close()
}

// moveFeedsLocked applies the log-retention rule of a checkpoint that
// made segments < seg redundant: it returns the first segment to keep,
// min(seg, every feed's cursor segment), after moving forward to seg each
// feed holding back more than MaxFeedLag bytes of log (counting the points
// it skips, and adding its new cursor to b). Caller holds ckptMu.
func (db *DB) moveFeedsLocked(b *pebble.Batch, seg uint64) (keep uint64, moved []string, err error) {
	keep = seg
	if len(db.feeds) == 0 {
		return keep, nil, nil
	}
	logDir := db.fs.PathJoin(db.dir, walDir)
	segs, err := wal.Segments(db.fs, logDir)
	if err != nil {
		return 0, nil, err
	}
	sizeFrom := func(first uint64) int64 {
		var n int64
		for _, s := range segs {
			if s >= first && s < seg {
				if st, err := db.fs.Stat(db.fs.PathJoin(logDir, wal.SegmentName(s))); err == nil {
					n += st.Size()
				}
			}
		}
		return n
	}
	for name, e := range db.feeds {
		if e.cur.pos.Segment >= seg {
			continue
		}
		held := sizeFrom(e.cur.pos.Segment)
		if held <= db.opts.MaxFeedLag {
			keep = min(keep, e.cur.pos.Segment)
			continue
		}
		// Too far behind: count what it loses, from where it has read to.
		from := e.cur.pos
		if e.open != nil {
			e.open.mu.Lock()
			from = e.open.mu.pos
			e.open.mu.Unlock()
		}
		n, err := db.countFeedPoints(from, wal.Pos{Segment: seg})
		if err != nil {
			return 0, nil, fmt.Errorf("feed %q: count skipped points: %w", name, err)
		}
		e.skipped += n
		e.skippedBytes += held
		e.cur.pos = FeedPos{Segment: seg}
		if err := b.Set(feedKey(name), e.cur.marshal(), nil); err != nil {
			return 0, nil, err
		}
		moved = append(moved, name)
	}
	return keep, moved, nil
}

// resetMovedFeedsLocked points the open feeds moved by a checkpoint at their new
// cursor, once that cursor is durable. Caller holds ckptMu.
func (db *DB) resetMovedFeedsLocked(moved []string) {
	for _, name := range moved {
		e := db.feeds[name]
		f := e.open
		if f == nil {
			continue
		}
		f.mu.Lock()
		if f.mu.pos.Less(e.cur.pos) {
			_ = f.mu.rd.Close()
			f.mu.rd = wal.NewReader(db.fs, db.fs.PathJoin(db.dir, walDir), wal.Pos{Segment: e.cur.pos.Segment})
			f.mu.pos = e.cur.pos
			f.mu.dec = sampleDecoder{}
			f.mu.skipIdx = 0
		}
		f.mu.committed = e.cur.pos
		f.mu.Unlock()
	}
}

// countFeedPoints counts the points of the samples records in [from, to).
func (db *DB) countFeedPoints(from FeedPos, to wal.Pos) (int64, error) {
	rd := wal.NewReader(db.fs, db.fs.PathJoin(db.dir, walDir), wal.Pos{Segment: from.Segment, Offset: from.Offset})
	defer rd.Close()
	var n int64
	for {
		rec, at, err := rd.Next(to)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if len(rec) == 0 || rec[0] != recSamples {
			continue
		}
		cnt, k := binary.Uvarint(rec[1:])
		if k <= 0 {
			return n, fmt.Errorf("log record at %s: %w: bad count", at, errBadRecord)
		}
		if at.Segment == from.Segment && at.Offset == from.Offset {
			cnt -= min(cnt, uint64(from.Index))
		}
		n += int64(cnt)
	}
}

// sampleDecoder decodes a samples record one point at a time (the format
// of forEachSample).
type sampleDecoder struct {
	b    []byte
	n, i uint64
	t    int64
}

func (d *sampleDecoder) active() bool { return d.i < d.n }

func (d *sampleDecoder) reset(rec []byte) error {
	b := rec[1:]
	cnt, n := binary.Uvarint(b)
	if n <= 0 {
		return fmt.Errorf("%w: samples record: bad count", errBadRecord)
	}
	b = b[n:]
	if cnt > uint64(len(b))/10 {
		return fmt.Errorf("%w: samples record: count %d exceeds its %d bytes", errBadRecord, cnt, len(b))
	}
	*d = sampleDecoder{b: b, n: cnt}
	return nil
}

func (d *sampleDecoder) next() (id uint64, t int64, v float64, err error) {
	b := d.b
	id, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, 0, fmt.Errorf("%w: samples record: sample %d: bad id", errBadRecord, d.i)
	}
	b = b[n:]
	dt, n := binary.Varint(b)
	if n <= 0 {
		return 0, 0, 0, fmt.Errorf("%w: samples record: sample %d: bad timestamp", errBadRecord, d.i)
	}
	b = b[n:]
	if len(b) < 8 {
		return 0, 0, 0, fmt.Errorf("%w: samples record: sample %d: short value", errBadRecord, d.i)
	}
	d.t += dt
	v = math.Float64frombits(binary.LittleEndian.Uint64(b))
	d.b = b[8:]
	d.i++
	if d.i == d.n && len(d.b) != 0 {
		return 0, 0, 0, fmt.Errorf("%w: samples record: %d trailing bytes", errBadRecord, len(d.b))
	}
	return id, d.t, v, nil
}
