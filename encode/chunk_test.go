package encode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// testCase is a named set of points.
type testCase struct {
	name string
	ts   []int64
	vs   []float64
}

// Special float values.
var (
	nanQuiet    = math.Float64frombits(0x7ff8000000000001)
	nanSignal   = math.Float64frombits(0x7ff0000000000001) // signalling NaN, smallest payload
	nanNegative = math.Float64frombits(0xfff4000000abcdef)
	nanMax      = math.Float64frombits(0x7fffffffffffffff)
	negZero     = math.Copysign(0, -1)
	subnormal   = math.Float64frombits(1) // 5e-324
	specials    = []float64{
		0, negZero, 1, -1, math.Inf(1), math.Inf(-1), math.NaN(), nanQuiet, nanSignal, nanNegative, nanMax,
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, -subnormal,
		math.Float64frombits(0x000fffffffffffff), // largest subnormal
		1 << 53, -(1 << 53), 1<<53 - 1, 1<<53 + 2, 1 << 62, 0.1, 1e300, -1e-300,
	}
)

// cases returns the round-trip matrix.
func cases(tb testing.TB) []testCase {
	r := newRand(tb, 1)
	const n = 1000
	var cs []testCase
	add := func(name string, ts []int64, vs []float64) {
		cs = append(cs, testCase{name, ts, vs})
	}
	// Timestamp shapes × value shapes.
	tshapes := []struct {
		name string
		ts   []int64
	}{
		{"regular", tsRegular(n, 15*sec)},
		{"jittered", tsJittered(r, n)},
		{"gappy", tsGappy(r, n)},
		{"event", tsEvent(r, n)},
	}
	vshapes := []struct {
		name string
		vs   []float64
	}{
		{"const", vsConst(n, 42)},
		{"constfloat", vsConst(n, 0.1)},
		{"counter", vsCounter(r, n)},
		{"gauge", vsGauge(r, n)},
		{"random", vsRandom(r, n)},
		{"lognormal", vsLognormal(r, n)},
		{"walk", vsWalk(r, n)},
		{"bits", vsBits(r, n)},
	}
	for _, t := range tshapes {
		for _, v := range vshapes {
			add(t.name+"/"+v.name, t.ts, v.vs)
		}
	}

	// Small chunks.
	add("1pt", []int64{baseT}, []float64{1.5})
	add("1pt/zero-time", []int64{0}, []float64{0})
	add("1pt/nan", []int64{-5}, []float64{nanNegative})
	add("2pt", []int64{baseT, baseT + sec}, []float64{1, 2})
	add("2pt/equal", []int64{7, 7}, []float64{negZero, 0})
	add("3pt", []int64{1, 2, 4}, []float64{math.Inf(1), math.Inf(-1), 3})

	// Equal timestamps.
	add("equal/all", vsTimes(n, func(int) int64 { return baseT }), vsCounter(r, n))
	add("equal/runs", vsTimes(n, func(i int) int64 { return baseT + int64(i/3)*sec }), vsRandom(r, n))
	add("equal/some", vsTimes(n, func(i int) int64 {
		if i%10 == 5 {
			i--
		}
		return baseT + int64(i)*ms
	}), vsGauge(r, n))

	// Extreme timestamps.
	add("extreme/min-max", []int64{math.MinInt64, math.MaxInt64}, []float64{1, 2})
	add("extreme/min-mid-max", []int64{math.MinInt64, -1, 0, 1, math.MaxInt64}, []float64{1, 2, 3, 4, 5})
	add("extreme/all-min", vsTimes(10, func(int) int64 { return math.MinInt64 }), vsConst(10, 3))
	add("extreme/all-max", vsTimes(10, func(int) int64 { return math.MaxInt64 }), vsConst(10, 3))
	add("extreme/near-max", vsTimes(100, func(i int) int64 { return math.MaxInt64 - int64(99-i)*7 }), vsWalk(r, 100))
	add("extreme/near-min", vsTimes(100, func(i int) int64 { return math.MinInt64 + int64(i)*sec }), vsWalk(r, 100))
	add("extreme/negative", vsTimes(n, func(i int) int64 { return -baseT + int64(i)*15*sec }), vsCounter(r, n))
	add("extreme/span-jitter", vsTimes(100, func(i int) int64 {
		switch i {
		case 0:
			return math.MinInt64
		case 99:
			return math.MaxInt64
		}
		return int64(i)*1000 + r.Int64N(500)
	}), vsRandom(r, 100))
	add("extreme/huge-deltas", vsTimes(64, func(i int) int64 { return math.MinInt64 + int64(i)*(math.MaxInt64/32) }), vsBits(r, 64))

	// The largest chunks.
	add("max/const", tsRegular(MaxPoints, 10*sec), vsConst(MaxPoints, 1))
	add("max/counter", tsEvent(r, MaxPoints), vsCounter(r, MaxPoints))
	add("max/nan", tsRegular(MaxPoints, sec), vsConst(MaxPoints, math.NaN()))

	// Values.
	add("int/near-2^53", tsRegular(8, sec), []float64{1 << 53, -(1 << 53), 1 << 53, 1<<53 - 1, -(1<<53 - 1), 0, 1 << 53, -(1 << 53)})
	add("int/just-over-2^53", tsRegular(4, sec), []float64{1 << 53, 1<<53 + 2, 1 << 53, 0})
	add("int/negzero", tsRegular(6, sec), []float64{1, 2, negZero, 3, 4, 5})
	add("int/radix", tsRegular(200, sec), vsTimesF(200, func(i int) float64 { return float64(r.IntN(3)) }))
	add("int/radix-wide", tsRegular(200, sec), vsTimesF(200, func(i int) float64 { return float64(r.IntN(1 << 31)) }))
	add("zeros/mixed-sign", tsRegular(100, sec), vsTimesF(100, func(i int) float64 {
		if r.IntN(2) == 0 {
			return negZero
		}
		return 0
	}))
	add("negzero/const", tsRegular(100, sec), vsConst(100, negZero))
	add("nan/payloads", tsRegular(100, sec), vsTimesF(100, func(i int) float64 {
		return math.Float64frombits(0x7ff0000000000000 | uint64(r.IntN(2))<<63 | (1 + r.Uint64N(1<<52-1)))
	}))
	add("nan/all-same", tsRegular(100, sec), vsConst(100, nanSignal))
	add("nan/some", tsRegular(100, sec), vsTimesF(100, func(i int) float64 {
		if i%7 == 0 {
			return math.NaN()
		}
		return float64(i)
	}))
	add("nan/first-last", tsRegular(5, sec), []float64{math.NaN(), 1, 2, 3, nanNegative})
	fib := fibExponents(r)
	add("exponents/fibonacci", tsRegular(len(fib), sec), fib)
	add("exponents/two", tsRegular(300, sec), vsTimesF(300, func(int) float64 {
		return float64(1+r.IntN(2)) * (1 + r.Float64())
	}))
	add("inf/mixed", tsRegular(6, sec), []float64{math.Inf(1), 1, math.Inf(-1), math.NaN(), 2, math.Inf(1)})
	add("maxfloat", tsRegular(4, sec), []float64{math.MaxFloat64, -math.MaxFloat64, math.MaxFloat64, 0})
	add("subnormal", tsRegular(5, sec), []float64{subnormal, -subnormal, subnormal, 0, math.Float64frombits(0x000fffffffffffff)})
	add("specials", tsRegular(len(specials), sec), slices.Clone(specials))
	add("specials/shuffled", tsJittered(r, 500), vsTimesF(500, func(int) float64 { return specials[r.IntN(len(specials))] }))
	add("mixed", tsGappy(r, 500), vsTimesF(500, func(i int) float64 {
		switch r.IntN(4) {
		case 0:
			return specials[r.IntN(len(specials))]
		case 1:
			return float64(r.IntN(100))
		case 2:
			return r.NormFloat64()
		}
		return math.Float64frombits(r.Uint64())
	}))
	return cs
}

