package engine

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

func (db *DB) markDirty(s *Series) {
	db.dirtyMu.Lock()
	db.dirty = append(db.dirty, s)
	db.dirtyMu.Unlock()
}

// ckptWork is what one checkpoint writes for one series.
type ckptWork struct {
	s      *Series
	sealed []*memChunk
	curSeq uint64
	curTS  []int64
	curVS  []float64
}

// checkpoint writes every point of the log segments before a fresh one into
// pebble, durably, then deletes those segments. Protocol (see DESIGN.md):
//
//  1. with writes paused (mu held exclusively): rotate the log to segment
//     S, and snapshot the heads: sealed chunks, open chunks, new series,
//     changed postings. The snapshot holds exactly the points of segments
//     before S.
//  2. with writes running again: write the snapshot and the checkpoint
//     record {S, next id, next seq} in one pebble batch, and flush pebble
//     (pebble's own WAL is off, so the flush is what makes it durable; the
//     batch is atomic either way).
//  3. drop the written sealed chunks from memory and delete segments < S.
//
// A crash before 2 completes leaves the previous checkpoint and every
// segment since it: replay rebuilds the same heads. A crash after leaves
// the new checkpoint and segments >= S.
func (db *DB) checkpoint() error {
	db.ckptMu.Lock()
	defer db.ckptMu.Unlock()

	// 1. Snapshot.
	db.mu.Lock()
	seg, err := db.log.Rotate()
	if err != nil {
		db.mu.Unlock()
		return fmt.Errorf("rotate log: %w", err)
	}
	db.dirtyMu.Lock()
	dirty, newSeries := db.dirty, db.newSeries
	db.dirty, db.newSeries = nil, nil
	db.dirtyMu.Unlock()
	work := make([]ckptWork, 0, len(dirty))
	var snapErr error
	for _, s := range dirty {
		s.mu.Lock()
		if err := s.sealOOOLocked(); err != nil && snapErr == nil {
			snapErr = err
		}
		w := ckptWork{s: s, sealed: s.mu.sealed[:len(s.mu.sealed):len(s.mu.sealed)]}
		if n := len(s.mu.cur.ts); n > s.mu.curPersisted {
			w.curSeq, w.curTS, w.curVS = s.mu.cur.seq, s.mu.cur.ts[:n:n], s.mu.cur.vs[:n:n]
			s.mu.curPersisted = n
		}
		s.mu.dirty = false
		s.mu.Unlock()
		work = append(work, w)
	}
	pkeys, pdata, err := db.postings.TakeDirty()
	if err != nil && snapErr == nil {
		snapErr = err
	}
	meta := checkpointMeta{walSegment: seg}
	db.seriesMu.RLock()
	meta.nextID = db.nextID
	db.seriesMu.RUnlock()
	meta.nextSeq = db.nextSeq.Load()
	walSize := db.log.Size()
	db.mu.Unlock()
	if snapErr != nil {
		return snapErr
	}

	// 2. Write.
	b := db.pdb.NewBatch()
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
	var written int64
	for _, w := range work {
		for _, c := range w.sealed {
			if err := b.Set(appendChunkKey(kbuf[:0], w.s.id, c.minT, c.seq), c.data, nil); err != nil {
				return err
			}
			written += int64(len(c.data))
		}
		if len(w.curTS) > 0 {
			mc, err := db.encodeChunk(w.curSeq, w.curTS, w.curVS)
			if err != nil {
				return fmt.Errorf("encode open chunk of %s: %w", w.s, err)
			}
			db.pendingBytes.Add(-int64(len(mc.data)))
			if err := b.Set(appendChunkKey(kbuf[:0], w.s.id, mc.minT, mc.seq), mc.data, nil); err != nil {
				return err
			}
		}
	}
	if err := b.Set(metaCheckpoint, meta.marshal(), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := db.pdb.Flush(); err != nil {
		return fmt.Errorf("flush checkpoint: %w", err)
	}

	// 3. Release.
	for _, w := range work {
		if len(w.sealed) == 0 {
			continue
		}
		w.s.mu.Lock()
		rest := w.s.mu.sealed[len(w.sealed):]
		if len(rest) == 0 {
			w.s.mu.sealed = nil
		} else {
			w.s.mu.sealed = append([]*memChunk(nil), rest...)
		}
		w.s.mu.Unlock()
	}
	db.pendingBytes.Add(-written)
	db.walAtCkpt.Store(walSize)
	if err := db.log.RemoveBefore(seg); err != nil {
		return fmt.Errorf("remove old log segments: %w", err)
	}
	db.stats.checkpoints.Add(1)
	return nil
}
