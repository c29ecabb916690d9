package encode

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// The split-Huffman encoding (ValueSplitHuffman) is the split float
// encoding with the sign+exponent field coded by a per-chunk Huffman code
// instead of a fixed width. Values of one series cluster around a typical
// magnitude: a lognormal latency (sigma = 1) spans some 11 binary exponents,
// 4 bits fixed, but their entropy is about 2.6 bits. Section layout (part of
// the format: do not change):
//
//	minField  2 bytes, little endian: the smallest sign+exponent field
//	tz        1 byte: trailing zero bits dropped from every mantissa, 0..52
//	lengths   8 bytes: the code length, 0..8, of field offset j = 0..15 in
//	          the low (j even) or high (j odd) nibble of byte j/2; 0 means
//	          the offset does not occur. At least two lengths are not 0,
//	          and they make a complete prefix code (sum of 2^-len = 1).
//	mantissas a bit stream: for each point i = 0..Count-1, mantissa_i >> tz
//	          in 52-tz bits (ceil(Count*(52-tz)/8) bytes)
//	codes     a bit stream: for each point, the code of field_i - minField
//
// Two streams rather than one: the mantissas are at fixed positions, so a
// decoder's only chain of dependent loads is the short one of the codes.
//
// Codes are canonical, as in DEFLATE (RFC 1951, 3.2.2): ordered by length,
// then by offset, each code the previous plus one, shifted left when the
// length grows. A code is written first bit first: its most significant bit
// is the first bit of the stream.

// huffSyms is the number of field offsets the code covers, huffMaxLen its
// longest code.
//
// Part of the format: do not change.
const (
	huffSyms      = 16
	huffMaxLen    = 8
	splitHuffHead = 2 + 1 + huffSyms/2
)

// huffPlan holds the code of a split-Huffman section.
type huffPlan struct {
	lens      [huffSyms]uint8
	mantBytes int    // length of the mantissa stream
	codeBits  uint64 // length of the code stream in bits
}

// planHuffman returns the split-Huffman parameters for vs (split holds the
// field range and tz), or false when the encoding does not apply: fewer
// than 2 or more than huffSyms distinct fields.
func planHuffman(vs []float64, split *splitPlan) (huffPlan, bool) {
	if split.we == 0 || split.we > 4 {
		return huffPlan{}, false
	}
	var freq [huffSyms]int
	minF := split.minField
	for _, v := range vs {
		freq[(math.Float64bits(v)>>mantBits-minF)&(huffSyms-1)]++
	}
	p := huffPlan{lens: huffmanLengths(&freq), mantBytes: bitsToBytes(uint64(len(vs)) * uint64(mantBits-split.tz))}
	for s, f := range freq {
		p.codeBits += uint64(f) * uint64(p.lens[s])
	}
	return p, true
}

func (p *huffPlan) size() int { return splitHuffHead + p.mantBytes + bitsToBytes(p.codeBits) }

// huffmanLengths returns code lengths, at most huffMaxLen, for symbols of
// the given frequencies (at least two of them not 0) that make a complete
// prefix code. They are Huffman's when those fit in huffMaxLen bits, else
// Huffman's repaired to fit (not always optimal then).
func huffmanLengths(freq *[huffSyms]int) [huffSyms]uint8 {
	// Huffman's algorithm on at most 16 leaves: repeatedly join the two
	// lightest roots. Nodes 0..15 are the leaves, then the joins.
	var weight [2 * huffSyms]int
	var parent [2 * huffSyms]int
	var alive [2 * huffSyms]bool
	next := huffSyms
	for s, f := range freq {
		weight[s], alive[s] = f, f > 0
	}
	for {
		a, b := -1, -1
		for i := range next {
			if !alive[i] {
				continue
			}
			if a < 0 || weight[i] < weight[a] {
				a, b = i, a
			} else if b < 0 || weight[i] < weight[b] {
				b = i
			}
		}
		if b < 0 {
			break // one root left
		}
		weight[next], alive[next] = weight[a]+weight[b], true
		alive[a], alive[b] = false, false
		parent[a], parent[b] = next, next
		next++
	}
	var lens [huffSyms]uint8
	for s, f := range freq {
		if f == 0 {
			continue
		}
		depth := 0
		for n := s; n != next-1; n = parent[n] {
			depth++
		}
		lens[s] = uint8(min(depth, huffMaxLen))
	}
	// Repair the clamped lengths: kraft is the code space used, in units of
	// 2^-huffMaxLen; a complete code uses exactly 1 << huffMaxLen.
	const full = 1 << huffMaxLen
	kraft := 0
	for _, l := range lens {
		if l > 0 {
			kraft += full >> l
		}
	}
	for kraft > full {
		// Lengthen the longest code shorter than the limit (the cheapest
		// step that frees space), the rarest symbol on equal lengths.
		best := -1
		for s, l := range lens {
			if l > 0 && l < huffMaxLen && (best < 0 || l > lens[best] || l == lens[best] && freq[s] < freq[best]) {
				best = s
			}
		}
		kraft -= full >> (lens[best] + 1)
		lens[best]++
	}
	for kraft < full {
		// Shorten a longest code, the most frequent symbol on equal
		// lengths: it adds the smallest unit of space, which divides what
		// is missing.
		best := -1
		for s, l := range lens {
			if l > 1 && (best < 0 || l > lens[best] || l == lens[best] && freq[s] > freq[best]) {
				best = s
			}
		}
		kraft += full >> lens[best]
		lens[best]--
	}
	return lens
}

