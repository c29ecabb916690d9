package encode

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// The integer encodings (ValueInt, ValueIntRadix) apply when every value is
// an integer that float64 represents exactly: finite, not -0, |v| <= 2^53.
// Section layout (part of the format: do not change):
//
//	v0    varint  (zigzag) the first value
//	minD  varint  (zigzag) the smallest delta v_i - v_{i-1}
//	span  uvarint largest delta minus minD
//	bits  for i = 1..Count-1, u_i = v_i - v_{i-1} - minD (0 <= u_i <= span):
//	      ValueInt:      each u_i in w = bits.Len64(span) bits;
//	      ValueIntRadix: the u_i as base-R digits, R = span+1, in groups
//	      of k digits (k the largest with R^k <= 2^64-1; the last group may
//	      be shorter), a group u_a..u_b stored as the integer
//	      x = u_a*R^(b-a) + ... + u_b in bits.Len64(R^(b-a+1)-1) bits.
//
// Radix packing stores a step -3..+3 random walk in 62 bits per 22 points
// (2.82 bits a point) where bit packing needs 3.

// maxExactInt is the largest magnitude of an integer value.
const maxExactInt = 1 << 53

// exactInt returns v as an int64 and whether v qualifies for the integer
// encodings.
func exactInt(v float64) (int64, bool) {
	i := int64(v) // out-of-range and NaN conversions do not panic in Go
	return i, float64(i) == v && i >= -maxExactInt && i <= maxExactInt && math.Float64bits(v) != 1<<63
}

// planInt returns the parameters of an integer section for vs, or false if
// some value is not an integer the integer encodings take.
func planInt(vs []float64) (intPlan, bool) {
	v0, ok := exactInt(vs[0])
	if !ok {
		return intPlan{}, false
	}
	if len(vs) == 1 {
		return intPlan{v0: v0}, true
	}
	const block = 128
	prev := v0
	minD, maxD := int64(math.MaxInt64), int64(math.MinInt64)
	bad := uint64(0)
	for start := 1; start < len(vs); start += block {
		for _, v := range vs[start:min(start+block, len(vs))] {
			i := int64(v) // out-of-range and NaN conversions do not panic in Go
			// Not an integer, not in range or -0: checked without branches;
			// the delta of a non-integer is harmless garbage.
			bad |= b2u(float64(i) != v) | b2u(uint64(i+maxExactInt) > 2*maxExactInt) | b2u(math.Float64bits(v) == 1<<63)
			d := i - prev
			prev = i
			minD = min(minD, d)
			maxD = max(maxD, d)
		}
		if bad != 0 {
			return intPlan{}, false
		}
	}
	return intPlan{v0: v0, minD: minD, span: uint64(maxD - minD)}, true
}

// b2u converts a bool to 0 or 1 (the compiler makes it a SETcc).
func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// intPlan holds the parameters of an integer section.
type intPlan struct {
	v0, minD int64
	span     uint64
}

func (p *intPlan) headLen() int {
	return varintLen(p.v0) + varintLen(p.minD) + uvarintLen(p.span)
}

func (p *intPlan) packedSize(n int) int {
	return p.headLen() + bitsToBytes(uint64(n-1)*uint64(bits.Len64(p.span)))
}

// radixSize returns the ValueIntRadix section length, or false when radix
// packing does not apply to this span.
func (p *intPlan) radixSize(n int) (int, bool) {
	rp, ok := newRadix(p.span + 1)
	if !ok {
		return 0, false
	}
	return p.headLen() + bitsToBytes(rp.bits(n-1)), true
}

func (p *intPlan) appendHead(dst []byte) []byte {
	dst = binary.AppendVarint(dst, p.v0)
	dst = binary.AppendVarint(dst, p.minD)
	return binary.AppendUvarint(dst, p.span)
}

// appendPacked writes the ValueInt section of vs, which must end at end.
func (p *intPlan) appendPacked(dst []byte, vs []float64, end int) ([]byte, bool) {
	dst, buf, ok := bitSection(p.appendHead(dst), end)
	if !ok {
		return dst, false
	}
	w := uint(bits.Len64(p.span))
	if w == 0 {
		return dst, len(buf) == 0
	}
	var bw bitWriter
	prev := p.v0
	for _, v := range vs[1:] {
		i := int64(v)
		bw = bw.write(buf, uint64(i-prev-p.minD), w) // w <= 56: |deltas| <= 2^54
		prev = i
	}
	return dst, bw.finish(buf)
}

// appendRadix writes the ValueIntRadix section of vs, which must end at end.
func (p *intPlan) appendRadix(dst []byte, vs []float64, end int) ([]byte, bool) {
	dst, buf, ok := bitSection(p.appendHead(dst), end)
	rp, rok := newRadix(p.span + 1)
	if !ok || !rok {
		return dst, false
	}
	var bw bitWriter
	prev := p.v0
	for start := 1; start < len(vs); start += rp.k {
		group := vs[start:min(start+rp.k, len(vs))]
		var x uint64
		for _, v := range group {
			i := int64(v)
			x = x*rp.r + uint64(i-prev-p.minD)
			prev = i
		}
		_, w := rp.group(len(group))
		bw = bw.writeWide(buf, x, w)
	}
	return dst, bw.finish(buf)
}

