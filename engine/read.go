package engine

import (
	"bytes"
	"fmt"
	"math"
	"sort"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/eventmetrics/eventmetrics/encode"
	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/query"
)

// Select implements query.Source.
func (db *DB) Select(name string, ms []query.Matcher, mint, maxt int64, hints query.Hints, fn query.SeriesFunc) error {
	db.readMu.RLock()
	defer db.readMu.RUnlock()
	if db.closed.Load() {
		return ErrClosed
	}
	if db.opts.Retention > 0 {
		if lo := db.clock.nowNanos() - int64(db.opts.Retention); lo > mint {
			mint = lo
		}
	}
	if mint > maxt {
		return nil
	}
	ids, err := db.postings.Select(name, ms)
	if err != nil {
		return fmt.Errorf("engine: select: %w", err)
	}
	return db.selectIDs(ids, mint, maxt, hints, fn)
}

// seriesSource is a query.Source over one series.
type seriesSource struct {
	db *DB
	id uint64
}

func (s seriesSource) Select(_ string, _ []query.Matcher, mint, maxt int64, hints query.Hints, fn query.SeriesFunc) error {
	s.db.readMu.RLock()
	defer s.db.readMu.RUnlock()
	if s.db.closed.Load() {
		return ErrClosed
	}
	return s.db.selectIDs(roaring.BitmapOf(uint32(s.id)), mint, maxt, hints, fn)
}

// selectIDs is Select over a set of series ids; readMu is held.
func (db *DB) selectIDs(ids *roaring.Bitmap, mint, maxt int64, hints query.Hints, fn query.SeriesFunc) error {
	if ids.IsEmpty() {
		return nil
	}
	// Snapshot every head before opening the pebble iterator: a checkpoint
	// drops chunks from memory only after pebble has them, so this order
	// sees every chunk at least once (duplicates are skipped by seq).
	type sel struct {
		id     uint64
		s      *Series
		labels []index.Label
		name   string
		head   headSnapshot
	}
	sels := make([]sel, 0, ids.GetCardinality())
	it := ids.Iterator()
	db.seriesMu.RLock()
	for it.HasNext() {
		id := uint64(it.Next())
		sels = append(sels, sel{id: id, s: db.lookupIDLocked(id)})
	}
	db.seriesMu.RUnlock()
	db.log.Do(func() {
		for i := range sels {
			if s := sels[i].s; s != nil {
				sels[i].head = s.snapshot()
				sels[i].name, sels[i].labels = s.name, s.labels
			}
		}
	})
	iter, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: appendChunkKey(nil, prefixChunkHdr, sels[0].id, math.MinInt64, 0),
		UpperBound: chunkSeriesEnd(nil, sels[len(sels)-1].id, math.MaxInt64),
	})
	if err != nil {
		return fmt.Errorf("engine: select: %w", err)
	}
	defer iter.Close()
	// Blocks and payloads are read through clones: the same view of the
	// store as the headers, whatever compactions commit meanwhile.
	biter, err := iter.Clone(pebble.CloneOptions{IterOptions: &pebble.IterOptions{
		LowerBound: appendChunkKey(nil, prefixBlockHdr, sels[0].id, math.MinInt64, 0),
		UpperBound: append([]byte{prefixBlockHdr}, chunkSeriesEnd(nil, sels[len(sels)-1].id, math.MaxInt64)[1:]...),
	}})
	if err != nil {
		return fmt.Errorf("engine: select: %w", err)
	}
	defer biter.Close()
	ci := &chunkIter{db: db, iter: iter, biter: biter, mint: mint, maxt: maxt}
	defer ci.close()
	for i := range sels {
		sl := &sels[i]
		if sl.s == nil && hints.Labels {
			if sl.name, sl.labels, err = db.labelsOf(sl.id); err != nil {
				return fmt.Errorf("engine: select: %w", err)
			}
		}
		ci.reset(sl.id, &sl.head)
		if err := fn(sl.id, sl.name, sl.labels, ci); err != nil {
			return err
		}
	}
	return nil
}

