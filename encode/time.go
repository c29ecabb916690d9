package encode

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// Time encodings, stored in the high nibble of the encodings byte.
//
// Part of the format: do not change.
const (
	// TimeSingle: one point; the time section is empty (MinT is the point).
	TimeSingle = 0
	// TimeConstDelta: every delta is equal; the time section is empty, the
	// delta is (MaxT-MinT)/(Count-1).
	TimeConstDelta = 1
	// TimePacked: deltas are g*(m+f_i) with each f_i in w bits.
	TimePacked = 2
	// TimeDeltaOfDelta: the quotients q_i = d_i/g are coded as q_1 and then
	// zigzag(q_i - q_{i-1}) in a prefix code.
	TimeDeltaOfDelta = 3

	maxTimeEnc = TimeDeltaOfDelta
)

// Delta-of-delta prefix code: a value z = zigzag(q_i - q_{i-1}) is written
// as k one-bits, a zero bit (absent when k == dodEscape), then z in
// dodWidth[k] bits, for the smallest k whose width holds z.
//
// Part of the format: do not change.
const dodEscape = 6

var dodWidth = [8]uint{0, 5, 9, 13, 20, 32, 64}

// dodLen[k] is the total length of a code in bucket k.
var dodLen = [8]uint{1, 2 + 5, 3 + 9, 4 + 13, 5 + 20, 6 + 32, 6 + 64}

// dodWidths and dodLens hold dodWidth[k] and dodLen[k] in byte k, for the
// decoder.
const (
	dodWidths = 0 | 5<<8 | 9<<16 | 13<<24 | 20<<32 | 32<<40 | 64<<48
	dodLens   = 1 | 7<<8 | 12<<16 | 17<<24 | 25<<32 | 38<<40 | 70<<48
)

// dodCost[bits.Len64(z)] is the length of the code for z.
var dodCost = func() (c [65]uint8) {
	for l := range c {
		k := 0
		for dodWidth[k] < uint(l) {
			k++
		}
		c[l] = uint8(dodLen[k])
	}
	return c
}()

// divisor divides uint64 values by a fixed g without a division
// instruction: g = o<<s with o odd, and for o odd, x*inv(o) mod 2^64 is x/o
// when o divides x, and is greater than MaxUint64/o otherwise.
type divisor struct {
	s   uint
	inv uint64 // o*inv == 1 mod 2^64
	lim uint64 // MaxUint64 / o
}

func newDivisor(g uint64) divisor {
	if g == 0 {
		// Only 0 divides by 0 here: d&mask(64) == 0 only for d == 0.
		return divisor{s: 64}
	}
	s := uint(bits.TrailingZeros64(g))
	o := g >> s
	inv := o // correct to 3 bits: o*o == 1 mod 8 for odd o
	for range 5 {
		inv *= 2 - o*inv // Newton: doubles the correct bits
	}
	return divisor{s: s, inv: inv, lim: math.MaxUint64 / o}
}

func (v divisor) divides(d uint64) bool {
	return d&mask(v.s) == 0 && (d>>v.s)*v.inv <= v.lim
}

// quo returns d/g for d a multiple of g.
func (v divisor) quo(d uint64) uint64 { return (d >> v.s) * v.inv }

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// timePlan is the chosen time encoding of a chunk with its parameters.
type timePlan struct {
	enc  uint8
	size int // exact length of the time section
	g    uint64
	div  divisor // divides by g
	m    uint64  // TimePacked: minimum quotient
	w    uint    // TimePacked: bit width
	q1   uint64  // TimeDeltaOfDelta: first quotient
}

// plan chooses the encoding for ts: the smallest, or force if force >= 0
// (for tests; ok is false if force does not apply to ts). unsorted is 0, or
// the first index i with ts[i] < ts[i-1].
func (p *timePlan) plan(ts []int64, force int) (unsorted int, ok bool) {
	n := len(ts)
	if n == 1 {
		*p = timePlan{enc: TimeSingle}
		return 0, force < 0 || force == TimeSingle
	}
	if ts[1] < ts[0] {
		return 1, false
	}
	// Check the order, and find regular timestamps, in a cheap first pass.
	d0 := ts[1] - ts[0]
	diff := int64(0)
	for i := 2; i < n; i++ {
		if ts[i] < ts[i-1] {
			return i, false
		}
		diff |= ts[i] - ts[i-1] - d0
	}
	if diff == 0 && force < 0 || force == TimeConstDelta {
		*p = timePlan{enc: TimeConstDelta}
		return 0, diff == 0
	}
	// Guess g from the first few deltas and measure everything in one
	// pass; if a delta is not a multiple of the guess, compute the true g
	// from there on and measure again.
	var g uint64
	for i := 1; i < min(n, 9); i++ {
		g = gcd(uint64(ts[i])-uint64(ts[i-1]), g)
	}
	s, bad := measureTimes(ts, newDivisor(g))
	if bad > 0 {
		div := newDivisor(g)
		for i := bad; i < n; i++ {
			if d := uint64(ts[i]) - uint64(ts[i-1]); !div.divides(d) {
				g = gcd(d, g)
				div = newDivisor(g)
			}
		}
		s, _ = measureTimes(ts, div)
	}
	if g == 0 { // only when forced: all deltas are 0
		g = 1
	}
	div := newDivisor(g)
	w := uint(bits.Len64(s.maxQ - s.minQ))
	packed := uvarintLen(g) + uvarintLen(s.minQ) + 1 + bitsToBytes(uint64(n-1)*uint64(w))
	dod := uvarintLen(g) + uvarintLen(s.q1) + bitsToBytes(s.dodBits)
	if dod < packed && force < 0 || force == TimeDeltaOfDelta {
		*p = timePlan{enc: TimeDeltaOfDelta, size: dod, g: g, div: div, q1: s.q1}
	} else {
		*p = timePlan{enc: TimePacked, size: packed, g: g, div: div, m: s.minQ, w: w}
	}
	return 0, force < 0 || force == int(p.enc)
}

