package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/eventmetrics/eventmetrics/encode"
	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/query"
)

// CheckReport is what Check found.
type CheckReport struct {
	Series   int      // series entries
	Chunks   int      // chunks verified
	Blocks   int      // cold blocks verified (their chunks count in Chunks)
	Rollups  int      // rollup tiers of blocks verified against their points
	Points   int64    // points in them
	Postings int      // postings lists
	Problems []string // every inconsistency or damaged entry found (empty: all good)
}

// OK reports whether Check found nothing wrong.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 }

const maxProblems = 1000

func (r *CheckReport) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		p := fmt.Sprintf(format, args...)
		if i := strings.IndexByte(p, '\n'); i >= 0 {
			p = p[:i] // some storage errors carry multi-line details
		}
		r.Problems = append(r.Problems, p)
	} else if len(r.Problems) == maxProblems {
		r.Problems = append(r.Problems, "... more problems not listed")
	}
}

// Check verifies what is stored in pebble: every chunk's checksums and
// structure (by decoding it), that each chunk header matches its key and its
// payload, that every chunk belongs to a known series, that the two series
// maps agree and hold canonical keys, and that the postings agree with the
// series. It returns an error only when it cannot read the store; damage is
// listed in the report. Data still in the log and the head is not checked
// (it is replayed and checked by its own checksums at open).
func (db *DB) Check() (*CheckReport, error) {
	db.readMu.RLock()
	defer db.readMu.RUnlock()
	if db.closed.Load() {
		return nil, ErrClosed
	}
	snap := db.pdb.NewSnapshot()
	defer snap.Close()
	r := &CheckReport{}
	iter, err := snap.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("engine: check: %w", err)
	}
	defer iter.Close()

	seriesByID := map[uint64]string{}         // id -> key
	labelsByID := map[uint64][]index.Label{}  // id -> labels (+name under __name__)
	byKey := map[string]uint64{}              // key -> id
	postings := map[index.PostingKey][]byte{} // serialized
	for iter.First(); iter.Valid(); iter.Next() {
		k := iter.Key()
		v, err := iter.ValueAndErr()
		if err != nil {
			r.problem("key %x: unreadable value: %v", k, err)
			continue
		}
		switch k[0] {
		case prefixMeta:
		case prefixSeriesKey:
			if len(v) != 8 {
				r.problem("series key entry %q: id of %d bytes", k[1:], len(v))
				continue
			}
			byKey[string(k[1:])] = binary.BigEndian.Uint64(v)
		case prefixSeriesID:
			if len(k) != 9 {
				r.problem("series id entry %x: bad key length", k)
				continue
			}
			id := binary.BigEndian.Uint64(k[1:])
			name, labels, err := index.DecodeKey(v)
			if err != nil {
				r.problem("series %d: %v", id, err)
				continue
			}
			seriesByID[id] = string(v)
			labelsByID[id] = append([]index.Label{{Name: index.MetricNameLabel, Value: name}}, labels...)
			r.Series++
		case prefixPostings:
			sep := bytes.IndexByte(k[1:], 0xFF)
			if sep < 0 {
				r.problem("postings key %q: no separator", k)
				continue
			}
			postings[index.PostingKey{Name: string(k[1 : 1+sep]), Value: string(k[2+sep:])}] = append([]byte(nil), v...)
			r.Postings++
		case prefixChunk, prefixChunkHdr, prefixBlockHdr, prefixBlockData, prefixRollup:
			// Verified below, header and payload side by side.
		default:
			r.problem("unknown key kind %#x (key %x)", k[0], k)
		}
	}
	if err := iter.Error(); err != nil {
		r.problem("reading the store stopped: %v", err)
	}
	if n := db.corruptions.Load(); n > 0 {
		r.problem("%d reads found damaged table blocks since open", n)
	}
	if err := db.checkChunks(snap, r, seriesByID); err != nil {
		return nil, err
	}
	if err := db.checkRollups(snap, r); err != nil {
		return nil, err
	}
	for key, id := range byKey {
		if seriesByID[id] != key {
			r.problem("series key %q maps to id %d, whose entry is %q", key, id, seriesByID[id])
		}
	}
	for id, key := range seriesByID {
		if byKey[key] != id {
			r.problem("series %d (%q) has no matching key entry", id, key)
		}
	}
	// Postings agree with the series.
	want := map[index.PostingKey]*roaring.Bitmap{}
	for id, ls := range labelsByID {
		for _, l := range ls {
			pk := index.PostingKey{Name: l.Name, Value: l.Value}
			if want[pk] == nil {
				want[pk] = roaring.New()
			}
			want[pk].Add(uint32(id))
		}
	}
	for pk, data := range postings {
		bm := roaring.New()
		if err := bm.UnmarshalBinary(data); err != nil {
			r.problem("postings %s=%q: %v", pk.Name, pk.Value, err)
			continue
		}
		w := want[pk]
		if w == nil {
			w = roaring.New()
		}
		if !bm.Equals(w) {
			r.problem("postings %s=%q list %d series, the series entries say %d", pk.Name, pk.Value, bm.GetCardinality(), w.GetCardinality())
		}
	}
	for pk := range want {
		if _, ok := postings[pk]; !ok {
			r.problem("postings %s=%q missing", pk.Name, pk.Value)
		}
	}
	return r, nil
}

