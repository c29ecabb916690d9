package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/eventmetrics/eventmetrics/encode"
	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/query"
	"github.com/eventmetrics/eventmetrics/wal"
)

// Errors the engine returns.
var (
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("engine: closed")
	// ErrSeriesLimit is returned by writes that would create a series past
	// Options.MaxSeries.
	ErrSeriesLimit = errors.New("engine: series limit reached")
	// ErrInvalid is wrapped by errors about bad input (names, labels,
	// values, batches).
	ErrInvalid = errors.New("engine: invalid input")
	// ErrLocked is returned by Open when another DB holds the directory.
	ErrLocked = errors.New("engine: directory is locked by another DB")
	// ErrFailed is wrapped by the errors of a DB that stopped accepting
	// writes after an I/O failure (a failed fsync is never retried).
	ErrFailed = errors.New("engine: failed")
)

// Labels name a series together with its metric name. An empty value means
// the label is absent.
type Labels = map[string]string

// Sub-directories of a DB directory.
const (
	lockFile  = "LOCK"
	walDir    = "wal"
	pebbleDir = "data"
)

// DB is an embedded event-time metrics store. All its methods are safe for
// concurrent use.
type DB struct {
	dir  string
	opts Options
	fs   vfs.FS
	lim  index.Limits

	clock    *clock
	lock     io.Closer
	pdb      *pebble.DB
	log      *wal.Writer
	postings *index.Postings

	// readMu lets Close wait for running queries.
	readMu sync.RWMutex
	// ckptMu serializes checkpoints, and guards feeds (feed cursors are
	// written under it, so that a checkpoint's log retention never races
	// with a Commit).
	ckptMu sync.Mutex
	feeds  map[string]*feedEntry // guarded by ckptMu; see feed.go

	seriesMu sync.RWMutex
	byKey    map[string]weak.Pointer[Series] // guarded by seriesMu; see registry.go
	byID     map[uint64]weak.Pointer[Series] // guarded by seriesMu
	nextID   uint64                          // guarded by seriesMu (and stable under mu held exclusively)

	// Guarded by the log's lock (see Series.head).
	dirty        []*Series   // series with data not yet in pebble
	newSeries    []*Series   // series not yet in pebble
	loggedNextID uint64      // next series id, as of the log
	logSince     int64       // bytes logged since the last checkpoint
	ckptAsked    bool        // a checkpoint was requested since the last one
	toEncode     []*memChunk // sealed raw chunks waiting for the encoder

	nextSeq  atomic.Uint64
	closed   atomic.Bool
	failed   atomic.Pointer[error]
	failedCh chan struct{} // closed when failed is set
	// corruptions counts damage pebble found in its tables while reading.
	corruptions     atomic.Int64
	lastCompaction  atomic.Pointer[CompactStats]
	compactTotalsMu sync.Mutex
	compactTotals   CompactStats // guarded by compactTotalsMu

	ckptReq  chan struct{}
	encReq   chan struct{}
	stop     chan struct{}
	bgDone   sync.WaitGroup
	replayed wal.ReplayStats
	stats    struct {
		checkpoints atomic.Int64
	}
}

