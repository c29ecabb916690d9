package encode

import (
	"encoding/binary"
	"math/bits"
)

// Bit order (part of the format: do not change): bit streams are packed
// least-significant bit first. The first bit of a stream is bit 0 of its first
// byte, the ninth is bit 0 of the second byte, and a k-bit field written at
// bit position p holds its own bit j at stream position p+j. A stream is padded
// with zero bits to a whole number of bytes.

// bitWriter appends a bit stream to a byte slice. The zero value is not ready:
// set b to the slice to append to.
type bitWriter struct {
	b   []byte
	acc uint64 // pending bits; bit 0 is the oldest
	n   uint   // number of pending bits in acc, always < 64
}

// write appends the low nb bits of v (nb <= 64).
func (w *bitWriter) write(v uint64, nb uint) {
	v &= mask(nb)
	w.acc |= v << w.n
	n := w.n + nb
	if n >= 64 {
		w.b = binary.LittleEndian.AppendUint64(w.b, w.acc)
		n -= 64
		// The bits of v that did not fit. When n == 0 this shifts by nb,
		// which is 64 only if w.n was 0, and a shift by 64 yields 0 in Go.
		w.acc = v >> (nb - n)
	}
	w.n = n
}

// finish writes the pending bits padded with zeros to a whole byte and
// returns the slice.
func (w *bitWriter) finish() []byte {
	for n := w.n; n > 0; n -= min(n, 8) {
		w.b = append(w.b, byte(w.acc))
		w.acc >>= 8
	}
	w.acc, w.n = 0, 0
	return w.b
}

// bitReader reads a bit stream stored in b[start:end] of a chunk b. Reading
// past end yields bits that are not the stream's (the bytes that follow it,
// then zeros) and is detected afterwards with overrun, so that hot loops need
// no error checks: every loop is bounded by a point count, never by the
// stream, so reading past its end cannot make it run longer.
//
// b is at least 8 bytes long (every chunk is), which lets every read be a
// single 8-byte load at min(i, len(b)-8), so that the readers stay small
// enough to inline.
type bitReader struct {
	b   []byte // the whole chunk, len(b) >= 8
	pos uint   // bit position of the next bit in b
	end uint   // bit position of the end of the stream in b
}

// newBitReader returns a reader of the stream in chunk[start:end]; len(chunk)
// must be at least 8.
func newBitReader(chunk []byte, start, end int) bitReader {
	return bitReader{b: chunk, pos: uint(start) * 8, end: uint(end) * 8}
}

// peek returns the next bits of the stream in the low bits of the result:
// at least 57 of them are valid (zeros past the end of b).
func (r *bitReader) peek() uint64 {
	i := r.pos >> 3
	j := min(i, uint(len(r.b)-8))
	// A shift by 64 or more yields 0: bytes past the end of b read as zero.
	return binary.LittleEndian.Uint64(r.b[j:]) >> ((i-j)*8 + r.pos&7)
}

// read consumes and returns the next n bits, n <= 56.
func (r *bitReader) read(n uint) uint64 {
	v := r.peek()
	r.pos += n
	return v & mask(n)
}

// readWide consumes and returns the next n bits, n <= 64.
func (r *bitReader) readWide(n uint) uint64 {
	if n <= 56 {
		return r.read(n)
	}
	lo := r.read(32)
	return lo | r.read(n-32)<<32
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