func vsTimes(n int, f func(i int) int64) []int64 {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = f(i)
	}
	return ts
}

func vsTimesF(n int, f func(i int) float64) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = f(i)
	}
	return vs
}

// bruteHeader computes the header fields of the points the obvious way.
func bruteHeader(ts []int64, vs []float64) Header {
	h := Header{Count: len(ts), MinT: ts[0], MaxT: ts[len(ts)-1]}
	h.Min, h.Max, h.First, h.Last = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	seen := false
	for i, v := range vs {
		if math.IsNaN(v) {
			h.NaNs++
			continue
		}
		if !seen {
			seen = true
			h.First, h.FirstT, h.Min, h.Max = v, ts[i], v, v
		}
		h.Min, h.Max = math.Min(h.Min, v), math.Max(h.Max, v)
		h.Sum += v
		h.Last, h.LastT = v, ts[i]
	}
	return h
}

// sameFloat compares bits, but lets any NaN equal any NaN (for the NaN
// placeholders of an all-NaN header).
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b)
}

// sameHeader compares headers, floats by their bits (any NaN equal to any
// NaN for the placeholders of all-NaN chunks).
func sameHeader(a, b Header) bool {
	if a.NaNs == a.Count {
		a.Min, a.Max, a.First, a.Last = 0, 0, 0, 0
	}
	if b.NaNs == b.Count {
		b.Min, b.Max, b.First, b.Last = 0, 0, 0, 0
	}
	for _, p := range [][2]*float64{{&a.Min, &b.Min}, {&a.Max, &b.Max}, {&a.Sum, &b.Sum}, {&a.First, &b.First}, {&a.Last, &b.Last}} {
		if math.Float64bits(*p[0]) != math.Float64bits(*p[1]) {
			return false
		}
		*p[0], *p[1] = 0, 0
	}
	return a == b
}

func checkHeader(tb testing.TB, got, want Header) {
	tb.Helper()
	ok := got.Count == want.Count && got.NaNs == want.NaNs && got.MinT == want.MinT && got.MaxT == want.MaxT &&
		got.FirstT == want.FirstT && got.LastT == want.LastT &&
		sameFloat(got.Min, want.Min) && sameFloat(got.Max, want.Max) && sameFloat(got.Sum, want.Sum) &&
		sameFloat(got.First, want.First) && sameFloat(got.Last, want.Last)
	if want.Count > want.NaNs {
		// Exact bits, including the sign of zero, for real aggregates.
		for _, p := range [][2]float64{{got.Min, want.Min}, {got.Max, want.Max}, {got.Sum, want.Sum}, {got.First, want.First}, {got.Last, want.Last}} {
			ok = ok && math.Float64bits(p[0]) == math.Float64bits(p[1])
		}
	}
	if !ok {
		tb.Fatalf("header:\n got %+v\nwant %+v", got, want)
	}
}

func checkPoints(tb testing.TB, what string, gotT []int64, gotV []float64, ts []int64, vs []float64) {
	tb.Helper()
	if len(gotT) != len(ts) || len(gotV) != len(vs) {
		tb.Fatalf("%s: got %d/%d points, want %d", what, len(gotT), len(gotV), len(ts))
	}
	for i := range ts {
		if gotT[i] != ts[i] || math.Float64bits(gotV[i]) != math.Float64bits(vs[i]) {
			tb.Fatalf("%s: point %d: got (%d, %#016x), want (%d, %#016x)", what, i,
				gotT[i], math.Float64bits(gotV[i]), ts[i], math.Float64bits(vs[i]))
		}
	}
}

// checkChunk decodes chunk every way and compares with the points.
func checkChunk(tb testing.TB, chunk []byte, ts []int64, vs []float64) Header {
	tb.Helper()
	want := bruteHeader(ts, vs)
	h, err := DecodeHeader(chunk)
	if err != nil {
		tb.Fatalf("DecodeHeader: %v", err)
	}
	checkHeader(tb, h, want)
	if h.Size != len(chunk) {
		tb.Fatalf("Header.Size %d, chunk is %d bytes", h.Size, len(chunk))
	}
	// DecodeHeader needs only the header.
	if _, err := DecodeHeader(chunk[:headerEnd(tb, chunk)]); err != nil {
		tb.Fatalf("DecodeHeader on the header alone: %v", err)
	}

	h2, gotT, gotV, err := DecodeAll(chunk, nil, nil)
	if err != nil {
		tb.Fatalf("DecodeAll: %v", err)
	}
	if !sameHeader(h2, h) {
		tb.Fatalf("DecodeAll header %+v, DecodeHeader %+v", h2, h)
	}
	checkPoints(tb, "DecodeAll", gotT, gotV, ts, vs)

	var it Iterator
	if err := it.Reset(chunk); err != nil {
		tb.Fatalf("Reset: %v", err)
	}
	if t, v := it.At(); t != 0 || v != 0 {
		tb.Fatalf("At before Next: (%d, %v)", t, v)
	}
	gotT, gotV = gotT[:0], gotV[:0]
	for it.Next() {
		t, v := it.At()
		gotT, gotV = append(gotT, t), append(gotV, v)
	}
	if err := it.Err(); err != nil {
		tb.Fatalf("Iterator: %v", err)
	}
	if it.Next() {
		tb.Fatalf("Next after the end returned true")
	}
	checkPoints(tb, "Iterator", gotT, gotV, ts, vs)
	return h
}

