// Package encode is the chunk codec of the storage engine: it turns the
// points of one series (timestamps in Unix nanoseconds, float64 values) into
// a self-describing, checksummed byte string and back.
//
// It owns the chunk format (version FormatVersion, documented byte by byte
// in FORMAT.md) and nothing else: no I/O, no goroutines, no logging. Where a
// chunk is stored, and what series it belongs to, is the engine's business.
//
// A chunk holds 1..MaxPoints points sorted by timestamp (equal timestamps
// keep their order). Values are stored bit-exactly: NaN payloads, ±Inf, -0
// and subnormals come back with the same bits. For each chunk the encoder
// picks the smallest of several time encodings (constant delta, bit-packed
// deltas over their GCD, delta-of-delta) and value encodings (constant,
// integer deltas bit-packed or radix-packed, split sign+exponent/mantissa
// with the exponents at a fixed width or in a per-chunk Huffman code, Gorilla
// XOR), computing exact sizes before it writes. A Header with the
// count, time range and aggregates (min, max, sum, first, last over the
// non-NaN values) precedes the points under its own CRC32C, so the query
// layer can answer many questions with DecodeHeader alone.
//
// Decoders never panic on any input bytes, never write to their input,
// return errors wrapping ErrCorrupt, and never allocate more than a chunk of
// MaxPoints points needs.
//
// Example:
//
//	buf, err := encode.AppendChunk(buf[:0], ts, vs)
//	if err != nil {
//		return err // bad arguments, e.g. unsorted timestamps
//	}
//	h, err := encode.DecodeHeader(buf) // count, time range, aggregates
//	...
//	var it encode.Iterator
//	if err := it.Reset(buf); err != nil {
//		return err // errors.Is(err, encode.ErrCorrupt)
//	}
//	for ok := it.Seek(from); ok; ok = it.Next() {
//		t, v := it.At()
//		...
//	}
//	if err := it.Err(); err != nil {
//		return err
//	}
//
// Concurrency: all functions are safe for concurrent use (they share no
// state). An Iterator is not: use one per goroutine.
package encode
