package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/eventmetrics/eventmetrics/compact"
	"github.com/eventmetrics/eventmetrics/wal"
)

// SyncMode says when a write is made durable. It is the log's (package
// wal) sync mode: the engine's durability is its log's.
type SyncMode = wal.SyncMode

const (
	// SyncInterval (the default) fsyncs the log every Options.SyncEvery: a
	// write acknowledged more than one interval before a crash survives it.
	SyncInterval = wal.SyncInterval
	// SyncAlways returns from a write only once it is on disk. Concurrent
	// writers share fsyncs (group commit).
	SyncAlways = wal.SyncAlways
	// SyncNever fsyncs only on Sync and Close.
	SyncNever = wal.SyncNever
)

// Options configure a DB. A nil *Options and the zero value of every field
// mean the defaults.
type Options struct {
	// Sync is the durability mode of writes (default SyncInterval).
	Sync SyncMode
	// SyncEvery is the fsync period of SyncInterval (default 1s).
	SyncEvery time.Duration
	// Retention drops data older than this (0 = keep forever).
	Retention time.Duration
	// MaxSeries bounds the number of series (0 = unlimited). Past it, writes
	// that would create a series fail with ErrSeriesLimit.
	MaxSeries int
	// MaxLabels bounds the labels of one series (default 64).
	MaxLabels int
	// MaxLabelValueLen bounds the bytes of one label value (default 16 KiB).
	MaxLabelValueLen int

	// ChunkPoints is the number of points after which a series' open chunk
	// is sealed (default 1024, at most 65535).
	ChunkPoints int
	// CheckpointBytes: a checkpoint runs when the log has grown this much
	// since the last one (default 16 MiB, about a million points). It bounds
	// the memory of the heads and the checkpoint batch, and replay time.
	CheckpointBytes int64
	// CheckpointEvery: a checkpoint also runs at least this often while
	// there are writes (default 5 minutes), which bounds replay time.
	CheckpointEvery time.Duration
	// WALSegmentSize is the size of one log segment (default 64 MiB).
	WALSegmentSize int64
	// MemTableSize is pebble's memtable size (default 8 MiB: checkpoints are
	// small and frequent, and a smaller memtable lowers peak memory).
	MemTableSize uint64
	// CacheSize is pebble's block cache size (default 32 MiB).
	CacheSize int64

	// CompactEvery is how often the background compaction runs (default
	// 10 minutes): it merges overlapping and small chunks and applies
	// Retention, paced to use at most half of one core.
	CompactEvery time.Duration
	// ColdAfter: chunks whose newest point is older than this are cold;
	// compaction packs runs of them into blocks (their headers compressed
	// together with zstd, their payloads too when that saves at least 1/16).
	// Default 24 hours. Late points into a block's range unpack it again.
	ColdAfter time.Duration
	// Rollups are the widths of the rollup tiers (for example time.Minute
	// and time.Hour; at most 8, whole seconds, ascending; none by default):
	// each cold block also stores, per window of each width, the count,
	// sum, min, max, first and last of its points and a DDSketch of them,
	// so that queries with UseRollups read these instead of the points.
	// Raw points are kept all the same.
	Rollups []time.Duration
	// RollupAccuracy is the relative accuracy of the rollups' sketches
	// (default 0.01: percentiles from rollups within 1%).
	RollupAccuracy float64
	// NoBackgroundCompaction turns the background compaction off (Compact
	// still works).
	NoBackgroundCompaction bool

	// MaxFeedLag is how many bytes of log a feed (DB.Feed) may hold back
	// from deletion after checkpoints (default 1 GiB). A checkpoint moves a
	// feed further behind forward to the oldest segment it keeps, and the
	// feed counts the points it skipped (FeedStats.Skipped).
	MaxFeedLag int64

	// RepairWAL cuts the log at a corruption found in its middle, keeping
	// everything before it, instead of refusing to open.
	RepairWAL bool

	// FS is the filesystem every file goes through, the engine's and
	// pebble's (default: the OS). Tests inject faults and crashes here.
	FS vfs.FS
	// Now is the clock that stamps Observe and Increment (default: the
	// system clock, read cheaply; see DESIGN.md).
	Now func() time.Time
}

// Validate reports the first invalid field.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	switch {
	case o.Sync < SyncInterval || o.Sync > SyncNever:
		return fmt.Errorf("engine: options: unknown sync mode %d", int(o.Sync))
	case o.SyncEvery < 0:
		return errors.New("engine: options: SyncEvery is negative")
	case o.Retention < 0:
		return errors.New("engine: options: Retention is negative")
	case o.MaxSeries < 0:
		return errors.New("engine: options: MaxSeries is negative")
	case o.MaxLabels < 0:
		return errors.New("engine: options: MaxLabels is negative")
	case o.MaxLabelValueLen < 0:
		return errors.New("engine: options: MaxLabelValueLen is negative")
	case o.ChunkPoints < 0 || o.ChunkPoints > 65535:
		return fmt.Errorf("engine: options: ChunkPoints %d is outside [1, 65535]", o.ChunkPoints)
	case o.CheckpointBytes < 0:
		return errors.New("engine: options: CheckpointBytes is negative")
	case o.CheckpointEvery < 0:
		return errors.New("engine: options: CheckpointEvery is negative")
	case o.CompactEvery < 0:
		return errors.New("engine: options: CompactEvery is negative")
	case o.ColdAfter < 0:
		return errors.New("engine: options: ColdAfter is negative")
	case o.RollupAccuracy < 0 || o.RollupAccuracy > 0.5 || o.RollupAccuracy != o.RollupAccuracy:
		return fmt.Errorf("engine: options: RollupAccuracy %g is outside (0, 0.5]", o.RollupAccuracy)
	case o.WALSegmentSize < 0:
		return errors.New("engine: options: WALSegmentSize is negative")
	case o.MaxFeedLag < 0:
		return errors.New("engine: options: MaxFeedLag is negative")
	case o.CacheSize < 0:
		return errors.New("engine: options: CacheSize is negative")
	}
	if err := compact.ValidateRollupWidths(rollupWidths(o.Rollups)); err != nil {
		return fmt.Errorf("engine: options: %w", err)
	}
	return nil
}

func rollupWidths(ds []time.Duration) []int64 {
	ws := make([]int64, len(ds))
	for i, d := range ds {
		ws[i] = int64(d)
	}
	return ws
}

// withDefaults returns a copy with every zero field set to its default.
func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.SyncEvery == 0 {
		r.SyncEvery = time.Second
	}
	if r.ChunkPoints == 0 {
		r.ChunkPoints = 1024
	}
	if r.CheckpointBytes == 0 {
		r.CheckpointBytes = 16 << 20
	}
	if r.CheckpointEvery == 0 {
		r.CheckpointEvery = 5 * time.Minute
	}
	if r.CompactEvery == 0 {
		r.CompactEvery = 10 * time.Minute
	}
	if r.RollupAccuracy == 0 {
		r.RollupAccuracy = 0.01
	}
	if r.ColdAfter == 0 {
		r.ColdAfter = 24 * time.Hour
	}
	if r.WALSegmentSize == 0 {
		r.WALSegmentSize = 64 << 20
	}
	if r.MemTableSize == 0 {
		r.MemTableSize = 8 << 20
	}
	if r.CacheSize == 0 {
		r.CacheSize = 32 << 20
	}
	if r.MaxFeedLag == 0 {
		r.MaxFeedLag = 1 << 30
	}
	if r.FS == nil {
		r.FS = vfs.Default
	}
	return r
}