// headerEnd returns the length of the chunk's header, its CRC included,
// walking the fields as FORMAT.md describes them (independently of parse).
func headerEnd(tb testing.TB, b []byte) int {
	off, ok := walkHeader(b)
	if !ok {
		tb.Fatalf("walkHeader failed")
	}
	return off + crcLen
}

// walkHeader returns the offset of the header CRC and reports whether the
// header fields could be walked. It checks nothing else.
func walkHeader(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	off := 2
	uv := func() uint64 {
		if off > len(b) {
			return 0
		}
		v, n := binary.Uvarint(b[off:])
		if n <= 0 {
			off = len(b) + 1
			return 0
		}
		off += n
		return v
	}
	count := uv()
	uv() // MinT
	uv() // span
	nans := uv()
	if nans < count {
		off += 5 * 8
		uv()
		uv()
	}
	uv() // payload length
	uv() // time length
	return off, off <= len(b)
}

// fixCRCs rewrites both CRCs of a (possibly damaged) chunk so that decoding
// gets past them. It reports whether the header could be walked.
func fixCRCs(b []byte) bool {
	off, ok := walkHeader(b)
	if !ok || len(b) < off+crcLen {
		return false
	}
	binary.LittleEndian.PutUint32(b[off:], crc32.Checksum(b[:off], castagnoli))
	var c chunkLayout
	if c.parse(b) != nil || len(b) < c.h.Size {
		return true
	}
	start := off + crcLen
	end := start + c.payloadLen
	binary.LittleEndian.PutUint32(b[end:], crc32.Checksum(b[start:end], castagnoli))
	return true
}

func TestRoundTrip(t *testing.T) {
	for _, c := range cases(t) {
		t.Run(c.name, func(t *testing.T) {
			chunk, err := AppendChunk(nil, c.ts, c.vs)
			if err != nil {
				t.Fatal(err)
			}
			h := checkChunk(t, chunk, c.ts, c.vs)
			t.Logf("%d points: %d bytes (%.3f B/point), time %d, value %d",
				len(c.ts), len(chunk), float64(len(chunk))/float64(len(c.ts)), h.TimeEnc, h.ValueEnc)

			// Appending keeps what dst holds, and the chosen size is the
			// smallest of the applicable encodings.
			prefix := []byte("prefix")
			chunk2, err := AppendChunk(slices.Clone(prefix), c.ts, c.vs)
			if err != nil || !bytes.Equal(chunk2[:len(prefix)], prefix) || !bytes.Equal(chunk2[len(prefix):], chunk) {
				t.Fatalf("AppendChunk to a non-empty dst: %v", err)
			}
			for te := range maxTimeEnc + 1 {
				for ve := range maxValueEnc + 1 {
					forced, err := appendChunk(nil, c.ts, c.vs, te, ve)
					n := len(c.ts)
					always := (n == 1 && te == TimeSingle || n > 1 && (te == TimePacked || te == TimeDeltaOfDelta)) &&
						(ve == ValueSplitFloat || ve == ValueXOR)
					if errors.Is(err, errNotApplicable) && !always {
						continue
					}
					if err != nil {
						t.Fatalf("forced %d/%d: %v", te, ve, err)
					}
					hf := checkChunk(t, forced, c.ts, c.vs)
					if int(hf.TimeEnc) != te || int(hf.ValueEnc) != ve {
						t.Fatalf("forced %d/%d, got %d/%d", te, ve, hf.TimeEnc, hf.ValueEnc)
					}
					if len(forced) < len(chunk) {
						t.Fatalf("forced %d/%d is %d bytes, smaller than the chosen %d/%d (%d bytes)",
							te, ve, len(forced), h.TimeEnc, h.ValueEnc, len(chunk))
					}
				}
			}
		})
	}
}

func TestDecodeAllAppends(t *testing.T) {
	ts, vs := tsRegular(10, sec), vsCounter(newRand(t, 2), 10)
	chunk, err := AppendChunk(nil, ts, vs)
	if err != nil {
		t.Fatal(err)
	}
	// Bytes after the chunk are ignored, and points are appended.
	b := append(slices.Clone(chunk), "trailing"...)
	_, gotT, gotV, err := DecodeAll(b, []int64{-1}, []float64{-2, -3})
	if err != nil {
		t.Fatal(err)
	}
	checkPoints(t, "appended", gotT[1:], gotV[2:], ts, vs)
	if gotT[0] != -1 || gotV[0] != -2 || gotV[1] != -3 {
		t.Fatalf("DecodeAll overwrote existing points")
	}
	// On error the slices come back with their lengths.
	_, gotT, gotV, err = DecodeAll(chunk[:len(chunk)-1], []int64{-1}, []float64{-2, -3})
	if err == nil || len(gotT) != 1 || len(gotV) != 2 {
		t.Fatalf("DecodeAll on a truncated chunk: %v, %d/%d points", err, len(gotT), len(gotV))
	}
	// Decoding never writes to its input.
	orig := slices.Clone(b)
	DecodeAll(b, nil, nil)
	DecodeHeader(b)
	var it Iterator
	it.Reset(b)
	for it.Next() {
	}
	if !bytes.Equal(orig, b) {
		t.Fatal("decoding modified its input")
	}
}