// Open opens (creating if needed) the DB in dir. It takes an exclusive lock
// on dir, replays the log after an unclean stop, and starts the background
// checkpointer. A nil opts means defaults.
func Open(dir string, opts *Options) (*DB, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	fs := o.FS
	if err := ensureDir(fs, dir); err != nil {
		return nil, fmt.Errorf("engine: create %s: %w", dir, err)
	}
	lock, err := fs.Lock(fs.PathJoin(dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrLocked, dir, err)
	}
	db := &DB{
		dir:      dir,
		opts:     o,
		fs:       fs,
		lim:      index.Limits{MaxLabels: o.MaxLabels, MaxLabelValueLen: o.MaxLabelValueLen},
		clock:    newClock(o.Now),
		lock:     lock,
		postings: index.NewPostings(),
		byKey:    make(map[string]weak.Pointer[Series]),
		byID:     make(map[uint64]weak.Pointer[Series]),
		ckptReq:  make(chan struct{}, 1),
		failedCh: make(chan struct{}),
		encReq:   make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	if err := db.open(); err != nil {
		db.closeFiles()
		return nil, err
	}
	db.bgDone.Add(2)
	go db.background()
	go db.encoder()
	return db, nil
}

func (db *DB) open() error {
	o := &db.opts
	for _, sub := range []string{pebbleDir, walDir} {
		if err := ensureDir(db.fs, db.fs.PathJoin(db.dir, sub)); err != nil {
			return fmt.Errorf("engine: create %s: %w", sub, err)
		}
	}
	popts := &pebble.Options{
		FS:           pebbleFS{FS: db.fs, db: db},
		DisableWAL:   true, // the engine's own log is the durability log: see DESIGN.md
		MemTableSize: o.MemTableSize,
		Logger:       pebbleLogger{db},
		EventListener: &pebble.EventListener{
			// Damage found in a table while reading: the read returns an
			// error (the query fails); pebble's default would end the
			// process. Check reports the damage.
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				db.corruptions.Add(1)
			},
			// A failed flush is a failed checkpoint: fail the DB (pebble
			// would retry it forever) and wake the checkpoint waiting for it.
			FlushEnd: func(info pebble.FlushInfo) {
				// ("pebble: empty table" is pebble reporting an empty
				// memtable; it has no exported sentinel.)
				if info.Err != nil && !strings.Contains(info.Err.Error(), "pebble: empty table") {
					db.fail(fmt.Errorf("store: flush: %w", info.Err))
				}
			},
		},
	}
	popts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref()
	popts.Cache = cache
	pdb, err := pebble.Open(db.fs.PathJoin(db.dir, pebbleDir), popts)
	if err != nil {
		return fmt.Errorf("engine: open store in %s: %w", db.dir, err)
	}
	db.pdb = pdb
	if err := db.Err(); err != nil {
		return fmt.Errorf("engine: open store in %s: %w", db.dir, err)
	}

	// Format version.
	v, closer, err := pdb.Get(metaFormat)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := pdb.Set(metaFormat, binary.AppendUvarint(nil, formatVersion), pebble.NoSync); err != nil {
			return fmt.Errorf("engine: write format version: %w", err)
		}
		if err := db.flushStore(); err != nil {
			return fmt.Errorf("engine: write format version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("engine: read format version: %w", err)
	default:
		ver, n := binary.Uvarint(v)
		closer.Close()
		if n <= 0 {
			return fmt.Errorf("engine: %s: unreadable format version", db.dir)
		}
		if ver > formatVersion {
			return fmt.Errorf("engine: %s has format version %d, newer than this build knows (%d): upgrade eventmetrics", db.dir, ver, formatVersion)
		}
	}

	// Checkpoint.
	var ck checkpointMeta
	v, closer, err = pdb.Get(metaCheckpoint)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("engine: read checkpoint: %w", err)
	default:
		ok := ck.unmarshal(v)
		closer.Close()
		if !ok {
			return fmt.Errorf("engine: %s: corrupt checkpoint record", db.dir)
		}
	}
	db.nextID = max(ck.nextID, 1)
	db.loggedNextID = db.nextID
	db.nextSeq.Store(max(ck.nextSeq, 1))
	if v, err := db.getValue(metaSeqFloor); err != nil {
		return fmt.Errorf("engine: read seq floor: %w", err)
	} else if v != nil {
		floor, n := binary.Uvarint(v)
		if n <= 0 {
			return fmt.Errorf("engine: %s: corrupt seq floor record", db.dir)
		}
		db.nextSeq.Store(max(db.nextSeq.Load(), floor))
	}

	if err := db.loadPostings(); err != nil {
		return err
	}

	// Replay the log written since the checkpoint.
	logDir := db.fs.PathJoin(db.dir, walDir)
	stats, err := wal.Replay(logDir, ck.walSegment, wal.ReplayOptions{FS: db.fs, Repair: o.RepairWAL}, db.replayRecord)
	if err != nil {
		return fmt.Errorf("engine: replay log: %w", err)
	}
	db.replayed = stats

	log, err := wal.Open(logDir, wal.Options{
		FS:          db.fs,
		Sync:        o.Sync,
		SyncEvery:   o.SyncEvery,
		SegmentSize: o.WALSegmentSize,
	})
	if err != nil {
		return fmt.Errorf("engine: open log: %w", err)
	}
	db.log = log
	// Feed cursors, now that the log's first segment of this run is known.
	return db.loadFeeds(log.Written().Segment)
}

