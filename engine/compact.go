package engine

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/eventmetrics/eventmetrics/compact"
	"github.com/eventmetrics/eventmetrics/encode"
	"github.com/eventmetrics/eventmetrics/query"
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
	ChunksBlocked  int   // cold chunks packed into blocks
	BlocksWritten  int   // cold blocks written
	BlobsWritten   int   // of them, blocks whose payloads zstd shrank enough to move into a blob
	RollupsWritten int   // of them, blocks with rollups (Options.Rollups)
	BlocksExpired  int   // cold blocks removed by retention
	BlocksOpened   int   // cold blocks unpacked again because late points overlap them
	BytesBefore    int64 // bytes of the entries rewritten or removed
	BytesAfter     int64 // bytes of the entries written in their place
	Duration       time.Duration
	PointsRewrites int64
}

// maxCompactBatch bounds a compaction batch; each batch holds whole groups,
// so each is atomic on its own.
const maxCompactBatch = 32 << 20

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
	s.ChunksBlocked += o.ChunksBlocked
	s.BlocksWritten += o.BlocksWritten
	s.BlobsWritten += o.BlobsWritten
	s.RollupsWritten += o.RollupsWritten
	s.BlocksExpired += o.BlocksExpired
	s.BlocksOpened += o.BlocksOpened
	s.BytesBefore += o.BytesBefore
	s.BytesAfter += o.BytesAfter
	s.PointsRewrites += o.PointsRewrites
}

// chunkRef is one chunk of the series being compacted, wherever it is.
type chunkRef struct {
	info     compact.Chunk
	hdr      encode.Header
	hdrBytes []byte // its header, CRC included
	data     []byte // its whole bytes, when in hand (merged now, or from a blob)
	hasHdr   bool   // its header is under 0x06
	hasPay   bool   // its payload is under 0x05
	wantHdr  bool   // after this compaction (decided by the plan)
	wantPay  bool
}

// storedBlock is one cold block of the series being compacted.
type storedBlock struct {
	key    []byte // 0x07 key
	info   blockInfo
	chunks []blockChunk
	size   int64 // bytes of the 0x07 value
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
	now := db.clock.nowNanos()
	sp := seriesPlan{db: db, st: &st, cutoff: math.MinInt64, coldCutoff: now - int64(db.opts.ColdAfter)}
	if db.opts.Retention > 0 {
		sp.cutoff = now - int64(db.opts.Retention)
	}
	sp.policy = compact.Policy{Full: db.opts.ChunkPoints, MaxSpan: maxChunkSpan, MaxGroupPoints: 64 * db.opts.ChunkPoints}

	hi, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: appendChunkKey(nil, prefixChunkHdr, from, math.MinInt64, 0), UpperBound: []byte{prefixChunkHdr + 1}})
	if err != nil {
		return st, 0, false, err
	}
	defer hi.Close()
	bi, err := hi.Clone(pebble.CloneOptions{IterOptions: &pebble.IterOptions{LowerBound: appendChunkKey(nil, prefixBlockHdr, from, math.MinInt64, 0), UpperBound: []byte{prefixBlockHdr + 1}}})
	if err != nil {
		return st, 0, false, err
	}
	defer bi.Close()
	sp.b = db.pdb.NewBatch()
	defer func() { sp.b.Close() }()
	commit := func() error {
		if sp.b.Empty() {
			return nil
		}
		var v []byte
		v = binary.AppendUvarint(v, db.nextSeq.Load())
		if err := sp.b.Set(metaSeqFloor, v, nil); err != nil {
			return err
		}
		if err := sp.b.Commit(pebble.NoSync); err != nil {
			return err
		}
		sp.b.Close()
		sp.b = db.pdb.NewBatch()
		return db.flushStore()
	}
	hv, bv := hi.First(), bi.First()
	for scanned := 0; hv || bv; scanned++ {
		// The next series is the smaller id of the two key spaces.
		var id uint64
		switch {
		case !bv:
			id, _, _, _ = parseChunkKey(hi.Key())
		case !hv:
			id, _, _, _ = parseChunkKey(bi.Key())
		default:
			a, _, _, _ := parseChunkKey(hi.Key())
			b, _, _, _ := parseChunkKey(bi.Key())
			id = min(a, b)
		}
		if scanned >= maxSeries {
			if err := commit(); err != nil {
				return st, 0, false, err
			}
			return st, id, false, nil
		}
		sp.reset(id, pinned[id])
		for ; hv; hv = hi.Next() {
			cid, minT, seq, ok := parseChunkKey(hi.Key())
			if !ok {
				return st, 0, false, fmt.Errorf("engine: compact: malformed chunk key %x", hi.Key())
			}
			if cid != id {
				break
			}
			v, err := hi.ValueAndErr()
			if err != nil {
				return st, 0, false, err
			}
			if err := sp.addLoose(minT, seq, v); err != nil {
				return st, 0, false, err
			}
		}
		for ; bv; bv = bi.Next() {
			cid, minT, seq, ok := parseChunkKey(bi.Key())
			if !ok {
				return st, 0, false, fmt.Errorf("engine: compact: malformed block key %x", bi.Key())
			}
			if cid != id {
				break
			}
			v, err := bi.ValueAndErr()
			if err != nil {
				return st, 0, false, err
			}
			if err := sp.addBlock(bi.Key(), minT, seq, v); err != nil {
				return st, 0, false, err
			}
		}
		if err := errors.Join(hi.Error(), bi.Error()); err != nil {
			return st, 0, false, err
		}
		if err := sp.run(); err != nil {
			return st, 0, false, err
		}
		st.SeriesScanned++
		if sp.b.Len() >= maxCompactBatch {
			if err := commit(); err != nil {
				return st, 0, false, err
			}
		}
	}
	if err := errors.Join(hi.Error(), bi.Error()); err != nil {
		return st, 0, false, err
	}
	if err := commit(); err != nil {
		return st, 0, false, err
	}
	return st, 0, true, nil
}

