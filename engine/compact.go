package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/eventmetrics/eventmetrics/compact"
	"github.com/eventmetrics/eventmetrics/encode"
)

// metaSeqFloor records the highest chunk seq a compaction has used, so that
// seqs are never reused after a crash even if no checkpoint followed.
// Value: uvarint. Part of the format: do not change.
var metaSeqFloor = []byte{prefixMeta, 's', 'e', 'q'}

// CompactStats reports what a compaction did.
type CompactStats struct {
	SeriesScanned  int
	ChunksMerged   int   // chunks rewritten into fewer, non-overlapping ones
	ChunksWritten  int   // chunks written in their place
	ChunksExpired  int   // chunks removed by retention
	BytesBefore    int64 // encoded bytes of the chunks rewritten or removed
	BytesAfter     int64 // encoded bytes of the chunks written
	Duration       time.Duration
	PointsRewrites int64
}

// maxCompactBatch bounds a compaction batch; each batch holds whole groups,
// so each is atomic on its own.
const maxCompactBatch = 32 << 20

type storedChunk struct {
	key  []byte // header key (0x06)
	info compact.Chunk
	size int64
}

// compactChunks merges each series' overlapping and undersized chunks into
// full, non-overlapping ones, and removes chunks wholly older than the
// retention. Each rewrite (new chunks written, old ones deleted) is one
// atomic pebble batch, durable before the next starts, so a crash at any
// moment loses and doubles nothing. Chunks still open in memory (a partial
// version written by a checkpoint) are left alone. ckptMu is held, so no
// checkpoint runs meanwhile.
func (db *DB) compactChunks() (CompactStats, error) {
	return db.compactPaced(nil)
}

// compactPaced runs a compaction slice by slice. With a stop channel it is
// the background compaction: after each slice it sleeps as long as the
// slice took (at most half of one core, so that ingest stays fast), and it
// returns early when stop closes.
func (db *DB) compactPaced(stop <-chan struct{}) (CompactStats, error) {
	start := time.Now()
	var total CompactStats
	from := uint64(0)
	for {
		t0 := time.Now()
		db.ckptMu.Lock()
		st, next, done, err := db.compactSlice(from, compactSliceSeries)
		db.ckptMu.Unlock()
		total.add(st)
		if err != nil || done {
			total.Duration = time.Since(start)
			return total, err
		}
		from = next
		if stop != nil {
			select {
			case <-stop:
				total.Duration = time.Since(start)
				return total, nil
			case <-time.After(time.Since(t0)):
			}
		}
	}
}

// compactSliceSeries is the number of series one slice of a compaction
// handles while it holds the checkpoint lock.
const compactSliceSeries = 2000

func (s *CompactStats) add(o CompactStats) {
	s.SeriesScanned += o.SeriesScanned
	s.ChunksMerged += o.ChunksMerged
	s.ChunksWritten += o.ChunksWritten
	s.ChunksExpired += o.ChunksExpired
	s.BytesBefore += o.BytesBefore
	s.BytesAfter += o.BytesAfter
	s.PointsRewrites += o.PointsRewrites
}