func (db *DB) loadPostings() error {
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixPostings}, UpperBound: []byte{prefixPostings + 1}})
	if err != nil {
		return fmt.Errorf("engine: load postings: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[1:]
		sep := -1
		for i, c := range k {
			if c == 0xFF {
				sep = i
				break
			}
		}
		if sep < 0 {
			return fmt.Errorf("engine: corrupt postings key %q", k)
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("engine: load postings: %w", err)
		}
		if err := db.postings.Load(string(k[:sep]), string(k[sep+1:]), val); err != nil {
			return fmt.Errorf("engine: load postings: %w", err)
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("engine: load postings: %w", err)
	}
	return nil
}

func (db *DB) replayRecord(rec []byte, pos wal.Pos) error {
	if len(rec) == 0 {
		return fmt.Errorf("engine: log record at %d:%d: empty", pos.Segment, pos.Offset)
	}
	switch rec[0] {
	case recSeries:
		id, key, err := decodeSeriesRecord(rec)
		if err != nil {
			return fmt.Errorf("engine: log record at %d:%d: %w", pos.Segment, pos.Offset, err)
		}
		name, labels, err := index.DecodeKey(key)
		if err != nil {
			return fmt.Errorf("engine: log record at %d:%d: %w", pos.Segment, pos.Offset, err)
		}
		if id == 0 || id > math.MaxUint32 {
			return fmt.Errorf("engine: log record at %d:%d: series id %d out of range", pos.Segment, pos.Offset, id)
		}
		if s := db.lookupIDLocked(id); s != nil {
			if s.key != string(key) {
				return fmt.Errorf("engine: log record at %d:%d: series id %d defined twice", pos.Segment, pos.Offset, id)
			}
			return nil
		}
		s := &Series{db: db, id: id, name: name, labels: labels, key: string(key)}
		db.registerLocked(s)
		db.postings.Add(uint32(id), name, labels)
		db.newSeries = append(db.newSeries, s)
		db.nextID = max(db.nextID, id+1)
		db.loggedNextID = db.nextID
		return nil
	case recSamples:
		err := forEachSample(rec, func(id uint64, t int64, v float64) error {
			s, err := db.seriesByID(id)
			if err != nil {
				return err
			}
			return s.appendHead(t, v)
		})
		if err != nil {
			return fmt.Errorf("engine: log record at %d:%d: %w", pos.Segment, pos.Offset, err)
		}
		return nil
	}
	return fmt.Errorf("engine: log record at %d:%d: unknown type %d", pos.Segment, pos.Offset, rec[0])
}

// seriesByID returns the series with id, loading it from pebble when it is
// not in memory.
func (db *DB) seriesByID(id uint64) (*Series, error) {
	db.seriesMu.RLock()
	s := db.lookupIDLocked(id)
	db.seriesMu.RUnlock()
	if s != nil {
		return s, nil
	}
	key, err := db.getValue(appendSeriesIDKey(nil, id))
	if err != nil {
		return nil, fmt.Errorf("series %d: %w", id, err)
	}
	if key == nil {
		return nil, fmt.Errorf("engine: series %d is unknown", id)
	}
	name, labels, err := index.DecodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("engine: series %d: %w", id, err)
	}
	db.seriesMu.Lock()
	defer db.seriesMu.Unlock()
	if s := db.lookupIDLocked(id); s != nil {
		return s, nil
	}
	s = &Series{db: db, id: id, name: name, labels: labels, key: string(key)}
	db.registerLocked(s)
	return s, nil
}

// getValue returns a copy of the value of key, or nil if absent.
func (db *DB) getValue(key []byte) ([]byte, error) {
	v, closer, err := db.pdb.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, nil
}

