package bench

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

var engineSyncModes = []struct {
	name string
	mode engine.SyncMode
}{
	{"sync=interval", engine.SyncInterval},
	{"sync=always", engine.SyncAlways},
}

func (s *suite) appendCases() []benchCase {
	var cases []benchCase
	for _, kind := range kinds {
		for _, writers := range []int{1, 2} {
			for _, m := range engineSyncModes {
				name := fmt.Sprintf("%v/writers=%d/%s", kind, writers, m.name)
				cases = append(cases, benchCase{name, func(b *testing.B) {
					d := s.std(kind)
					shards := workload.Split(d.pts, writers)
					b.ReportAllocs()
					var appendTime, closeTime time.Duration
					var bytes, dataBytes, compacted int64
					points := 0
					for b.Loop() {
						b.StopTimer()
						dir, err := os.MkdirTemp("", "eventmetrics-bench-append-")
						if err != nil {
							b.Fatal(err)
						}
						db := openDB(b, dir, &engine.Options{Sync: m.mode})
						hs := handles(b, db, d)
						b.StartTimer()
						start := time.Now()
						if err := ingest(db, hs, shards, s.sz.batch); err != nil {
							b.Fatal(err)
						}
						appendTime += time.Since(start)
						b.StopTimer()
						start = time.Now()
						if err := db.Close(); err != nil {
							b.Fatal(err)
						}
						closeTime += time.Since(start)
						points += len(d.pts)
						bytes += dirSize(b, dir)
						dataBytes += dirSize(b, dir+"/data")
						if points == len(d.pts) {
							compacted = checkCompact(b, dir, d)
						}
						os.RemoveAll(dir)
						b.StartTimer()
					}
					b.ReportMetric(perSecond(float64(points), appendTime), "points/s")
					b.ReportMetric(perSecond(float64(points), appendTime+closeTime), "points/s+close")
					b.ReportMetric(float64(bytes)/float64(points), "B/point")
					b.ReportMetric(float64(dataBytes)/float64(points), "data-B/point")
					b.ReportMetric(float64(compacted)/float64(len(d.pts)), "compacted-B/point")
				}})
			}
		}
	}
	return cases
}

// checkCompact reopens the DB in dir, checks that it holds every point,
// runs db.Compact (which also compacts the store's tables, dropping chunk
// versions that later checkpoints superseded), closes it and returns the
// bytes on disk then.
func checkCompact(b *testing.B, dir string, d *dataset) int64 {
	db := openDB(b, dir, nil)
	v, err := db.Query(d.cfg.Metric()).Scalars(query.Count)
	if err != nil {
		b.Fatal(err)
	}
	if int(v[0]) != len(d.pts) {
		b.Fatalf("reopened DB holds %v points, want %d", v[0], len(d.pts))
	}
	if err := db.Compact(); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return dirSize(b, dir)
}

// BenchmarkAppend ingests W-event and W-scrape with db.Append in batches of
// 1,000 points from 1 and 2 writers (each owning a disjoint half of the
// series), into a fresh DB per iteration, in the default sync mode and in
// SyncAlways. The batches are built and the series resolved before the
// timer starts; db.Close (the final checkpoint) is outside points/s and
// inside points/s+close. B/point is everything on disk after Close
// (log, pebble, lock), data-B/point the pebble store alone, and
// compacted-B/point everything after a reopen, db.Compact and Close
// (measured once, untimed): the difference is chunk versions superseded by
// later checkpoints that Close leaves in pebble's tables.
func BenchmarkAppend(b *testing.B) { runCases(b, std().appendCases()) }
