package encode

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// The XOR encoding (ValueXOR) is the Gorilla paper's value compression.
// Section layout (part of the format: do not change):
//
//	v0    8 bytes, little endian: the bits of the first value
//	bits  for each point i = 1..Count-1, with x = bits(v_i) XOR bits(v_{i-1}):
//	      '0'                    x == 0
//	      '1' '0' m              m = the window's sig bits of x, the window
//	                             being the last one opened (lz leading zeros,
//	                             sig bits: x = m << (64-lz-sig))
//	      '1' '1' lz sig-1 m     opens a window: lz in 5 bits (0..31),
//	                             sig-1 in 6 bits (sig 1..64, lz+sig <= 64),
//	                             then m in sig bits
//
// Bits are written in stream order, each field least significant bit first
// (see bits.go). The encoder reuses the window when x fits in it and reusing
// costs at most as much as opening a new window.

var errXORWindow = corrupt("encode: XOR window wider than 64 bits")

// xorWindow is the window state of the XOR decoder.
type xorWindow struct {
	lz, sig uint // leading zeros and width of the window; sig == 0: none yet
}

// xorStep decides how x, the XOR of a value with the previous one, is coded
// after the window with lz leading and tz trailing zeros (lz = 64: no window
// yet). It returns the window after the code and the code's length in bits.
// The window changes exactly when the code opens a new window: a new window
// equal to the old one would have fitted. Written without branches on the
// data, and small enough to inline, for the encoder's exact size pass.
func xorStep(lz, tz int, x uint64) (int, int, int) {
	xlz := min(bits.LeadingZeros64(x), 31)
	xtz := bits.TrailingZeros64(x)
	n := 77 - xlz - xtz // a new window: 13 + its width
	// Reuse when x fits in the window and reusing (2 + the window's width)
	// costs no more than opening.
	if (xlz-lz)|(xtz-tz)|(lz+tz+11-xlz-xtz) >= 0 {
		n, xlz, xtz = 66-lz-tz, lz, tz
	}
	if x == 0 {
		n, xlz, xtz = 1, lz, tz
	}
	return xlz, xtz, n
}

// xorSize returns the length of the XOR section of vs, or false if it
// would be longer than limit (it stops measuring once the bits so far plus
// one a point to come exceed the limit).
func xorSize(vs []float64, limit int) (int, bool) {
	const block = 64
	limitBits := math.MaxInt
	if limit < math.MaxInt/8 {
		limitBits = (limit - 8) * 8
	}
	prev := math.Float64bits(vs[0])
	lz, tz, total := 64, 0, 0
	for start := 1; start < len(vs); start += block {
		if total+len(vs)-start > limitBits { // every point takes a bit or more
			return 0, false
		}
		for _, v := range vs[start:min(start+block, len(vs))] {
			u := math.Float64bits(v)
			var n int
			lz, tz, n = xorStep(lz, tz, u^prev)
			total += n
			prev = u
		}
	}
	size := 8 + bitsToBytes(uint64(total))
	return size, size <= limit
}

// appendXOR writes the section of vs, which must end at end.
func appendXOR(dst []byte, vs []float64, end int) ([]byte, bool) {
	prev := math.Float64bits(vs[0])
	dst = binary.LittleEndian.AppendUint64(dst, prev)
	dst, buf, ok := bitSection(dst, end)
	if !ok {
		return dst, false
	}
	var bw bitWriter
	lz, tz := 64, 0
	for _, v := range vs[1:] {
		u := math.Float64bits(v)
		x := u ^ prev
		prev = u
		nlz, ntz, _ := xorStep(lz, tz, x)
		sig := 64 - nlz - ntz
		switch {
		case x == 0:
			bw = bw.write(buf, 0, 1)
			continue
		case nlz != lz || ntz != tz: // open a window
			bw = bw.write(buf, 0b11|uint64(nlz)<<2|uint64(sig-1)<<7, 13)
		default:
			bw = bw.write(buf, 0b01, 2)
		}
		lz, tz = nlz, ntz
		bw = bw.writeWide(buf, x>>(ntz&63), uint(sig))
	}
	return dst, bw.finish(buf)
}

func (d *valueDecoder) initXOR(chunk []byte, start, end int) bool {
	sec := chunk[start:end]
	if len(sec) < 8 {
		return false
	}
	d.cur = binary.LittleEndian.Uint64(sec)
	d.br = newBitReader(chunk, start+8, end)
	// Every point after the first takes at least one bit.
	return uint64(len(sec)-8)*8 >= uint64(d.count-1)
}

// decodeXOR returns false if a window is wider than 64 bits.
func (d *valueDecoder) decodeXOR(dst []float64) bool {
	cur := d.cur
	if d.emitted == 0 {
		dst[0] = math.Float64frombits(cur)
		dst = dst[1:]
	}
	b, pos, lz, sig := d.br.b, d.br.pos, d.lz, d.sig
	for i := 0; i < len(dst); i++ {
		x := peekAt(b, pos) // at least 57 bits of the stream
		switch {
		case x&1 == 0:
			// A run of '0' codes: the value repeats.
			run := min(bits.TrailingZeros64(x), 57, len(dst)-i)
			pos += uint(run)
			v := math.Float64frombits(cur)
			out := dst[i : i+run]
			for j := range out {
				out[j] = v
			}
			i += run - 1
			continue
		case x&2 == 0:
			var m uint64
			if sig <= 55 {
				m = x >> 2 & mask(sig)
				pos += 2 + sig
			} else {
				m = readWideAt(b, pos+2, sig)
				pos += 2 + sig
			}
			cur ^= m << (64 - lz - sig)
		default:
			lz = uint(x>>2) & 31
			sig = uint(x>>7)&63 + 1
			if lz+sig > 64 {
				return false
			}
			var m uint64
			if sig <= 44 {
				m = x >> 13 & mask(sig)
				pos += 13 + sig
			} else {
				m = readWideAt(b, pos+13, sig)
				pos += 13 + sig
			}
			cur ^= m << (64 - lz - sig)
		}
		dst[i] = math.Float64frombits(cur)
	}
	d.cur, d.br.pos, d.lz, d.sig = cur, pos, lz, sig
	return true
}