// seriesPlan compacts one series: retention, then unpacking the cold blocks
// that late points overlap, then merging overlapping and undersized chunks,
// then packing cold chunks into blocks; every change goes into one batch.
type seriesPlan struct {
	db                 *DB
	b                  *pebble.Batch
	st                 *CompactStats
	policy             compact.Policy
	cutoff, coldCutoff int64

	id     uint64
	pinned []uint64
	loose  []*chunkRef
	blocks []storedBlock
	kbuf   []byte
}

func (sp *seriesPlan) reset(id uint64, pinned []uint64) {
	sp.id, sp.pinned, sp.loose, sp.blocks = id, pinned, sp.loose[:0], sp.blocks[:0]
}

func (sp *seriesPlan) addLoose(minT int64, seq uint64, v []byte) error {
	h, err := encode.DecodeHeader(v)
	if err != nil {
		return fmt.Errorf("engine: compact: chunk of series %d at %d (seq %d): %w", sp.id, minT, seq, err)
	}
	sp.loose = append(sp.loose, &chunkRef{
		info:     compact.Chunk{MinT: h.MinT, MaxT: h.MaxT, Count: h.Count, Seq: seq, Pinned: slices.Contains(sp.pinned, seq)},
		hdr:      h,
		hdrBytes: slices.Clone(v[:h.HeaderSize]),
		hasHdr:   true,
		hasPay:   true,
	})
	return nil
}

func (sp *seriesPlan) addBlock(key []byte, minT int64, seq uint64, v []byte) error {
	bi, err := parseBlockInfo(v)
	if err == nil {
		bi.body = slices.Clone(bi.body)
		var cs []blockChunk
		cs, _, err = decodeBlockBody(bi, minT, seq, nil, nil)
		sp.blocks = append(sp.blocks, storedBlock{key: slices.Clone(key), info: bi, chunks: cs, size: int64(len(v))})
	}
	if err != nil {
		return fmt.Errorf("engine: compact: block of series %d at %d (seq %d): %w", sp.id, minT, seq, err)
	}
	return nil
}

