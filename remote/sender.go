package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/eventmetrics/eventmetrics/engine"
)

// ErrClosed is returned by Start after Close, and by a second Close.
var ErrClosed = errors.New("remote: sender closed")

// Sender streams what a DB records to a remote-write receiver. See the
// package documentation.
type Sender struct {
	// Immutable after New.
	db     *engine.DB
	cfg    Config
	sel    [][]*labels.Matcher
	client *http.Client
	// ownClient: the client is the Sender's, its idle connections are
	// closed by Close.
	ownClient bool
	shards    []*shard

	feed *engine.Feed // opened by Start

	tr    tracker
	proc  processor // reader goroutine only
	lag   lagHistogram
	stats counters

	readCtx    context.Context // the reader's; canceled first by Close
	readCancel context.CancelFunc
	sendCtx    context.Context // the shards' requests; canceled when Close gives up
	sendCancel context.CancelFunc
	readerDone chan struct{}
	shardsWG   sync.WaitGroup
	commitStop chan struct{}
	commitDone chan struct{}

	mu struct {
		sync.Mutex
		started, closed bool
		lastErr         error
	}
}

// counters are the Sender's monotonic counts (see Stats).
type counters struct {
	points, filtered, samples, batches, retries atomic.Int64
	rejected, rejectedBatches, late, collapsed  atomic.Int64
	nan, unknownSeries, commits, commitErrors   atomic.Int64
	queued                                      atomic.Int64
	newestSentMs                                atomic.Int64
	committedSeg, committedOff                  atomic.Int64
	readErrors                                  atomic.Int64
	lastStatus                                  atomic.Int64
}

// New checks cfg and returns a Sender for db; Start starts it.
func New(db *engine.DB, cfg Config) (*Sender, error) {
	if db == nil {
		return nil, errors.New("remote: nil DB")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Sender{db: db, cfg: cfg, client: cfg.Client}
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Shards
		s.client = &http.Client{Transport: tr}
		s.ownClient = true
	}
	p := parser.NewParser(parser.Options{})
	for _, sel := range cfg.Selectors {
		ms, err := p.ParseMetricSelector(sel)
		if err != nil {
			return nil, fmt.Errorf("remote: config: selector %q: %w", sel, err)
		}
		s.sel = append(s.sel, ms)
	}
	s.lag.init()
	return s, nil
}

// Start opens the sender's feed (creating it on the first start: it then
// sends what is written from now on; later starts resume at its committed
// cursor) and starts the reader, the shards and the committer.
func (s *Sender) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	if s.mu.started {
		return errors.New("remote: sender already started")
	}
	f, err := s.db.Feed(s.cfg.Feed)
	if err != nil {
		return fmt.Errorf("remote: open feed: %w", err)
	}
	state, _ := s.db.FeedState(s.cfg.Feed)
	proc, err := newProcessor(s, state)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("remote: feed %q: %w", s.cfg.Feed, err)
	}
	s.feed, s.proc = f, proc
	st := f.Stats()
	s.stats.committedSeg.Store(int64(st.Committed.Segment))
	s.stats.committedOff.Store(st.Committed.Offset)
	s.tr.init(st.Committed, state)

	s.readCtx, s.readCancel = context.WithCancel(context.Background())
	s.sendCtx, s.sendCancel = context.WithCancel(context.Background())
	s.readerDone = make(chan struct{})
	s.commitStop = make(chan struct{})
	s.commitDone = make(chan struct{})
	per := max(1, s.cfg.QueueCapacity/s.cfg.Shards)
	s.shards = make([]*shard, s.cfg.Shards)
	for i := range s.shards {
		s.shards[i] = &shard{s: s, in: make(chan item, per)}
		s.shardsWG.Add(1)
		go s.shards[i].run()
	}
	go s.read()
	go s.committer()
	s.mu.started = true
	return nil
}

