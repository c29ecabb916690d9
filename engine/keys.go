package engine

import (
	"encoding/binary"
	"math"
)

// The pebble key space. Every key starts with a one-byte prefix naming its
// kind. Part of the format: do not change.
const (
	prefixMeta      byte = 0x01 // 0x01 | name                         -> meta value
	prefixSeriesKey byte = 0x02 // 0x02 | series key                   -> series id (8 bytes BE)
	prefixSeriesID  byte = 0x03 // 0x03 | id (8 BE)                    -> series key
	prefixPostings  byte = 0x04 // 0x04 | label name | 0xFF | value    -> roaring bitmap (portable format)
	prefixChunk     byte = 0x05 // 0x05 | id (8 BE) | minT (8, BE, sign bit flipped) | seq (8 BE) -> chunk payload
	prefixChunkHdr  byte = 0x06 // 0x06 | id | minT | seq (as 0x05)                  -> chunk header
	prefixBlockHdr  byte = 0x07 // 0x07 | id | minT | seq of its first chunk (as 0x05) -> cold block: its chunks' headers
	prefixBlockData byte = 0x08 // 0x08 | as 0x07                                     -> cold block's payload blob (zstd), when it has one
	prefixRollup    byte = 0x09 // 0x09 | as 0x07 | tier width (8 BE)                -> a cold block's rollup tier, when Options.Rollups asks
)

// Meta keys. Part of the format: do not change.
var (
	metaFormat     = []byte{prefixMeta, 'f', 'o', 'r', 'm', 'a', 't'}
	metaCheckpoint = []byte{prefixMeta, 'c', 'k', 'p', 't'}
)

// formatVersion is the version of the engine's on-disk layout (keys, meta
// values, log records). Part of the format: do not change without a
// migration.
const formatVersion = 1

// maxChunkSpan bounds MaxT-MinT of every chunk, so that a reader looking for
// points at or after t only has to start at chunks with MinT >= t -
// maxChunkSpan. Part of the format: do not change (readers depend on it).
const maxChunkSpan = int64(6 * 3600 * 1e9)

const chunkKeyLen = 1 + 8 + 8 + 8

// appendChunkKey appends the key of a chunk's payload (prefixChunk) or
// header (prefixChunkHdr).
func appendChunkKey(dst []byte, prefix byte, id uint64, minT int64, seq uint64) []byte {
	dst = append(dst, prefix)
	dst = binary.BigEndian.AppendUint64(dst, id)
	dst = binary.BigEndian.AppendUint64(dst, uint64(minT)^(1<<63))
	return binary.BigEndian.AppendUint64(dst, seq)
}

func parseChunkKey(k []byte) (id uint64, minT int64, seq uint64, ok bool) {
	if len(k) != chunkKeyLen || k[0] < prefixChunk || k[0] > prefixBlockData {
		return 0, 0, 0, false
	}
	id = binary.BigEndian.Uint64(k[1:])
	minT = int64(binary.BigEndian.Uint64(k[9:]) ^ (1 << 63))
	seq = binary.BigEndian.Uint64(k[17:])
	return id, minT, seq, true
}

// chunkSeekStart is the first header key that may hold a chunk of id with
// points at or after t.
func chunkSeekStart(dst []byte, id uint64, t int64) []byte {
	start := int64(math.MinInt64)
	if t > math.MinInt64+maxChunkSpan {
		start = t - maxChunkSpan
	}
	return appendChunkKey(dst, prefixChunkHdr, id, start, 0)
}

// appendRollupKey appends the key of a block's rollup tier: suffix is the
// block key without its kind byte.
func appendRollupKey(dst, suffix []byte, width int64) []byte {
	dst = append(dst, prefixRollup)
	dst = append(dst, suffix...)
	return binary.BigEndian.AppendUint64(dst, uint64(width))
}

// parseRollupKey returns the tier width of a rollup key.
func parseRollupKey(k []byte) (int64, bool) {
	if len(k) != chunkKeyLen+8 || k[0] != prefixRollup {
		return 0, false
	}
	w := binary.BigEndian.Uint64(k[chunkKeyLen:])
	return int64(w), w > 0 && w <= 1<<62
}

// blockSeekStart is the first block key that may hold a chunk of id with
// points at or after t.
func blockSeekStart(dst []byte, id uint64, t int64) []byte {
	start := int64(math.MinInt64)
	if t > math.MinInt64+maxBlockSpan {
		start = t - maxBlockSpan
	}
	return appendChunkKey(dst, prefixBlockHdr, id, start, 0)
}

// chunkSeriesEnd is the first header key after every chunk of id whose
// MinT <= t.
func chunkSeriesEnd(dst []byte, id uint64, t int64) []byte {
	if t == math.MaxInt64 {
		dst = append(dst, prefixChunkHdr)
		return binary.BigEndian.AppendUint64(dst, id+1)
	}
	return appendChunkKey(dst, prefixChunkHdr, id, t+1, 0)
}

func appendSeriesIDKey(dst []byte, id uint64) []byte {
	dst = append(dst, prefixSeriesID)
	return binary.BigEndian.AppendUint64(dst, id)
}

func appendPostingsKey(dst []byte, name, value string) []byte {
	dst = append(dst, prefixPostings)
	dst = append(dst, name...)
	dst = append(dst, 0xFF)
	return append(dst, value...)
}

// checkpoint meta value (part of the format: do not change):
//
//	version (1 byte, =1) | wal segment to replay from (uvarint) | next series id (uvarint) | next chunk seq (uvarint)
type checkpointMeta struct {
	walSegment uint64
	nextID     uint64
	nextSeq    uint64
}

func (c checkpointMeta) marshal() []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, c.walSegment)
	b = binary.AppendUvarint(b, c.nextID)
	return binary.AppendUvarint(b, c.nextSeq)
}

func (c *checkpointMeta) unmarshal(b []byte) bool {
	if len(b) < 1 || b[0] != 1 {
		return false
	}
	b = b[1:]
	for _, p := range []*uint64{&c.walSegment, &c.nextID, &c.nextSeq} {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return false
		}
		*p = v
		b = b[n:]
	}
	return len(b) == 0
}