func (sp *seriesPlan) run() error {
	st := sp.st
	// Retention: a block wholly expired goes; one partly expired is
	// unpacked, so that its expired chunks go and the rest is packed again.
	var blocks []storedBlock
	for _, bl := range sp.blocks {
		switch {
		case bl.info.maxT < sp.cutoff:
			st.BlocksExpired++
			st.ChunksExpired += len(bl.chunks)
			if err := sp.deleteBlock(bl); err != nil {
				return err
			}
		case bl.info.minT < sp.cutoff && slices.ContainsFunc(bl.chunks, func(m blockChunk) bool { return m.hdr.MaxT < sp.cutoff }):
			if err := sp.openBlock(bl); err != nil {
				return err
			}
		default:
			blocks = append(blocks, bl)
		}
	}
	keep := sp.loose[:0]
	for _, c := range sp.loose {
		if c.info.MaxT < sp.cutoff && !c.info.Pinned {
			st.ChunksExpired++
			if err := sp.apply(c); err != nil { // wants nothing: removed
				return err
			}
			continue
		}
		keep = append(keep, c)
	}
	sp.loose = keep
	// Late points overlapping a chunk of a block: unpack the block, so
	// that they merge. Blocks kept get the rollup tiers they lack.
	nLoose := len(sp.loose)
	for _, bl := range blocks {
		if !sp.overlapsBlock(sp.loose[:nLoose], bl) {
			if err := sp.addMissingRollups(bl); err != nil {
				return err
			}
			continue
		}
		if err := sp.openBlock(bl); err != nil {
			return err
		}
	}
	slices.SortFunc(sp.loose, func(a, b *chunkRef) int {
		if c := cmp.Compare(a.info.MinT, b.info.MinT); c != 0 {
			return c
		}
		return cmp.Compare(a.info.Seq, b.info.Seq)
	})
	// Merge overlapping and undersized runs.
	infos := make([]compact.Chunk, len(sp.loose))
	for i, c := range sp.loose {
		infos[i] = c.info
	}
	var merged []*chunkRef
	gone := make([]bool, len(sp.loose))
	for _, g := range compact.Groups(infos, sp.policy) {
		out, err := sp.merge(g)
		if err != nil {
			return err
		}
		for _, k := range g {
			gone[k] = true
			st.ChunksMerged++
			if err := sp.apply(sp.loose[k]); err != nil {
				return err
			}
		}
		merged = append(merged, out...)
	}
	final := merged
	for i, c := range sp.loose {
		if !gone[i] {
			final = append(final, c)
		}
	}
	slices.SortFunc(final, func(a, b *chunkRef) int {
		if c := cmp.Compare(a.info.MinT, b.info.MinT); c != 0 {
			return c
		}
		return cmp.Compare(a.info.Seq, b.info.Seq)
	})
	// Pack cold chunks into blocks; everything else stays (or becomes) loose.
	var run []*chunkRef
	flush := func() error {
		defer func() { run = run[:0] }()
		if len(run) < 2 {
			for _, c := range run {
				c.wantHdr, c.wantPay = true, true
			}
			return nil
		}
		return sp.pack(run)
	}
	for _, c := range final {
		cold := !c.info.Pinned && c.info.MaxT < sp.coldCutoff
		if len(run) > 0 && (!cold || len(run) == maxBlockChunks || c.info.MaxT-run[0].info.MinT > maxBlockSpan) {
			if err := flush(); err != nil {
				return err
			}
		}
		if cold {
			run = append(run, c)
			continue
		}
		c.wantHdr, c.wantPay = true, true
	}
	if err := flush(); err != nil {
		return err
	}
	for _, c := range final {
		if err := sp.apply(c); err != nil {
			return err
		}
	}
	return nil
}

// overlapsBlock reports whether an unpinned loose chunk overlaps a chunk of
// bl (sharing only a boundary timestamp is no overlap, as in compact.Groups).
func (sp *seriesPlan) overlapsBlock(loose []*chunkRef, bl storedBlock) bool {
	for _, c := range loose {
		if c.info.Pinned || c.info.MinT >= bl.info.maxT || c.info.MaxT <= bl.info.minT {
			continue
		}
		for _, m := range bl.chunks {
			if c.info.MinT < m.hdr.MaxT && m.hdr.MinT < c.info.MaxT {
				return true
			}
		}
	}
	return false
}