// encoder encodes sealed chunks outside the log's lock, so that writers
// (which seal chunks while holding it) do not pay for the encoding, and
// the work runs on another core.
func (db *DB) encoder() {
	defer db.bgDone.Done()
	var batch []*memChunk
	type done struct {
		m    *memChunk
		data []byte
		hdr  encode.Header
	}
	var out []done
	for {
		select {
		case <-db.stop:
			return
		case <-db.encReq:
		}
		for {
			db.log.Do(func() {
				batch = append(batch[:0], db.toEncode...)
				clear(db.toEncode)
				db.toEncode = db.toEncode[:0]
			})
			if len(batch) == 0 {
				break
			}
			for i := 0; i < len(batch); i += 64 {
				out = out[:0]
				for _, m := range batch[i:min(i+64, len(batch))] {
					mc, err := db.encodeChunk(m.seq, m.ts, m.vs)
					if err != nil {
						db.fail(fmt.Errorf("encode chunk: %w", err))
						return
					}
					out = append(out, done{m, mc.data, mc.hdr})
				}
				db.log.Do(func() {
					for _, d := range out {
						d.m.data, d.m.hdr, d.m.ts, d.m.vs = d.data, d.hdr, nil, nil
					}
				})
			}
			clear(batch)
		}
	}
}

// background runs checkpoints on request and on a timer.
func (db *DB) background() {
	defer db.bgDone.Done()
	t := time.NewTicker(db.opts.CheckpointEvery)
	defer t.Stop()
	clockTick := time.NewTicker(time.Second)
	defer clockTick.Stop()
	var compactTick <-chan time.Time
	if !db.opts.NoBackgroundCompaction {
		ct := time.NewTicker(db.opts.CompactEvery)
		defer ct.Stop()
		compactTick = ct.C
	}
	for {
		select {
		case <-db.stop:
			return
		case <-clockTick.C:
			db.clock.resync()
			continue
		case <-compactTick:
			if db.failed.Load() != nil {
				continue
			}
			st, err := db.compactPaced(db.stop)
			if err != nil {
				db.fail(fmt.Errorf("background compaction: %w", err))
				continue
			}
			db.recordCompaction(st)
			continue
		case <-db.ckptReq:
		case <-t.C:
			if !db.hasDirty() {
				continue
			}
		}
		if db.failed.Load() != nil {
			continue
		}
		if err := db.checkpoint(); err != nil {
			db.fail(fmt.Errorf("checkpoint: %w", err))
		}
	}
}

func (db *DB) hasDirty() bool {
	var dirty bool
	db.log.Do(func() { dirty = len(db.dirty) > 0 || len(db.newSeries) > 0 })
	return dirty
}

// fail makes the DB stop acknowledging writes.
func (db *DB) fail(err error) {
	err = fmt.Errorf("%w: %w", ErrFailed, err)
	if db.failed.CompareAndSwap(nil, &err) {
		close(db.failedCh)
	}
}

// flushStore flushes pebble's memtable (which is how a checkpoint becomes
// durable, pebble's WAL being off) and waits for it, or for the DB to fail.
func (db *DB) flushStore() error {
	done, err := db.pdb.AsyncFlush()
	if err != nil {
		return err
	}
	select {
	case <-done:
		return db.Err()
	case <-db.failedCh:
		return db.Err()
	}
}