func TestAppendChunkErrors(t *testing.T) {
	dst := []byte("keep")
	for _, c := range []struct {
		name string
		ts   []int64
		vs   []float64
		want string
	}{
		{"mismatch", []int64{1, 2}, []float64{1}, "2 timestamps but 1 values"},
		{"empty", nil, nil, "empty"},
		{"too long", make([]int64, MaxPoints+1), make([]float64, MaxPoints+1), "more than MaxPoints"},
		{"unsorted", []int64{1, 3, 2}, []float64{1, 2, 3}, "ts[2]=2 < ts[1]=3"},
		{"unsorted extreme", []int64{math.MaxInt64, math.MinInt64}, []float64{1, 2}, "not sorted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := AppendChunk(dst, c.ts, c.vs)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
			if string(got) != "keep" {
				t.Fatalf("dst changed to %q", got)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	chunk, err := AppendChunk(nil, []int64{1, 2}, []float64{3, 4})
	if err != nil {
		t.Fatal(err)
	}
	if chunk[0] != FormatVersion {
		t.Fatalf("version byte %d", chunk[0])
	}
	for _, v := range []byte{0, FormatVersion + 1, 255} {
		b := slices.Clone(chunk)
		b[0] = v
		fixCRCs(b)
		_, err := DecodeHeader(b)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("version %d: %v", v, err)
		}
		if v > FormatVersion && !strings.Contains(err.Error(), "newer") {
			t.Fatalf("version %d: error does not say the version is newer: %v", v, err)
		}
		var it Iterator
		if it.Reset(b) == nil {
			t.Fatalf("version %d accepted by Reset", v)
		}
	}
}

// damageChunks returns chunks of every encoding, small enough to damage
// every bit of.
func damageChunks(tb testing.TB) map[string][]byte {
	r := newRand(tb, 3)
	const n = 100
	out := map[string][]byte{}
	add := func(ts []int64, vs []float64) {
		for te := range maxTimeEnc + 1 {
			for ve := range maxValueEnc + 1 {
				b, err := appendChunk(nil, ts, vs, te, ve)
				if err == nil {
					out[fmt.Sprintf("n%d/time%d/value%d", len(ts), te, ve)] = b
				}
			}
		}
	}
	add(tsJittered(r, n), vsWalk(r, n))
	add(tsRegular(n, sec), vsConst(n, 1.5))
	add(tsGappy(r, n), vsLognormal(r, n))
	add(tsEvent(r, n), vsTimesF(n, func(i int) float64 {
		if i%3 == 0 {
			return math.NaN()
		}
		return float64(i % 5)
	}))
	add([]int64{5}, []float64{2})
	add([]int64{5}, []float64{math.NaN()})
	return out
}

func TestDamage(t *testing.T) {
	for name, chunk := range damageChunks(t) {
		t.Run(name, func(t *testing.T) {
			hdrLen := headerEnd(t, chunk)
			var it Iterator
			b := make([]byte, len(chunk))
			for bit := range len(chunk) * 8 {
				copy(b, chunk)
				b[bit/8] ^= 1 << (bit % 8)
				if _, _, _, err := DecodeAll(b, nil, nil); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("bit %d flipped: DecodeAll: %v", bit, err)
				}
				if err := it.Reset(b); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("bit %d flipped: Reset: %v", bit, err)
				}
				if it.Next() || !errors.Is(it.Err(), ErrCorrupt) {
					t.Fatalf("bit %d flipped: Next after a failed Reset", bit)
				}
				_, err := DecodeHeader(b)
				if inHeader := bit/8 < hdrLen; inHeader != (err != nil) {
					t.Fatalf("bit %d flipped (header is %d bytes): DecodeHeader: %v", bit, hdrLen, err)
				}
			}
			for k := range len(chunk) {
				b := chunk[:k:k]
				if _, _, _, err := DecodeAll(b, nil, nil); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("truncated to %d bytes: DecodeAll: %v", k, err)
				}
				if err := it.Reset(b); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("truncated to %d bytes: Reset: %v", k, err)
				}
				if _, err := DecodeHeader(b); (k < hdrLen) != (err != nil) {
					t.Fatalf("truncated to %d bytes (header is %d): DecodeHeader: %v", k, hdrLen, err)
				}
			}
		})
	}
}

// TestForgedChunks damages chunks and then fixes their CRCs, as a broken or
// hostile encoder would: decoding must not panic, and whatever it accepts
// must be consistent.
func TestForgedChunks(t *testing.T) {
	r := newRand(t, 4)
	for name, chunk := range damageChunks(t) {
		t.Run(name, func(t *testing.T) {
			for range 300 {
				b := slices.Clone(chunk)
				for range 1 + r.IntN(3) {
					switch i := r.IntN(len(b)); r.IntN(3) {
					case 0:
						b[i] ^= 1 << r.IntN(8)
					case 1:
						b[i] = byte(r.IntN(256))
					default:
						b[i]++
					}
				}
				fixCRCs(b)
				checkDecodeConsistent(t, b)
			}
		})
	}
}

// checkDecodeConsistent checks what FuzzDecode checks: no panic; DecodeAll
// and the Iterator agree; accepted points are sorted, and re-encode to the
// same points.
func checkDecodeConsistent(tb testing.TB, b []byte) {
	tb.Helper()
	hh, herr := DecodeHeader(b)
	h, ts, vs, err := DecodeAll(b, nil, nil)
	var it Iterator
	var its []int64
	var ivs []float64
	if it.Reset(b) == nil {
		for it.Next() {
			t, v := it.At()
			its, ivs = append(its, t), append(ivs, v)
		}
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			tb.Fatalf("DecodeAll error does not wrap ErrCorrupt: %v", err)
		}
		if it.Err() == nil {
			tb.Fatalf("DecodeAll failed (%v) but the Iterator did not", err)
		}
		return
	}
	if it.Err() != nil {
		tb.Fatalf("Iterator failed (%v) but DecodeAll did not", it.Err())
	}
	if herr != nil || !sameHeader(hh, h) {
		tb.Fatalf("DecodeHeader (%+v, %v) disagrees with DecodeAll (%+v)", hh, herr, h)
	}
	checkPoints(tb, "Iterator vs DecodeAll", its, ivs, ts, vs)
	if len(ts) != h.Count || ts[0] != h.MinT || ts[len(ts)-1] != h.MaxT {
		tb.Fatalf("decoded %d points from %d to %d, header says %d from %d to %d",
			len(ts), ts[0], ts[len(ts)-1], h.Count, h.MinT, h.MaxT)
	}
	re, err := AppendChunk(nil, ts, vs)
	if err != nil {
		tb.Fatalf("re-encoding decoded points: %v", err)
	}
	_, ts2, vs2, err := DecodeAll(re, nil, nil)
	if err != nil {
		tb.Fatalf("decoding re-encoded points: %v", err)
	}
	checkPoints(tb, "re-encoded", ts2, vs2, ts, vs)
}