// compactSlice compacts the series with ids >= from, at most maxSeries of
// them, and returns where to go on (done when no series is left). ckptMu
// is held, so no checkpoint changes what is pinned meanwhile.
func (db *DB) compactSlice(from uint64, maxSeries int) (st CompactStats, next uint64, done bool, err error) {
	// Chunks still in memory (the open chunk, and sealed chunks not yet
	// written): pebble may hold a partial version of them, which the next
	// checkpoint will overwrite under the same key. Leave those alone.
	pinned := map[uint64][]uint64{}
	db.seriesMu.RLock()
	live := make([]*Series, 0, len(db.byID))
	for _, p := range db.byID {
		if s := p.Value(); s != nil {
			live = append(live, s)
		}
	}
	db.seriesMu.RUnlock()
	db.log.Do(func() {
		for _, s := range live {
			var seqs []uint64
			if len(s.head.cur.ts) > 0 {
				seqs = append(seqs, s.head.cur.seq)
			}
			for _, m := range s.head.sealed {
				seqs = append(seqs, m.seq)
			}
			if len(seqs) > 0 {
				pinned[s.id] = seqs
			}
		}
	})
	cutoff := int64(math.MinInt64)
	if db.opts.Retention > 0 {
		cutoff = db.clock.nowNanos() - int64(db.opts.Retention)
	}
	policy := compact.Policy{Full: db.opts.ChunkPoints, MaxSpan: maxChunkSpan, MaxGroupPoints: 64 * db.opts.ChunkPoints}

	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: appendChunkKey(nil, prefixChunkHdr, from, math.MinInt64, 0), UpperBound: []byte{prefixChunkHdr + 1}})
	if err != nil {
		return st, 0, false, err
	}
	defer it.Close()
	b := db.pdb.NewBatch()
	defer func() { b.Close() }()
	commit := func() error {
		if b.Empty() {
			return nil
		}
		var v []byte
		v = binary.AppendUvarint(v, db.nextSeq.Load())
		if err := b.Set(metaSeqFloor, v, nil); err != nil {
			return err
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return err
		}
		b.Close()
		b = db.pdb.NewBatch()
		return db.flushStore()
	}
	var cur []storedChunk
	curID := uint64(0)
	process := func() error {
		if len(cur) == 0 {
			return nil
		}
		st.SeriesScanned++
		keep := cur[:0:0]
		for _, c := range cur {
			if c.info.MaxT < cutoff && !c.info.Pinned {
				if err := deleteChunk(b, c.key); err != nil {
					return err
				}
				st.ChunksExpired++
				st.BytesBefore += c.size
				continue
			}
			keep = append(keep, c)
		}
		infos := make([]compact.Chunk, len(keep))
		for i, c := range keep {
			infos[i] = c.info
		}
		for _, g := range compact.Groups(infos, policy) {
			if err := db.mergeGroup(b, curID, keep, g, &st); err != nil {
				return err
			}
		}
		if b.Len() >= maxCompactBatch {
			return commit()
		}
		return nil
	}
	for it.First(); it.Valid(); it.Next() {
		id, minT, seq, ok := parseChunkKey(it.Key())
		if !ok {
			return st, 0, false, fmt.Errorf("engine: compact: malformed chunk key %x", it.Key())
		}
		if id != curID {
			if err := process(); err != nil {
				return st, 0, false, err
			}
			if st.SeriesScanned >= maxSeries {
				if err := commit(); err != nil {
					return st, 0, false, err
				}
				return st, id, false, nil
			}
			cur, curID = cur[:0], id
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return st, 0, false, err
		}
		h, err := encode.DecodeHeader(v)
		if err != nil {
			return st, 0, false, fmt.Errorf("engine: compact: chunk of series %d at %d: %w", id, minT, err)
		}
		pin := slices.Contains(pinned[id], seq)
		cur = append(cur, storedChunk{
			key:  append([]byte(nil), it.Key()...),
			info: compact.Chunk{MinT: h.MinT, MaxT: h.MaxT, Count: h.Count, Seq: seq, Pinned: pin},
			size: int64(h.Size),
		})
	}
	if err := it.Error(); err != nil {
		return st, 0, false, err
	}
	if err := process(); err != nil {
		return st, 0, false, err
	}
	if err := commit(); err != nil {
		return st, 0, false, err
	}
	return st, 0, true, nil
}

func deleteChunk(b *pebble.Batch, hdrKey []byte) error {
	if err := b.Delete(hdrKey, nil); err != nil {
		return err
	}
	pk := append([]byte{prefixChunk}, hdrKey[1:]...)
	return b.Delete(pk, nil)
}

// mergeGroup rewrites the chunks keep[g...] of series id into full,
// non-overlapping chunks with new seqs, in batch b.
func (db *DB) mergeGroup(b *pebble.Batch, id uint64, keep []storedChunk, g []int, st *CompactStats) error {
	tss := make([][]int64, 0, len(g))
	vss := make([][]float64, 0, len(g))
	// Runs in creation order (seq), so equal timestamps keep write order.
	order := append([]int(nil), g...)
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && keep[order[j]].info.Seq < keep[order[j-1]].info.Seq; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	for _, k := range order {
		c := keep[k]
		hdr, err := db.getValue(c.key)
		if err != nil {
			return err
		}
		pay, err := db.getValue(append([]byte{prefixChunk}, c.key[1:]...))
		if err != nil {
			return err
		}
		if hdr == nil || pay == nil {
			return fmt.Errorf("engine: compact: chunk of series %d at %d (seq %d) is incomplete", id, c.info.MinT, c.info.Seq)
		}
		_, ts, vs, err := encode.DecodeAll(append(hdr, pay...), nil, nil)
		if err != nil {
			return fmt.Errorf("engine: compact: chunk of series %d at %d (seq %d): %w", id, c.info.MinT, c.info.Seq, err)
		}
		tss, vss = append(tss, ts), append(vss, vs)
	}
	ts, vs := compact.Merge(tss, vss)
	prev := 0
	for _, end := range compact.Cut(ts, db.opts.ChunkPoints, maxChunkSpan) {
		mc, err := db.encodeChunk(db.nextSeq.Add(1)-1, ts[prev:end], vs[prev:end])
		if err != nil {
			return err
		}
		var kbuf []byte
		if err := putChunk(b, &kbuf, id, mc); err != nil {
			return err
		}
		st.ChunksWritten++
		st.BytesAfter += int64(len(mc.data))
		prev = end
	}
	for _, k := range g {
		if err := deleteChunk(b, keep[k].key); err != nil {
			return err
		}
		st.ChunksMerged++
		st.BytesBefore += keep[k].size
	}
	st.PointsRewrites += int64(len(ts))
	return nil
}
