package main

import (
	"sync"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/truth"
	"github.com/eventmetrics/eventmetrics/bench/workload"
)

// load is one generated workload with its ground truth and the points of
// each writer, prepared before any engine runs (generation is excluded from
// every timed figure).
type load struct {
	cfg     workload.Config
	td      *truth.Data
	want    *truth.Truth
	shards  map[int][]shard // by number of writers
	genTime time.Duration   // generating the points (for reference)
	n       int
}

// shard is the share of one writer (see workload.Split).
type shard = workload.Shard

func newLoad(cfg workload.Config, writers []int) *load {
	start := time.Now()
	pts, cfg := workload.Collect(cfg)
	l := &load{cfg: cfg, genTime: time.Since(start), n: len(pts), shards: map[int][]shard{}}
	l.td = truth.New(cfg, pts)
	l.want = l.td.All()
	for _, w := range writers {
		l.shards[w] = workload.Split(pts, w)
	}
	return l
}

// stepper keeps writers in step: a writer starts its batch k only once
// every other writer has finished its batch k-2, so no writer is more than
// one batch ahead of another in event time. Prometheus TSDB needs it (a
// writer that falls an hour of event time behind the newest sample has its
// points refused as "out of bounds"); both engines run under it, so that
// the harness is the same.
type stepper struct {
	mu   sync.Mutex
	cond *sync.Cond
	done []int // batches finished, per writer
}

func newStepper(writers int) *stepper {
	s := &stepper{done: make([]int, writers)}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// wait blocks writer w until it may start its batch k (0-based).
func (s *stepper) wait(w, k int) {
	if len(s.done) == 1 {
		return
	}
	s.mu.Lock()
	for {
		ok := true
		for o, d := range s.done {
			if o != w && d < k-1 {
				ok = false
				break
			}
		}
		if ok {
			break
		}
		s.cond.Wait()
	}
	s.mu.Unlock()
}

// finished records that writer w finished a batch.
func (s *stepper) finished(w int) {
	if len(s.done) == 1 {
		return
	}
	s.mu.Lock()
	s.done[w]++
	s.mu.Unlock()
	s.cond.Broadcast()
}

// stopMark marks a writer that has stopped (finished or failed), so that
// nobody waits for it.
const stopMark = 1 << 62

// stop marks writer w as gone.
func (s *stepper) stop(w int) {
	if len(s.done) == 1 {
		return
	}
	s.mu.Lock()
	s.done[w] = stopMark
	s.mu.Unlock()
	s.cond.Broadcast()
}

// runWriters runs fn(w, shard, stepper) for every writer in its own
// goroutine and returns the first error and the wall time from the start
// of the first to the end of the last.
func runWriters(shards []shard, fn func(w int, sh *shard, st *stepper) error) (time.Duration, error) {
	st := newStepper(len(shards))
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	start := time.Now()
	for w := range shards {
		wg.Go(func() {
			defer st.stop(w)
			errs[w] = fn(w, &shards[w], st)
		})
	}
	wg.Wait()
	el := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return el, err
		}
	}
	return el, nil
}