// checkChunk verifies one chunk's bytes (header h, payload p) against its
// key.
func (c *chunkChecker) check(id uint64, minT int64, seq uint64, h, p []byte) {
	r := c.r
	c.full = append(append(c.full[:0], h...), p...)
	hdr, t2, v2, err := encode.DecodeAll(c.full, c.ts[:0], c.vs[:0])
	c.ts, c.vs = t2, v2
	switch {
	case err != nil:
		r.problem("chunk of series %d at %d (seq %d): %v", id, minT, seq, err)
	case hdr.MinT != minT || hdr.Size != len(c.full) || hdr.HeaderSize != len(h):
		r.problem("chunk of series %d at %d (seq %d): header says it starts at %d with %d+%d bytes (has %d+%d)", id, minT, seq, hdr.MinT, hdr.HeaderSize, hdr.Size-hdr.HeaderSize, len(h), len(p))
	case uint64(hdr.MaxT-hdr.MinT) > uint64(maxChunkSpan):
		r.problem("chunk of series %d at %d (seq %d): spans %d ns, more than the format allows", id, minT, seq, hdr.MaxT-hdr.MinT)
	default:
		r.Points += int64(hdr.Count)
	}
	if _, ok := c.seriesByID[id]; !ok {
		r.problem("chunk of series %d at %d (seq %d): no such series", id, minT, seq)
	}
	r.Chunks++
}

type chunkChecker struct {
	r          *CheckReport
	seriesByID map[uint64]string
	full       []byte
	ts         []int64
	vs         []float64
}

