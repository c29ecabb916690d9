package engine_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

// TestConcurrentWritesQueriesCheckpoints runs writers, readers and
// checkpoints at once: every query sees every point acknowledged before it
// started, and a point once visible never disappears.
func TestConcurrentWritesQueriesCheckpoints(t *testing.T) {
	db := open(t, t.TempDir(), &engine.Options{ChunkPoints: 50, CheckpointBytes: 32 << 10})
	defer db.Close()
	const writers = 4
	n := 3000
	if testing.Short() {
		n = 800
	}
	var acked [writers]atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s, err := db.Series("c", engine.Labels{"w": strconv.Itoa(w)})
			if err != nil {
				t.Error(err)
				return
			}
			var b engine.Batch
			for i := 0; i < n; i++ {
				// Mostly in order, some late points.
				ts := int64(i) * 1e6
				if i%17 == 0 && i > 100 {
					ts -= 50e6
				}
				if i%3 == 0 {
					b.Reset()
					b.Add(s, ts, float64(i))
					if err := db.Append(&b); err != nil {
						t.Error(err)
						return
					}
				} else if err := s.ObserveAtNanos(ts, float64(i)); err != nil {
					t.Error(err)
					return
				}
				acked[w].Store(int64(i + 1))
			}
		}(w)
	}
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var last [writers]int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				for w := 0; w < writers; w++ {
					before := acked[w].Load()
					c, err := db.Query("c", query.Eq("w", strconv.Itoa(w))).Scalar(query.Count)
					if err != nil {
						t.Error(err)
						return
					}
					if int64(c) < before {
						t.Errorf("writer %d: query saw %v points, %d were acknowledged before it", w, c, before)
						return
					}
					if int64(c) < last[w] {
						t.Errorf("writer %d: %v points visible after %d were", w, c, last[w])
						return
					}
					last[w] = int64(c)
				}
			}
		}()
	}
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if err := db.Compact(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	readers.Wait()
	total, err := db.Query("c").Scalar(query.Count)
	if err != nil || int(total) != writers*n {
		t.Fatalf("total %v (%v), want %d", total, err, writers*n)
	}
	// Sum is exact for these integers.
	sum, _ := db.Query("c").Scalar(query.Sum)
	if want := float64(writers) * float64(n) * float64(n-1) / 2; sum != want {
		t.Fatalf("sum %v, want %v", sum, want)
	}
}
