package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/eventmetrics/eventmetrics/encode"
)

// Cold blocks (DESIGN.md §12.2). A run of consecutive cold chunks of one
// series is packed into a block: their headers, compressed together with
// zstd (neighbouring headers are alike: W-scrape's shrink by half), under
// one key; their payloads stay under their own 0x05 keys unless zstd over
// all of them saves at least 1/16, in which case they move into one blob.

// blockVersion is the version of both block values. Part of the format: do
// not change.
const blockVersion = 1

// Block header flags. Part of the format: do not change.
const (
	blockFlagZstd = 1 << 0 // the body is a zstd frame (else stored as is)
	blockFlagBlob = 1 << 1 // the payloads are in the 0x08 blob, not under 0x05
	blockFlagsAll = blockFlagZstd | blockFlagBlob
)

// blobCodecZstd is the only codec of a payload blob. Part of the format.
const blobCodecZstd = 1

// maxBlockSpan bounds maxT-minT of every block, so that a reader looking for
// points at or after t starts at blocks with minT >= t - maxBlockSpan. Part
// of the format: do not change (readers depend on it).
const maxBlockSpan = int64(7 * 24 * 3600 * 1e9)

// Decoder limits (bytes read from disk are not trusted).
const (
	maxBlockChunksFormat = 4096     // chunks in one block
	maxBlockRaw          = 64 << 20 // decompressed body or blob
)

// maxBlockChunks is how many chunks the compactor packs into one block (not
// part of the format: measured, 16 headers compress as well as 32).
const maxBlockChunks = 16

// blobMinSaving: the payloads move into a blob only when zstd makes them at
// least 1/blobMinSaving smaller (otherwise reads of one chunk would pay
// for decompressing its neighbours for nothing).
const blobMinSaving = 16

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var zstdCoders = sync.OnceValues(func() (*zstd.Encoder, *zstd.Decoder) {
	// EncodeAll and DecodeAll are safe for concurrent use: one encoder and
	// one decoder serve every DB of the process.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(fmt.Sprintf("engine: zstd encoder: %v", err)) // fixed, valid options: a programmer error
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxBlockRaw), zstd.WithDecoderConcurrency(0))
	if err != nil {
		panic(fmt.Sprintf("engine: zstd decoder: %v", err))
	}
	return enc, dec
})

// blockChunk is one chunk of a block, as decoded.
type blockChunk struct {
	seq      uint64
	hdr      encode.Header
	hdrBytes []byte // the chunk's header, CRC included (aliases the decoded body)
	payOff   int    // offset of its payload in the decoded blob (blob blocks)
}

// blockInfo is the fixed part of a block header value, readable without
// decompressing anything.
type blockInfo struct {
	flags      byte
	n          int
	minT, maxT int64
	rawLen     int
	body       []byte // stored body (compressed when flags&blockFlagZstd)
}

var errBlock = errors.New("cold block")

func blockCorrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %w", errBlock, fmt.Sprintf(format, args...), encode.ErrCorrupt)
}

