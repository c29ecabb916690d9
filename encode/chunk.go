package encode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
)

// FormatVersion is the first byte of every chunk. A chunk whose version byte
// is newer is refused with an error saying so.
//
// Part of the format: do not change (add a new version instead).
const FormatVersion = 1

// MaxPoints is the largest number of points in one chunk.
//
// Part of the format: do not change.
const MaxPoints = 65535

// ErrCorrupt is the sentinel wrapped by every decoding failure: test with
// errors.Is(err, ErrCorrupt).
var ErrCorrupt = errors.New("encode: corrupt chunk")

// castagnoli is the CRC32C table used for both checksums of a chunk.
//
// Part of the format: do not change.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is what the query layer reads without decoding the points.
type Header struct {
	Count      int   // number of points, NaN included
	NaNs       int   // number of NaN-valued points
	MinT, MaxT int64 // first and last timestamp

	// Aggregates over the non-NaN values only; when Count == NaNs, Min, Max,
	// First and Last are NaN, Sum is 0 and FirstT, LastT are 0.
	//
	// Min and Max fold math.Min and math.Max over the values (so -0 is less
	// than +0); Sum adds the values in point order with plain float64
	// addition, starting from 0.
	Min, Max, Sum float64
	First, Last   float64 // value of the first / last non-NaN point in point order
	FirstT, LastT int64   // their timestamps

	TimeEnc, ValueEnc uint8 // the encodings chosen: Time* and Value* constants
	Size              int   // total encoded length of the chunk in bytes
	HeaderSize        int   // length of the header, its CRC included: b[:HeaderSize] decodes with DecodeHeader
}

// Header layout sizes. Part of the format: do not change.
const (
	crcLen      = 4 // each CRC32C, little endian
	aggFloatLen = 8 // each float aggregate: IEEE 754 bits, little endian
)

// maxPayloadLen bounds the payload length of a chunk of count points; no
// encoding the encoder can choose exceeds it (the worst is delta-of-delta
// timestamps at 70 bits and XOR values at 77 bits per point, plus a few
// varints).
func maxPayloadLen(count int) int { return 20*count + 64 }

// AppendChunk encodes ts and vs as one chunk and appends it to dst.
//
// ts and vs must have the same length, 1..MaxPoints, and ts must be
// non-decreasing (equal timestamps keep their order). For each chunk the
// smallest time encoding and the smallest value encoding are chosen from
// exact sizes. If dst has enough spare capacity, AppendChunk does not
// allocate. On error dst is returned unchanged.
func AppendChunk(dst []byte, ts []int64, vs []float64) ([]byte, error) {
	return appendChunk(dst, ts, vs, -1, -1)
}

var errNotApplicable = errors.New("encode: forced encoding does not apply to the points")

// appendChunk is AppendChunk with a forced time and value encoding when
// forceTime or forceValue is >= 0, for tests.
func appendChunk(dst []byte, ts []int64, vs []float64, forceTime, forceValue int) ([]byte, error) {
	n := len(ts)
	switch {
	case n != len(vs):
		return dst, fmt.Errorf("encode: %d timestamps but %d values", n, len(vs))
	case n == 0:
		return dst, errors.New("encode: empty chunk")
	case n > MaxPoints:
		return dst, fmt.Errorf("encode: %d points, more than MaxPoints (%d)", n, MaxPoints)
	}
	var tp timePlan
	i, tok := tp.plan(ts, forceTime)
	if i > 0 {
		return dst, fmt.Errorf("encode: timestamps not sorted: ts[%d]=%d < ts[%d]=%d", i, ts[i], i-1, ts[i-1])
	}
	var vp valuePlan
	if vok := vp.plan(vs, forceValue); !tok || !vok {
		return dst, errNotApplicable
	}

	h := Header{
		Count:    n,
		NaNs:     vp.nans,
		MinT:     ts[0],
		MaxT:     ts[n-1],
		TimeEnc:  tp.enc,
		ValueEnc: vp.enc,
	}
	span := uint64(h.MaxT) - uint64(h.MinT)
	payloadLen := tp.size + vp.size
	hdrLen := 2 + uvarintLen(uint64(n)) + varintLen(h.MinT) + uvarintLen(span) +
		uvarintLen(uint64(vp.nans)) + uvarintLen(uint64(payloadLen)) + uvarintLen(uint64(tp.size))
	var firstOff, lastOff uint64
	if vp.nans < n {
		firstOff = uint64(ts[vp.firstI]) - uint64(h.MinT)
		lastOff = uint64(ts[vp.lastI]) - uint64(h.MinT)
		hdrLen += 5*aggFloatLen + uvarintLen(firstOff) + uvarintLen(lastOff)
	}
	total := hdrLen + crcLen + payloadLen + crcLen

	start := len(dst)
	dst = slices.Grow(dst, total)
	dst = append(dst, FormatVersion, tp.enc<<4|vp.enc)
	dst = binary.AppendUvarint(dst, uint64(n))
	dst = binary.AppendVarint(dst, h.MinT)
	dst = binary.AppendUvarint(dst, span)
	dst = binary.AppendUvarint(dst, uint64(vp.nans))
	if vp.nans < n {
		for _, f := range [...]float64{vp.min, vp.max, vp.sum, vp.first, vp.last} {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		}
		dst = binary.AppendUvarint(dst, firstOff)
		dst = binary.AppendUvarint(dst, lastOff)
	}
	dst = binary.AppendUvarint(dst, uint64(payloadLen))
	dst = binary.AppendUvarint(dst, uint64(tp.size))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))

	payload := len(dst)
	dst, ok := tp.append(dst, ts, payload+tp.size)
	if !ok {
		return dst[:start], fmt.Errorf("encode: internal error: time encoding %d did not write the %d bytes planned", tp.enc, tp.size)
	}
	if dst, ok = vp.append(dst, vs); !ok {
		return dst[:start], fmt.Errorf("encode: internal error: value encoding %d did not write the %d bytes planned", vp.enc, vp.size)
	}
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[payload:], castagnoli))
	if len(dst)-start != total {
		return dst[:start], fmt.Errorf("encode: internal error: chunk is %d bytes, planned %d", len(dst)-start, total)
	}
	return dst, nil
}