// radixParams describes base-R digit packing.
type radixParams struct {
	r  uint64 // the radix, 3 <= r < 2^32
	k  int    // digits in a full group: the largest k with r^k <= 2^64-1
	pk uint64 // r^k
	bk uint   // bits of a full group: bits.Len64(r^k - 1)
}

// newRadix returns the parameters for radix r, or false if radix packing is
// not used for r (r < 3, where bit packing is as small, or r >= 2^32, where
// groups would hold one digit).
func newRadix(r uint64) (radixParams, bool) {
	if r < 3 || r >= 1<<32 {
		return radixParams{}, false
	}
	p := radixParams{r: r, k: 1, pk: r}
	for p.pk <= math.MaxUint64/r {
		p.pk *= r
		p.k++
	}
	p.bk = uint(bits.Len64(p.pk - 1))
	return p, true
}

// group returns r^m and the bit width of a group of m <= k digits.
func (p *radixParams) group(m int) (uint64, uint) {
	if m == p.k {
		return p.pk, p.bk
	}
	pm := uint64(1)
	for range m {
		pm *= p.r
	}
	return pm, uint(bits.Len64(pm - 1))
}

// bits returns the bit length of n digits.
func (p *radixParams) bits(n int) uint64 {
	b := uint64(n/p.k) * uint64(p.bk)
	if rem := n % p.k; rem > 0 {
		_, w := p.group(rem)
		b += uint64(w)
	}
	return b
}

// intDecoder is the state of the integer decoders.
type intDecoder struct {
	acc    int64 // the last value decoded (v0 before the first)
	minD   int64
	w      uint // ValueInt: bit width
	rp     radixParams
	y      uint64 // ValueIntRadix: the current group as a 64-bit fraction
	left   int    // ValueIntRadix: digits left in the current group
	digits int    // ValueIntRadix: digits in groups not yet started
}

func (d *valueDecoder) initInt(chunk []byte, start, end int) bool {
	sec := chunk[start:end]
	r := headerReader{b: sec}
	v0, minD, span := r.varint(), r.varint(), r.uvarint()
	if r.err != nil {
		return false
	}
	d.acc, d.minD = v0, minD
	d.br = newBitReader(chunk, start+r.off, end)
	n := d.count - 1
	var nbits uint64
	if d.enc == ValueInt {
		d.w = uint(bits.Len64(span))
		nbits = uint64(n) * uint64(d.w)
	} else {
		rp, ok := newRadix(span + 1)
		if !ok {
			return false
		}
		d.rp, d.digits = rp, n
		nbits = rp.bits(n)
	}
	return bitsToBytes(nbits) == len(sec)-r.off
}

func (d *valueDecoder) decodeIntPacked(dst []float64) {
	acc := d.acc
	if d.emitted == 0 {
		dst[0] = float64(acc)
		dst = dst[1:]
	}
	b, pos, minD, w := d.br.b, d.br.pos, d.minD, d.w
	switch {
	case w == 0:
		for i := range dst {
			acc += minD
			dst[i] = float64(acc)
		}
	case w <= 56:
		wm := mask(w)
		for i := range dst {
			acc += minD + int64(peekAt(b, pos)&wm)
			pos += w
			dst[i] = float64(acc)
		}
	default:
		for i := range dst {
			acc += minD + int64(readWideAt(b, pos, w))
			pos += w
			dst[i] = float64(acc)
		}
	}
	d.acc, d.br.pos = acc, pos
}

// decodeIntRadix decodes base-R digits. A group x (< R^m) is turned into the
// fraction y = ceil(x * 2^64 / R^m); multiplying y by R then yields the next
// digit in the high word and the rest of the fraction in the low word. The
// rounding error of y (< 1) grows by R per digit and stays below 2^64/R^m,
// which keeps every digit exact because R^k <= 2^64-1.
func (d *valueDecoder) decodeIntRadix(dst []float64) bool {
	acc := d.acc
	if d.emitted == 0 {
		dst[0] = float64(acc)
		dst = dst[1:]
	}
	b, pos, minD, r, y, left := d.br.b, d.br.pos, d.minD, d.rp.r, d.y, d.left
	for len(dst) > 0 {
		if left == 0 {
			m := min(d.rp.k, d.digits)
			if m == 0 { // asked for more points than the chunk holds
				return false
			}
			pm, w := d.rp.group(m)
			x := readWideAt(b, pos, w)
			pos += w
			if x >= pm { // also keeps bits.Div64 from panicking
				return false
			}
			q, rem := bits.Div64(x, 0, pm)
			y = q
			if rem != 0 {
				y++
			}
			left = m
			d.digits -= m
		}
		out := dst[:min(left, len(dst))]
		for i := range out {
			hi, lo := bits.Mul64(y, r)
			y = lo
			acc += minD + int64(hi)
			out[i] = float64(acc)
		}
		left -= len(out)
		dst = dst[len(out):]
	}
	d.acc, d.br.pos, d.y, d.left = acc, pos, y, left
	return true
}