// bytesOf returns a chunk's whole encoded bytes.
func (sp *seriesPlan) bytesOf(c *chunkRef) ([]byte, error) {
	if c.data != nil {
		return c.data, nil
	}
	sp.kbuf = appendChunkKey(sp.kbuf[:0], prefixChunk, sp.id, c.info.MinT, c.info.Seq)
	pay, err := sp.db.getValue(sp.kbuf)
	if err != nil {
		return nil, err
	}
	if pay == nil {
		return nil, fmt.Errorf("engine: compact: chunk of series %d at %d (seq %d) has no payload", sp.id, c.info.MinT, c.info.Seq)
	}
	data := append(slices.Clip(c.hdrBytes), pay...)
	if len(data) != c.hdr.Size {
		return nil, fmt.Errorf("engine: compact: chunk of series %d at %d (seq %d): %d bytes, its header says %d: %w", sp.id, c.info.MinT, c.info.Seq, len(data), c.hdr.Size, encode.ErrCorrupt)
	}
	return data, nil
}

// apply brings a chunk's loose entries to what the plan wants.
func (sp *seriesPlan) apply(c *chunkRef) error {
	hs := c.hdr.HeaderSize
	if c.wantHdr != c.hasHdr {
		sp.kbuf = appendChunkKey(sp.kbuf[:0], prefixChunkHdr, sp.id, c.info.MinT, c.info.Seq)
		if err := sp.setOrDelete(c.wantHdr, sp.kbuf, c.hdrBytes); err != nil {
			return err
		}
		sp.account(c.wantHdr, hs)
	}
	if c.wantPay != c.hasPay {
		var pay []byte
		if c.wantPay {
			data, err := sp.bytesOf(c)
			if err != nil {
				return err
			}
			pay = data[hs:]
		}
		sp.kbuf = appendChunkKey(sp.kbuf[:0], prefixChunk, sp.id, c.info.MinT, c.info.Seq)
		if err := sp.setOrDelete(c.wantPay, sp.kbuf, pay); err != nil {
			return err
		}
		sp.account(c.wantPay, c.hdr.Size-hs)
	}
	c.hasHdr, c.hasPay = c.wantHdr, c.wantPay
	return nil
}

func (sp *seriesPlan) setOrDelete(set bool, key, v []byte) error {
	if set {
		return sp.b.Set(key, v, nil)
	}
	return sp.b.Delete(key, nil)
}

func (sp *seriesPlan) account(written bool, n int) {
	if written {
		sp.st.BytesAfter += int64(n)
	} else {
		sp.st.BytesBefore += int64(n)
	}
}

// deleteBlock removes a block with its chunks (retention).
func (sp *seriesPlan) deleteBlock(bl storedBlock) error {
	if err := sp.removeBlockEntries(bl); err != nil {
		return err
	}
	if bl.info.flags&blockFlagBlob == 0 {
		for _, m := range bl.chunks {
			sp.kbuf = appendChunkKey(sp.kbuf[:0], prefixChunk, sp.id, m.hdr.MinT, m.seq)
			if err := sp.b.Delete(sp.kbuf, nil); err != nil {
				return err
			}
			sp.account(false, m.hdr.Size-m.hdr.HeaderSize)
		}
	}
	return nil
}

// removeBlockEntries deletes a block's 0x07 entry, its blob and its
// rollups.
func (sp *seriesPlan) removeBlockEntries(bl storedBlock) error {
	if err := sp.b.Delete(bl.key, nil); err != nil {
		return err
	}
	// Its rollup tiers, whatever widths they have: one range tombstone
	// (none may exist; that is harmless).
	lo := append([]byte{prefixRollup}, bl.key[1:]...)
	hi := append([]byte{prefixRollup}, bl.key[1:]...)
	hi = binary.BigEndian.AppendUint64(hi, ^uint64(0))
	if err := sp.b.DeleteRange(lo, append(hi, 0), nil); err != nil {
		return err
	}
	sp.account(false, int(bl.size))
	if bl.info.flags&blockFlagBlob != 0 {
		sp.kbuf = append(append(sp.kbuf[:0], prefixBlockData), bl.key[1:]...)
		if err := sp.b.Delete(sp.kbuf, nil); err != nil {
			return err
		}
		sp.account(false, blockPayloadLen(bl.chunks))
	}
	return nil
}