func TestHeaderAllNaN(t *testing.T) {
	ts := []int64{10, 20, 30}
	chunk, err := AppendChunk(nil, ts, []float64{math.NaN(), nanNegative, nanSignal})
	if err != nil {
		t.Fatal(err)
	}
	h, err := DecodeHeader(chunk)
	if err != nil {
		t.Fatal(err)
	}
	if h.Count != 3 || h.NaNs != 3 || h.Sum != 0 || !math.IsNaN(h.Min) || !math.IsNaN(h.Max) ||
		!math.IsNaN(h.First) || !math.IsNaN(h.Last) || h.FirstT != 0 || h.LastT != 0 || h.MinT != 10 || h.MaxT != 30 {
		t.Fatalf("all-NaN header: %+v", h)
	}
}

func TestHeaderAggregates(t *testing.T) {
	// Brute force against random chunks full of specials.
	r := newRand(t, 5)
	for i := range 300 {
		n := 1 + r.IntN(50)
		vs := vsTimesF(n, func(int) float64 {
			if r.IntN(3) == 0 {
				return math.NaN()
			}
			return specials[r.IntN(len(specials))]
		})
		ts := tsJittered(r, n)
		chunk, err := AppendChunk(nil, ts, vs)
		if err != nil {
			t.Fatal(err)
		}
		h, err := DecodeHeader(chunk)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		checkHeader(t, h, bruteHeader(ts, vs))
	}
	// Min and Max order -0 below +0, whatever comes first.
	for _, vs := range [][]float64{{0, negZero}, {negZero, 0}} {
		chunk, _ := AppendChunk(nil, []int64{1, 2}, vs)
		h, _ := DecodeHeader(chunk)
		if !math.Signbit(h.Min) || math.Signbit(h.Max) {
			t.Fatalf("%v: Min %v Max %v", vs, h.Min, h.Max)
		}
	}
}

// TestSizeTargets checks the bytes per point of the standard workloads in
// 1024-point chunks.
func TestSizeTargets(t *testing.T) {
	r := newRand(t, 6)
	const n, chunks = 1024, 20
	for _, c := range []struct {
		name       string
		gen        func() ([]int64, []float64)
		target     float64
		time, vals uint8
	}{
		{"W-event", func() ([]int64, []float64) { return tsEvent(r, n), vsLognormal(r, n) }, 9.0, TimePacked, ValueSplitHuffman},
		{"W-scrape", func() ([]int64, []float64) { return tsRegular(n, 15*sec), vsWalk(r, n) }, 0.45, TimeConstDelta, ValueIntRadix},
	} {
		total := 0
		for range chunks {
			ts, vs := c.gen()
			b, err := AppendChunk(nil, ts, vs)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := DecodeHeader(b)
			if h.TimeEnc != c.time || h.ValueEnc != c.vals {
				t.Errorf("%s: encodings %d/%d, want %d/%d", c.name, h.TimeEnc, h.ValueEnc, c.time, c.vals)
			}
			total += len(b)
		}
		bpp := float64(total) / (n * chunks)
		t.Logf("%s: %.3f bytes/point (target %.2f)", c.name, bpp, c.target)
		if bpp > c.target {
			t.Errorf("%s: %.3f bytes/point, above the target %.2f", c.name, bpp, c.target)
		}
	}
}

func TestEncodingChoice(t *testing.T) {
	r := newRand(t, 7)
	const n = 1000
	for _, c := range []struct {
		name       string
		ts         []int64
		vs         []float64
		time, vals uint8
	}{
		{"single", []int64{1}, []float64{1}, TimeSingle, ValueInt},
		{"regular/const", tsRegular(n, sec), vsConst(n, 7), TimeConstDelta, ValueInt},
		{"regular/constfloat", tsRegular(n, sec), vsConst(n, 0.1), TimeConstDelta, ValueConst},
		{"regular/nan", tsRegular(n, sec), vsConst(n, math.NaN()), TimeConstDelta, ValueConst},
		{"jittered/counter", tsJittered(r, n), vsCounter(r, n), TimePacked, ValueIntRadix},
		{"jittered/counter-pow2", tsJittered(r, n), vsTimesF(n, func(i int) float64 { return float64(i*100 + r.IntN(64)) }), TimePacked, ValueInt},
		{"gappy/gauge", tsGappy(r, n), vsGauge(r, n), TimeDeltaOfDelta, ValueXOR},
		{"event/lognormal", tsEvent(r, n), vsLognormal(r, n), TimePacked, ValueSplitHuffman},
		{"event/random", tsEvent(r, n), vsRandom(r, n), TimePacked, ValueSplitHuffman},
		{"event/one-exponent", tsEvent(r, n), vsTimesF(n, func(int) float64 { return 1 + r.Float64() }), TimePacked, ValueSplitFloat},
		{"regular/walk", tsRegular(n, sec), vsWalk(r, n), TimeConstDelta, ValueIntRadix},
	} {
		b, err := AppendChunk(nil, c.ts, c.vs)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := DecodeHeader(b)
		t.Logf("%-20s %6d bytes, %.3f B/point, time %d, value %d", c.name, len(b), float64(len(b))/float64(len(c.ts)), h.TimeEnc, h.ValueEnc)
		if h.TimeEnc != c.time || h.ValueEnc != c.vals {
			t.Errorf("%s: encodings %d/%d, want %d/%d", c.name, h.TimeEnc, h.ValueEnc, c.time, c.vals)
		}
	}
}

func TestTimeGCD(t *testing.T) {
	// Timestamps in whole seconds with irregular deltas: packed in units of
	// g = 1 s, so a delta of 1..4 s takes 2 bits.
	r := newRand(t, 8)
	ts := vsTimes(1000, func(int) int64 { return 0 })
	for i := 1; i < len(ts); i++ {
		ts[i] = ts[i-1] + (1+r.Int64N(4))*sec
	}
	b, err := AppendChunk(nil, ts, vsConst(len(ts), 1))
	if err != nil {
		t.Fatal(err)
	}
	var tp timePlan
	tp.plan(ts, -1)
	if tp.enc != TimePacked || tp.g != uint64(sec) || tp.w != 2 {
		t.Fatalf("plan: %+v", tp)
	}
	checkChunk(t, b, ts, vsConst(len(ts), 1))
}