// checkChunks verifies the cold blocks, then walks chunk headers (0x06) and
// payloads (0x05) side by side: both key spaces use the same suffix (id,
// minT, seq), so they pair up in order. A payload without a header must
// belong to a block whose payloads stay loose.
func (db *DB) checkChunks(snap *pebble.Snapshot, r *CheckReport, seriesByID map[uint64]string) error {
	cc := &chunkChecker{r: r, seriesByID: seriesByID}
	inBlocks, err := db.checkBlocks(snap, cc)
	if err != nil {
		return err
	}
	hi, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixChunkHdr}, UpperBound: []byte{prefixChunkHdr + 1}})
	if err != nil {
		return fmt.Errorf("engine: check: %w", err)
	}
	defer hi.Close()
	pi, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixChunk}, UpperBound: []byte{prefixChunk + 1}})
	if err != nil {
		return fmt.Errorf("engine: check: %w", err)
	}
	defer pi.Close()
	hv, pv := hi.First(), pi.First()
	for hv || pv {
		if hi.Error() != nil || pi.Error() != nil {
			break // reported below; pairing past a damaged block would only add noise
		}
		var c int
		switch {
		case !pv:
			c = -1
		case !hv:
			c = 1
		default:
			c = bytes.Compare(hi.Key()[1:], pi.Key()[1:])
		}
		switch {
		case c < 0:
			id, minT, seq, _ := parseChunkKey(hi.Key())
			r.problem("chunk of series %d at %d (seq %d): header without a payload", id, minT, seq)
			hv = hi.Next()
			continue
		case c > 0:
			id, minT, seq, _ := parseChunkKey(pi.Key())
			if h, ok := inBlocks[string(pi.Key()[1:])]; ok {
				delete(inBlocks, string(pi.Key()[1:]))
				if p, err := pi.ValueAndErr(); err != nil {
					r.problem("chunk of series %d at %d (seq %d): unreadable: %v", id, minT, seq, err)
				} else {
					cc.check(id, minT, seq, h, p)
				}
			} else {
				r.problem("chunk of series %d at %d (seq %d): payload without a header", id, minT, seq)
			}
			pv = pi.Next()
			continue
		}
		id, minT, seq, ok := parseChunkKey(hi.Key())
		h, herr := hi.ValueAndErr()
		p, perr := pi.ValueAndErr()
		switch {
		case !ok:
			r.problem("chunk key %x: malformed", hi.Key())
		case herr != nil || perr != nil:
			r.problem("chunk of series %d at %d (seq %d): unreadable: %v %v", id, minT, seq, herr, perr)
		default:
			if _, dup := inBlocks[string(hi.Key()[1:])]; dup {
				r.problem("chunk of series %d at %d (seq %d): both loose and in a block", id, minT, seq)
			}
			cc.check(id, minT, seq, h, p)
		}
		hv, pv = hi.Next(), pi.Next()
	}
	for _, it := range []*pebble.Iterator{hi, pi} {
		if err := it.Error(); err != nil {
			r.problem("reading chunks stopped: %v", err)
		}
	}
	if hi.Error() == nil && pi.Error() == nil {
		for k := range inBlocks {
			id, minT, seq, _ := parseChunkKey(append([]byte{prefixChunk}, k...))
			r.problem("chunk of series %d at %d (seq %d): in a block, but its payload is missing", id, minT, seq)
		}
	}
	return nil
}

// checkBlocks verifies every cold block and its blob, and returns the
// headers of the blocks' chunks whose payloads stay under 0x05, by key
// suffix, for checkChunks to pair.
func (db *DB) checkBlocks(snap *pebble.Snapshot, cc *chunkChecker) (map[string][]byte, error) {
	r := cc.r
	loose := map[string][]byte{}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixBlockHdr}, UpperBound: []byte{prefixBlockData + 1}})
	if err != nil {
		return nil, fmt.Errorf("engine: check: %w", err)
	}
	defer it.Close()
	blobs := map[string]bool{} // blobs some block refers to
	var body, blobBuf []byte
	var cs []blockChunk
	for it.SeekGE([]byte{prefixBlockHdr}); it.Valid() && it.Key()[0] == prefixBlockHdr; it.Next() {
		id, minT, seq, ok := parseChunkKey(it.Key())
		if !ok {
			r.problem("block key %x: malformed", it.Key())
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			r.problem("block of series %d at %d (seq %d): unreadable: %v", id, minT, seq, err)
			continue
		}
		r.Blocks++
		bk := append([]byte{prefixBlockData}, it.Key()[1:]...)
		blobs[string(bk)] = true // even if the block is unreadable: one problem, not two
		if _, ok := cc.seriesByID[id]; !ok {
			r.problem("block of series %d at %d (seq %d): no such series", id, minT, seq)
		}
		bi, err := parseBlockInfo(v)
		if err == nil {
			cs, body, err = decodeBlockBody(bi, minT, seq, body, cs[:0])
		}
		if err != nil {
			r.problem("block of series %d at %d (seq %d): %v", id, minT, seq, err)
			continue
		}
		if bi.flags&blockFlagBlob == 0 {
			for _, m := range cs {
				k := appendChunkKey(nil, prefixChunk, id, m.hdr.MinT, m.seq)
				loose[string(k[1:])] = slices.Clone(m.hdrBytes)
			}
			continue
		}
		bv, closer, err := snap.Get(bk)
		if err != nil {
			r.problem("block of series %d at %d (seq %d): blob: %v", id, minT, seq, err)
			continue
		}
		blobBuf, err = decodeBlob(bv, blockPayloadLen(cs), blobBuf)
		closer.Close()
		if err != nil {
			r.problem("block of series %d at %d (seq %d): %v", id, minT, seq, err)
			continue
		}
		for _, m := range cs {
			cc.check(id, m.hdr.MinT, m.seq, m.hdrBytes, blobBuf[m.payOff:m.payOff+m.hdr.Size-m.hdr.HeaderSize])
		}
	}
	for ; it.Valid(); it.Next() {
		if !blobs[string(it.Key())] {
			id, minT, seq, _ := parseChunkKey(it.Key())
			r.problem("blob of series %d at %d (seq %d) without a block", id, minT, seq)
		}
	}
	if err := it.Error(); err != nil {
		r.problem("reading blocks stopped: %v", err)
	}
	return loose, nil
}