// DecodeHeader reads and verifies the header of the chunk at the start of b
// (it has its own CRC). It does not read or verify the payload, so b may hold
// just the header (Header.Size tells how long the whole chunk is) or the
// whole chunk.
func DecodeHeader(b []byte) (Header, error) {
	var c chunkLayout
	if err := c.parse(b); err != nil {
		return Header{}, err
	}
	return c.h, nil
}

// DecodeAll verifies the whole chunk at the start of b (both CRCs, and the
// structure of the payload) and appends its points to ts and vs, which are
// returned. Bytes after the chunk (b[Header.Size:]) are ignored. On error ts
// and vs are returned with their original lengths. If they have room for
// Header.Count more points, DecodeAll does not allocate.
func DecodeAll(b []byte, ts []int64, vs []float64) (Header, []int64, []float64, error) {
	var d chunkDecoder
	if err := d.init(b); err != nil {
		return Header{}, ts, vs, err
	}
	n := d.h.Count
	nt, nv := len(ts), len(vs)
	ts = slices.Grow(ts, n)[:nt+n]
	vs = slices.Grow(vs, n)[:nv+n]
	if err := d.td.decode(ts[nt:]); err != nil {
		return Header{}, ts[:nt], vs[:nv], err
	}
	if err := d.vd.decode(vs[nv:]); err != nil {
		return Header{}, ts[:nt], vs[:nv], err
	}
	return d.h, ts, vs, nil
}

// chunkLayout is a parsed and verified header with the positions of the
// sections that follow it.
type chunkLayout struct {
	h          Header
	hdrEnd     int // offset of the header CRC
	payloadLen int
	timeLen    int
}

func corrupt(detail string) error { return fmt.Errorf("%s: %w", detail, ErrCorrupt) }

// Errors found while decoding points: preallocated so that decoding never
// allocates.
var (
	errTruncatedHeader = corrupt("encode: truncated chunk header")
	errBadVarint       = corrupt("encode: bad varint in chunk header")
	errTimeOrder       = corrupt("encode: timestamps out of order")
	errTimeEnd         = corrupt("encode: last timestamp differs from header MaxT")
	errTimeSection     = corrupt("encode: time section length does not match its contents")
	errValueSection    = corrupt("encode: value section length does not match its contents")
	errRadixDigit      = corrupt("encode: radix group out of range")
)

// headerReader reads the varints and fixed fields of a header, remembering
// the first failure.
type headerReader struct {
	b   []byte
	off int
	err error
}

func (r *headerReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		if n == 0 {
			r.err = errTruncatedHeader
		} else {
			r.err = errBadVarint
		}
		return 0
	}
	r.off += n
	return v
}

func (r *headerReader) varint() int64 { return unzigzag(r.uvarint()) }

func (r *headerReader) float() float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < aggFloatLen {
		r.err = errTruncatedHeader
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += aggFloatLen
	return math.Float64frombits(v)
}