// chunkIter yields the chunks of one series: first those in cold blocks,
// then the loose ones in pebble (in key order, skipping any with a fresher
// copy in memory), then the head's. It reads chunk headers only; Data
// fetches a chunk's payload when the points are needed.
type chunkIter struct {
	db         *DB
	iter       *pebble.Iterator // over chunk headers
	biter      *pebble.Iterator // over cold blocks (a clone of iter)
	piter      *pebble.Iterator // over chunk payloads, cloned on first use
	xiter      *pebble.Iterator // over block blobs, cloned on first use
	riter      *pebble.Iterator // over block rollups, cloned on first use
	mint, maxt int64
	id         uint64
	head       *headSnapshot
	end        []byte
	start      []byte
	pkey       []byte
	scratch    []byte
	phase      int // see next
	idx        int
	mem        *memChunk // the current chunk, when from memory
	cur        query.Chunk
	err        error
	tts        []int64 // scratch for chunks trimmed at the retention cutoff
	tvs        []float64

	// The current block (phase 1).
	bkey     []byte
	bflags   byte
	bchunks  []blockChunk
	bidx     int  // next chunk of bchunks
	inBlock  bool // the current chunk is bchunks[bidx-1]
	bbuf     []byte
	blobKey  []byte // the block whose blob is in blob
	blob     []byte
	blobBuf  []byte
	bstarted bool
	// Rollups (scratch).
	rollup query.Rollup
	rbuf   []byte
}

// retentionTrim reports whether a chunk starting at minT must be cut at
// c.mint: with a retention, points older than the cutoff are gone from
// queries at once, even before compaction deletes them.
func (c *chunkIter) retentionTrim(minT int64) bool {
	return c.db.opts.Retention > 0 && minT < c.mint
}

// trim turns the current chunk into raw points at or after c.mint.
func (c *chunkIter) trim() bool {
	ts, vs := c.cur.TS, c.cur.VS
	if c.cur.Encoded {
		data, err := c.Data()
		if err != nil {
			c.err = err
			return false
		}
		_, c.tts, c.tvs, err = encode.DecodeAll(data, c.tts[:0], c.tvs[:0])
		if err != nil {
			c.err = fmt.Errorf("engine: chunk of series %d at %d (seq %d): %w", c.id, c.cur.MinT, c.cur.Seq, err)
			return false
		}
		ts, vs = c.tts, c.tvs
	}
	i := sort.Search(len(ts), func(i int) bool { return ts[i] >= c.mint })
	ts, vs = ts[i:], vs[i:]
	c.mem = nil
	c.cur = query.Chunk{Seq: c.cur.Seq, TS: ts, VS: vs, Block: c.cur.Block}
	if len(ts) == 0 {
		return false
	}
	c.cur.MinT, c.cur.MaxT = ts[0], ts[len(ts)-1]
	return true
}

func (c *chunkIter) reset(id uint64, h *headSnapshot) {
	c.id, c.head = id, h
	c.start = chunkSeekStart(c.start[:0], id, c.mint)
	c.end = chunkSeriesEnd(c.end[:0], id, c.maxt)
	c.phase, c.idx, c.err, c.mem = 0, 0, nil, nil
	c.bchunks, c.bidx, c.inBlock, c.bstarted = c.bchunks[:0], 0, false, false
}

func (c *chunkIter) close() {
	for _, it := range []*pebble.Iterator{c.piter, c.xiter, c.riter} {
		if it != nil {
			it.Close()
		}
	}
}

func (c *chunkIter) At() *query.Chunk { return &c.cur }
func (c *chunkIter) Err() error       { return c.err }

