package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/wal"
)

// Observe records value for the series name{labels}, stamped now.
func (db *DB) Observe(name string, value float64, labels Labels) error {
	s, err := db.Series(name, labels)
	if err != nil {
		return err
	}
	return db.appendOne(s, db.clock.nowNanos(), value)
}

// ObserveAt records value for the series name{labels} at event time ts.
// Points may arrive late or out of order by any amount.
func (db *DB) ObserveAt(ts time.Time, name string, value float64, labels Labels) error {
	s, err := db.Series(name, labels)
	if err != nil {
		return err
	}
	return db.appendOne(s, ts.UnixNano(), value)
}

// Increment adds delta (finite, >= 0) to the running total of the counter
// series name{labels} and records the new total, stamped now.
func (db *DB) Increment(name string, delta float64, labels Labels) error {
	s, err := db.Series(name, labels)
	if err != nil {
		return err
	}
	return s.Increment(delta)
}

// Observe records v stamped now.
func (s *Series) Observe(v float64) error {
	return s.db.appendOne(s, s.db.clock.nowNanos(), v)
}

// ObserveAt records v at event time ts.
func (s *Series) ObserveAt(ts time.Time, v float64) error {
	return s.db.appendOne(s, ts.UnixNano(), v)
}

// ObserveAtNanos records v at event time ts in Unix nanoseconds.
func (s *Series) ObserveAtNanos(ts int64, v float64) error {
	return s.db.appendOne(s, ts, v)
}

// Increment adds delta (finite, >= 0) to the series' running total and
// records the new total, stamped now. The total continues from the value
// with the greatest timestamp already stored.
func (s *Series) Increment(delta float64) error {
	if math.IsNaN(delta) || math.IsInf(delta, 0) || delta < 0 {
		return fmt.Errorf("%w: increment of %s by %v: a counter increment must be finite and >= 0", ErrInvalid, s, delta)
	}
	s.inc.Lock()
	defer s.inc.Unlock()
	if !s.inc.loaded {
		last, err := s.db.lastValue(s)
		if err != nil {
			return err
		}
		if last == last {
			s.inc.total = last
		}
		s.inc.loaded = true
	}
	v := s.inc.total + delta
	if err := s.db.appendOne(s, s.db.clock.nowNanos(), v); err != nil {
		return err
	}
	s.inc.total = v
	return nil
}

var recPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func (db *DB) appendOne(s *Series, t int64, v float64) error {
	if err := db.writable(); err != nil {
		return err
	}
	if s.db != db {
		return fmt.Errorf("%w: series %s belongs to another DB", ErrInvalid, s)
	}
	var buf [32]byte
	rec := appendSamplesHeader(buf[:0], 1)
	rec = appendSample(rec, s.id, 0, t, v)
	var herr error
	_, err := db.log.AppendFunc(rec, func() {
		herr = s.appendHead(t, v)
		db.logged(len(rec))
	})
	if err != nil {
		return db.logError(fmt.Sprintf("write %s", s), err)
	}
	if herr != nil {
		db.fail(herr)
		return herr
	}
	return nil
}

// logged accounts for a record appended to the log and asks for a
// checkpoint when enough has accumulated. The log's lock is held.
func (db *DB) logged(n int) {
	db.logSince += int64(n)
	if !db.ckptAsked && db.logSince >= db.opts.CheckpointBytes {
		db.ckptAsked = true
		select {
		case db.ckptReq <- struct{}{}:
		default:
		}
	}
}

// logError turns an error of the log into the engine's: ErrClosed after
// Close, else a failure that stops the DB from acknowledging writes.
func (db *DB) logError(what string, err error) error {
	if errors.Is(err, wal.ErrClosed) {
		return ErrClosed
	}
	db.fail(err)
	return fmt.Errorf("engine: %s: %w", what, err)
}

// Batch collects points of many series for one Append. It is reusable:
// call Reset after Append returns. A Batch is not safe for concurrent use.
type Batch struct {
	series []*Series
	ts     []int64
	vs     []float64
}

// Add queues the point (ts in Unix nanoseconds, v) of series s.
func (b *Batch) Add(s *Series, ts int64, v float64) {
	b.series = append(b.series, s)
	b.ts = append(b.ts, ts)
	b.vs = append(b.vs, v)
}

// Len returns the number of points queued.
func (b *Batch) Len() int { return len(b.ts) }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	clear(b.series)
	b.series, b.ts, b.vs = b.series[:0], b.ts[:0], b.vs[:0]
}

// maxBatchRecord bounds the points of one log record.
const maxBatchRecord = 1 << 20