// parse reads the header at the start of b, verifies its CRC and checks that
// its fields are consistent. It does not look at the payload.
func (c *chunkLayout) parse(b []byte) error {
	if len(b) == 0 {
		return errTruncatedHeader
	}
	if v := b[0]; v != FormatVersion {
		if v > FormatVersion {
			return fmt.Errorf("encode: chunk format version %d is newer than this code supports (%d): %w", v, FormatVersion, ErrCorrupt)
		}
		return fmt.Errorf("encode: bad chunk format version %d: %w", v, ErrCorrupt)
	}
	if len(b) < 2 {
		return errTruncatedHeader
	}
	r := headerReader{b: b, off: 2}
	count := r.uvarint()
	minT := r.varint()
	span := r.uvarint()
	nans := r.uvarint()
	h := Header{
		MinT:     minT,
		MaxT:     int64(uint64(minT) + span),
		TimeEnc:  b[1] >> 4,
		ValueEnc: b[1] & 0xf,
	}
	var firstOff, lastOff uint64
	if r.err == nil && nans < count {
		h.Min, h.Max, h.Sum, h.First, h.Last = r.float(), r.float(), r.float(), r.float(), r.float()
		firstOff, lastOff = r.uvarint(), r.uvarint()
	}
	payloadLen := r.uvarint()
	timeLen := r.uvarint()
	if r.err != nil {
		return r.err
	}
	if len(b)-r.off < crcLen {
		return errTruncatedHeader
	}
	if want, got := binary.LittleEndian.Uint32(b[r.off:]), crc32.Checksum(b[:r.off], castagnoli); want != got {
		return fmt.Errorf("encode: header checksum mismatch (stored %#08x, computed %#08x): %w", want, got, ErrCorrupt)
	}

	// The CRC matched: the remaining checks catch chunks written by a
	// broken or hostile encoder.
	switch {
	case count == 0 || count > MaxPoints:
		return fmt.Errorf("encode: header count %d out of range: %w", count, ErrCorrupt)
	case nans > count:
		return fmt.Errorf("encode: header NaN count %d exceeds count %d: %w", nans, count, ErrCorrupt)
	case h.MaxT < h.MinT:
		return corrupt("encode: header time span overflows")
	case (count == 1) != (h.TimeEnc == TimeSingle), count == 1 && span != 0:
		return corrupt("encode: header time encoding does not fit the point count")
	case h.TimeEnc > maxTimeEnc || h.ValueEnc > maxValueEnc:
		return fmt.Errorf("encode: unknown encodings %#02x: %w", b[1], ErrCorrupt)
	case payloadLen > uint64(maxPayloadLen(int(count))) || timeLen > payloadLen:
		return fmt.Errorf("encode: header payload length %d (time %d) out of range: %w", payloadLen, timeLen, ErrCorrupt)
	}
	h.Count, h.NaNs = int(count), int(nans)
	if nans == count {
		h.Min, h.Max, h.First, h.Last = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	} else {
		if math.IsNaN(h.Min) || math.IsNaN(h.Max) || math.IsNaN(h.First) || math.IsNaN(h.Last) ||
			h.Min > h.Max || h.First < h.Min || h.First > h.Max || h.Last < h.Min || h.Last > h.Max {
			return corrupt("encode: header aggregates inconsistent")
		}
		if firstOff > lastOff || lastOff > span {
			return corrupt("encode: header first/last timestamps out of range")
		}
		h.FirstT = int64(uint64(minT) + firstOff)
		h.LastT = int64(uint64(minT) + lastOff)
	}
	h.Size = r.off + crcLen + int(payloadLen) + crcLen
	h.HeaderSize = r.off + crcLen
	c.h = h
	c.hdrEnd = r.off
	c.payloadLen = int(payloadLen)
	c.timeLen = int(timeLen)
	return nil
}

// chunkDecoder holds the decoding state of one verified chunk.
type chunkDecoder struct {
	h  Header
	td timeDecoder
	vd valueDecoder
}

// init parses and verifies the chunk at the start of b (both CRCs) and
// prepares the section decoders. It does not allocate unless it fails.
func (d *chunkDecoder) init(b []byte) error {
	var c chunkLayout
	if err := c.parse(b); err != nil {
		return err
	}
	if len(b) < c.h.Size {
		return fmt.Errorf("encode: chunk truncated: %d bytes, header says %d: %w", len(b), c.h.Size, ErrCorrupt)
	}
	b = b[:c.h.Size] // at least 16 bytes, as bitReader needs
	start := c.hdrEnd + crcLen
	end := start + c.payloadLen
	if want, got := binary.LittleEndian.Uint32(b[end:]), crc32.Checksum(b[start:end], castagnoli); want != got {
		return fmt.Errorf("encode: payload checksum mismatch (stored %#08x, computed %#08x): %w", want, got, ErrCorrupt)
	}
	d.h = c.h
	if err := d.td.init(&c.h, b, start, start+c.timeLen); err != nil {
		return err
	}
	return d.vd.init(&c.h, b, start+c.timeLen, end)
}
