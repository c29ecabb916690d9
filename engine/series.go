package engine

import (
	"slices"
	"sync"

	"github.com/eventmetrics/eventmetrics/encode"
	"github.com/eventmetrics/eventmetrics/index"
)

// Series is a resolved handle on one series: writes through it skip label
// validation and map lookups. A Series is safe for concurrent use and valid
// until its DB is closed.
type Series struct {
	db     *DB
	id     uint64
	name   string
	labels []index.Label
	key    string // canonical series key (index.AppendKey)

	// head is the in-memory head of the series. It is guarded by the log's
	// lock: it changes only inside the callbacks of db.log.AppendFunc,
	// RotateFunc and Do (and during replay, before the log is opened), so
	// that it always matches the log exactly.
	head struct {
		cur    pointBuf    // the open in-order chunk, as raw points
		lastT  int64       // greatest timestamp appended in order
		hasT   bool        // lastT is set
		ooo    pointBuf    // out-of-order points, in arrival order
		sealed []*memChunk // sealed chunks not yet in pebble, in seal order
		// curPersisted is the number of points of cur written to pebble
		// by the last checkpoint (as a partial chunk under cur.seq).
		curPersisted int
		dirty        bool // on db.dirty: has data a checkpoint must write
		filled       bool // a chunk of this series reached ChunkPoints
	}

	// inc serializes Increment and holds the running total.
	inc struct {
		sync.Mutex
		total  float64
		loaded bool
	}
}

// pointBuf holds raw points. Its arrays are append-only: readers keep
// sub-slices of them without copying, so a buffer is never reused after it
// is sealed (a fresh one is started).
type pointBuf struct {
	seq uint64
	ts  []int64
	vs  []float64
}

// memChunk is a sealed chunk held in memory until a checkpoint writes it.
// It is born raw (ts, vs) and encoded soon after by the encoder goroutine,
// outside the log's lock; its fields change only under the log's lock, and
// readers copy it by value.
type memChunk struct {
	seq        uint64
	minT, maxT int64
	data       []byte        // encoded, or nil while raw
	hdr        encode.Header // when data != nil
	ts         []int64       // raw points, until encoded
	vs         []float64
}

// ID returns the series id.
func (s *Series) ID() uint64 { return s.id }

// Name returns the metric name.
func (s *Series) Name() string { return s.name }

// Labels returns the series' labels, sorted by name. Callers must not
// modify the result.
func (s *Series) Labels() []index.Label { return s.labels }

func (s *Series) String() string { return index.String(s.name, s.labels) }

// appendHead adds one point to the head. The log's lock must be held.
func (s *Series) appendHead(t int64, v float64) error {
	db := s.db
	if !s.head.dirty {
		s.head.dirty = true
		db.dirty = append(db.dirty, s)
	}
	if s.head.hasT && t < s.head.lastT {
		o := &s.head.ooo
		if len(o.ts) == 0 {
			o.seq = 0
		}
		o.ts = append(o.ts, t)
		o.vs = append(o.vs, v)
		if len(o.ts) >= db.opts.ChunkPoints {
			return s.sealOOO()
		}
		return nil
	}
	c := &s.head.cur
	if n := len(c.ts); n > 0 && (n >= db.opts.ChunkPoints || uint64(t-c.ts[0]) > uint64(maxChunkSpan)) {
		if err := s.sealCur(); err != nil {
			return err
		}
	}
	if len(c.ts) == 0 {
		c.seq = db.nextSeq.Add(1) - 1
		if c.ts == nil {
			// A series that filled a chunk before is busy: give the next
			// one its full size at once instead of growing it.
			n := 8
			if s.head.filled {
				n = db.opts.ChunkPoints
			}
			c.ts = make([]int64, 0, n)
			c.vs = make([]float64, 0, n)
		}
	}
	c.ts = append(c.ts, t)
	c.vs = append(c.vs, v)
	s.head.lastT, s.head.hasT = t, true
	return nil
}

// sealCur encodes the open chunk and queues it for the next
// checkpoint.
func (s *Series) sealCur() error {
	c := &s.head.cur
	if len(c.ts) == 0 {
		return nil
	}
	s.db.sealRaw(s, c.seq, c.ts, c.vs)
	s.head.filled = s.head.filled || len(c.ts) >= s.db.opts.ChunkPoints
	*c = pointBuf{}
	s.head.curPersisted = 0
	return nil
}