// huffCodes returns the canonical codes for lens, bit-reversed so that the
// stream, written least significant bit first, carries each code's most
// significant bit first. It reports false if lens is not a complete prefix
// code of at least two codes of at most huffMaxLen bits.
func huffCodes(lens *[huffSyms]uint8) ([huffSyms]uint16, bool) {
	var count [huffMaxLen + 1]int
	used, kraft := 0, 0
	for _, l := range lens {
		if l > huffMaxLen {
			return [huffSyms]uint16{}, false
		}
		if l > 0 {
			count[l]++
			used++
			kraft += 1 << (huffMaxLen - l)
		}
	}
	if used < 2 || kraft != 1<<huffMaxLen {
		return [huffSyms]uint16{}, false
	}
	var next [huffMaxLen + 2]int
	code := 0
	for l := 1; l <= huffMaxLen; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	var codes [huffSyms]uint16
	for s, l := range lens {
		if l > 0 {
			codes[s] = uint16(bits.Reverse16(uint16(next[l])) >> (16 - l))
			next[l]++
		}
	}
	return codes, true
}

func (p *huffPlan) appendHead(dst []byte, split *splitPlan) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(split.minField))
	dst = append(dst, byte(split.tz))
	for j := 0; j < huffSyms; j += 2 {
		dst = append(dst, p.lens[j]|p.lens[j+1]<<4)
	}
	return dst
}

// append writes the section of vs, which must end at end.
func (p *huffPlan) append(dst []byte, vs []float64, split *splitPlan, end int) ([]byte, bool) {
	dst = p.appendHead(dst, split)
	dst, mbuf, ok := bitSection(dst, len(dst)+p.mantBytes)
	if !ok {
		return dst, false
	}
	var bw bitWriter
	tz := split.tz & 63
	mw := mantBits - tz
	for _, v := range vs {
		bw = bw.write(mbuf, (math.Float64bits(v)&mask(mantBits))>>tz, mw)
	}
	if !bw.finish(mbuf) {
		return dst, false
	}
	dst, cbuf, ok := bitSection(dst, end)
	codes, cok := huffCodes(&p.lens)
	if !ok || !cok {
		return dst, false
	}
	bw = bitWriter{}
	minF := split.minField
	for _, v := range vs {
		s := (math.Float64bits(v)>>mantBits - minF) & (huffSyms - 1)
		bw = bw.write(cbuf, uint64(codes[s]), uint(p.lens[s]))
	}
	return dst, bw.finish(cbuf)
}

// huffDecoder is the state of the split-Huffman decoder: the position in
// the mantissa stream (valueDecoder.br reads the codes), and a table from
// the next huffMaxLen bits of the code stream to the offset (high nibble)
// and the length (low nibble) of the code they start with.
type huffDecoder struct {
	mpos  uint
	table [1 << huffMaxLen]uint8
}

func (d *valueDecoder) initSplitHuff(chunk []byte, start, end int) bool {
	sec := chunk[start:end]
	if len(sec) < splitHuffHead {
		return false
	}
	d.minField = uint64(binary.LittleEndian.Uint16(sec))
	d.tz = uint(sec[2])
	var lens [huffSyms]uint8
	for j := range huffSyms {
		lens[j] = sec[3+j/2] >> (4 * (j & 1)) & 0xf
	}
	codes, ok := huffCodes(&lens)
	if !ok || d.minField > 0xfff || d.tz > mantBits {
		return false
	}
	// Every entry is set: the code is complete.
	for s, l := range lens {
		for j := 0; l > 0 && j < 1<<(huffMaxLen-l); j++ {
			d.table[int(codes[s])|j<<l] = uint8(s<<4) | l
		}
	}
	mantStart := start + splitHuffHead
	codeStart := mantStart + bitsToBytes(uint64(d.count)*uint64(mantBits-d.tz))
	d.mpos = uint(mantStart) * 8
	if codeStart > end {
		return false
	}
	d.br = newBitReader(chunk, codeStart, end)
	// Every point takes at least 1 code bit.
	return uint64(end-codeStart)*8 >= uint64(d.count)
}

func (d *valueDecoder) decodeSplitHuff(dst []float64) {
	b, pos, mpos, minF, tz := d.br.b, d.br.pos, d.mpos, d.minField, d.tz&63
	mw := mantBits - tz
	mm := mask(mw)
	table := &d.table
	// The codes come from a register refilled every few codes, which keeps
	// the chain of dependent steps to a table load and a shift a point.
	cbuf, avail := peekAt(b, pos), uint(57)
	for i := range dst {
		if avail < huffMaxLen {
			cbuf, avail = peekAt(b, pos), 57
		}
		e := table[cbuf&(1<<huffMaxLen-1)]
		l := uint(e & 0xf)
		cbuf >>= l
		avail -= l
		pos += l
		m := peekAt(b, mpos) & mm
		mpos += mw
		dst[i] = math.Float64frombits((uint64(e>>4)+minF)<<mantBits | m<<tz)
	}
	d.br.pos, d.mpos = pos, mpos
}