// Close stops reading the log, waits up to Config.CloseTimeout for the
// queued samples to be acknowledged (then abandons them: they are sent
// again after the next Start), commits the cursor and closes the feed.
func (s *Sender) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.mu.closed = true
	started := s.mu.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	s.readCancel()
	<-s.readerDone
	for _, sh := range s.shards {
		close(sh.in)
	}
	drained := make(chan struct{})
	go func() { s.shardsWG.Wait(); close(drained) }()
	t := time.NewTimer(s.cfg.CloseTimeout)
	select {
	case <-drained:
	case <-t.C:
		s.sendCancel()
		<-drained
	}
	t.Stop()
	s.sendCancel()
	close(s.commitStop)
	<-s.commitDone
	err := s.commit()
	if s.ownClient {
		s.client.CloseIdleConnections()
	}
	if cerr := s.feed.Close(); err == nil && cerr != nil && !errors.Is(cerr, engine.ErrFeedClosed) {
		err = cerr
	}
	if errors.Is(err, engine.ErrClosed) {
		err = fmt.Errorf("remote: the DB was closed before the sender: %w", err)
	}
	return err
}

func (s *Sender) setErr(err error) {
	s.mu.Lock()
	s.mu.lastErr = err
	s.mu.Unlock()
}

// read is the reader goroutine: feed → processor → tickets → shards.
func (s *Sender) read() {
	defer close(s.readerDone)
	readMax := min(s.cfg.BatchSize*s.cfg.Shards, max(s.cfg.QueueCapacity/2, 1))
	idle := s.cfg.BatchWait // Raw: held-back points are flushed after it
	if s.cfg.Shape == Aggregated {
		idle = s.cfg.Aggregation.IdleClose
	}
	var buf []engine.FeedPoint
	var out []item
	end := s.feed.Stats().Read
	backoff := s.cfg.MinBackoff
	for {
		ctx, cancel := context.WithTimeout(s.readCtx, idle)
		pts, e, err := s.feed.Next(ctx, buf[:0], readMax)
		cancel()
		if s.readCtx.Err() != nil {
			return
		}
		isIdle := false
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			isIdle = true
		case errors.Is(err, engine.ErrClosed), errors.Is(err, engine.ErrFeedClosed):
			s.setErr(fmt.Errorf("remote: read feed: %w", err))
			return
		case err != nil:
			// A damaged log, or a failed read: keep trying, slowly, and
			// say why on /metrics.
			s.stats.readErrors.Add(1)
			s.setErr(fmt.Errorf("remote: read feed: %w", err))
			if !sleepCtx(s.readCtx, backoff) {
				return
			}
			backoff = min(2*backoff, s.cfg.MaxBackoff)
			continue
		default:
			backoff = s.cfg.MinBackoff
			end = e
			buf = pts
		}
		s.stats.points.Add(int64(len(pts)))
		caughtUp := isIdle || len(pts) < readMax
		var safe engine.FeedPos
		var state []byte
		out, safe, state = s.proc.process(out[:0], pts, end, caughtUp, isIdle)
		id := s.tr.add(safe, state, len(out))
		s.stats.queued.Add(int64(len(out)))
		for i := range out {
			out[i].ticket = id
			select {
			case s.shards[out[i].shard].in <- out[i]:
			case <-s.readCtx.Done():
				// Not dispatched: its ticket never completes, so the cursor
				// stays before it.
				s.stats.queued.Add(-int64(len(out) - i))
				return
			}
		}
		clear(out)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// committer makes the cursor durable every CommitEvery.
func (s *Sender) committer() {
	defer close(s.commitDone)
	t := time.NewTicker(s.cfg.CommitEvery)
	defer t.Stop()
	for {
		select {
		case <-s.commitStop:
			return
		case <-t.C:
			if err := s.commit(); err != nil {
				s.setErr(err)
			}
		}
	}
}

// commit writes the tracker's ready position, if it moved.
func (s *Sender) commit() error {
	pos, state, ok := s.tr.take()
	if !ok {
		return nil
	}
	if err := s.feed.Commit(pos, state); err != nil {
		s.stats.commitErrors.Add(1)
		s.tr.untake(pos, state)
		return fmt.Errorf("remote: commit cursor: %w", err)
	}
	s.stats.commits.Add(1)
	s.stats.committedSeg.Store(int64(pos.Segment))
	s.stats.committedOff.Store(pos.Offset)
	return nil
}

// item is one sample on its way to a shard.
type item struct {
	ls     *labelSet
	t      int64 // ms
	v      float64
	shard  int
	ticket uint64
}

// labelSet is the sorted label set of one exported series.
type labelSet struct {
	labels []prompb.Label
}

// shard sends the samples of its series, in order, one batch at a time.
type shard struct {
	s  *Sender
	in chan item

	batch []item
	req   prompb.WriteRequest
	idx   map[*labelSet]int
	raw   []byte
	comp  []byte
}

func (sh *shard) run() {
	defer sh.s.shardsWG.Done()
	s := sh.s
	sh.idx = make(map[*labelSet]int)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		it, ok := <-sh.in
		if !ok {
			return
		}
		sh.batch = append(sh.batch[:0], it)
		timer.Reset(s.cfg.BatchWait)
		open := true
	fill:
		for len(sh.batch) < s.cfg.BatchSize {
			select {
			case it, ok := <-sh.in:
				if !ok {
					open = false
					break fill
				}
				sh.batch = append(sh.batch, it)
			case <-timer.C:
				break fill
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		sh.send()
		clear(sh.batch)
		if !open {
			return
		}
	}
}

// send delivers the batch, retrying until it is acknowledged, rejected
// (dropped and counted) or the sender gives up at Close (then its tickets
// stay open: the cursor does not pass it).
func (sh *shard) send() {
	s := sh.s
	n := len(sh.batch)
	body := sh.encode()
	backoff := s.cfg.MinBackoff
	for {
		status, retryAfter, err := s.post(body)
		switch {
		case err == nil && status/100 == 2:
			s.stats.samples.Add(int64(n))
			s.stats.batches.Add(1)
			sh.acked(true)
			return
		case s.sendCtx.Err() != nil:
			s.stats.queued.Add(-int64(n))
			return
		case err == nil && status/100 == 4 && status != http.StatusTooManyRequests:
			s.stats.rejected.Add(int64(n))
			s.stats.rejectedBatches.Add(1)
			sh.acked(false)
			return
		}
		s.stats.retries.Add(1)
		wait := backoff
		if retryAfter > wait {
			wait = min(retryAfter, maxRetryAfter)
		}
		if !sleepCtx(s.sendCtx, wait) {
			s.stats.queued.Add(-int64(n))
			return
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// acked releases the batch's tickets (run-length: a shard's items come in
// ticket order).
func (sh *shard) acked(delivered bool) {
	s := sh.s
	now := time.Now().UnixMilli()
	newest := int64(0)
	for i := 0; i < len(sh.batch); {
		j := i
		for j < len(sh.batch) && sh.batch[j].ticket == sh.batch[i].ticket {
			if delivered {
				s.lag.observe(now - sh.batch[j].t)
				newest = max(newest, sh.batch[j].t)
			}
			j++
		}
		s.tr.done(sh.batch[i].ticket, j-i)
		i = j
	}
	s.stats.queued.Add(-int64(len(sh.batch)))
	for {
		old := s.stats.newestSentMs.Load()
		if newest <= old || s.stats.newestSentMs.CompareAndSwap(old, newest) {
			break
		}
	}
}

// encode builds the snappy-compressed WriteRequest of the batch: one
// TimeSeries per label set, its samples in batch order.
func (sh *shard) encode() []byte {
	clear(sh.idx)
	ts := sh.req.Timeseries[:0]
	for _, it := range sh.batch {
		k, ok := sh.idx[it.ls]
		if !ok {
			k = len(ts)
			sh.idx[it.ls] = k
			if k < cap(ts) {
				ts = ts[:k+1]
				ts[k].Labels = it.ls.labels
				ts[k].Samples = ts[k].Samples[:0]
			} else {
				ts = append(ts, prompb.TimeSeries{Labels: it.ls.labels})
			}
		}
		ts[k].Samples = append(ts[k].Samples, prompb.Sample{Value: it.v, Timestamp: it.t})
	}
	sh.req.Timeseries = ts
	size := sh.req.Size()
	if cap(sh.raw) < size {
		sh.raw = make([]byte, size)
	}
	sh.raw = sh.raw[:size]
	n, err := sh.req.MarshalToSizedBuffer(sh.raw)
	if err != nil || n != size {
		// prompb marshals what it sized; a failure here is a bug.
		panic(fmt.Sprintf("remote: marshal write request: %v (%d of %d bytes)", err, n, size))
	}
	sh.comp = snappy.Encode(sh.comp[:cap(sh.comp)], sh.raw)
	return sh.comp
}

// post sends one request. It returns the status, the Retry-After delay (0
// if none), or a network error.
func (s *Sender) post(body []byte) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(s.sendCtx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "eventmetrics-remote-write")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	if s.cfg.BasicAuth.Username != "" {
		req.SetBasicAuth(s.cfg.BasicAuth.Username, s.cfg.BasicAuth.Password)
	}
	if s.cfg.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.BearerToken)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.setErr(fmt.Errorf("remote: send: %w", err))
		return 0, 0, err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	s.stats.lastStatus.Store(int64(resp.StatusCode))
	if resp.StatusCode/100 != 2 {
		s.setErr(fmt.Errorf("remote: send: %s: %s", resp.Status, bytes.TrimSpace(msg)))
	}
	return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After")), nil
}

// maxRetryAfter bounds the wait a Retry-After header asks for.
const maxRetryAfter = time.Minute

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// tracker computes the cursor the sender may commit: the position of the
// last ticket such that it and every ticket before it are done (each
// sample acknowledged or dropped). Tickets are created in log order by the
// reader; shards finish them in any order.
type tracker struct {
	mu    sync.Mutex
	base  uint64   // id of q[0]
	q     []ticket // open tickets, oldest first
	ready ticket   // the last completed prefix's position and state
	dirty bool     // ready moved since take
}

type ticket struct {
	pos     engine.FeedPos
	state   []byte
	pending int
}

func (t *tracker) init(pos engine.FeedPos, state []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ready = ticket{pos: pos, state: state}
	t.base = 1
}

// add opens a ticket for n samples, released at pos with state.
func (t *tracker) add(pos engine.FeedPos, state []byte, n int) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := t.base + uint64(len(t.q))
	t.q = append(t.q, ticket{pos: pos, state: state, pending: n})
	t.popLocked()
	return id
}

// done marks n samples of ticket id acknowledged or dropped.
func (t *tracker) done(id uint64, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := id - t.base
	if id < t.base || k >= uint64(len(t.q)) || t.q[k].pending < n {
		panic(fmt.Sprintf("remote: tracker: ticket %d released %d samples too many", id, n))
	}
	t.q[k].pending -= n
	t.popLocked()
}

func (t *tracker) popLocked() {
	i := 0
	for i < len(t.q) && t.q[i].pending == 0 {
		if t.ready.pos.Less(t.q[i].pos) || t.q[i].state != nil {
			t.ready = ticket{pos: t.q[i].pos, state: t.q[i].state}
			t.dirty = true
		}
		i++
	}
	if i > 0 {
		clear(t.q[:i])
		t.q = slices.Delete(t.q, 0, i)
		t.base += uint64(i)
	}
}

// take returns the ready position and state if they moved since the last
// take.
func (t *tracker) take() (engine.FeedPos, []byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.dirty {
		return engine.FeedPos{}, nil, false
	}
	t.dirty = false
	return t.ready.pos, t.ready.state, true
}

// untake marks a failed commit's position as still to commit.
func (t *tracker) untake(engine.FeedPos, []byte) {
	t.mu.Lock()
	t.dirty = true
	t.mu.Unlock()
}