// Data returns the encoded bytes of the current chunk.
func (c *chunkIter) Data() ([]byte, error) {
	if !c.cur.Encoded {
		return nil, fmt.Errorf("engine: chunk of series %d is not encoded", c.id)
	}
	if c.mem != nil {
		return c.mem.data, nil
	}
	var hdr []byte
	if c.inBlock {
		m := &c.bchunks[c.bidx-1]
		hdr = m.hdrBytes
		if c.bflags&blockFlagBlob != 0 {
			blob, err := c.blockBlob()
			if err != nil {
				return nil, err
			}
			c.scratch = append(append(c.scratch[:0], hdr...), blob[m.payOff:m.payOff+m.hdr.Size-m.hdr.HeaderSize]...)
			return c.scratch, nil
		}
	} else {
		h, err := c.iter.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("engine: read chunk of series %d at %d: %w", c.id, c.cur.MinT, err)
		}
		hdr = h
	}
	if c.piter == nil {
		it, err := c.iter.Clone(pebble.CloneOptions{IterOptions: &pebble.IterOptions{LowerBound: []byte{prefixChunk}, UpperBound: []byte{prefixChunk + 1}}})
		if err != nil {
			return nil, fmt.Errorf("engine: read chunk of series %d: %w", c.id, err)
		}
		c.piter = it
	}
	c.pkey = appendChunkKey(c.pkey[:0], prefixChunk, c.id, c.cur.MinT, c.cur.Seq)
	if !c.piter.SeekGE(c.pkey) || !bytes.Equal(c.piter.Key(), c.pkey) {
		if err := c.piter.Error(); err != nil {
			return nil, fmt.Errorf("engine: read chunk of series %d at %d: %w", c.id, c.cur.MinT, err)
		}
		return nil, fmt.Errorf("engine: chunk of series %d at %d (seq %d) has a header but no payload", c.id, c.cur.MinT, c.cur.Seq)
	}
	p, err := c.piter.ValueAndErr()
	if err != nil {
		return nil, fmt.Errorf("engine: read chunk of series %d at %d: %w", c.id, c.cur.MinT, err)
	}
	c.scratch = append(append(c.scratch[:0], hdr...), p...)
	return c.scratch, nil
}

// blockBlob returns the decompressed payloads of the current block (kept
// while the iterator stays in that block).
func (c *chunkIter) blockBlob() ([]byte, error) {
	if c.blob != nil && bytes.Equal(c.blobKey, c.bkey) {
		return c.blob, nil
	}
	if c.xiter == nil {
		it, err := c.iter.Clone(pebble.CloneOptions{IterOptions: &pebble.IterOptions{LowerBound: []byte{prefixBlockData}, UpperBound: []byte{prefixBlockData + 1}}})
		if err != nil {
			return nil, fmt.Errorf("engine: read block of series %d: %w", c.id, err)
		}
		c.xiter = it
	}
	c.pkey = append(append(c.pkey[:0], prefixBlockData), c.bkey[1:]...)
	if !c.xiter.SeekGE(c.pkey) || !bytes.Equal(c.xiter.Key(), c.pkey) {
		if err := c.xiter.Error(); err != nil {
			return nil, fmt.Errorf("engine: read block of series %d: %w", c.id, err)
		}
		return nil, fmt.Errorf("engine: block of series %d at %d has no blob: %w", c.id, c.bchunks[0].hdr.MinT, encode.ErrCorrupt)
	}
	v, err := c.xiter.ValueAndErr()
	if err != nil {
		return nil, fmt.Errorf("engine: read block of series %d: %w", c.id, err)
	}
	c.blob = nil
	b, err := decodeBlob(v, blockPayloadLen(c.bchunks), c.blobBuf)
	c.blobBuf = b
	if err != nil {
		return nil, fmt.Errorf("engine: block of series %d at %d: %w", c.id, c.bchunks[0].hdr.MinT, err)
	}
	c.blob, c.blobKey = b, append(c.blobKey[:0], c.bkey...)
	return c.blob, nil
}