func TestDivisor(t *testing.T) {
	r := newRand(t, 9)
	gs := []uint64{1, 2, 3, 7, 1e6, 1e9, 15e9, 1 << 40, 3 << 40, math.MaxUint64, math.MaxUint64 - 1, 1<<63 + 1}
	for range 100 {
		gs = append(gs, r.Uint64N(1<<20)+1, r.Uint64()|1, r.Uint64())
	}
	for _, g := range gs {
		if g == 0 {
			continue
		}
		div := newDivisor(g)
		for range 200 {
			var d uint64
			switch r.IntN(4) {
			case 0:
				d = r.Uint64() / g * g
			case 1:
				d = r.Uint64()
			case 2:
				d = r.Uint64()/g*g + 1
			default:
				d = uint64(r.IntN(3))
			}
			if got, want := div.divides(d), d%g == 0; got != want {
				t.Fatalf("divisor(%d).divides(%d) = %v", g, d, got)
			}
			if d%g == 0 && div.quo(d) != d/g {
				t.Fatalf("divisor(%d).quo(%d) = %d, want %d", g, d, div.quo(d), d/g)
			}
		}
	}
	zero := newDivisor(0)
	if !zero.divides(0) || zero.divides(1) || zero.divides(1<<63) {
		t.Fatal("divisor(0)")
	}
}

func TestBits(t *testing.T) {
	r := newRand(t, 10)
	for range 200 {
		n := r.IntN(300)
		widths := make([]uint, n)
		vals := make([]uint64, n)
		total := uint(0)
		for i := range n {
			widths[i] = uint(r.IntN(65))
			vals[i] = r.Uint64() & mask(widths[i])
			total += widths[i]
		}
		b, buf, ok := bitSection([]byte{0xAA}, 1+bitsToBytes(uint64(total)))
		if !ok {
			t.Fatal("bitSection")
		}
		var bw bitWriter
		for i := range n {
			bw = bw.writeWide(buf, vals[i], widths[i])
		}
		if !bw.finish(buf) || b[0] != 0xAA {
			t.Fatalf("finish: wrong length for %d bits", total)
		}
		// A buffer of the wrong length is reported, not overrun.
		if total > 0 {
			var bw bitWriter
			short := make([]byte, bitsToBytes(uint64(total))-1)
			for i := range n {
				bw = bw.writeWide(short, vals[i], widths[i])
			}
			if bw.finish(short) {
				t.Fatal("finish accepted a short buffer")
			}
		}
		long := make([]byte, bitsToBytes(uint64(total))+1+r.IntN(20))
		bw = bitWriter{}
		for i := range n {
			bw = bw.writeWide(long, vals[i], widths[i])
		}
		if bw.finish(long) {
			t.Fatal("finish accepted a long buffer")
		}
		chunk := append(b, make([]byte, 8)...) // a reader needs 8 bytes of slice
		br := newBitReader(chunk, 1, len(b))
		for i := range n {
			if got := br.read(widths[i]); got != vals[i] {
				t.Fatalf("field %d (%d bits): got %#x, want %#x", i, widths[i], got, vals[i])
			}
		}
		if !br.exhausted() {
			t.Fatalf("reader not exhausted at %d of %d", br.pos, br.end)
		}
		br.read(8)
		if !br.overrun() {
			t.Fatalf("no overrun")
		}
	}
}

func TestRadix(t *testing.T) {
	r := newRand(t, 11)
	rs := []uint64{3, 5, 6, 7, 9, 10, 100, 255, 257, 1000, 65535, 65537, 1<<31 + 1, 1<<32 - 1}
	for range 50 {
		rs = append(rs, 3+r.Uint64N(1<<32-3))
	}
	for _, radix := range rs {
		if _, ok := newRadix(radix); !ok {
			t.Fatalf("newRadix(%d) refused", radix)
		}
		span := radix - 1
		for _, mode := range []string{"random", "max", "zero"} {
			n := 1 + r.IntN(200)
			vs := make([]float64, n)
			v := int64(0)
			for i := range vs {
				vs[i] = float64(v)
				switch mode {
				case "random":
					v += int64(r.Uint64N(radix))
				case "max":
					v += int64(span)
				}
				if v > 1<<52 {
					v = 0 // stay within the integer range (resets are a big negative delta)
				}
			}
			b, err := appendChunk(nil, tsRegular(n, 1), vs, -1, ValueIntRadix)
			if errors.Is(err, errNotApplicable) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			checkChunk(t, b, tsRegular(n, 1), vs)
		}
	}
	for _, radix := range []uint64{0, 1, 2, 1 << 32, math.MaxUint64} {
		if _, ok := newRadix(radix); ok {
			t.Fatalf("newRadix(%d) accepted", radix)
		}
	}
}

// TestRadixExact checks the digit extraction on its own, for groups of all
// digits R-1 (the worst case for rounding) and random groups.
func TestRadixExact(t *testing.T) {
	r := newRand(t, 12)
	for range 2000 {
		radix := 3 + r.Uint64N(1<<32-3)
		if r.IntN(2) == 0 {
			radix = 3 + r.Uint64N(1000)
		}
		rp, _ := newRadix(radix)
		for _, m := range []int{rp.k, 1 + r.IntN(rp.k)} {
			pm, _ := rp.group(m)
			digits := make([]uint64, m)
			var x uint64
			allMax := r.IntN(2) == 0
			for i := range digits {
				digits[i] = r.Uint64N(radix)
				if allMax {
					digits[i] = radix - 1
				}
				x = x*radix + digits[i]
			}
			if x >= pm {
				t.Fatalf("group %d >= R^m %d", x, pm)
			}
			// As decodeIntRadix does.
			q, rem := bits.Div64(x, 0, pm)
			y := q
			if rem != 0 {
				y++
			}
			for i := range digits {
				hi, lo := bits.Mul64(y, radix)
				if hi != digits[i] {
					t.Fatalf("R=%d m=%d: digit %d is %d, want %d", radix, m, i, hi, digits[i])
				}
				y = lo
			}
		}
	}
}

