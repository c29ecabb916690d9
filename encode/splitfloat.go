package encode

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// The split float encoding (ValueSplitFloat) stores each value's 12-bit
// sign+exponent field and its 52-bit mantissa separately, each at a
// chunk-wide width. Section layout (part of the format: do not change):
//
//	minField  2 bytes, little endian: the smallest sign+exponent field
//	          (bits 52..63 of a value), 0..4095
//	we        1 byte: width of a field offset, 0..12
//	tz        1 byte: trailing zero bits dropped from every mantissa, 0..52
//	bits      for each point i = 0..Count-1: field_i - minField in we bits,
//	          then mantissa_i >> tz in 52-tz bits
//
// On random lognormal values this takes about 56 bits a point (4 exponent
// bits, 52 mantissa bits) where Gorilla XOR takes about 66.

// splitHeadLen is the length of a split float section before its bits.
//
// Part of the format: do not change.
const splitHeadLen = 4

const mantBits = 52

// planSplit returns the parameters of a split float section for vs, and
// whether all values have the same bits.
func planSplit(vs []float64) (splitPlan, bool) {
	b0 := math.Float64bits(vs[0])
	minF, maxF, or, diff := uint64(math.MaxUint64), uint64(0), uint64(0), uint64(0)
	for _, v := range vs {
		u := math.Float64bits(v)
		f := u >> mantBits
		minF = min(minF, f)
		maxF = max(maxF, f)
		or |= u // its mantissa gives the common trailing zeros
		diff |= u ^ b0
	}
	return splitPlan{
		minField: minF,
		we:       uint(bits.Len64(maxF - minF)),
		tz:       uint(bits.TrailingZeros64(or&mask(mantBits) | 1<<mantBits)),
	}, diff == 0
}

// splitPlan holds the parameters of a split float section.
type splitPlan struct {
	minField uint64
	we, tz   uint
}

func (p *splitPlan) size(n int) int {
	return splitHeadLen + bitsToBytes(uint64(n)*uint64(p.we+mantBits-p.tz))
}

// append writes the section of vs, which must end at end.
func (p *splitPlan) append(dst []byte, vs []float64, end int) ([]byte, bool) {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(p.minField))
	dst = append(dst, byte(p.we), byte(p.tz))
	dst, buf, ok := bitSection(dst, end)
	if !ok {
		return dst, false
	}
	var bw bitWriter
	we, tz, minF := p.we&63, p.tz&63, p.minField
	n := we + mantBits - tz
	for _, v := range vs {
		u := math.Float64bits(v)
		field := u>>mantBits - minF
		mant := (u & mask(mantBits)) >> tz
		if n <= 56 {
			bw = bw.write(buf, field|mant<<we, n)
		} else {
			bw = bw.write(buf, field, we).write(buf, mant, n-we)
		}
	}
	return dst, bw.finish(buf)
}

// splitDecoder is the state of the split float decoder.
type splitDecoder struct {
	minField uint64
	we, tz   uint
}

func (d *valueDecoder) initSplit(chunk []byte, start, end int) bool {
	sec := chunk[start:end]
	if len(sec) < splitHeadLen {
		return false
	}
	d.minField = uint64(binary.LittleEndian.Uint16(sec))
	d.we, d.tz = uint(sec[2]), uint(sec[3])
	if d.minField > 0xfff || d.we > 12 || d.tz > mantBits {
		return false
	}
	d.br = newBitReader(chunk, start+splitHeadLen, end)
	return bitsToBytes(uint64(d.count)*uint64(d.we+mantBits-d.tz)) == len(sec)-splitHeadLen
}

func (d *valueDecoder) decodeSplit(dst []float64) {
	b, pos, minF, we, tz := d.br.b, d.br.pos, d.minField, d.we&63, d.tz&63
	mw := mantBits - tz
	wm, mm := mask(we), mask(mw)
	if n := we + mw; n <= 56 {
		nm := mask(n)
		for i := range dst {
			x := peekAt(b, pos) & nm
			pos += n
			dst[i] = math.Float64frombits((x&wm+minF)<<mantBits | (x>>we)<<tz)
		}
	} else {
		for i := range dst {
			f := peekAt(b, pos) & wm
			m := peekAt(b, pos+we) & mm
			pos += n
			dst[i] = math.Float64frombits((f+minF)<<mantBits | m<<tz)
		}
	}
	d.br.pos = pos
}