// timeStats is what measureTimes finds.
type timeStats struct {
	q1         uint64 // first quotient d_1/g
	minQ, maxQ uint64
	dodBits    uint64 // length of the delta-of-delta codes
}

// measureTimes measures the deltas of ts (sorted, len(ts) >= 2) divided by
// div. It returns bad = the first i such that delta i is not a multiple of
// div's g, or 0.
func measureTimes(ts []int64, div divisor) (s timeStats, bad int) {
	d0 := uint64(ts[1]) - uint64(ts[0])
	if !div.divides(d0) {
		return s, 1
	}
	q1 := div.quo(d0)
	minQ, maxQ, prev, dodBits := q1, q1, q1, uint64(0)
	for i := 2; i < len(ts); i++ {
		d := uint64(ts[i]) - uint64(ts[i-1])
		if !div.divides(d) {
			return s, i
		}
		q := div.quo(d)
		minQ = min(minQ, q)
		maxQ = max(maxQ, q)
		dodBits += uint64(dodCost[bits.Len64(zigzag(int64(q-prev)))])
		prev = q
	}
	return timeStats{q1: q1, minQ: minQ, maxQ: maxQ, dodBits: dodBits}, 0
}

// append writes the time section of ts.
// append writes the time section of ts, which must end at end.
func (p *timePlan) append(dst []byte, ts []int64, end int) ([]byte, bool) {
	switch p.enc {
	case TimePacked:
		dst = binary.AppendUvarint(dst, p.g)
		dst = binary.AppendUvarint(dst, p.m)
		dst = append(dst, byte(p.w))
		dst, buf, ok := bitSection(dst, end)
		if !ok {
			return dst, false
		}
		var bw bitWriter
		div, m, w := p.div, p.m, p.w
		if w <= 56 {
			for i := 1; i < len(ts); i++ {
				bw = bw.write(buf, div.quo(uint64(ts[i])-uint64(ts[i-1]))-m, w)
			}
		} else {
			for i := 1; i < len(ts); i++ {
				bw = bw.writeWide(buf, div.quo(uint64(ts[i])-uint64(ts[i-1]))-m, w)
			}
		}
		return dst, bw.finish(buf)
	case TimeDeltaOfDelta:
		dst = binary.AppendUvarint(dst, p.g)
		dst = binary.AppendUvarint(dst, p.q1)
		dst, buf, ok := bitSection(dst, end)
		if !ok {
			return dst, false
		}
		var bw bitWriter
		prev := p.q1
		for i := 2; i < len(ts); i++ {
			q := p.div.quo(uint64(ts[i]) - uint64(ts[i-1]))
			z := zigzag(int64(q - prev))
			prev = q
			if z == 0 {
				bw = bw.write(buf, 0, 1)
				continue
			}
			k := 1
			for dodWidth[k] < uint(bits.Len64(z)) {
				k++
			}
			if k < dodEscape {
				bw = bw.write(buf, mask(uint(k)), uint(k)+1) // k ones, then a zero
			} else {
				bw = bw.write(buf, mask(dodEscape), dodEscape)
			}
			bw = bw.writeWide(buf, z, dodWidth[k])
		}
		return dst, bw.finish(buf)
	}
	return dst, len(dst) == end // TimeSingle, TimeConstDelta: empty section
}

// timeDecoder decodes a time section in batches.
type timeDecoder struct {
	br      bitReader
	enc     uint8
	count   int   // points in the chunk
	emitted int   // points decoded so far
	t       int64 // last timestamp decoded (MinT before the first)
	maxT    int64
	g       uint64
	q       uint64 // TimeConstDelta: the delta; TimeDeltaOfDelta: last quotient
	m       uint64 // TimePacked
	w       uint   // TimePacked
}