// parseBlockInfo checks a block header value's CRC and reads its fixed part.
func parseBlockInfo(v []byte) (blockInfo, error) {
	var bi blockInfo
	if len(v) < 2+4 {
		return bi, blockCorrupt("%d bytes is too short", len(v))
	}
	if v[0] == 0 {
		return bi, blockCorrupt("version 0")
	}
	if v[0] > blockVersion {
		return bi, blockCorrupt("version %d is newer than this build reads (%d)", v[0], blockVersion)
	}
	body, sum := v[:len(v)-4], binary.LittleEndian.Uint32(v[len(v)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return bi, blockCorrupt("checksum mismatch")
	}
	bi.flags = v[1]
	if bi.flags&^blockFlagsAll != 0 {
		return bi, blockCorrupt("unknown flags %#x", bi.flags)
	}
	r := body[2:]
	var ok bool
	var n, span, rawLen, bodyLen uint64
	if n, r, ok = uvarint(r); !ok || n < 1 || n > maxBlockChunksFormat {
		return bi, blockCorrupt("chunk count")
	}
	var minT int64
	if minT, r, ok = varint(r); !ok {
		return bi, blockCorrupt("minT")
	}
	if span, r, ok = uvarint(r); !ok || span > uint64(maxBlockSpan) || minT > 0 && span > uint64(maxInt64-minT) {
		return bi, blockCorrupt("span")
	}
	if rawLen, r, ok = uvarint(r); !ok || rawLen > maxBlockRaw {
		return bi, blockCorrupt("body length")
	}
	if bodyLen, r, ok = uvarint(r); !ok || bodyLen != uint64(len(r)) {
		return bi, blockCorrupt("stored body length")
	}
	if bi.flags&blockFlagZstd == 0 && bodyLen != rawLen {
		return bi, blockCorrupt("stored body of %d bytes, %d expected", bodyLen, rawLen)
	}
	bi.n, bi.minT, bi.maxT, bi.rawLen, bi.body = int(n), minT, minT+int64(span), int(rawLen), r
	return bi, nil
}

const maxInt64 = int64(^uint64(0) >> 1)

func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, b, false
	}
	return v, b[n:], true
}

func varint(b []byte) (int64, []byte, bool) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, b, false
	}
	return v, b[n:], true
}

// decodeBlockBody decompresses (into buf) and parses a block's chunks,
// appending them to dst. firstSeq and firstMinT come from the block's key.
func decodeBlockBody(bi blockInfo, firstMinT int64, firstSeq uint64, buf []byte, dst []blockChunk) ([]blockChunk, []byte, error) {
	raw := bi.body
	if bi.flags&blockFlagZstd != 0 {
		_, dec := zstdCoders()
		var err error
		buf, err = dec.DecodeAll(bi.body, buf[:0])
		if err != nil {
			return dst, buf, blockCorrupt("decompress: %v", err)
		}
		raw = buf
	}
	if len(raw) != bi.rawLen {
		return dst, buf, blockCorrupt("body of %d bytes, %d expected", len(raw), bi.rawLen)
	}
	payOff := 0
	maxT := int64(0)
	start := len(dst)
	for i := 0; i < bi.n; i++ {
		seq, r, ok := uvarint(raw)
		if !ok {
			return dst, buf, blockCorrupt("chunk %d: seq", i)
		}
		hl, r, ok := uvarint(r)
		if !ok || hl > uint64(len(r)) {
			return dst, buf, blockCorrupt("chunk %d: header length", i)
		}
		hb := r[:hl:hl]
		h, err := encode.DecodeHeader(hb)
		if err != nil {
			return dst, buf, fmt.Errorf("%w: chunk %d (seq %d): %w", errBlock, i, seq, err)
		}
		if h.HeaderSize != len(hb) {
			return dst, buf, blockCorrupt("chunk %d (seq %d): header of %d bytes, stored as %d", i, seq, h.HeaderSize, len(hb))
		}
		if i == 0 && (h.MinT != firstMinT || seq != firstSeq) {
			return dst, buf, blockCorrupt("first chunk (seq %d at %d) does not match the key (seq %d at %d)", seq, h.MinT, firstSeq, firstMinT)
		}
		if i > 0 {
			p := dst[len(dst)-1]
			if h.MinT < p.hdr.MinT || h.MinT == p.hdr.MinT && seq <= p.seq {
				return dst, buf, blockCorrupt("chunk %d (seq %d) out of order", i, seq)
			}
		}
		if h.MinT < bi.minT || h.MaxT > bi.maxT {
			return dst, buf, blockCorrupt("chunk %d (seq %d) lies outside the block's range", i, seq)
		}
		if i == 0 || h.MaxT > maxT {
			maxT = h.MaxT
		}
		dst = append(dst, blockChunk{seq: seq, hdr: h, hdrBytes: hb, payOff: payOff})
		payOff += h.Size - h.HeaderSize
		raw = r[hl:]
	}
	if len(raw) != 0 {
		return dst[:start], buf, blockCorrupt("%d bytes after the last chunk", len(raw))
	}
	if dst[start].hdr.MinT != bi.minT || maxT != bi.maxT {
		return dst[:start], buf, blockCorrupt("range %d..%d does not match its chunks (%d..%d)", bi.minT, bi.maxT, dst[start].hdr.MinT, maxT)
	}
	return dst, buf, nil
}

