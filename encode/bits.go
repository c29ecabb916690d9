package encode

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// Bit order (part of the format: do not change): bit streams are packed
// least-significant bit first. The first bit of a stream is bit 0 of its first
// byte, the ninth is bit 0 of the second byte, and a k-bit field written at
// bit position p holds its own bit j at stream position p+j. A stream is padded
// with zero bits to a whole number of bytes.

// bitWriter writes a bit stream into a byte slice of the exact length the
// encoder computed beforehand. It is small and used as a value,
// bw = bw.write(buf, v, n), so that hot loops keep it in registers; buf is
// passed to each call for the same reason.
//
// Each write stores 8 bytes at once, without a branch on the data, and
// keeps fewer than 8 pending bits. Once fewer than 8 bytes of buf are left,
// the bits still to come are fewer than 64, and the writer just gathers them
// in acc for finish.
type bitWriter struct {
	acc uint64 // pending bits; bit 0 is the oldest
	n   uint   // number of pending bits in acc
	off int    // where the pending bits go in buf
}

// write returns w with the nb low bits of v written; nb <= 56 and v must be
// < 1<<nb.
func (w bitWriter) write(buf []byte, v uint64, nb uint) bitWriter {
	w.acc |= v << (w.n & 63)
	n := w.n + nb
	if off := uint(w.off); off+8 <= uint(len(buf)) {
		binary.LittleEndian.PutUint64(buf[off:off+8], w.acc)
		w.off += int(n >> 3)
		w.acc >>= (n &^ 7) & 63 // the whole bytes just written: at most 56 bits
		n &= 7
	}
	w.n = n
	return w
}

// writeWide is write for nb <= 64.
func (w bitWriter) writeWide(buf []byte, v uint64, nb uint) bitWriter {
	if nb <= 56 {
		return w.write(buf, v, nb)
	}
	return w.write(buf, v&mask(32), 32).write(buf, v>>32, nb-32)
}

// finish writes the pending bits, padded with zeros to a whole byte, and
// reports whether the stream filled buf exactly.
func (w bitWriter) finish(buf []byte) bool {
	rem := int(w.n+7) / 8
	if w.n >= 64 || w.off+rem != len(buf) {
		return false
	}
	for k := range rem {
		buf[w.off+k] = byte(w.acc >> (8 * k))
	}
	return true
}

// bitSection extends dst to end for a bit stream that fills
// dst[len(dst):end], and returns the extended dst and the stream's bytes. It
// returns false if dst is already longer than end.
func bitSection(dst []byte, end int) ([]byte, []byte, bool) {
	n := end - len(dst)
	if n < 0 {
		return dst, nil, false
	}
	start := len(dst)
	dst = slices.Grow(dst, n)[:end]
	return dst, dst[start:], true
}

// bitReader is a bit stream stored in b[pos/8:end/8] of a chunk b, with its
// read position. Hot loops copy b and pos into local variables and read with
// peekAt, so that pos stays in a register.
//
// Reading past end yields bits that are not the stream's (the bytes that
// follow it, then zeros) and is detected afterwards with overrun, so that
// hot loops need no error checks: every loop is bounded by a point count,
// never by the stream, so reading past its end cannot make it run longer.
type bitReader struct {
	b   []byte // the whole chunk, len(b) >= 8
	pos uint   // bit position of the next bit in b
	end uint   // bit position of the end of the stream in b
}

// newBitReader returns a reader of the stream in chunk[start:end]; len(chunk)
// must be at least 8 (every chunk is).
func newBitReader(chunk []byte, start, end int) bitReader {
	return bitReader{b: chunk, pos: uint(start) * 8, end: uint(end) * 8}
}

// peekAt returns the bits of b from bit position pos on, in the low bits of
// the result: at least 57 of them are b's (zeros past the end of b). b must
// be at least 8 bytes long: every read is then a single 8-byte load at
// min(pos/8, len(b)-8), which keeps peekAt small enough to inline.
func peekAt(b []byte, pos uint) uint64 {
	i := pos >> 3
	j := min(i, uint(len(b)-8))
	// A shift by 64 or more yields 0: bytes past the end of b read as zero.
	return binary.LittleEndian.Uint64(b[j:j+8]) >> ((i-j)*8 + pos&7)
}

// readWideAt returns the n bits of b at bit position pos, n <= 64.
func readWideAt(b []byte, pos, n uint) uint64 {
	if n <= 56 {
		return peekAt(b, pos) & mask(n)
	}
	return peekAt(b, pos)&mask(32) | (peekAt(b, pos+32)&mask(n-32))<<32
}

// read consumes and returns the next n bits, n <= 64 (for the paths that
// are not hot).
func (r *bitReader) read(n uint) uint64 {
	v := readWideAt(r.b, r.pos, n)
	r.pos += n
	return v
}

// overrun reports whether more bits were read than the stream holds.
func (r *bitReader) overrun() bool {
	return r.pos > r.end
}

// exhausted reports whether the reader consumed exactly its stream: no
// overrun, and less than one byte of padding left.
func (r *bitReader) exhausted() bool {
	return r.pos <= r.end && r.pos+7 >= r.end
}

// mask returns a value with the low n bits set (n <= 64).
func mask(n uint) uint64 {
	return 1<<n - 1 // 1<<64 is 0 in Go, so mask(64) is all ones.
}

// zigzag maps signed to unsigned integers so that small magnitudes stay
// small: 0, -1, 1, -2, ... become 0, 1, 2, 3, ... (as encoding/binary does
// for varints).
func zigzag(x int64) uint64 { return uint64(x<<1) ^ uint64(x>>63) }

// unzigzag inverts zigzag.
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// uvarintLen is the length of binary.AppendUvarint(nil, x).
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// varintLen is the length of binary.AppendVarint(nil, x).
func varintLen(x int64) int { return uvarintLen(zigzag(x)) }

// bitsToBytes rounds a bit count up to bytes.
func bitsToBytes(n uint64) int { return int((n + 7) >> 3) }
