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

// xorWindow is the window state shared by the XOR encoder and decoder.
type xorWindow struct {
	lz, sig uint // leading zeros and width of the window; sig == 0: none yet
}

// xorState is the XOR encoder's state.
type xorState struct {
	xorWindow
	prev uint64
}

// choose decides how the value with bits v is coded, updates the state, and
// returns the XOR with the previous value and whether a new window was
// opened.
func (s *xorState) choose(v uint64) (x uint64, open bool) {
	x = v ^ s.prev
	s.prev = v
	if x == 0 {
		return 0, false
	}
	lz := min(uint(bits.LeadingZeros64(x)), 31)
	tz := uint(bits.TrailingZeros64(x))
	sig := 64 - lz - tz
	// Reuse costs 2+s.sig bits, a new window 13+sig.
	if s.sig != 0 && lz >= s.lz && tz >= 64-s.lz-s.sig && s.sig <= sig+11 {
		return x, false
	}
	s.lz, s.sig = lz, sig
	return x, true
}

// cost returns the number of bits of a code chosen by choose.
func (s *xorState) cost(x uint64, open bool) uint {
	switch {
	case x == 0:
		return 1
	case open:
		return 13 + s.sig
	default:
		return 2 + s.sig
	}
}

func appendXOR(dst []byte, vs []float64) []byte {
	s := xorState{prev: math.Float64bits(vs[0])}
	dst = binary.LittleEndian.AppendUint64(dst, s.prev)
	bw := bitWriter{b: dst}
	for _, v := range vs[1:] {
		x, open := s.choose(math.Float64bits(v))
		switch {
		case x == 0:
			bw.write(0, 1)
			continue
		case open:
			bw.write(0b11|uint64(s.lz)<<2|uint64(s.sig-1)<<7, 13)
		default:
			bw.write(0b01, 2)
		}
		bw.write(x>>(64-s.lz-s.sig), s.sig)
	}
	return bw.finish()
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
	br, lz, sig := d.br, d.lz, d.sig
	for i := range dst {
		x := br.peek() // at least 57 valid bits
		switch {
		case x&1 == 0:
			br.pos++
		case x&2 == 0:
			var m uint64
			if sig <= 55 {
				m = x >> 2 & mask(sig)
				br.pos += 2 + sig
			} else {
				br.pos += 2
				m = br.readWide(sig)
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
				br.pos += 13 + sig
			} else {
				br.pos += 13
				m = br.readWide(sig)
			}
			cur ^= m << (64 - lz - sig)
		}
		dst[i] = math.Float64frombits(cur)
	}
	d.cur, d.br, d.lz, d.sig = cur, br, lz, sig
	return true
}
