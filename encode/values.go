package encode

import (
	"encoding/binary"
	"math"
)

// Value encodings, stored in the low nibble of the encodings byte.
//
// Part of the format: do not change.
const (
	// ValueConst: every value has the same bits; the section is those 8
	// bytes (below).
	ValueConst = 0
	// ValueInt: integer deltas bit-packed at a fixed width (int.go).
	ValueInt = 1
	// ValueIntRadix: integer deltas packed as base-R digits (int.go).
	ValueIntRadix = 2
	// ValueSplitFloat: sign+exponent and mantissa fields at chunk-wide
	// widths (splitfloat.go).
	ValueSplitFloat = 3
	// ValueXOR: Gorilla XOR compression (xor.go).
	ValueXOR = 4
	// ValueSplitHuffman: split float with the sign+exponent field in a
	// per-chunk Huffman code (splithuff.go).
	ValueSplitHuffman = 5

	maxValueEnc = ValueSplitHuffman
)

// valuePlan holds the aggregates of a chunk's values and the chosen value
// encoding with its parameters.
type valuePlan struct {
	enc  uint8
	size int // exact length of the value section

	nans                       int
	min, max, sum, first, last float64
	firstI, lastI              int // indexes of the first / last non-NaN value

	intPlan
	splitPlan
	huff huffPlan
}

// plan computes the aggregates of vs and chooses its encoding: the smallest,
// or force if force >= 0 (for tests; it returns false if force does not apply
// to vs). The sizes are exact. Each kind of statistic is measured in a pass
// of its own: separate tight loops run faster than one loop doing
// everything, which runs out of registers.
func (p *valuePlan) plan(vs []float64, force int) bool {
	*p = valuePlan{}
	p.aggregate(vs)
	var same bool
	p.splitPlan, same = planSplit(vs)
	n := len(vs)
	// Candidates in order of preference on equal size, the faster to decode
	// first.
	p.enc, p.size = ValueSplitFloat, math.MaxInt
	choose := func(enc uint8, size int) {
		if force < 0 && size < p.size || force == int(enc) {
			p.enc, p.size = enc, size
		}
	}
	if same {
		choose(ValueConst, constLen)
	}
	var isInt bool
	if p.intPlan, isInt = planInt(vs); isInt {
		choose(ValueInt, p.intPlan.packedSize(n))
		if s, ok := p.intPlan.radixSize(n); ok {
			choose(ValueIntRadix, s)
		}
	}
	choose(ValueSplitFloat, p.splitPlan.size(n))
	// Split-Huffman takes at least one bit a point more than the mantissas.
	if huffLow := splitHuffHead + bitsToBytes(uint64(n)*uint64(1+mantBits-p.splitPlan.tz)); huffLow < p.size || force == ValueSplitHuffman {
		var ok bool
		if p.huff, ok = planHuffman(vs, &p.splitPlan); ok {
			choose(ValueSplitHuffman, p.huff.size())
		}
	}
	// XOR is measured last, and only as long as it can still be smaller.
	limit := p.size - 1
	if force == ValueXOR {
		limit = math.MaxInt
	}
	if s, ok := xorSize(vs, limit); ok {
		choose(ValueXOR, s)
	}
	return force < 0 || force == int(p.enc)
}

// aggregate computes the header aggregates of vs. The loop has no branch
// on the data: min and max compare order keys (see floatKey), and NaNs are
// left out by selecting neutral operands.
func (p *valuePlan) aggregate(vs []float64) {
	minK, maxK := uint64(math.MaxUint64), uint64(0)
	var sum float64
	nans := 0
	for _, v := range vs {
		u := math.Float64bits(v)
		lo, hi, add := floatKey(u), floatKey(u), u
		if u&^(1<<63) > 0x7ff0000000000000 { // NaN
			lo, hi, add = math.MaxUint64, 0, 0
			nans++
		}
		minK = min(minK, lo)
		maxK = max(maxK, hi)
		// Adding +0 for a NaN changes nothing: the sum starts at +0, and
		// no sum of these terms is -0.
		sum += math.Float64frombits(add)
	}
	p.nans, p.sum = nans, sum
	p.min, p.max, p.first, p.last = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	p.firstI, p.lastI = 0, 0
	if nans < len(vs) {
		p.min, p.max = floatFromKey(minK), floatFromKey(maxK)
		i := 0
		for math.IsNaN(vs[i]) {
			i++
		}
		j := len(vs) - 1
		for math.IsNaN(vs[j]) {
			j--
		}
		p.firstI, p.first, p.lastI, p.last = i, vs[i], j, vs[j]
	}
}

