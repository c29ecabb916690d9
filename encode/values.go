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
	// bytes (const.go).
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

	maxValueEnc = ValueXOR
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
}

// plan computes the aggregates of vs and chooses its encoding: the smallest,
// or force if force >= 0 (for tests; it returns false if force does not apply
// to vs). Each codec measures vs in a pass of its own: separate tight loops
// run faster than one loop doing everything.
func (p *valuePlan) plan(vs []float64, force int) bool {
	*p = valuePlan{}
	p.aggregate(vs)
	n := len(vs)
	// Candidates in order of preference on equal size, the faster to decode
	// first.
	p.enc, p.size = ValueSplitFloat, math.MaxInt
	choose := func(enc uint8, size int) {
		if force < 0 && size < p.size || force == int(enc) {
			p.enc, p.size = enc, size
		}
	}
	var same bool
	p.splitPlan, same = planSplit(vs)
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
	// XOR is measured last, and only while it can still be smaller.
	limit := p.size - 1
	if force == ValueXOR {
		limit = math.MaxInt
	}
	if s, ok := xorSize(vs, limit); ok {
		choose(ValueXOR, s)
	}
	return force < 0 || force == int(p.enc)
}

// aggregate computes the header aggregates of vs.
func (p *valuePlan) aggregate(vs []float64) {
	var sum float64
	mn, mx, first, last := math.NaN(), math.NaN(), math.NaN(), math.NaN()
	nans, firstI, lastI := 0, -1, -1
	for i, v := range vs {
		if v != v {
			nans++
			continue
		}
		if firstI < 0 {
			firstI, first, mn, mx = i, v, v, v
		}
		// math.Min / math.Max semantics for the non-NaN values: -0 < +0.
		if v < mn || (v == mn && math.Signbit(v)) {
			mn = v
		}
		if v > mx || (v == mx && !math.Signbit(v)) {
			mx = v
		}
		sum += v
		lastI = i
	}
	if lastI >= 0 {
		last = vs[lastI]
	}
	p.nans, p.min, p.max, p.sum, p.first, p.last = nans, mn, mx, sum, first, last
	p.firstI, p.lastI = max(firstI, 0), max(lastI, 0)
}

// append writes the value section of vs.
func (p *valuePlan) append(dst []byte, vs []float64) []byte {
	switch p.enc {
	case ValueConst:
		return appendConst(dst, vs)
	case ValueInt:
		return p.intPlan.appendPacked(dst, vs)
	case ValueIntRadix:
		return p.intPlan.appendRadix(dst, vs)
	case ValueSplitFloat:
		return p.splitPlan.append(dst, vs)
	default:
		return appendXOR(dst, vs)
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
