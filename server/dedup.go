package server

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/eventmetrics/eventmetrics/engine"
)

// BatchSeries is the series in which the server records the batch ids it
// acknowledged: one point per acknowledged batch that carried an id (or per
// remote-write request), at the time of its acknowledgement, whose value's
// IEEE 754 bits are the batch's 64-bit key. The point is appended in the
// same log record as the batch's points, so after any crash either both are
// stored or neither (DESIGN.md section 14). Names starting with "__" are
// the system's; listings of the native API hide them.
const BatchSeries = "__eventmetrics_batch"

// batchKey hashes a batch id (or a remote-write body) into the key the
// server remembers. Part of the stored format: do not change.
func batchKey(kind byte, id []byte) uint64 {
	var d xxhash.Digest
	d.Reset()
	d.Write([]byte{kind, ':'})
	d.Write(id)
	return d.Sum64()
}

// Kinds of batch keys (the first byte hashed).
const (
	keyBatchID     = 'b' // an id given by the writer
	keyRemoteWrite = 'r' // the body of a remote-write request
)

// dedup remembers the keys of acknowledged batches for a window of time
// (and at most max of them), and the keys of batches being written, so
// that a retry running beside its original waits for it.
type dedup struct {
	window time.Duration
	max    int

	mu struct {
		sync.Mutex
		seen     map[uint64]struct{}
		order    []seenKey // acknowledged keys, in acknowledgement order
		head     int       // order[head:] are live
		inflight map[uint64]chan struct{}
	}
}

type seenKey struct {
	key uint64
	t   int64
}

func newDedup(window time.Duration, max int) *dedup {
	d := &dedup{window: window, max: max}
	d.mu.seen = make(map[uint64]struct{})
	d.mu.inflight = make(map[uint64]chan struct{})
	return d
}

// load reads the keys acknowledged within the window from the store.
func (d *dedup) load(db *engine.DB, now time.Time) (int, error) {
	ts, vs, err := db.Query(BatchSeries).From(now.Add(-d.window)).Points()
	if err != nil {
		return 0, fmt.Errorf("server: load batch ids: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range ts {
		d.addLocked(math.Float64bits(vs[i]), ts[i])
	}
	d.expireLocked(now.UnixNano())
	return len(d.mu.seen), nil
}

// begin claims key for a write. It reports dup when the key was already
// acknowledged. While another request holds the key, begin waits for it.
// A nil error with dup false obliges the caller to call end.
func (d *dedup) begin(ctx context.Context, key uint64) (dup bool, err error) {
	for {
		d.mu.Lock()
		if _, ok := d.mu.seen[key]; ok {
			d.mu.Unlock()
			return true, nil
		}
		ch, busy := d.mu.inflight[key]
		if !busy {
			d.mu.inflight[key] = make(chan struct{})
			d.mu.Unlock()
			return false, nil
		}
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// end releases key; acked records it as acknowledged at t (Unix ns).
func (d *dedup) end(key uint64, acked bool, t int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if acked {
		d.addLocked(key, t)
		d.expireLocked(t)
	}
	if ch, ok := d.mu.inflight[key]; ok {
		close(ch)
		delete(d.mu.inflight, key)
	}
}

func (d *dedup) addLocked(key uint64, t int64) {
	if _, ok := d.mu.seen[key]; ok {
		return
	}
	d.mu.seen[key] = struct{}{}
	d.mu.order = append(d.mu.order, seenKey{key, t})
}

// expireLocked forgets keys older than the window, and the oldest keys
// past max.
func (d *dedup) expireLocked(now int64) {
	cutoff := now - int64(d.window)
	for d.mu.head < len(d.mu.order) {
		k := d.mu.order[d.mu.head]
		if k.t >= cutoff && len(d.mu.order)-d.mu.head <= d.max {
			break
		}
		delete(d.mu.seen, k.key)
		d.mu.head++
	}
	if d.mu.head > 1024 && d.mu.head*2 > len(d.mu.order) {
		n := copy(d.mu.order, d.mu.order[d.mu.head:])
		clear(d.mu.order[n:])
		d.mu.order = d.mu.order[:n]
		d.mu.head = 0
	}
}

// size returns the number of keys remembered.
func (d *dedup) size() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.mu.seen)
}