// Rollup implements query.RollupIterator: a tier of the rollups of the
// current chunk's block.
func (c *chunkIter) Rollup(accept func(width int64) bool) (*query.Rollup, error) {
	if !c.inBlock {
		return nil, nil
	}
	if c.riter == nil {
		it, err := c.iter.Clone(pebble.CloneOptions{IterOptions: &pebble.IterOptions{LowerBound: []byte{prefixRollup}, UpperBound: []byte{prefixRollup + 1}}})
		if err != nil {
			return nil, fmt.Errorf("engine: read rollups of series %d: %w", c.id, err)
		}
		c.riter = it
	}
	// The configured tiers, coarsest first, each by an exact seek: listing
	// the block's tiers would read the finer ones' values too. (Tiers of
	// widths no longer configured are not used.)
	ws := c.db.opts.Rollups
	for i := len(ws) - 1; i >= 0; i-- {
		w := int64(ws[i])
		if !accept(w) {
			continue
		}
		c.pkey = appendRollupKey(c.pkey[:0], c.bkey[1:], w)
		if !c.riter.SeekGE(c.pkey) || !bytes.Equal(c.riter.Key(), c.pkey) {
			if err := c.riter.Error(); err != nil {
				return nil, fmt.Errorf("engine: read rollups of series %d: %w", c.id, err)
			}
			continue
		}
		v, err := c.riter.ValueAndErr()
		var relErr float64
		var tiers []query.RollupTier
		if err == nil {
			relErr, tiers, c.rbuf, err = decodeRollupValue(v, c.rbuf)
		}
		if err == nil && tiers != nil && (len(tiers) != 1 || tiers[0].Width != w) {
			err = blockCorrupt("rollup under width %d holds other tiers", w)
		}
		if err != nil {
			return nil, fmt.Errorf("engine: rollups of series %d at %d: %w", c.id, c.bchunks[0].hdr.MinT, err)
		}
		if tiers == nil {
			continue // skipped for this block: a finer tier, or the points
		}
		c.rollup = query.Rollup{Tier: tiers[0], RelErr: relErr, MinT: c.mint}
		return &c.rollup, nil
	}
	return nil, nil
}

// nextBlockChunk moves to the next chunk of a cold block that may hold
// points in range, reading the next block when one is used up. It returns
// false when the series has no more blocks (or on error).
func (c *chunkIter) nextBlockChunk() bool {
	for {
		for c.bidx < len(c.bchunks) {
			m := &c.bchunks[c.bidx]
			c.bidx++
			if m.hdr.MaxT < c.mint || m.hdr.MinT > c.maxt || c.head.inMemory(m.seq) {
				continue
			}
			c.mem, c.inBlock = nil, true
			c.cur = query.Chunk{Seq: m.seq, MinT: m.hdr.MinT, MaxT: m.hdr.MaxT, Encoded: true, Header: m.hdr, Block: c.bchunks[0].seq}
			return true
		}
		var valid bool
		if !c.bstarted {
			c.bstarted = true
			c.pkey = blockSeekStart(c.pkey[:0], c.id, c.mint)
			valid = c.biter.SeekGE(c.pkey)
		} else {
			valid = c.biter.Next()
		}
		if valid {
			c.pkey = append(append(c.pkey[:0], prefixBlockHdr), c.end[1:]...)
			valid = bytes.Compare(c.biter.Key(), c.pkey) < 0
		}
		if !valid {
			if err := c.biter.Error(); err != nil {
				c.err = fmt.Errorf("engine: read blocks of series %d: %w", c.id, err)
			}
			return false
		}
		_, minT, seq, ok := parseChunkKey(c.biter.Key())
		if !ok {
			c.err = fmt.Errorf("engine: corrupt block key %x", c.biter.Key())
			return false
		}
		v, err := c.biter.ValueAndErr()
		if err != nil {
			c.err = fmt.Errorf("engine: read block of series %d at %d: %w", c.id, minT, err)
			return false
		}
		bi, err := parseBlockInfo(v)
		if err != nil {
			c.err = fmt.Errorf("engine: block of series %d at %d (seq %d): %w", c.id, minT, seq, err)
			return false
		}
		c.bchunks, c.bidx = c.bchunks[:0], 0
		if bi.maxT < c.mint {
			continue
		}
		c.bkey = append(c.bkey[:0], c.biter.Key()...)
		c.bflags = bi.flags
		c.bchunks, c.bbuf, err = decodeBlockBody(bi, minT, seq, c.bbuf, c.bchunks)
		if err != nil {
			c.err = fmt.Errorf("engine: block of series %d at %d (seq %d): %w", c.id, minT, seq, err)
			return false
		}
	}
}

