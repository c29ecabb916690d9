package engine

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/eventmetrics/eventmetrics/encode"
)

// testBlock encodes n chunks of a series with repeating values (so the
// payloads compress: the block gets a blob when blob is true) or random
// ones.
func testBlock(t testing.TB, n int, blob bool) (seqs []uint64, chunks [][]byte, hdrs []encode.Header, eb encodedBlock) {
	t.Helper()
	x := uint64(88172645463325252)
	for c := 0; c < n; c++ {
		ts := make([]int64, 300)
		vs := make([]float64, 300)
		for i := range ts {
			ts[i] = int64(c*1000+i) * 1e9
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			if blob {
				vs[i] = float64(i%16) * math.Pi
			} else {
				vs[i] = math.Float64frombits(x>>2 | 0x3ff0000000000000)
			}
		}
		data, err := encode.AppendChunk(nil, ts, vs)
		if err != nil {
			t.Fatal(err)
		}
		h, err := encode.DecodeHeader(data)
		if err != nil {
			t.Fatal(err)
		}
		seqs, chunks, hdrs = append(seqs, uint64(100+c)), append(chunks, data), append(hdrs, h)
	}
	return seqs, chunks, hdrs, encodeBlock(seqs, chunks, hdrs)
}

func TestBlockRoundTrip(t *testing.T) {
	for _, blob := range []bool{false, true} {
		seqs, chunks, hdrs, eb := testBlock(t, 5, blob)
		if (eb.blob != nil) != blob {
			t.Fatalf("blob=%v: encoder chose blob=%v", blob, eb.blob != nil)
		}
		bi, err := parseBlockInfo(eb.hdr)
		if err != nil {
			t.Fatal(err)
		}
		if bi.n != 5 || bi.minT != hdrs[0].MinT || bi.maxT != hdrs[4].MaxT {
			t.Fatalf("info %+v", bi)
		}
		cs, _, err := decodeBlockBody(bi, hdrs[0].MinT, seqs[0], nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var payloads []byte
		if blob {
			if payloads, err = decodeBlob(eb.blob, blockPayloadLen(cs), nil); err != nil {
				t.Fatal(err)
			}
		}
		for i, m := range cs {
			if m.seq != seqs[i] || m.hdr != hdrs[i] || !bytes.Equal(m.hdrBytes, chunks[i][:hdrs[i].HeaderSize]) {
				t.Fatalf("chunk %d: %+v", i, m)
			}
			if blob && !bytes.Equal(payloads[m.payOff:m.payOff+m.hdr.Size-m.hdr.HeaderSize], chunks[i][hdrs[i].HeaderSize:]) {
				t.Fatalf("chunk %d: payload differs", i)
			}
		}
		// The key must name the first chunk.
		if _, _, err := decodeBlockBody(bi, hdrs[0].MinT, seqs[0]+1, nil, nil); err == nil {
			t.Fatal("a block under another chunk's key decoded")
		}
	}
}

// TestBlockCorruption: every flipped bit of a block or blob is an error
// wrapping encode.ErrCorrupt, never a panic or a wrong answer; a newer
// version is refused as such.
func TestBlockCorruption(t *testing.T) {
	seqs, _, hdrs, eb := testBlock(t, 3, true)
	decode := func(hv, blob []byte) error {
		bi, err := parseBlockInfo(hv)
		if err != nil {
			return err
		}
		cs, _, err := decodeBlockBody(bi, hdrs[0].MinT, seqs[0], nil, nil)
		if err != nil {
			return err
		}
		_, err = decodeBlob(blob, blockPayloadLen(cs), nil)
		return err
	}
	if err := decode(eb.hdr, eb.blob); err != nil {
		t.Fatal(err)
	}
	for _, which := range []string{"header", "blob"} {
		orig := eb.hdr
		if which == "blob" {
			orig = eb.blob
		}
		for i := range orig {
			for bit := 0; bit < 8; bit++ {
				bad := bytes.Clone(orig)
				bad[i] ^= 1 << bit
				var err error
				if which == "blob" {
					err = decode(eb.hdr, bad)
				} else {
					err = decode(bad, eb.blob)
				}
				if !errors.Is(err, encode.ErrCorrupt) {
					t.Fatalf("%s byte %d bit %d: %v", which, i, bit, err)
				}
			}
		}
		for n := 0; n < len(orig); n++ {
			var err error
			if which == "blob" {
				err = decode(eb.hdr, orig[:n])
			} else {
				err = decode(orig[:n], eb.blob)
			}
			if !errors.Is(err, encode.ErrCorrupt) {
				t.Fatalf("%s cut to %d bytes: %v", which, n, err)
			}
		}
	}
	newer := bytes.Clone(eb.hdr)
	newer[0] = blockVersion + 1
	if _, err := parseBlockInfo(newer); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("a newer version: %v", err)
	}
}

// FuzzBlock: the block decoders never panic on bytes read from disk.
func FuzzBlock(f *testing.F) {
	for _, blob := range []bool{false, true} {
		_, _, _, eb := testBlock(f, 2, blob)
		f.Add(eb.hdr, eb.blob)
	}
	f.Fuzz(func(t *testing.T, hv, blob []byte) {
		bi, err := parseBlockInfo(hv)
		if err != nil {
			return
		}
		cs, _, err := decodeBlockBody(bi, 0, 100, nil, nil)
		if err != nil {
			return
		}
		if len(cs) != bi.n {
			t.Fatalf("%d chunks, the block says %d", len(cs), bi.n)
		}
		decodeBlob(blob, blockPayloadLen(cs), nil)
	})
}