// checkRollups verifies that every rollup belongs to a block, decodes, and
// says exactly what its block's points say (it is rebuilt from them).
func (db *DB) checkRollups(snap *pebble.Snapshot, r *CheckReport) error {
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRollup}, UpperBound: []byte{prefixRollup + 1}})
	if err != nil {
		return fmt.Errorf("engine: check: %w", err)
	}
	defer it.Close()
	get := func(k []byte) ([]byte, bool) {
		v, closer, err := snap.Get(k)
		if err != nil {
			return nil, false
		}
		defer closer.Close()
		return slices.Clone(v), true
	}
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		width, ok := parseRollupKey(k)
		var id, seq uint64
		var minT int64
		if ok {
			id, minT, seq, ok = parseChunkKey(append([]byte{prefixBlockHdr}, k[1:chunkKeyLen]...))
		}
		if !ok {
			r.problem("rollup key %x: malformed", k)
			continue
		}
		r.Rollups++
		fail := func(format string, args ...any) {
			r.problem("rollups of the block of series %d at %d (seq %d): %s", id, minT, seq, fmt.Sprintf(format, args...))
		}
		v, err := it.ValueAndErr()
		if err != nil {
			fail("unreadable: %v", err)
			continue
		}
		var relErr float64
		var tiers []query.RollupTier
		if relErr, tiers, buf, err = decodeRollupValue(v, buf); err != nil {
			fail("%v", err)
			continue
		}
		if tiers == nil {
			continue // a tier that does not pay for this block
		}
		if len(tiers) != 1 || tiers[0].Width != width {
			fail("the value under width %d holds other tiers", width)
			continue
		}
		bk := append([]byte{prefixBlockHdr}, k[1:chunkKeyLen]...)
		bv, ok := get(bk)
		if !ok {
			fail("no such block")
			continue
		}
		bi, err := parseBlockInfo(bv)
		var cs []blockChunk
		if err == nil {
			cs, _, err = decodeBlockBody(bi, minT, seq, nil, nil)
		}
		if err != nil {
			continue // the block's own problem is reported by checkBlocks
		}
		var blob []byte
		if bi.flags&blockFlagBlob != 0 {
			bv, ok := get(append([]byte{prefixBlockData}, k[1:chunkKeyLen]...))
			if !ok {
				continue
			}
			if blob, err = decodeBlob(bv, blockPayloadLen(cs), nil); err != nil {
				continue
			}
		}
		seqs := make([]uint64, len(cs))
		chunks := make([][]byte, len(cs))
		complete := true
		for i, m := range cs {
			seqs[i] = m.seq
			n := m.hdr.Size - m.hdr.HeaderSize
			if blob != nil {
				chunks[i] = append(slices.Clone(m.hdrBytes), blob[m.payOff:m.payOff+n]...)
				continue
			}
			p, ok := get(appendChunkKey(nil, prefixChunk, id, m.hdr.MinT, m.seq))
			if !ok {
				complete = false
				break
			}
			chunks[i] = append(slices.Clone(m.hdrBytes), p...)
		}
		if !complete {
			continue
		}
		rebuilt, err := buildRollupTiers(seqs, chunks, []int64{width}, relErr)
		if err != nil {
			continue // a damaged chunk: reported by checkChunks
		}
		var want []byte
		if len(rebuilt) == 1 {
			want = rollupBody(relErr, rebuilt[0])
		}
		if !bytes.Equal(want, buf) {
			fail("they do not match the block's points")
		}
	}
	if err := it.Error(); err != nil {
		r.problem("reading rollups stopped: %v", err)
	}
	return nil
}