// init checks the time section against the header and prepares decoding.
// The section is chunk[start:end].
func (d *timeDecoder) init(h *Header, chunk []byte, start, end int) error {
	sec := chunk[start:end]
	*d = timeDecoder{enc: h.TimeEnc, count: h.Count, t: h.MinT, maxT: h.MaxT}
	switch d.enc {
	case TimeSingle:
		if len(sec) != 0 {
			return errTimeSection
		}
	case TimeConstDelta:
		span := uint64(h.MaxT) - uint64(h.MinT)
		if len(sec) != 0 || span%uint64(h.Count-1) != 0 {
			return errTimeSection
		}
		d.q = span / uint64(h.Count-1)
	case TimePacked:
		r := headerReader{b: sec}
		d.g, d.m = r.uvarint(), r.uvarint()
		if r.err != nil || r.off >= len(sec) || d.g == 0 || sec[r.off] > 64 {
			return errTimeSection
		}
		d.w = uint(sec[r.off])
		d.br = newBitReader(chunk, start+r.off+1, end)
		if bitsToBytes(uint64(h.Count-1)*uint64(d.w)) != len(sec)-r.off-1 {
			return errTimeSection
		}
	case TimeDeltaOfDelta:
		r := headerReader{b: sec}
		d.g, d.q = r.uvarint(), r.uvarint()
		d.br = newBitReader(chunk, start+r.off, end)
		// Every code after q_1 takes at least one bit.
		if r.err != nil || d.g == 0 || uint64(len(sec)-r.off)*8 < uint64(h.Count-2) {
			return errTimeSection
		}
	}
	return nil
}

// decode decodes the next len(dst) timestamps into dst; the caller never
// asks for more than the chunk holds.
func (d *timeDecoder) decode(dst []int64) error {
	if len(dst) == 0 {
		return nil
	}
	i := 0
	t := d.t
	if d.emitted == 0 {
		dst[0] = t
		i = 1
	}
	switch d.enc {
	case TimeConstDelta:
		// init checked that (Count-1)*delta == MaxT-MinT: no overflow.
		dt := int64(d.q)
		for ; i < len(dst); i++ {
			t += dt
			dst[i] = t
		}
	case TimePacked:
		b, pos, g, m, w := d.br.b, d.br.pos, d.g, d.m, d.w
		if w <= 56 {
			wm := mask(w)
			for ; i < len(dst); i++ {
				nt := t + int64(g*(m+peekAt(b, pos)&wm))
				pos += w
				if nt < t {
					return errTimeOrder
				}
				t = nt
				dst[i] = t
			}
		} else {
			for ; i < len(dst); i++ {
				nt := t + int64(g*(m+readWideAt(b, pos, w)))
				pos += w
				if nt < t {
					return errTimeOrder
				}
				t = nt
				dst[i] = t
			}
		}
		d.br.pos = pos
	case TimeDeltaOfDelta:
		b, pos, g, q := d.br.b, d.br.pos, d.g, d.q
		if d.emitted+i == 1 && i < len(dst) {
			nt := t + int64(g*q)
			if nt < t {
				return errTimeOrder
			}
			t = nt
			dst[i] = t
			i++
		}
		for i < len(dst) {
			x := peekAt(b, pos)
			if x&1 == 0 {
				// A run of '0' codes: the delta repeats. Only 57 bits
				// of x are sure to be the stream's.
				run := min(bits.TrailingZeros64(x), 57, len(dst)-i)
				pos += uint(run)
				dt := int64(g * q)
				out := dst[i : i+run]
				for j := range out {
					nt := t + dt
					if nt < t {
						return errTimeOrder
					}
					t = nt
					out[j] = t
				}
				i += run
				continue
			}
			k := uint(bits.TrailingZeros64(^x))
			var z uint64
			if k < dodEscape {
				// Table lookups from constants, not memory: the bit
				// position is the loop's critical path.
				z = x >> (k + 1) & mask(uint(dodWidths>>(8*k))&0xff)
				pos += uint(dodLens>>(8*k)) & 0xff
			} else {
				z = readWideAt(b, pos+dodEscape, 64)
				pos += dodEscape + 64
			}
			q += uint64(unzigzag(z))
			nt := t + int64(g*q)
			if nt < t {
				return errTimeOrder
			}
			t = nt
			dst[i] = t
			i++
		}
		d.br.pos, d.q = pos, q
	}
	d.t = t
	d.emitted += len(dst)
	if d.emitted == d.count {
		if t != d.maxT {
			return errTimeEnd
		}
		if d.enc >= TimePacked && !d.br.exhausted() {
			return errTimeSection
		}
	}
	return nil
}