// sealOOO sorts the out-of-order buffer and seals it into chunks that
// respect ChunkPoints and maxChunkSpan.
func (s *Series) sealOOO() error {
	o := &s.head.ooo
	if len(o.ts) == 0 {
		return nil
	}
	ts, vs := sortedCopy(o.ts, o.vs)
	*o = pointBuf{}
	for len(ts) > 0 {
		n := 1
		for n < len(ts) && n < s.db.opts.ChunkPoints && uint64(ts[n]-ts[0]) <= uint64(maxChunkSpan) {
			n++
		}
		s.db.sealRaw(s, s.db.nextSeq.Add(1)-1, ts[:n:n], vs[:n:n])
		ts, vs = ts[n:], vs[n:]
	}
	return nil
}

// sortedCopy returns copies of ts and vs sorted stably by timestamp.
func sortedCopy(ts []int64, vs []float64) ([]int64, []float64) {
	idx := make([]int32, len(ts))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int {
		switch {
		case ts[a] < ts[b]:
			return -1
		case ts[a] > ts[b]:
			return 1
		}
		return 0
	})
	nt := make([]int64, len(ts))
	nv := make([]float64, len(ts))
	for i, j := range idx {
		nt[i], nv[i] = ts[j], vs[j]
	}
	return nt, nv
}

// maxEncodeBacklog bounds the sealed chunks waiting for the encoder
// goroutine (about 4 MiB of raw points at 1024 points a chunk).
const maxEncodeBacklog = 256

// sealRaw queues a full chunk of raw points of s for encoding. The log's
// lock is held.
func (db *DB) sealRaw(s *Series, seq uint64, ts []int64, vs []float64) {
	m := &memChunk{seq: seq, minT: ts[0], maxT: ts[len(ts)-1], ts: ts, vs: vs}
	s.head.sealed = append(s.head.sealed, m)
	if len(db.toEncode) >= maxEncodeBacklog {
		// The encoder is behind (another core is busy): encode here, so
		// that raw chunks (16 bytes a point) cannot pile up in memory.
		if mc, err := db.encodeChunk(seq, ts, vs); err == nil {
			m.data, m.hdr, m.ts, m.vs = mc.data, mc.hdr, nil, nil
			return
		}
		// On error leave it raw: the encoder or the checkpoint reports it.
	}
	db.toEncode = append(db.toEncode, m)
	if len(db.toEncode) == 1 {
		select {
		case db.encReq <- struct{}{}:
		default:
		}
	}
}

// encodeChunk encodes points into a memChunk.
func (db *DB) encodeChunk(seq uint64, ts []int64, vs []float64) (*memChunk, error) {
	data, err := encode.AppendChunk(make([]byte, 0, 64+len(ts)*9), ts, vs)
	if err != nil {
		return nil, err
	}
	hdr, err := encode.DecodeHeader(data)
	if err != nil {
		return nil, err
	}
	return &memChunk{seq: seq, minT: ts[0], maxT: ts[len(ts)-1], data: data, hdr: hdr}, nil
}

// headSnapshot is a reader's consistent view of a series' head. It shares
// the head's immutable arrays.
type headSnapshot struct {
	sealed  []memChunk
	curSeq  uint64
	curTS   []int64
	curVS   []float64
	oooTS   []int64
	oooVS   []float64
	hasHead bool
}

// snapshot returns the reader's view of the head. The log's lock must be
// held.
func (s *Series) snapshot() headSnapshot {
	h := headSnapshot{
		curSeq: s.head.cur.seq,
		curTS:  s.head.cur.ts[:len(s.head.cur.ts):len(s.head.cur.ts)],
		curVS:  s.head.cur.vs[:len(s.head.cur.vs):len(s.head.cur.vs)],
	}
	if len(s.head.sealed) > 0 {
		h.sealed = make([]memChunk, len(s.head.sealed))
		for i, m := range s.head.sealed {
			h.sealed[i] = *m
		}
	}
	if len(s.head.ooo.ts) > 0 {
		h.oooTS, h.oooVS = sortedCopy(s.head.ooo.ts, s.head.ooo.vs)
	}
	h.hasHead = len(h.sealed) > 0 || len(h.curTS) > 0 || len(h.oooTS) > 0
	return h
}

// inMemory reports whether the chunk seq has a fresher copy in the snapshot
// (pebble may hold an older, partial one under the same key).
func (h *headSnapshot) inMemory(seq uint64) bool {
	if len(h.curTS) > 0 && h.curSeq == seq {
		return true
	}
	for i := range h.sealed {
		if h.sealed[i].seq == seq {
			return true
		}
	}
	return false
}
