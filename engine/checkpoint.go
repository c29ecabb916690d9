package engine

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/eventmetrics/eventmetrics/index"
)

// ckptWork is what one checkpoint writes for one series.
type ckptWork struct {
	s      *Series
	sealed []memChunk // copies, taken under the log's lock
	curSeq uint64
	curTS  []int64
	curVS  []float64
}

// checkpoint writes every point of the log segments before a fresh one into
// pebble, durably, then deletes those segments. Protocol (see DESIGN.md):
//
//  1. atomically with the log's rotation to segment S (under the log's
//     lock, which every head change also holds): snapshot the heads: sealed chunks, open chunks, new series,
//     changed postings. The snapshot holds exactly the points of segments
//     before S.
//  2. with writes running again: write the snapshot and the checkpoint
//     record {S, next id, next seq} in one pebble batch, and flush pebble
//     (pebble's own WAL is off, so the flush is what makes it durable; the
//     batch is atomic either way).
//  3. drop the written sealed chunks from memory and delete segments < S,
//     except those a feed still needs (feed.go).
//
// A crash before 2 completes leaves the previous checkpoint and every
// segment since it: replay rebuilds the same heads. A crash after leaves
// the new checkpoint and segments >= S.
func (db *DB) checkpoint() error {
	db.ckptMu.Lock()
	defer db.ckptMu.Unlock()

	// 1. Snapshot, atomically with the rotation: no write can slip in
	// between, since writes apply to the head under the log's lock.
	var (
		work      []ckptWork
		newSeries []*Series
		pkeys     []index.PostingKey
		pdata     [][]byte
		meta      checkpointMeta
		snapErr   error
	)
	seg, err := db.log.RotateFunc(func(next uint64) {
		dirty := db.dirty
		newSeries = db.newSeries
		db.dirty, db.newSeries = nil, nil
		work = make([]ckptWork, 0, len(dirty))
		for _, s := range dirty {
			if err := s.sealOOO(); err != nil && snapErr == nil {
				snapErr = err
			}
			h := &s.head
			w := ckptWork{s: s}
			if len(h.sealed) > 0 {
				w.sealed = make([]memChunk, len(h.sealed))
				for i, m := range h.sealed {
					w.sealed[i] = *m
				}
			}
			if n := len(h.cur.ts); n > h.curPersisted {
				w.curSeq, w.curTS, w.curVS = h.cur.seq, h.cur.ts[:n:n], h.cur.vs[:n:n]
				h.curPersisted = n
			}
			h.dirty = false
			work = append(work, w)
		}
		var err error
		if pkeys, pdata, err = db.postings.TakeDirty(); err != nil && snapErr == nil {
			snapErr = err
		}
		meta = checkpointMeta{walSegment: next, nextID: db.loggedNextID, nextSeq: db.nextSeq.Load()}
		db.logSince = 0
		db.ckptAsked = false
	})
	if err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	if snapErr != nil {
		return snapErr
	}

	// 2. Write, into a batch sized up front (growing one by doubling would
	// hold up to twice the memory).
	size := 64
	for _, w := range work {
		for i := range w.sealed {
			if c := &w.sealed[i]; c.data != nil {
				size += len(c.data) + 2*chunkKeyLen + 16
			} else {
				size += len(c.ts)*9 + 128 + 2*chunkKeyLen
			}
		}
		size += len(w.curTS)*9 + 128 + 2*chunkKeyLen
	}
	for _, s := range newSeries {
		size += 2*len(s.key) + 32
	}
	for i := range pkeys {
		size += len(pkeys[i].Name) + len(pkeys[i].Value) + len(pdata[i]) + 16
	}
	b := db.pdb.NewBatchWithSize(size)
	defer b.Close()
	var kbuf []byte
	for _, s := range newSeries {
		kbuf = append(append(kbuf[:0], prefixSeriesKey), s.key...)
		if err := b.Set(kbuf, binary.BigEndian.AppendUint64(nil, s.id), nil); err != nil {
			return err
		}
		if err := b.Set(appendSeriesIDKey(kbuf[:0], s.id), []byte(s.key), nil); err != nil {
			return err
		}
	}
	for i, k := range pkeys {
		if err := b.Set(appendPostingsKey(kbuf[:0], k.Name, k.Value), pdata[i], nil); err != nil {
			return err
		}
	}
	for _, w := range work {
		for i := range w.sealed {
			c := &w.sealed[i]
			if c.data == nil { // not encoded yet: do it here
				mc, err := db.encodeChunk(c.seq, c.ts, c.vs)
				if err != nil {
					return fmt.Errorf("encode chunk of %s: %w", w.s, err)
				}
				c = mc
			}
			if err := putChunk(b, &kbuf, w.s.id, c); err != nil {
				return err
			}
		}
		if len(w.curTS) > 0 {
			mc, err := db.encodeChunk(w.curSeq, w.curTS, w.curVS)
			if err != nil {
				return fmt.Errorf("encode open chunk of %s: %w", w.s, err)
			}
			if err := putChunk(b, &kbuf, w.s.id, mc); err != nil {
				return err
			}
		}
	}
	// Log retention: segments < seg are redundant for the store, but feeds
	// may still need some (feed.go); feeds too far behind move forward, in
	// this batch.
	keep, moved, err := db.moveFeedsLocked(b, seg)
	if err != nil {
		return err
	}
	if err := b.Set(metaCheckpoint, meta.marshal(), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	// flushStore also fails if the DB failed meanwhile (a failed directory
	// or MANIFEST sync, see pebbleFS): never delete log segments then.
	if err := db.flushStore(); err != nil {
		return fmt.Errorf("flush checkpoint: %w", err)
	}

	// 3. Release.
	db.log.Do(func() {
		for _, w := range work {
			if len(w.sealed) == 0 {
				continue
			}
			h := &w.s.head
			if rest := h.sealed[len(w.sealed):]; len(rest) == 0 {
				h.sealed = nil
			} else {
				h.sealed = append([]*memChunk(nil), rest...)
			}
		}
	})
	db.resetMovedFeedsLocked(moved)
	if err := db.log.RemoveBefore(keep); err != nil {
		return fmt.Errorf("remove old log segments: %w", err)
	}
	db.stats.checkpoints.Add(1)
	return nil
}

// putChunk writes a chunk as two entries: its header under prefixChunkHdr
// (what scalar queries read) and the rest under prefixChunk (read only when
// the points are needed).
func putChunk(b *pebble.Batch, kbuf *[]byte, id uint64, c *memChunk) error {
	hs := c.hdr.HeaderSize
	*kbuf = appendChunkKey((*kbuf)[:0], prefixChunkHdr, id, c.minT, c.seq)
	if err := b.Set(*kbuf, c.data[:hs], nil); err != nil {
		return err
	}
	*kbuf = appendChunkKey((*kbuf)[:0], prefixChunk, id, c.minT, c.seq)
	return b.Set(*kbuf, c.data[hs:], nil)
}
