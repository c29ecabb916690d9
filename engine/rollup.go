package engine

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/eventmetrics/eventmetrics/compact"
	"github.com/eventmetrics/eventmetrics/encode"
	"github.com/eventmetrics/eventmetrics/query"
)

// Rollups (DESIGN.md §12.3): a cold block may carry, under 0x09, its key
// suffix and a tier width, the summaries of its chunks per window of that
// width (Options.Rollups), one value per tier so that a query reads only
// the tier it uses. They are written with the block, in the same batch,
// and removed with it, so they always describe exactly its points.

// rollupVersion is the version of the 0x09 value. Part of the format.
const rollupVersion = 1

// Rollup value flags. Part of the format.
const (
	rollupFlagZstd    = 1 << 0 // the body is a zstd frame
	rollupFlagSkipped = 1 << 1 // no windows: the tier does not pay for this block (read its points); the body is empty
)

// rollupSkipped is the value of a tier that was not kept.
var rollupSkipped = func() []byte {
	v := []byte{rollupVersion, rollupFlagSkipped, 0, 0}
	return binary.LittleEndian.AppendUint32(v, crc32.Checksum(v, castagnoli))
}()

// encodeRollupValue wraps a rollup body (compact.AppendRollups) into the
// stored value: version | flags | uvarint raw length | uvarint stored
// length | stored body | CRC-32C of everything before, 4 bytes LE.
func encodeRollupValue(body []byte) []byte {
	enc, _ := zstdCoders()
	flags, stored := byte(0), body
	if z := enc.EncodeAll(body, nil); len(z) < len(body) {
		flags, stored = rollupFlagZstd, z
	}
	v := []byte{rollupVersion, flags}
	v = binary.AppendUvarint(v, uint64(len(body)))
	v = binary.AppendUvarint(v, uint64(len(stored)))
	v = append(v, stored...)
	return binary.LittleEndian.AppendUint32(v, crc32.Checksum(v, castagnoli))
}

// decodeRollupValue checks and unwraps a stored rollup value into buf and
// decodes it; the tiers alias the returned buffer, never v. A skipped
// tier's marker gives no tiers and no error.
func decodeRollupValue(v, buf []byte) (relErr float64, tiers []query.RollupTier, out []byte, err error) {
	if len(v) < 2+4 {
		return 0, nil, buf, blockCorrupt("rollup of %d bytes is too short", len(v))
	}
	if v[0] != rollupVersion {
		return 0, nil, buf, blockCorrupt("rollup version %d (this build reads %d)", v[0], rollupVersion)
	}
	body, sum := v[:len(v)-4], binary.LittleEndian.Uint32(v[len(v)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, nil, buf, blockCorrupt("rollup checksum mismatch")
	}
	flags := v[1]
	rawLen, r, ok := uvarint(body[2:])
	if !ok || rawLen > maxBlockRaw || flags&^(rollupFlagZstd|rollupFlagSkipped) != 0 || flags == rollupFlagZstd|rollupFlagSkipped {
		return 0, nil, buf, blockCorrupt("rollup header")
	}
	if flags == rollupFlagSkipped {
		if rawLen != 0 || len(r) != 1 || r[0] != 0 {
			return 0, nil, buf, blockCorrupt("skipped rollup with a body")
		}
		return 0, nil, buf[:0], nil
	}
	storedLen, r, ok := uvarint(r)
	if !ok || storedLen != uint64(len(r)) || flags == 0 && storedLen != rawLen {
		return 0, nil, buf, blockCorrupt("rollup length")
	}
	if flags&rollupFlagZstd != 0 {
		_, dec := zstdCoders()
		if buf, err = dec.DecodeAll(r, buf[:0]); err != nil {
			return 0, nil, buf, blockCorrupt("rollup: %v", err)
		}
	} else {
		buf = append(buf[:0], r...)
	}
	raw := buf
	if uint64(len(raw)) != rawLen {
		return 0, nil, buf, blockCorrupt("rollup of %d bytes, %d expected", len(raw), rawLen)
	}
	relErr, tiers, err = compact.DecodeRollups(raw)
	if err != nil {
		return 0, nil, buf, fmt.Errorf("%w: %w: %w", errBlock, err, encode.ErrCorrupt)
	}
	return relErr, tiers, buf, nil
}

// buildRollupTiers summarizes a block's chunks (whole encoded bytes) per
// window of each width; tiers whose windows would overflow are left out.
func buildRollupTiers(seqs []uint64, chunks [][]byte, widths []int64, relErr float64) ([]query.RollupTier, error) {
	in := make([]compact.RollupChunk, len(chunks))
	for i, c := range chunks {
		_, ts, vs, err := encode.DecodeAll(c, nil, nil)
		if err != nil {
			return nil, err
		}
		in[i] = compact.RollupChunk{Seq: seqs[i], TS: ts, VS: vs}
	}
	return compact.BuildRollups(in, widths, relErr)
}

// rollupBody is the body of one tier's stored value.
func rollupBody(relErr float64, t query.RollupTier) []byte {
	return compact.AppendRollups(nil, relErr, []query.RollupTier{t})
}