// floatKey maps the bits of a non-NaN float64 to a key whose unsigned order
// is the float order, with -0 below +0 (math.Min's order): negative values
// have all their bits flipped, the others their sign bit.
func floatKey(u uint64) uint64 { return u ^ (uint64(int64(u)>>63) | 1<<63) }

// floatFromKey inverts floatKey.
func floatFromKey(k uint64) float64 {
	return math.Float64frombits(k ^ (uint64(int64(^k)>>63) | 1<<63))
}

// append writes the value section of vs, and reports whether it is as long
// as planned.
func (p *valuePlan) append(dst []byte, vs []float64) ([]byte, bool) {
	end := len(dst) + p.size
	switch p.enc {
	case ValueConst:
		dst = appendConst(dst, vs)
		return dst, len(dst) == end
	case ValueInt:
		return p.intPlan.appendPacked(dst, vs, end)
	case ValueIntRadix:
		return p.intPlan.appendRadix(dst, vs, end)
	case ValueSplitFloat:
		return p.splitPlan.append(dst, vs, end)
	case ValueSplitHuffman:
		return p.huff.append(dst, vs, &p.splitPlan, end)
	default:
		return appendXOR(dst, vs, end)
	}
}

// valueDecoder decodes a value section in batches.
type valueDecoder struct {
	br      bitReader
	enc     uint8
	count   int // points in the chunk
	emitted int // points decoded so far

	cur uint64 // ValueConst: the bits; ValueXOR: the previous bits

	intDecoder
	xorWindow
	splitDecoder
	huffDecoder
}

// init checks the value section against the header and prepares decoding.
// The section is chunk[start:end].
func (d *valueDecoder) init(h *Header, chunk []byte, start, end int) error {
	*d = valueDecoder{enc: h.ValueEnc, count: h.Count}
	sec := chunk[start:end]
	var ok bool
	switch d.enc {
	case ValueConst:
		ok = len(sec) == constLen
		if ok {
			d.cur = binary.LittleEndian.Uint64(sec)
		}
	case ValueInt, ValueIntRadix:
		ok = d.initInt(chunk, start, end)
	case ValueSplitFloat:
		ok = d.initSplit(chunk, start, end)
	case ValueXOR:
		ok = d.initXOR(chunk, start, end)
	case ValueSplitHuffman:
		ok = d.initSplitHuff(chunk, start, end)
	}
	if !ok {
		return errValueSection
	}
	return nil
}

// decode decodes the next len(dst) values into dst; the caller never asks
// for more than the chunk holds.
func (d *valueDecoder) decode(dst []float64) error {
	if len(dst) == 0 {
		return nil
	}
	switch d.enc {
	case ValueConst:
		v := math.Float64frombits(d.cur)
		for i := range dst {
			dst[i] = v
		}
	case ValueInt:
		d.decodeIntPacked(dst)
	case ValueIntRadix:
		if !d.decodeIntRadix(dst) {
			return errRadixDigit
		}
	case ValueSplitFloat:
		d.decodeSplit(dst)
	case ValueXOR:
		if !d.decodeXOR(dst) {
			return errXORWindow
		}
	case ValueSplitHuffman:
		d.decodeSplitHuff(dst)
	}
	d.emitted += len(dst)
	if d.emitted == d.count && d.enc != ValueConst && !d.br.exhausted() {
		return errValueSection
	}
	return nil
}

// constLen is the length of a ValueConst section.
//
// Part of the format: do not change.
const constLen = 8

// appendConst writes the ValueConst section: the bits of the value, 8 bytes
// little endian.
func appendConst(dst []byte, vs []float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(vs[0]))
}