func TestIteratorSeek(t *testing.T) {
	r := newRand(t, 13)
	type model struct {
		ts  []int64
		pos int // index of the current point; -1 before the first
	}
	for _, c := range []testCase{
		{"jittered", tsJittered(r, 1000), vsRandom(r, 1000)},
		{"runs-of-equal", vsTimes(700, func(i int) int64 { return int64(i/5) * 10 }), vsWalk(r, 700)},
		{"one", []int64{100}, []float64{1}},
		{"extreme", []int64{math.MinInt64, 0, math.MaxInt64}, []float64{1, 2, 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			chunk, err := AppendChunk(nil, c.ts, c.vs)
			if err != nil {
				t.Fatal(err)
			}
			lo, hi := c.ts[0], c.ts[len(c.ts)-1]
			for range 200 {
				var it Iterator
				if err := it.Reset(chunk); err != nil {
					t.Fatal(err)
				}
				m := model{ts: c.ts, pos: -1}
				for step := 0; step < 30 && m.pos < len(c.ts); step++ {
					var ok bool
					if r.IntN(3) == 0 {
						ok = it.Next()
						m.pos++
					} else {
						var target int64
						switch r.IntN(5) {
						case 0:
							target = math.MinInt64
						case 1:
							target = math.MaxInt64
						case 2:
							target = c.ts[r.IntN(len(c.ts))]
						default:
							span := uint64(hi) - uint64(lo)
							target = lo + int64(r.Uint64()%max(span, 1))
						}
						ok = it.Seek(target)
						p := max(m.pos, 0)
						for p < len(c.ts) && c.ts[p] < target {
							p++
						}
						m.pos = p
					}
					if want := m.pos < len(c.ts); ok != want {
						t.Fatalf("step %d: got %v, want %v", step, ok, want)
					}
					if !ok {
						break
					}
					gt, gv := it.At()
					if gt != c.ts[m.pos] || math.Float64bits(gv) != math.Float64bits(c.vs[m.pos]) {
						t.Fatalf("step %d: at (%d, %v), want point %d (%d, %v)", step, gt, gv, m.pos, c.ts[m.pos], c.vs[m.pos])
					}
				}
				if it.Err() != nil {
					t.Fatal(it.Err())
				}
			}
		})
	}
	var it Iterator // the zero value is exhausted
	if it.Next() || it.Seek(0) || it.Err() != nil {
		t.Fatal("zero Iterator")
	}
}

func TestIteratorReuse(t *testing.T) {
	r := newRand(t, 14)
	var it Iterator
	for i := range 20 {
		n := 1 + r.IntN(600)
		ts, vs := tsGappy(r, n), vsGauge(r, n)
		chunk, _ := AppendChunk(nil, ts, vs)
		if i%5 == 4 {
			if it.Reset(chunk[:len(chunk)-1]) == nil || it.Next() {
				t.Fatal("Reset accepted a truncated chunk")
			}
		}
		if err := it.Reset(chunk); err != nil {
			t.Fatal(err)
		}
		// Stop half way now and then: the next Reset starts afresh.
		stop := n
		if i%2 == 1 {
			stop = n / 2
		}
		for k := 0; k < stop; k++ {
			if !it.Next() {
				t.Fatalf("chunk %d: ended at %d", i, k)
			}
			if gt, gv := it.At(); gt != ts[k] || gv != vs[k] {
				t.Fatalf("chunk %d point %d: (%d, %v)", i, k, gt, gv)
			}
		}
		if it.Header().Count != n {
			t.Fatalf("Header().Count %d", it.Header().Count)
		}
	}
}

func TestAllocs(t *testing.T) {
	r := newRand(t, 15)
	const n = 1024
	shapes := []testCase{
		{"event", tsEvent(r, n), vsLognormal(r, n)},
		{"scrape", tsRegular(n, 15*sec), vsWalk(r, n)},
		{"gappy-gauge", tsGappy(r, n), vsGauge(r, n)},
		{"counter", tsJittered(r, n), vsCounter(r, n)},
		{"const", tsRegular(n, sec), vsConst(n, 0.5)},
	}
	for _, c := range shapes {
		chunk, err := AppendChunk(nil, c.ts, c.vs)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]byte, 0, len(chunk))
		if a := testing.AllocsPerRun(50, func() {
			dst, _ = AppendChunk(dst[:0], c.ts, c.vs)
		}); a != 0 {
			t.Errorf("%s: AppendChunk into a pre-sized dst: %v allocs", c.name, a)
		}
		ts, vs := make([]int64, 0, n), make([]float64, 0, n)
		if a := testing.AllocsPerRun(50, func() {
			_, ts, vs, _ = DecodeAll(chunk, ts[:0], vs[:0])
		}); a != 0 {
			t.Errorf("%s: DecodeAll into pre-sized slices: %v allocs", c.name, a)
		}
		it := new(Iterator)
		if a := testing.AllocsPerRun(50, func() {
			it.Reset(chunk)
			for it.Next() {
			}
			it.Seek(math.MaxInt64)
		}); a != 0 {
			t.Errorf("%s: Iterator: %v allocs", c.name, a)
		}
		if a := testing.AllocsPerRun(50, func() {
			DecodeHeader(chunk)
		}); a != 0 {
			t.Errorf("%s: DecodeHeader: %v allocs", c.name, a)
		}
	}
}

// TestForgedOrder forges a chunk whose CRCs match but whose packed deltas
// overflow int64: decoding must refuse it.
func TestForgedOrder(t *testing.T) {
	// A packed time section whose deltas overflow: forge one by hand.
	ts := []int64{0, 10, 30, 31}
	b, err := appendChunk(nil, ts, vsConst(4, 1), TimePacked, -1)
	if err != nil {
		t.Fatal(err)
	}
	// The section is g, m, w, then 3 fields; make g huge so the sum wraps.
	off := headerEnd(t, b)
	if b[off] != 1 { // g == 1
		t.Fatalf("unexpected g byte %d", b[off])
	}
	forged := slices.Concat(b[:off], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, b[off+1:])
	// The payload grew by 8 bytes: fix the header's lengths, then the CRCs.
	c := chunkLayout{}
	if err := c.parse(b); err != nil {
		t.Fatal(err)
	}
	hdr := b[:c.hdrEnd]
	hdr = hdr[:len(hdr)-uvarintLen(uint64(c.payloadLen))-uvarintLen(uint64(c.timeLen))]
	hdr = binary.AppendUvarint(slices.Clone(hdr), uint64(c.payloadLen+8))
	hdr = binary.AppendUvarint(hdr, uint64(c.timeLen+8))
	forged = slices.Concat(hdr, make([]byte, 4), forged[off:])
	if !fixCRCs(forged) {
		t.Fatal("fixCRCs")
	}
	if _, _, _, err := DecodeAll(forged, nil, nil); !errors.Is(err, errTimeOrder) {
		t.Fatalf("DecodeAll: %v, want %v", err, errTimeOrder)
	}
	checkDecodeConsistent(t, forged)
}

