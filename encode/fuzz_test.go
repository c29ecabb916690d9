package encode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to every decoder: they must not panic,
// must agree with each other, must not write to their input, and whatever
// DecodeAll accepts must re-encode to the same points. Each input is also
// tried with its CRCs fixed, so that mutations reach the payload decoders
// instead of stopping at the checksums.
func FuzzDecode(f *testing.F) {
	for _, b := range fuzzDecodeSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := slices.Clone(b)
		checkDecodeConsistent(t, b)
		if !bytes.Equal(orig, b) {
			t.Fatal("decoding modified its input")
		}
		if fixCRCs(b) {
			checkDecodeConsistent(t, b)
		}
	})
}

// FuzzRoundTrip turns arbitrary bytes into points (see pointsFromBytes),
// encodes them with the chosen and with every applicable forced encoding,
// and checks that every decoder gives them back bit-exactly, with a header
// that matches a brute-force computation.
func FuzzRoundTrip(f *testing.F) {
	for _, b := range fuzzRoundTripSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, vs := pointsFromBytes(data)
		if len(ts) == 0 {
			return
		}
		chunk, err := AppendChunk(nil, ts, vs)
		if err != nil {
			t.Fatalf("AppendChunk: %v", err)
		}
		checkChunk(t, chunk, ts, vs)
		for te := range maxTimeEnc + 1 {
			for ve := range maxValueEnc + 1 {
				forced, err := appendChunk(nil, ts, vs, te, ve)
				if errors.Is(err, errNotApplicable) {
					continue
				}
				if err != nil {
					t.Fatalf("forced %d/%d: %v", te, ve, err)
				}
				checkChunk(t, forced, ts, vs)
				if len(forced) < len(chunk) {
					t.Fatalf("forced %d/%d is smaller (%d bytes) than the chosen encoding (%d)", te, ve, len(forced), len(chunk))
				}
			}
		}
	})
}

// pointsFromBytes decodes fuzz input into sorted points: 8 bytes of first
// timestamp, then records of a control byte c and 1..8 payload bytes p
// (c>>5 + 1 of them). c&3 picks the time step, (c>>2)&7 the kind of value.
func pointsFromBytes(data []byte) ([]int64, []float64) {
	if len(data) < 8 {
		return nil, nil
	}
	t := int64(binary.LittleEndian.Uint64(data))
	data = data[8:]
	var ts []int64
	var vs []float64
	prev := 0.0
	for len(data) > 0 && len(ts) < MaxPoints {
		c := data[0]
		data = data[1:]
		k := min(len(data), int(c>>5)+1)
		var p uint64
		for j := range k {
			p |= uint64(data[j]) << (8 * j)
		}
		data = data[k:]
		switch c & 3 {
		case 0: // the same timestamp
		case 1:
			t = addSat(t, (p&0xff)*uint64(ms))
		case 2:
			t = addSat(t, uint64(15*sec))
		case 3:
			t = addSat(t, p)
		}
		var v float64
		switch (c >> 2) & 7 {
		case 0:
			v = math.Float64frombits(p)
		case 1:
			v = prev + float64(int8(p)) // integer walk
		case 2:
			v = prev
		case 3:
			v = specials[p%uint64(len(specials))]
		case 4:
			v = float64(int64(p) >> (p & 63)) // integers of every size
		case 5:
			v = math.Float64frombits(p << (64 - 8*k)) // varied signs and exponents
		case 6:
			v = float64(p%1000) / 10 // a gauge
		case 7:
			v = math.Float64frombits(0x7ff0000000000000 | p) // NaN and Inf payloads
		}
		ts, vs = append(ts, t), append(vs, v)
		prev = v
	}
	return ts, vs
}

// addSat returns t+d, saturated at MaxInt64.
func addSat(t int64, d uint64) int64 {
	if room := uint64(math.MaxInt64 - t); d > room { // MaxInt64-t wraps to the true room
		return math.MaxInt64
	}
	return t + int64(d)
}

// fuzzDecodeSeeds returns valid chunks of every encoding, and a few broken
// ones.
func fuzzDecodeSeeds() [][]byte {
	var seeds [][]byte
	add := func(ts []int64, vs []float64) {
		for te := range maxTimeEnc + 1 {
			for ve := range maxValueEnc + 1 {
				if b, err := appendChunk(nil, ts, vs, te, ve); err == nil {
					seeds = append(seeds, b)
				}
			}
		}
	}
	add([]int64{1}, []float64{2})
	add([]int64{math.MinInt64, 0, math.MaxInt64}, []float64{math.NaN(), negZero, math.Inf(1)})
	ts := make([]int64, 40)
	vs := make([]float64, 40)
	for i := range ts {
		ts[i] = baseT + int64(i*i%7)*ms + int64(i)*sec
		vs[i] = float64(i%5) + 0.25*float64(i%2)
	}
	add(ts, vs)
	for i := range vs {
		vs[i] = float64(i % 7)
	}
	add(ts, vs)
	for i := range vs {
		vs[i] = math.Ldexp(1+float64(i)/64, i%5-2)
	}
	add(ts, vs)
	seeds = append(seeds, nil, []byte{FormatVersion}, []byte{FormatVersion + 1, 0, 1, 0, 0, 0, 0, 0})
	return seeds
}

// fuzzRoundTripSeeds returns inputs for pointsFromBytes covering each time
// step and value kind.
func fuzzRoundTripSeeds() [][]byte {
	var seeds [][]byte
	start := binary.LittleEndian.AppendUint64(nil, uint64(baseT))
	for kind := range 8 {
		for step := range 4 {
			b := slices.Clone(start)
			for i := range 30 {
				c := byte(step | kind<<2 | (i%8)<<5)
				b = append(b, c)
				for j := range int(c>>5) + 1 {
					b = append(b, byte(i*31+j*7))
				}
			}
			seeds = append(seeds, b)
		}
	}
	extreme := binary.LittleEndian.AppendUint64(nil, 1<<63) // MinInt64
	seeds = append(seeds, append(extreme, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 3, 1))
	return seeds
}

// TestWriteFuzzCorpus writes the seed corpus under testdata/fuzz when
// ENCODE_WRITE_CORPUS=1 (run it after changing the format or the seeds).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("ENCODE_WRITE_CORPUS") != "1" {
		t.Skip("set ENCODE_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(name string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzDecode", fuzzDecodeSeeds())
	write("FuzzRoundTrip", fuzzRoundTripSeeds())
}
