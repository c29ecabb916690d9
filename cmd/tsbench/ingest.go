package main

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
)

// The ingest pipeline: one goroutine runs the generator (it yields the
// points in the workload's global round-robin order) and deals each point to
// the writer owning its series (series s belongs to writer s mod writers),
// in batches; each writer appends its batches. Generation is thus inside the
// timed ingest, as in PEERS.md, but on its own goroutine.
//
// batch mode: the generator fills an engine.Batch per writer (Batch.Add with
// the series handle) and hands it over when it holds -batch points; the
// writer calls DB.Append and hands it back.
//
// single mode: the generator hands over runs of points; the writer calls
// Series.ObserveAtNanos once per point and times each call.

// handoffPoints is the size of the runs of points handed to a writer in
// single mode (only a transfer unit: each point is still one call).
const handoffPoints = 1024

// buffersPerWriter is how many batches circulate between the generator
// and one writer.
const buffersPerWriter = 4

// ingestResult is what the ingest measured.
type ingestResult struct {
	Elapsed time.Duration
	Points  int64
	Latency *latencyHist // single mode: one sample per ObserveAtNanos
}

// ingest writes the workload of c into db through the handles, counting the
// points written in done.
func ingest(db *engine.DB, c *config, handles []*engine.Series, done *atomic.Int64) (ingestResult, error) {
	var (
		stopOnce sync.Once
		stop     = make(chan struct{})
		errMu    sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		stopOnce.Do(func() { close(stop) })
	}

	type item struct {
		b   *engine.Batch    // batch mode
		pts []workload.Point // single mode
	}
	work := make([]chan *item, c.Writers)
	free := make([]chan *item, c.Writers)
	for w := range work {
		work[w] = make(chan *item, buffersPerWriter)
		free[w] = make(chan *item, buffersPerWriter)
		for range buffersPerWriter {
			it := &item{}
			if c.Single {
				it.pts = make([]workload.Point, 0, handoffPoints)
			} else {
				it.b = &engine.Batch{}
			}
			free[w] <- it
		}
	}
	hists := make([]*latencyHist, c.Writers)

	start := time.Now()
	var wg sync.WaitGroup
	for w := range c.Writers {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var h *latencyHist
			if c.Single {
				h = newLatencyHist()
				hists[w] = h
			}
			for it := range work[w] {
				if c.Single {
					for _, p := range it.pts {
						t0 := time.Now()
						err := handles[p.Series].ObserveAtNanos(p.T, p.V)
						h.record(time.Since(t0))
						if err != nil {
							fail(fmt.Errorf("writer %d: ObserveAtNanos: %w", w, err))
							return
						}
					}
					done.Add(int64(len(it.pts)))
					it.pts = it.pts[:0]
				} else {
					if err := db.Append(it.b); err != nil {
						fail(fmt.Errorf("writer %d: Append: %w", w, err))
						return
					}
					done.Add(int64(it.b.Len()))
					it.b.Reset()
				}
				free[w] <- it // never blocks: free has room for every item
			}
		}(w)
	}

	// The generator, on its own goroutine.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			for _, ch := range work {
				close(ch)
			}
		}()
		cur := make([]*item, c.Writers)
		for w := range cur {
			cur[w] = <-free[w]
		}
		limit := c.Batch
		if c.Single {
			limit = handoffPoints
		}
		send := func(w int) bool {
			select {
			case work[w] <- cur[w]:
			case <-stop:
				return false
			}
			select {
			case cur[w] = <-free[w]:
				return true
			case <-stop:
				return false
			}
		}
		g := workload.New(c.workload())
		for {
			p, ok := g.Next()
			if !ok {
				break
			}
			w := p.Series % c.Writers
			it := cur[w]
			var n int
			if c.Single {
				it.pts = append(it.pts, p)
				n = len(it.pts)
			} else {
				it.b.Add(handles[p.Series], p.T, p.V)
				n = it.b.Len()
			}
			if n == limit && !send(w) {
				return
			}
		}
		for w, it := range cur {
			if (c.Single && len(it.pts) > 0) || (!c.Single && it.b.Len() > 0) {
				select {
				case work[w] <- it:
				case <-stop:
					return
				}
			}
		}
	}()
	wg.Wait()
	r := ingestResult{Elapsed: time.Since(start), Points: done.Load()}
	if firstErr != nil {
		return r, firstErr
	}
	if r.Points != c.total() {
		return r, fmt.Errorf("ingest wrote %d points, want %d", r.Points, c.total())
	}
	if c.Single {
		r.Latency = newLatencyHist()
		for _, h := range hists {
			r.Latency.merge(h)
		}
	}
	return r, nil
}

// generate runs the generator alone, storing nothing: what generation costs
// inside the ingest.
func generate(c *config, done *atomic.Int64) (time.Duration, error) {
	g := workload.New(c.workload())
	start := time.Now()
	var n int64
	var sink float64
	for {
		p, ok := g.Next()
		if !ok {
			break
		}
		sink += p.V
		n++
		if n&0xFFFF == 0 {
			done.Store(n)
		}
	}
	d := time.Since(start)
	done.Store(n)
	if n != c.total() {
		return d, fmt.Errorf("generator yielded %d points, want %d", n, c.total())
	}
	if math.IsNaN(sink) {
		return d, errors.New("generator yielded NaN")
	}
	return d, nil
}

// latencyHist is a log-linear histogram of durations: exact below 128 ns,
// then 128 buckets per power of two (a relative error under 0.8%), in
// fixed memory whatever the number of samples. Not safe for concurrent use.
type latencyHist struct {
	counts [64 << latSubBits]uint64
	n      uint64
	sum    uint64 // ns
	max    uint64 // ns
}

const latSubBits = 7

func newLatencyHist() *latencyHist { return &latencyHist{} }

func latBucket(v uint64) int {
	if v < 1<<latSubBits {
		return int(v)
	}
	shift := bits.Len64(v) - latSubBits - 1 // v>>shift is in [2^k, 2^(k+1))
	return (shift+1)<<latSubBits + int(v>>shift) - 1<<latSubBits
}

// latBucketRange returns the values [lo, hi) of bucket b.
func latBucketRange(b int) (lo, hi uint64) {
	if b < 1<<latSubBits {
		return uint64(b), uint64(b) + 1
	}
	shift := b>>latSubBits - 1
	m := uint64(b&(1<<latSubBits-1) + 1<<latSubBits)
	return m << shift, (m + 1) << shift
}

func (h *latencyHist) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[latBucket(v)]++
	h.n++
	h.sum += v
	h.max = max(h.max, v)
}

func (h *latencyHist) merge(o *latencyHist) {
	if o == nil {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the p-th percentile (0..100, nearest rank) in ns: the
// middle of the bucket holding it, and the exact maximum for p = 100.
func (h *latencyHist) quantile(p float64) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	if rank == h.n {
		return float64(h.max)
	}
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := latBucketRange(b)
			return min(float64(lo+hi-1)/2, float64(h.max))
		}
	}
	return float64(h.max)
}

func (h *latencyHist) mean() float64 {
	if h.n == 0 {
		return math.NaN()
	}
	return float64(h.sum) / float64(h.n)
}
