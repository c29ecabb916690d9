package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// The on-disk layout is documented byte by byte in FORMAT.md. Every constant
// in this block is part of the format: do not change.
const (
	// segmentMagic opens every segment file.
	segmentMagic = "EMWL"
	// formatVersion is the segment format this code writes and the newest
	// it reads. Bump it (and teach Replay the old one) for any change to the
	// layout below.
	formatVersion = 1
	// segmentHeaderSize is the size of the segment header:
	// magic(4) version(1) reserved(3) segment(8) crc(4).
	segmentHeaderSize = 20
	// frameHeaderSize is the size of a frame header: crc(4) length(4) type(1).
	frameHeaderSize = 9
	// frameTypeRecord frames one opaque record.
	frameTypeRecord = 1
	// frameTypeSyncMark frames a sync mark: a promise that the bytes of this
	// segment before a given offset had been fsynced when the mark was written.
	frameTypeSyncMark = 2
	// syncMarkPayloadSize is segment(8) syncedOffset(8).
	syncMarkPayloadSize = 16
	syncMarkFrameSize   = frameHeaderSize + syncMarkPayloadSize

	// MaxRecordSize is the largest record Append accepts, in bytes. A frame
	// whose length field is larger is damaged. Part of the format: do not
	// change.
	MaxRecordSize = 64 << 20

	segmentExt    = ".wal"
	segmentDigits = 20
	tmpExt        = ".tmp"
	lockName      = "LOCK"
)

// castagnoli is the CRC32C table; crc32 uses the SSE4.2/ARMv8 instruction for
// exactly this table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Update(0, castagnoli, b) }

// segmentName returns the file name of segment seg: 20 decimal digits and ".wal".
func segmentName(seg uint64) string {
	var b [segmentDigits + len(segmentExt)]byte
	s := strconv.AppendUint(b[:0], seg, 10)
	n := len(s)
	copy(b[segmentDigits-n:], b[:n])
	for i := 0; i < segmentDigits-n; i++ {
		b[i] = '0'
	}
	copy(b[segmentDigits:], segmentExt)
	return string(b[:])
}

// SegmentName returns the file name of segment seg in a log directory.
func SegmentName(seg uint64) string { return segmentName(seg) }

// parseSegmentName returns the number of a segment file name, and whether
// name is one.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != segmentDigits {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	seg, err := strconv.ParseUint(digits, 10, 64)
	return seg, err == nil
}

// appendSegmentHeader appends the header of segment seg to dst.
func appendSegmentHeader(dst []byte, seg uint64) []byte {
	n := len(dst)
	dst = append(dst, segmentMagic...)
	dst = append(dst, formatVersion, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, seg)
	return binary.LittleEndian.AppendUint32(dst, checksum(dst[n:]))
}

// ErrUnsupportedVersion is returned (wrapped) by Replay for a segment written
// in a format newer than this code knows.
var ErrUnsupportedVersion = errors.New("wal: unsupported segment format version")

// checkSegmentHeader validates the header of segment seg. It returns a
// non-nil damage describing a bad header, or a non-nil fatal for a newer
// format, which is not damage and must not be repaired.
func checkSegmentHeader(h []byte, seg uint64) (damage, fatal error) {
	if len(h) < len(segmentMagic)+1 {
		return fmt.Errorf("segment header cut short: %d of %d bytes", len(h), segmentHeaderSize), nil
	}
	if string(h[:len(segmentMagic)]) != segmentMagic {
		return fmt.Errorf("bad magic %q", h[:len(segmentMagic)]), nil
	}
	// Magic and version are the stable prefix of every format version: a
	// newer version may lay out the rest differently, so refuse it before
	// looking further.
	if v := h[len(segmentMagic)]; v > formatVersion {
		return nil, fmt.Errorf("%w: version %d, this code reads up to version %d", ErrUnsupportedVersion, v, formatVersion)
	} else if v == 0 {
		return errors.New("bad format version 0"), nil
	}
	if len(h) < segmentHeaderSize {
		return fmt.Errorf("segment header cut short: %d of %d bytes", len(h), segmentHeaderSize), nil
	}
	if got, want := binary.LittleEndian.Uint32(h[16:20]), checksum(h[:16]); got != want {
		return fmt.Errorf("segment header checksum mismatch: stored %#08x, computed %#08x", got, want), nil
	}
	if h[5] != 0 || h[6] != 0 || h[7] != 0 {
		return fmt.Errorf("segment header reserved bytes not zero: % x", h[5:8]), nil
	}
	if got := binary.LittleEndian.Uint64(h[8:16]); got != seg {
		return fmt.Errorf("segment header names segment %d, file name says %d", got, seg), nil
	}
	return nil, nil
}

// putFrame encodes a frame of type typ around payload into dst, which must be
// exactly frameHeaderSize+len(payload) bytes.
func putFrame(dst []byte, typ byte, payload []byte) {
	_ = dst[frameHeaderSize+len(payload)-1]
	binary.LittleEndian.PutUint32(dst[4:8], uint32(len(payload)))
	dst[8] = typ
	copy(dst[frameHeaderSize:], payload)
	binary.LittleEndian.PutUint32(dst[0:4], checksum(dst[4:]))
}

// putSyncMark encodes a sync mark frame into dst (syncMarkFrameSize bytes).
func putSyncMark(dst []byte, seg uint64, synced int64) {
	var p [syncMarkPayloadSize]byte
	binary.LittleEndian.PutUint64(p[0:8], seg)
	binary.LittleEndian.PutUint64(p[8:16], uint64(synced))
	putFrame(dst[:syncMarkFrameSize], frameTypeSyncMark, p[:])
}

// parseSyncMark decodes a sync mark payload found at offset off of segment
// seg. A mark is valid only if it names this segment and promises an offset
// no later than its own position (it was written after that fsync returned).
func parseSyncMark(p []byte, seg uint64, off int64) (synced int64, ok bool) {
	if len(p) != syncMarkPayloadSize || binary.LittleEndian.Uint64(p[0:8]) != seg {
		return 0, false
	}
	s := binary.LittleEndian.Uint64(p[8:16])
	if s < segmentHeaderSize || s > uint64(off) {
		return 0, false
	}
	return int64(s), true
}