// Append writes every point of b, in one log record per up to a million
// points. It is the fastest way in. On error, none of the points of the
// failed record were acknowledged.
func (db *DB) Append(b *Batch) error {
	for i, s := range b.series {
		if s == nil {
			return fmt.Errorf("%w: batch point %d has no series", ErrInvalid, i)
		}
		if s.db != db {
			return fmt.Errorf("%w: batch point %d: series %s belongs to another DB", ErrInvalid, i, s)
		}
	}
	for off := 0; off < len(b.ts); off += maxBatchRecord {
		end := min(off+maxBatchRecord, len(b.ts))
		if err := db.appendBatch(b.series[off:end], b.ts[off:end], b.vs[off:end]); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) appendBatch(series []*Series, ts []int64, vs []float64) error {
	if len(ts) == 0 {
		return nil
	}
	if err := db.writable(); err != nil {
		return err
	}
	bp := recPool.Get().(*[]byte)
	rec := appendSamplesHeader((*bp)[:0], len(ts))
	prev := int64(0)
	for i, s := range series {
		rec = appendSample(rec, s.id, prev, ts[i], vs[i])
		prev = ts[i]
	}
	defer func() {
		if cap(rec) <= 4<<20 {
			*bp = rec[:0]
			recPool.Put(bp)
		}
	}()
	var herr error
	_, err := db.log.AppendFunc(rec, func() {
		for i, s := range series {
			if herr = s.appendHead(ts[i], vs[i]); herr != nil {
				break
			}
		}
		db.logged(len(rec))
	})
	if err != nil {
		return db.logError("write batch", err)
	}
	if herr != nil {
		db.fail(herr)
		return herr
	}
	return nil
}

var labelsPool = sync.Pool{New: func() any { b := make([]index.Label, 0, 16); return &b }}
var keyPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// Series resolves name{labels} to a handle, creating the series if needed.
// It validates the name and labels: bad input returns an error wrapping
// ErrInvalid that says what was wrong.
func (db *DB) Series(name string, labels Labels) (*Series, error) {
	lp := labelsPool.Get().(*[]index.Label)
	defer labelsPool.Put(lp)
	kp := keyPool.Get().(*[]byte)
	defer keyPool.Put(kp)
	// Fast path: a known series (validated when it was created).
	ls := index.Sorted((*lp)[:0], labels)
	key := index.AppendKey((*kp)[:0], name, ls)
	*lp, *kp = ls[:0], key[:0]
	db.seriesMu.RLock()
	p, ok := db.byKey[string(key)] // no allocation for the conversion here
	var s *Series
	if ok {
		s = p.Value()
	}
	db.seriesMu.RUnlock()
	if s != nil {
		return s, nil
	}
	ls, err := index.Canonical(nil, name, labels, db.lim)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return db.createSeries(name, ls, string(index.AppendKey(nil, name, ls)))
}

// SeriesOf is Series for labels given as a slice of pairs.
func (db *DB) SeriesOf(name string, labels []index.Label) (*Series, error) {
	ls, err := index.CanonicalSlice(name, labels, db.lim)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	key := index.AppendKey(nil, name, ls)
	db.seriesMu.RLock()
	p, ok := db.byKey[string(key)] // no allocation for the conversion here
	var s *Series
	if ok {
		s = p.Value()
	}
	db.seriesMu.RUnlock()
	if s != nil {
		return s, nil
	}
	return db.createSeries(name, ls, string(key))
}

func (db *DB) createSeries(name string, labels []index.Label, key string) (*Series, error) {
	if err := db.writable(); err != nil {
		return nil, err
	}
	db.seriesMu.Lock()
	defer db.seriesMu.Unlock()
	if s := db.lookupKeyLocked(key); s != nil {
		return s, nil
	}
	// Known to the store but not in memory?
	v, err := db.getValue(append([]byte{prefixSeriesKey}, key...))
	if err != nil {
		return nil, fmt.Errorf("engine: look up series %s: %w", index.String(name, labels), err)
	}
	if v != nil {
		if len(v) != 8 {
			return nil, fmt.Errorf("engine: series %s: corrupt id entry", index.String(name, labels))
		}
		id := binary.BigEndian.Uint64(v)
		if s := db.lookupIDLocked(id); s != nil && s.key == key {
			return s, nil
		}
		s := &Series{db: db, id: id, name: name, labels: labels, key: key}
		db.registerLocked(s)
		return s, nil
	}
	if db.opts.MaxSeries > 0 && db.postings.Len() >= uint64(db.opts.MaxSeries) {
		return nil, fmt.Errorf("%w: creating %s would exceed MaxSeries=%d", ErrSeriesLimit, index.String(name, labels), db.opts.MaxSeries)
	}
	id := db.nextID
	if id > math.MaxUint32 {
		return nil, fmt.Errorf("%w: series id space exhausted", ErrSeriesLimit)
	}
	s := &Series{db: db, id: id, name: name, labels: labels, key: key}
	rec := appendSeriesRecord(nil, id, key)
	_, err = db.log.AppendFunc(rec, func() {
		db.newSeries = append(db.newSeries, s)
		db.loggedNextID = id + 1
		db.postings.Add(uint32(id), name, labels)
		db.logged(len(rec))
	})
	if err != nil {
		return nil, db.logError(fmt.Sprintf("create series %s", index.String(name, labels)), err)
	}
	db.nextID++
	db.registerLocked(s)
	return s, nil
}