// openBlock unpacks a block: its chunks join the loose ones (their payloads
// stay where they are, or come out of the blob).
func (sp *seriesPlan) openBlock(bl storedBlock) error {
	var blob []byte
	if bl.info.flags&blockFlagBlob != 0 {
		bk := append([]byte{prefixBlockData}, bl.key[1:]...)
		v, err := sp.db.getValue(bk)
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("engine: compact: block of series %d at %d has no blob: %w", sp.id, bl.info.minT, encode.ErrCorrupt)
		}
		if blob, err = decodeBlob(v, blockPayloadLen(bl.chunks), nil); err != nil {
			return fmt.Errorf("engine: compact: block of series %d at %d: %w", sp.id, bl.info.minT, err)
		}
	}
	if err := sp.removeBlockEntries(bl); err != nil {
		return err
	}
	sp.st.BlocksOpened++
	for _, m := range bl.chunks {
		c := &chunkRef{
			info:     compact.Chunk{MinT: m.hdr.MinT, MaxT: m.hdr.MaxT, Count: m.hdr.Count, Seq: m.seq},
			hdr:      m.hdr,
			hdrBytes: slices.Clone(m.hdrBytes),
			hasPay:   blob == nil,
		}
		if blob != nil {
			n := m.hdr.Size - m.hdr.HeaderSize
			c.data = append(slices.Clone(m.hdrBytes), blob[m.payOff:m.payOff+n]...)
		}
		sp.loose = append(sp.loose, c)
	}
	return nil
}

// merge rewrites the chunks sp.loose[g...] into full, non-overlapping
// chunks with new seqs (returned; written by apply).
func (sp *seriesPlan) merge(g []int) ([]*chunkRef, error) {
	db := sp.db
	tss := make([][]int64, 0, len(g))
	vss := make([][]float64, 0, len(g))
	// Runs in creation order (seq), so equal timestamps keep write order.
	order := slices.Clone(g)
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(sp.loose[a].info.Seq, sp.loose[b].info.Seq) })
	for _, k := range order {
		c := sp.loose[k]
		data, err := sp.bytesOf(c)
		if err != nil {
			return nil, err
		}
		_, ts, vs, err := encode.DecodeAll(data, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("engine: compact: chunk of series %d at %d (seq %d): %w", sp.id, c.info.MinT, c.info.Seq, err)
		}
		tss, vss = append(tss, ts), append(vss, vs)
	}
	ts, vs := compact.Merge(tss, vss)
	var out []*chunkRef
	prev := 0
	for _, end := range compact.Cut(ts, db.opts.ChunkPoints, maxChunkSpan) {
		mc, err := db.encodeChunk(db.nextSeq.Add(1)-1, ts[prev:end], vs[prev:end])
		if err != nil {
			return nil, err
		}
		h := mc.hdr
		out = append(out, &chunkRef{
			info:     compact.Chunk{MinT: h.MinT, MaxT: h.MaxT, Count: h.Count, Seq: mc.seq},
			hdr:      h,
			hdrBytes: mc.data[:h.HeaderSize:h.HeaderSize],
			data:     mc.data,
		})
		sp.st.ChunksWritten++
		prev = end
	}
	sp.st.PointsRewrites += int64(len(ts))
	return out, nil
}

// writeRollups writes the rollup tiers of the given widths for the block
// whose key suffix is given (its chunks' bytes, seqs and headers): the
// tier's windows, or a marker saying the tier does not pay (its windows
// would take more than half the size of the points) or cannot exist (the
// block's points are at the ends of time), so that no later compaction
// tries again.
func (sp *seriesPlan) writeRollups(suffix []byte, seqs []uint64, chunks [][]byte, hdrs []encode.Header, widths []int64) error {
	if len(widths) == 0 {
		return nil
	}
	relErr := sp.db.opts.RollupAccuracy
	tiers, err := buildRollupTiers(seqs, chunks, widths, relErr)
	if err != nil {
		return fmt.Errorf("engine: compact: rollups of series %d at %d: %w", sp.id, hdrs[0].MinT, err)
	}
	pays := 0
	for _, h := range hdrs {
		pays += h.Size - h.HeaderSize
	}
	wrote := false
	for _, w := range widths {
		rv := rollupSkipped
		if i := slices.IndexFunc(tiers, func(t query.RollupTier) bool { return t.Width == w }); i >= 0 {
			if v := encodeRollupValue(rollupBody(relErr, tiers[i])); len(v) <= pays/2 {
				rv, wrote = v, true
			}
		}
		sp.kbuf = appendRollupKey(sp.kbuf[:0], suffix, w)
		if err := sp.b.Set(sp.kbuf, rv, nil); err != nil {
			return err
		}
		sp.account(true, len(rv))
	}
	if wrote {
		sp.st.RollupsWritten++
	}
	return nil
}

