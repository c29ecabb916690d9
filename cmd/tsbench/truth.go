package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/query"
	"github.com/eventmetrics/eventmetrics/wal"
)

// The standard queries of WORKLOADS.md, as label selections.
var (
	q1Labels = map[string]string{"service": "svc-0", "endpoint": "/api/0", "status": "200"}
	q2Labels = map[string]string{"service": "svc-3"}
	q3Labels = map[string]string{"endpoint": "/api/7"}
)

// q3Step is the tumbling window of Q3.
const q3Step = time.Minute

// q2From is the lower bound of Q2: the last 10% of the time range.
func q2From(wc workload.Config) int64 {
	lo, hi := wc.Range()
	return hi - (hi-lo)/10
}

func matches(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func eqMatchers(want map[string]string) []query.Matcher {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ms := make([]query.Matcher, len(keys))
	for i, k := range keys {
		ms[i] = query.Eq(k, want[k])
	}
	return ms
}

// truth is the exact answer of every query, computed from the generator's
// points without the engine.
type truth struct {
	Points   int64
	Sum      float64 // Q4
	Q1       []float64
	Q1Series int
	Q2       []float64
	Q2Series int
	Q3Series int
	Q3       map[int64]*[2]float64 // window start (Unix ns) -> sum, count
}

// groundTruth regenerates the workload and computes the answers.
func groundTruth(c *config, done *atomic.Int64) (*truth, error) {
	wc := c.workload()
	in1 := make([]bool, c.Series)
	in2 := make([]bool, c.Series)
	in3 := make([]bool, c.Series)
	t := &truth{Q3: map[int64]*[2]float64{}}
	for s := range c.Series {
		l := workload.Labels(s)
		in1[s], in2[s], in3[s] = matches(l, q1Labels), matches(l, q2Labels), matches(l, q3Labels)
		t.Q1Series += b2i(in1[s])
		t.Q2Series += b2i(in2[s])
		t.Q3Series += b2i(in3[s])
	}
	from := q2From(wc)
	step := int64(q3Step)
	g := workload.New(wc)
	for {
		p, ok := g.Next()
		if !ok {
			break
		}
		t.Points++
		t.Sum += p.V
		if in1[p.Series] {
			t.Q1 = append(t.Q1, p.V)
		}
		if in2[p.Series] && p.T >= from {
			t.Q2 = append(t.Q2, p.V)
		}
		if in3[p.Series] {
			w := p.T - p.T%step // windows aligned to the Unix epoch (no lower bound)
			if p.T < 0 && p.T%step != 0 {
				w -= step
			}
			cell := t.Q3[w]
			if cell == nil {
				cell = &[2]float64{}
				t.Q3[w] = cell
			}
			cell[0] += p.V
			cell[1]++
		}
		if t.Points&0xFFFF == 0 {
			done.Store(t.Points)
		}
	}
	done.Store(t.Points)
	if t.Points != c.total() {
		return nil, fmt.Errorf("ground truth: the generator yielded %d points, want %d", t.Points, c.total())
	}
	slices.Sort(t.Q1)
	slices.Sort(t.Q2)
	return t, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// percentilesOf returns the exact percentiles of sorted values, the method
// the engine promises (numpy's "linear").
func percentilesOf(sorted []float64, ps ...float64) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = query.PercentileSorted(sorted, p)
	}
	return out
}

// sameFloat compares exactly, NaN equal to NaN.
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (a != a && b != b)
}

// closeFloat compares sums computed in different orders.
func closeFloat(a, b float64) bool {
	if sameFloat(a, b) {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// The engine's log records (DESIGN.md section 5, engine format version 1:
// part of the format). tsbench reads only their type byte and point count.
const (
	recSeries  = 0x01 // 0x01 | uvarint id | series key
	recSamples = 0x02 // 0x02 | uvarint n | n points
)

// logSnapshot keeps the log segments present after the unclean stop (as
// hard links, or copies where links fail), so that the points the engine
// replays can be counted afterwards without touching the DB's own files.
// It lives in the data directory (the engine ignores other entries there)
// and is removed before the disk is measured.
type logSnapshot struct{ dir string }

func snapshotLog(dataDir string) (*logSnapshot, error) {
	src := filepath.Join(dataDir, "wal")
	names, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("snapshot the log: %w", err)
	}
	dst, err := os.MkdirTemp(dataDir, ".tsbench-log-")
	if err != nil {
		return nil, fmt.Errorf("snapshot the log: %w", err)
	}
	for _, n := range names {
		if !n.Type().IsRegular() || n.Name() == "LOCK" {
			continue
		}
		from, to := filepath.Join(src, n.Name()), filepath.Join(dst, n.Name())
		if os.Link(from, to) == nil {
			continue
		}
		b, err := os.ReadFile(from)
		if err == nil {
			err = os.WriteFile(to, b, 0o644)
		}
		if err != nil {
			os.RemoveAll(dst)
			return nil, fmt.Errorf("snapshot the log: %w", err)
		}
	}
	return &logSnapshot{dir: dst}, nil
}

func (l *logSnapshot) remove() { os.RemoveAll(l.dir) }

// countReplayed returns the points in the last records of the snapshot,
// the ones the engine replayed: Open replays every segment from the one its
// last checkpoint names, that is, a suffix of the log; records is how many.
func (l *logSnapshot) countReplayed(records int) (int64, error) {
	total := 0
	if _, err := wal.Replay(l.dir, 0, wal.ReplayOptions{}, func([]byte, wal.Pos) error {
		total++
		return nil
	}); err != nil {
		return 0, err
	}
	if records > total {
		return 0, fmt.Errorf("the engine replayed %d records, the log holds %d", records, total)
	}
	skip := total - records
	var i int
	var points int64
	_, err := wal.Replay(l.dir, 0, wal.ReplayOptions{}, func(rec []byte, pos wal.Pos) error {
		i++
		if i <= skip || len(rec) == 0 {
			return nil
		}
		switch rec[0] {
		case recSeries:
		case recSamples:
			n, k := binary.Uvarint(rec[1:])
			if k <= 0 {
				return fmt.Errorf("log record at %v: bad point count", pos)
			}
			points += int64(n)
		default:
			return fmt.Errorf("log record at %v: unknown type %#x", pos, rec[0])
		}
		return nil
	})
	return points, err
}
