package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Log record types. The wal package frames records; their meaning is the
// engine's. Part of the format: do not change.
const (
	// recSeries defines a series: type | uvarint id | series key (rest).
	recSeries byte = 1
	// recSamples carries points: type | uvarint n | n × (uvarint id |
	// zigzag varint (ts - previous ts in this record, starting at 0) |
	// value as 8 bytes little-endian IEEE 754 bits).
	recSamples byte = 2
)

var errBadRecord = errors.New("malformed log record")

func appendSeriesRecord(dst []byte, id uint64, key string) []byte {
	dst = append(dst, recSeries)
	dst = binary.AppendUvarint(dst, id)
	return append(dst, key...)
}

func appendSamplesHeader(dst []byte, n int) []byte {
	dst = append(dst, recSamples)
	return binary.AppendUvarint(dst, uint64(n))
}

func appendSample(dst []byte, id uint64, prevT, t int64, v float64) []byte {
	dst = binary.AppendUvarint(dst, id)
	dst = binary.AppendVarint(dst, t-prevT)
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

func decodeSeriesRecord(rec []byte) (id uint64, key []byte, err error) {
	id, n := binary.Uvarint(rec[1:])
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: series record: bad id", errBadRecord)
	}
	return id, rec[1+n:], nil
}

// forEachSample decodes a samples record.
func forEachSample(rec []byte, fn func(id uint64, t int64, v float64) error) error {
	b := rec[1:]
	cnt, n := binary.Uvarint(b)
	if n <= 0 {
		return fmt.Errorf("%w: samples record: bad count", errBadRecord)
	}
	b = b[n:]
	if cnt > uint64(len(b))/10 {
		return fmt.Errorf("%w: samples record: count %d exceeds its %d bytes", errBadRecord, cnt, len(b))
	}
	var t int64
	for i := uint64(0); i < cnt; i++ {
		id, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: samples record: sample %d: bad id", errBadRecord, i)
		}
		b = b[n:]
		d, n := binary.Varint(b)
		if n <= 0 {
			return fmt.Errorf("%w: samples record: sample %d: bad timestamp", errBadRecord, i)
		}
		b = b[n:]
		if len(b) < 8 {
			return fmt.Errorf("%w: samples record: sample %d: short value", errBadRecord, i)
		}
		t += d
		v := math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		if err := fn(id, t, v); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: samples record: %d trailing bytes", errBadRecord, len(b))
	}
	return nil
}