// addMissingRollups gives a stored block the configured tiers it lacks
// (rollups enabled or changed after it was written).
func (sp *seriesPlan) addMissingRollups(bl storedBlock) error {
	var missing []int64
	for _, d := range sp.db.opts.Rollups {
		sp.kbuf = appendRollupKey(sp.kbuf[:0], bl.key[1:], int64(d))
		v, err := sp.db.getValue(sp.kbuf)
		if err != nil {
			return err
		}
		if v == nil {
			missing = append(missing, int64(d))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var blob []byte
	if bl.info.flags&blockFlagBlob != 0 {
		v, err := sp.db.getValue(append([]byte{prefixBlockData}, bl.key[1:]...))
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("engine: compact: block of series %d at %d has no blob: %w", sp.id, bl.info.minT, encode.ErrCorrupt)
		}
		if blob, err = decodeBlob(v, blockPayloadLen(bl.chunks), nil); err != nil {
			return fmt.Errorf("engine: compact: block of series %d at %d: %w", sp.id, bl.info.minT, err)
		}
	}
	seqs := make([]uint64, len(bl.chunks))
	chunks := make([][]byte, len(bl.chunks))
	hdrs := make([]encode.Header, len(bl.chunks))
	for i, m := range bl.chunks {
		n := m.hdr.Size - m.hdr.HeaderSize
		c := &chunkRef{info: compact.Chunk{MinT: m.hdr.MinT, Seq: m.seq}, hdr: m.hdr, hdrBytes: m.hdrBytes}
		if blob != nil {
			c.data = append(slices.Clone(m.hdrBytes), blob[m.payOff:m.payOff+n]...)
		}
		data, err := sp.bytesOf(c)
		if err != nil {
			return err
		}
		seqs[i], chunks[i], hdrs[i] = m.seq, data, m.hdr
	}
	return sp.writeRollups(bl.key[1:], seqs, chunks, hdrs, missing)
}

// pack writes a run of cold chunks as one block.
func (sp *seriesPlan) pack(run []*chunkRef) error {
	seqs := make([]uint64, len(run))
	chunks := make([][]byte, len(run))
	hdrs := make([]encode.Header, len(run))
	for i, c := range run {
		data, err := sp.bytesOf(c)
		if err != nil {
			return err
		}
		seqs[i], chunks[i], hdrs[i] = c.info.Seq, data, c.hdr
		c.data = data
	}
	eb := encodeBlock(seqs, chunks, hdrs)
	sp.kbuf = appendChunkKey(sp.kbuf[:0], prefixBlockHdr, sp.id, run[0].info.MinT, run[0].info.Seq)
	if err := sp.b.Set(sp.kbuf, eb.hdr, nil); err != nil {
		return err
	}
	sp.account(true, len(eb.hdr))
	if eb.blob != nil {
		sp.kbuf[0] = prefixBlockData
		if err := sp.b.Set(sp.kbuf, eb.blob, nil); err != nil {
			return err
		}
		sp.account(true, len(eb.blob))
		sp.st.BlobsWritten++
	}
	if err := sp.writeRollups(slices.Clone(sp.kbuf[1:]), seqs, chunks, hdrs, rollupWidths(sp.db.opts.Rollups)); err != nil {
		return err
	}
	for _, c := range run {
		c.wantHdr, c.wantPay = false, eb.blob == nil
	}
	sp.st.BlocksWritten++
	sp.st.ChunksBlocked += len(run)
	return nil
}