func TestDodTables(t *testing.T) {
	for k := range dodEscape + 1 {
		if w := uint(dodWidths>>(8*k)) & 0xff; w != dodWidth[k] {
			t.Errorf("dodWidths byte %d = %d, want %d", k, w, dodWidth[k])
		}
		if l := uint(dodLens>>(8*k)) & 0xff; l != dodLen[k] {
			t.Errorf("dodLens byte %d = %d, want %d", k, l, dodLen[k])
		}
		if want := min(uint(k)+1, dodEscape) + dodWidth[k]; dodLen[k] != want {
			t.Errorf("dodLen[%d] = %d, want %d", k, dodLen[k], want)
		}
	}
}

// TestUnsortedWrap: deltas that are all equal modulo 2^64 but wrap past
// MaxInt64 are unsorted timestamps, not a constant delta.
func TestUnsortedWrap(t *testing.T) {
	for _, ts := range [][]int64{
		{math.MaxInt64 - 1, math.MaxInt64, math.MinInt64},
		{math.MaxInt64 - 2, math.MaxInt64 - 1, math.MaxInt64, math.MinInt64, math.MinInt64 + 1},
		{0, math.MaxInt64, -2},
		{math.MinInt64, 0, math.MinInt64},
	} {
		if _, err := AppendChunk(nil, ts, make([]float64, len(ts))); err == nil || !strings.Contains(err.Error(), "not sorted") {
			t.Errorf("%v: %v", ts, err)
		}
	}
}

// fibExponents returns values over 16 binary exponents with Fibonacci
// counts (1, 1, 2, 3, 5, ... 987), shuffled: their Huffman code is 15 bits
// deep and must be limited to huffMaxLen.
func fibExponents(r *rand.Rand) []float64 {
	var vs []float64
	a, b := 1, 1
	for e := range huffSyms {
		for range a {
			vs = append(vs, math.Ldexp(1+r.Float64(), e-8))
		}
		a, b = b, a+b
	}
	r.Shuffle(len(vs), func(i, j int) { vs[i], vs[j] = vs[j], vs[i] })
	return vs
}

func TestHuffmanLengths(t *testing.T) {
	r := newRand(t, 16)
	check := func(freq [huffSyms]int) {
		t.Helper()
		lens := huffmanLengths(&freq)
		used := 0
		for s, f := range freq {
			if (f > 0) != (lens[s] > 0) || lens[s] > huffMaxLen {
				t.Fatalf("freq %v: lengths %v", freq, lens)
			}
			if f > 0 {
				used++
			}
		}
		if _, ok := huffCodes(&lens); !ok {
			t.Fatalf("freq %v: lengths %v are not a complete code", freq, lens)
		}
		// Without clamping, the lengths are Huffman's: compare the cost
		// with the textbook sum of the joined weights.
		var ws []int
		for _, f := range freq {
			if f > 0 {
				ws = append(ws, f)
			}
		}
		want := 0
		for len(ws) > 1 {
			slices.Sort(ws)
			want += ws[0] + ws[1]
			ws = append([]int{ws[0] + ws[1]}, ws[2:]...)
		}
		got := 0
		for s, f := range freq {
			got += f * int(lens[s])
		}
		if got < want {
			t.Fatalf("freq %v: cost %d below Huffman's %d", freq, got, want)
		}
		if maxLen := slices.Max(lens[:]); maxLen < huffMaxLen && got != want {
			t.Fatalf("freq %v: cost %d, Huffman's is %d", freq, got, want)
		}
	}
	fib := [huffSyms]int{}
	a, b := 1, 1
	for s := range fib {
		fib[s], a, b = a, b, a+b
	}
	check(fib)
	check([huffSyms]int{1: 5, 7: 1})
	check([huffSyms]int{0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1, 9: 1, 10: 1, 11: 1, 12: 1, 13: 1, 14: 1, 15: 1})
	for range 2000 {
		var freq [huffSyms]int
		for used := 0; used < 2; {
			used = 0
			for s := range freq {
				switch r.IntN(4) {
				case 0:
					freq[s] = 0
				case 1:
					freq[s] = 1 + r.IntN(3)
				case 2:
					freq[s] = 1 << r.IntN(16)
				default:
					freq[s] = 1 + r.IntN(1000)
				}
				if freq[s] > 0 {
					used++
				}
			}
		}
		check(freq)
	}
	// Bad lengths are refused.
	for _, lens := range [][huffSyms]uint8{
		{1},             // one code
		{1, 1, 1},       // over-full
		{1, 2},          // incomplete
		{9, 9},          // too long
		{2, 2, 2, 2, 3}, // over-full
	} {
		if _, ok := huffCodes(&lens); ok {
			t.Errorf("huffCodes accepted %v", lens)
		}
	}
}

// TestXORSizeLimit checks xorSize's early stop against the full measure.
func TestXORSizeLimit(t *testing.T) {
	for _, c := range cases(t) {
		exact, ok := xorSize(c.vs, math.MaxInt)
		if !ok {
			t.Fatalf("%s: xorSize without limit failed", c.name)
		}
		for _, limit := range []int{exact - 1, exact, exact + 1, exact / 2} {
			got, ok := xorSize(c.vs, limit)
			if ok != (exact <= limit) || ok && got != exact {
				t.Fatalf("%s: xorSize(limit %d) = %d, %v; exact %d", c.name, limit, got, ok, exact)
			}
		}
	}
}

func TestHeaderSizeSplit(t *testing.T) {
	ts := []int64{1, 5, 9, 20}
	vs := []float64{1.5, 2, math.NaN(), -3}
	b, err := AppendChunk(nil, ts, vs)
	if err != nil {
		t.Fatal(err)
	}
	h, err := DecodeHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := DecodeHeader(b[:h.HeaderSize])
	if err != nil || h2 != h {
		t.Fatalf("header alone: %+v %v", h2, err)
	}
	if _, err := DecodeHeader(b[:h.HeaderSize-1]); err == nil {
		t.Fatal("a cut header decoded")
	}
	joined := append(append([]byte(nil), b[:h.HeaderSize]...), b[h.HeaderSize:]...)
	if _, gt, _, err := DecodeAll(joined, nil, nil); err != nil || len(gt) != 4 {
		t.Fatal(err)
	}
}