func (c *chunkIter) Next() bool {
	for c.next() {
		if !c.retentionTrim(c.cur.MinT) {
			return true
		}
		if c.trim() {
			return true
		}
		if c.err != nil {
			return false
		}
	}
	return false
}

func (c *chunkIter) next() bool {
	if c.err != nil {
		return false
	}
	for {
		switch c.phase {
		case 0: // cold blocks
			if c.nextBlockChunk() {
				return true
			}
			if c.err != nil {
				return false
			}
			c.phase, c.inBlock = 1, false
		case 1, 2: // loose chunks in pebble
			var valid bool
			if c.phase == 1 {
				valid = c.iter.SeekGE(c.start)
				c.phase = 2
			} else {
				valid = c.iter.Next()
			}
			if !valid || pebble.DefaultComparer.Compare(c.iter.Key(), c.end) >= 0 {
				if err := c.iter.Error(); err != nil {
					c.err = fmt.Errorf("engine: read chunks of series %d: %w", c.id, err)
					return false
				}
				c.phase = 3
				continue
			}
			_, minT, seq, ok := parseChunkKey(c.iter.Key())
			if !ok {
				c.err = fmt.Errorf("engine: corrupt chunk key %x", c.iter.Key())
				return false
			}
			if c.head.inMemory(seq) {
				continue
			}
			v, err := c.iter.ValueAndErr()
			if err != nil {
				c.err = fmt.Errorf("engine: read chunk of series %d at %d: %w", c.id, minT, err)
				return false
			}
			h, err := encode.DecodeHeader(v)
			if err != nil {
				c.err = fmt.Errorf("engine: chunk of series %d at %d (seq %d): %w", c.id, minT, seq, err)
				return false
			}
			if h.MinT != minT {
				c.err = fmt.Errorf("engine: chunk header of series %d at %d (seq %d) says it starts at %d: %w", c.id, minT, seq, h.MinT, encode.ErrCorrupt)
				return false
			}
			if h.MaxT < c.mint {
				continue
			}
			c.mem, c.inBlock = nil, false
			c.cur = query.Chunk{Seq: seq, MinT: h.MinT, MaxT: h.MaxT, Encoded: true, Header: h}
			return true
		case 3: // sealed chunks in memory
			if c.idx < len(c.head.sealed) {
				m := &c.head.sealed[c.idx]
				c.idx++
				if m.maxT < c.mint || m.minT > c.maxt {
					continue
				}
				if m.data == nil { // raw, not encoded yet
					c.mem = nil
					c.cur = query.Chunk{Seq: m.seq, MinT: m.minT, MaxT: m.maxT, TS: m.ts, VS: m.vs}
					return true
				}
				c.mem = m
				c.cur = query.Chunk{Seq: m.seq, MinT: m.minT, MaxT: m.maxT, Encoded: true, Header: m.hdr}
				return true
			}
			c.phase = 4
		case 4: // open chunk
			c.phase = 5
			if ts := c.head.curTS; len(ts) > 0 {
				c.mem = nil
				c.cur = query.Chunk{Seq: c.head.curSeq, MinT: ts[0], MaxT: ts[len(ts)-1], TS: ts, VS: c.head.curVS}
				return true
			}
		case 5: // out-of-order buffer
			c.phase = 6
			if ts := c.head.oooTS; len(ts) > 0 {
				c.mem = nil
				c.cur = query.Chunk{Seq: math.MaxUint64, MinT: ts[0], MaxT: ts[len(ts)-1], TS: ts, VS: c.head.oooVS}
				return true
			}
		default:
			return false
		}
	}
}

// lastValue returns the value with the greatest timestamp of s (NaN if
// none), for counters resuming their total.
func (db *DB) lastValue(s *Series) (float64, error) {
	v, err := query.New(seriesSource{db, s.id}, db.clock.now, "").Scalar(query.Last)
	if err != nil {
		return math.NaN(), fmt.Errorf("engine: load total of %s: %w", s, err)
	}
	return v, nil
}