// decodeBlob checks and decompresses a payload blob into buf; want is the
// total payload length its block's headers promise.
func decodeBlob(v []byte, want int, buf []byte) ([]byte, error) {
	if len(v) < 2+4 {
		return buf, blockCorrupt("blob of %d bytes is too short", len(v))
	}
	if v[0] != blockVersion {
		return buf, blockCorrupt("blob version %d", v[0])
	}
	body, sum := v[:len(v)-4], binary.LittleEndian.Uint32(v[len(v)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return buf, blockCorrupt("blob checksum mismatch")
	}
	if v[1] != blobCodecZstd {
		return buf, blockCorrupt("blob codec %d", v[1])
	}
	rawLen, r, ok := uvarint(body[2:])
	if !ok || rawLen != uint64(want) {
		return buf, blockCorrupt("blob length %d, its headers say %d", rawLen, want)
	}
	_, dec := zstdCoders()
	out, err := dec.DecodeAll(r, buf[:0])
	if err != nil {
		return buf, blockCorrupt("blob: %v", err)
	}
	if len(out) != want {
		return out, blockCorrupt("blob of %d bytes, %d expected", len(out), want)
	}
	return out, nil
}

// blockPayloadLen is the total payload length of a block's chunks.
func blockPayloadLen(cs []blockChunk) int {
	n := 0
	for _, c := range cs {
		n += c.hdr.Size - c.hdr.HeaderSize
	}
	return n
}

// encodedBlock is a block ready to be written.
type encodedBlock struct {
	hdr  []byte // the 0x07 value
	blob []byte // the 0x08 value, nil when the payloads stay under 0x05
}

// encodeBlock packs chunks (each its whole encoded bytes, header first, in
// (MinT, seq) order) into a block. The payloads go into a blob when zstd
// saves at least 1/blobMinSaving of them.
func encodeBlock(seqs []uint64, chunks [][]byte, hdrs []encode.Header) encodedBlock {
	enc, _ := zstdCoders()
	var body, pays []byte
	minT, maxT := hdrs[0].MinT, hdrs[0].MaxT
	for i, c := range chunks {
		h := hdrs[i]
		body = binary.AppendUvarint(body, seqs[i])
		body = binary.AppendUvarint(body, uint64(h.HeaderSize))
		body = append(body, c[:h.HeaderSize]...)
		pays = append(pays, c[h.HeaderSize:h.Size]...)
		maxT = max(maxT, h.MaxT)
	}
	flags := byte(0)
	stored := body
	if z := enc.EncodeAll(body, nil); len(z) < len(body) {
		flags |= blockFlagZstd
		stored = z
	}
	var blob []byte
	if z := enc.EncodeAll(pays, nil); len(z) <= len(pays)-len(pays)/blobMinSaving {
		flags |= blockFlagBlob
		blob = []byte{blockVersion, blobCodecZstd}
		blob = binary.AppendUvarint(blob, uint64(len(pays)))
		blob = append(blob, z...)
		blob = binary.LittleEndian.AppendUint32(blob, crc32.Checksum(blob, castagnoli))
	}
	v := []byte{blockVersion, flags}
	v = binary.AppendUvarint(v, uint64(len(chunks)))
	v = binary.AppendVarint(v, minT)
	v = binary.AppendUvarint(v, uint64(maxT-minT))
	v = binary.AppendUvarint(v, uint64(len(body)))
	v = binary.AppendUvarint(v, uint64(len(stored)))
	v = append(v, stored...)
	v = binary.LittleEndian.AppendUint32(v, crc32.Checksum(v, castagnoli))
	return encodedBlock{hdr: v, blob: blob}
}