// Err returns the error that stopped the DB from accepting writes, or nil.
func (db *DB) Err() error {
	if p := db.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// writable checks that writes may proceed.
func (db *DB) writable() error {
	if db.closed.Load() {
		return ErrClosed
	}
	if p := db.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Close makes everything written durable (a final checkpoint), stops the
// background work and releases the directory. Every later call returns
// ErrClosed.
func (db *DB) Close() error {
	if !db.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	close(db.stop)
	db.bgDone.Wait()
	db.readMu.Lock()
	defer db.readMu.Unlock()
	var err error
	if db.failed.Load() == nil {
		err = db.checkpoint()
	} else {
		err = db.Err()
	}
	if cerr := db.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

func (db *DB) closeFiles() error {
	var err error
	if db.log != nil {
		if e := db.log.Close(); e != nil && !errors.Is(e, wal.ErrClosed) && err == nil {
			err = fmt.Errorf("engine: close log: %w", e)
		}
	}
	if db.pdb != nil {
		if e := db.pdb.Close(); e != nil && err == nil {
			err = fmt.Errorf("engine: close store: %w", e)
		}
	}
	if db.lock != nil {
		if e := db.lock.Close(); e != nil && err == nil {
			err = fmt.Errorf("engine: unlock: %w", e)
		}
	}
	return err
}

// Sync makes every write acknowledged before it durable.
func (db *DB) Sync() error {
	if err := db.writable(); err != nil {
		return err
	}
	if err := db.log.Sync(); err != nil {
		return db.logError("sync", err)
	}
	return nil
}

// Query starts a query over the series named name that satisfy every
// matcher (see package query).
func (db *DB) Query(name string, ms ...query.Matcher) *query.Query {
	return query.New(db, db.clock.now, name, ms...)
}

// Compact runs a checkpoint now, writing every buffered point to the store;
// then merges each series' overlapping (out-of-order) and undersized chunks
// into full, non-overlapping ones and removes chunks wholly older than
// Options.Retention, crash-safely; then compacts the store's tables, which
// reclaims the space of what was replaced or removed. See LastCompaction.
func (db *DB) Compact() error {
	db.readMu.RLock()
	defer db.readMu.RUnlock()
	if db.closed.Load() {
		return ErrClosed
	}
	if err := db.Err(); err != nil {
		return err
	}
	if err := db.checkpoint(); err != nil {
		db.fail(err)
		return err
	}
	st, err := db.compactChunks()
	if err != nil {
		db.fail(fmt.Errorf("compact: %w", err))
		return fmt.Errorf("engine: compact: %w", err)
	}
	if err := db.pdb.Compact(context.Background(), []byte{prefixChunk}, []byte{prefixRollup + 1}, true); err != nil {
		return fmt.Errorf("engine: compact store: %w", err)
	}
	db.recordCompaction(st)
	return db.Err()
}

// LastCompaction reports what the last compaction (Compact, or a
// background run) did; zero before the first.
func (db *DB) LastCompaction() CompactStats {
	if p := db.lastCompaction.Load(); p != nil {
		return *p
	}
	return CompactStats{}
}

// CompactionTotals sums what every compaction since Open did.
func (db *DB) CompactionTotals() CompactStats {
	db.compactTotalsMu.Lock()
	defer db.compactTotalsMu.Unlock()
	return db.compactTotals
}

// recordCompaction keeps the stats of a finished compaction.
func (db *DB) recordCompaction(st CompactStats) {
	db.lastCompaction.Store(&st)
	db.compactTotalsMu.Lock()
	db.compactTotals.add(st)
	db.compactTotals.Duration += st.Duration
	db.compactTotalsMu.Unlock()
}

// Dir returns the directory of the DB.
func (db *DB) Dir() string { return db.dir }

// ReplayStats reports what Open found in the log.
func (db *DB) ReplayStats() wal.ReplayStats { return db.replayed }

// pebbleLogger quiets pebble's logging and turns its fatal errors (a
// failed MANIFEST write, say, on ENOSPC or EIO) into a failure of the DB
// instead of an exit or a panic of the process: the DB stops acknowledging
// writes; everything since the last good checkpoint is still in the log,
// so a reopen recovers.
type pebbleLogger struct{ db *DB }

func (pebbleLogger) Infof(string, ...interface{})  {}
func (pebbleLogger) Errorf(string, ...interface{}) {}
func (l pebbleLogger) Fatalf(format string, args ...interface{}) {
	// I/O failures that pebble treats as fatal are caught by pebbleFS
	// before they get here; what remains is an invariant violation, a bug.
	err := fmt.Errorf("store: "+format, args...)
	l.db.fail(err)
	panic(err)
}

// ensureDir creates dir if it does not exist, and then fsyncs the
// directories whose entries changed, so that the new directory survives a
// power loss.
func ensureDir(fs vfs.FS, dir string) error {
	if _, err := fs.Stat(dir); err == nil {
		return nil
	}
	parent := fs.PathDir(dir)
	if parent != dir && parent != "" {
		if err := ensureDir(fs, parent); err != nil {
			return err
		}
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d, err := fs.OpenDir(parent)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
