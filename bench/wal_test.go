package bench

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/wal"
)

// appendSamplesRecord appends the engine's samples log record (DESIGN.md
// section 5, engine format version 1) for the given points: 0x02 | uvarint
// n | n × (uvarint id | zigzag varint (t - previous t) | 8 bytes LE value).
// Series s has id s+1, as the engine allocates them for a fresh DB.
func appendSamplesRecord(dst []byte, pts []workload.Point) []byte {
	dst = append(dst, 0x02)
	dst = binary.AppendUvarint(dst, uint64(len(pts)))
	var prev int64
	for _, p := range pts {
		dst = binary.AppendUvarint(dst, uint64(p.Series)+1)
		dst = binary.AppendVarint(dst, p.T-prev)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(p.V))
		prev = p.T
	}
	return dst
}

// walRecords is a set of log records cut from a workload, as the engine
// would write them.
type walRecords struct {
	recs   [][]byte
	points int // points per record
	bytes  int // total bytes of recs
}

func (s *suite) walRecords(kind workload.Kind, perRecord int) *walRecords {
	d := s.std(kind)
	pts := d.pts
	// At most 1M points' worth of records: the loop cycles over them.
	if n := 1_000_000; len(pts) > n {
		pts = pts[:n]
	}
	wr := &walRecords{points: perRecord}
	for lo := 0; lo+perRecord <= len(pts); lo += perRecord {
		if perRecord == 1 && len(wr.recs) == 1<<16 {
			break
		}
		r := appendSamplesRecord(nil, pts[lo:lo+perRecord])
		wr.recs = append(wr.recs, r)
		wr.bytes += len(r)
	}
	return wr
}

var syncModes = []struct {
	name string
	mode wal.SyncMode
}{
	{"sync=interval", wal.SyncInterval},
	{"sync=never", wal.SyncNever},
	{"sync=always", wal.SyncAlways},
}

func (s *suite) walCases() []benchCase {
	var cases []benchCase
	for _, kind := range kinds {
		for _, per := range []int{s.sz.batch, 1} {
			name := "batch"
			if per == 1 {
				name = "point"
			}
			for _, m := range syncModes {
				cases = append(cases, benchCase{kind.String() + "/" + name + "/" + m.name, func(b *testing.B) {
					wr := s.walRecords(kind, per)
					w, err := wal.Open(b.TempDir(), wal.Options{Sync: m.mode})
					if err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					n, bytes := 0, 0
					for b.Loop() {
						r := wr.recs[n%len(wr.recs)]
						if _, err := w.Append(r); err != nil {
							b.Fatal(err)
						}
						n++
						bytes += len(r)
					}
					el := b.Elapsed()
					b.StopTimer()
					if err := w.Close(); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(perSecond(float64(n), el), "records/s")
					b.ReportMetric(perSecond(float64(bytes), el)/1e6, "MB/s")
					b.ReportMetric(perSecond(float64(n*wr.points), el), "points/s")
					b.ReportMetric(float64(wr.bytes)/float64(len(wr.recs)*wr.points), "B/point")
				}})
			}
		}
	}
	return cases
}

// BenchmarkWAL appends the engine's samples records, built from the
// workloads as the engine builds them (one record per 1,000-point Append,
// or one per single point as Series.Observe writes), to a wal.Writer in
// each sync mode. B/point is the record payload per point (before
// framing). SyncAlways with one appender measures the disk's fsync latency.
func BenchmarkWAL(b *testing.B) { runCases(b, std().walCases()) }
