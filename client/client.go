package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/server"
)

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("client: closed")

// Options configure a Writer. A nil *Options and the zero value of every
// field mean the defaults.
type Options struct {
	// BearerToken is sent as "Authorization: Bearer TOKEN" when set.
	BearerToken string
	// MaxBatchPoints: a batch is sent when it holds this many points
	// (default 10,000).
	MaxBatchPoints int
	// FlushEvery: a non-empty batch is sent at least this often (default
	// 200ms).
	FlushEvery time.Duration
	// MaxPendingPoints bounds the points held in memory, sent or not yet
	// acknowledged (default 200,000): past it, writes block until the
	// server acknowledges (backpressure).
	MaxPendingPoints int
	// RetryFor: a batch is retried, with exponential backoff, for this long
	// after its first attempt; then it is dropped and the next Sync
	// reports it (default 10 minutes; it must stay below the server's
	// DedupWindow, default 1h, for retries to stay exactly-once).
	RetryFor time.Duration
	// MinBackoff and MaxBackoff bound the waits between attempts (defaults
	// 50ms and 5s; each wait is doubled, with jitter).
	MinBackoff, MaxBackoff time.Duration
	// RequestTimeout bounds one attempt (default 30s).
	RequestTimeout time.Duration
	// HTTPClient sends the requests (default: a client of its own).
	HTTPClient *http.Client
	// OnError, when set, is called (from the sending goroutine) with every
	// batch error as it happens, in addition to Sync's report.
	OnError func(error)
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.MaxBatchPoints <= 0 {
		r.MaxBatchPoints = 10_000
	}
	if r.FlushEvery <= 0 {
		r.FlushEvery = 200 * time.Millisecond
	}
	if r.MaxPendingPoints <= 0 {
		r.MaxPendingPoints = 200_000
	}
	if r.MaxPendingPoints < r.MaxBatchPoints {
		r.MaxPendingPoints = r.MaxBatchPoints
	}
	if r.RetryFor <= 0 {
		r.RetryFor = 10 * time.Minute
	}
	if r.MinBackoff <= 0 {
		r.MinBackoff = 50 * time.Millisecond
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = 5 * time.Second
	}
	if r.RequestTimeout <= 0 {
		r.RequestTimeout = 30 * time.Second
	}
	if r.HTTPClient == nil {
		r.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}}
	}
	return r
}

// Writer writes points to an eventmetrics server. It implements
// engine.Writer; it is safe for concurrent use.
type Writer struct {
	url    string // the server's base URL, without a trailing slash
	opts   Options
	prefix string // random per Writer: batch ids are prefix-seq

	queue chan *item // batches and sync marks, to the sender
	stop  chan struct{}
	wg    sync.WaitGroup

	mu struct {
		sync.Mutex
		closed bool
		buf    []byte // the JSON points of the open batch, comma-separated
		n      int    // points in buf
		seq    uint64 // batches cut so far
	}
	errMu sync.Mutex
	errs  []error // batch errors since the last Sync
}

// item is a batch to send, or a sync mark (done != nil).
type item struct {
	id   string
	body []byte
	n    int
	done chan error
}

// New returns a Writer to the server at baseURL ("http://127.0.0.1:9470").
// It does not contact the server: errors surface at Sync.
func New(baseURL string, opts *Options) (*Writer, error) {
	if !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://") {
		return nil, fmt.Errorf("client: server URL %q must start with http:// or https://", baseURL)
	}
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, fmt.Errorf("client: batch id prefix: %w", err)
	}
	o := opts.withDefaults()
	w := &Writer{
		url:    strings.TrimRight(baseURL, "/"),
		opts:   o,
		prefix: hex.EncodeToString(r[:]),
		queue:  make(chan *item, max(1, o.MaxPendingPoints/o.MaxBatchPoints-1)),
		stop:   make(chan struct{}),
	}
	w.wg.Add(2)
	go w.sender()
	go w.flusher()
	return w, nil
}

var _ engine.Writer = (*Writer)(nil)

// Observe records value for name{labels}, stamped with the client's clock
// now.
func (w *Writer) Observe(name string, value float64, labels engine.Labels) error {
	return w.add(name, labels, value, time.Now().UnixNano(), false)
}

// ObserveAt records value for name{labels} at event time ts.
func (w *Writer) ObserveAt(ts time.Time, name string, value float64, labels engine.Labels) error {
	return w.add(name, labels, value, ts.UnixNano(), false)
}

// Increment adds delta (finite, >= 0) to the counter name{labels}; the
// server keeps the running total and stamps the point with its clock.
func (w *Writer) Increment(name string, delta float64, labels engine.Labels) error {
	if math.IsNaN(delta) || math.IsInf(delta, 0) || delta < 0 {
		return fmt.Errorf("%w: increment of %s by %v: a counter increment must be finite and >= 0", engine.ErrInvalid, name, delta)
	}
	return w.add(name, labels, delta, 0, true)
}

func checkString(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q is not valid UTF-8", engine.ErrInvalid, what, s)
	}
	return nil
}

func (w *Writer) add(name string, labels engine.Labels, v float64, ts int64, inc bool) error {
	if name == "" {
		return fmt.Errorf("%w: empty metric name", engine.ErrInvalid)
	}
	if err := checkString("metric name", name); err != nil {
		return err
	}
	for k, val := range labels {
		if err := checkString("label name", k); err != nil {
			return err
		}
		if err := checkString("label value", val); err != nil {
			return err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.closed {
		return ErrClosed
	}
	b := w.mu.buf
	if w.mu.n > 0 {
		b = append(b, ',')
	}
	b = append(b, `{"name":`...)
	b = appendString(b, name)
	if len(labels) > 0 {
		b = append(b, `,"labels":{`...)
		// Sorted, so that every point of a series reads the same: the
		// server resolves a series once per request.
		var arr [16]string
		keys := arr[:0]
		for k := range labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, labels[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"value":`...)
	b, _ = appendFloat(b, v)
	if inc {
		b = append(b, `,"op":"increment"}`...)
	} else {
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, ts, 10)
		b = append(b, '}')
	}
	w.mu.buf = b
	w.mu.n++
	if w.mu.n >= w.opts.MaxBatchPoints {
		w.cutLocked()
	}
	return nil
}

func appendFloat(b []byte, v float64) ([]byte, error) {
	f, err := server.Float(v).MarshalJSON()
	return append(b, f...), err
}

// appendString appends s (valid UTF-8) as a JSON string.
func appendString(b []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// cutLocked hands the open batch to the sender, blocking while the queue
// is full (backpressure: w.mu stays held, so other writers wait too).
func (w *Writer) cutLocked() {
	if w.mu.n == 0 {
		return
	}
	w.mu.seq++
	id := w.prefix + "-" + strconv.FormatUint(w.mu.seq, 10)
	body := make([]byte, 0, len(w.mu.buf)+len(id)+32)
	body = append(body, `{"batch_id":"`...)
	body = append(body, id...)
	body = append(body, `","points":[`...)
	body = append(body, w.mu.buf...)
	body = append(body, "]}"...)
	w.queue <- &item{id: id, body: body, n: w.mu.n}
	w.mu.buf = w.mu.buf[:0]
	w.mu.n = 0
}

// Sync sends every point written before it and returns once the server
// has acknowledged them all (the server acknowledges only durable points).
// It returns the errors of batches that failed since the last Sync:
// points the server refused (invalid), or batches dropped after RetryFor.
func (w *Writer) Sync() error {
	w.mu.Lock()
	if w.mu.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.cutLocked()
	done := make(chan error, 1)
	w.queue <- &item{done: done}
	w.mu.Unlock()
	return <-done
}

// Close sends every point written before it, waits for the server's
// acknowledgement (as Sync, whose errors it returns), then stops the
// Writer. Every call after it returns ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.mu.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.cutLocked()
	done := make(chan error, 1)
	w.queue <- &item{done: done}
	w.mu.closed = true
	close(w.queue)
	w.mu.Unlock()
	err := <-done
	close(w.stop)
	w.wg.Wait()
	return err
}

// flusher cuts the open batch every FlushEvery.
func (w *Writer) flusher() {
	defer w.wg.Done()
	t := time.NewTicker(w.opts.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.mu.Lock()
			if !w.mu.closed && w.mu.n > 0 && len(w.queue) < cap(w.queue) {
				w.cutLocked()
			}
			w.mu.Unlock()
		}
	}
}

// sender sends the batches one after the other, with retries.
func (w *Writer) sender() {
	defer w.wg.Done()
	for it := range w.queue {
		if it.done != nil {
			w.errMu.Lock()
			err := errors.Join(w.errs...)
			w.errs = nil
			w.errMu.Unlock()
			it.done <- err
			continue
		}
		if err := w.send(it); err != nil {
			w.errMu.Lock()
			if len(w.errs) < 10 {
				w.errs = append(w.errs, err)
			}
			w.errMu.Unlock()
			if w.opts.OnError != nil {
				w.opts.OnError(err)
			}
		}
	}
}

// send delivers one batch, retrying transient failures (network errors,
// 408, 429, 5xx) with backoff for RetryFor. The batch id makes a retry of
// a batch the server did write harmless.
func (w *Writer) send(it *item) error {
	start := time.Now()
	backoff := w.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		retry, err := w.post(it)
		if err == nil || !retry {
			return err
		}
		if time.Since(start)+backoff > w.opts.RetryFor {
			return fmt.Errorf("client: batch %s (%d points) dropped after %d attempts over %v: %w", it.id, it.n, attempt, time.Since(start).Round(time.Millisecond), err)
		}
		jitter := time.Duration(int64(backoff) / 4 * int64(time.Now().UnixNano()%4) / 4)
		time.Sleep(backoff + jitter)
		backoff = min(backoff*2, w.opts.MaxBackoff)
	}
}

func (w *Writer) post(it *item) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url+"/em/v1/ingest", bytes.NewReader(it.body))
	if err != nil {
		return false, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(server.BatchIDHeader, it.id)
	if w.opts.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+w.opts.BearerToken)
	}
	resp, err := w.opts.HTTPClient.Do(req)
	if err != nil {
		return true, fmt.Errorf("client: send batch %s: %w", it.id, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return true, fmt.Errorf("client: read answer to batch %s: %w", it.id, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnprocessableEntity:
		var ir server.IngestResponse
		if err := json.Unmarshal(body, &ir); err != nil {
			return false, fmt.Errorf("client: batch %s: malformed answer: %v", it.id, err)
		}
		if ir.Rejected > 0 {
			msgs := make([]string, 0, 3)
			for _, e := range ir.Errors[:min(3, len(ir.Errors))] {
				msgs = append(msgs, e.Error)
			}
			return false, fmt.Errorf("client: batch %s: server rejected %d of %d points: %s", it.id, ir.Rejected, it.n, strings.Join(msgs, "; "))
		}
		return false, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("client: batch %s: server answered %s: %s", it.id, resp.Status, bytes.TrimSpace(body))
	default:
		return false, fmt.Errorf("client: batch %s: server answered %s: %s", it.id, resp.Status, bytes.TrimSpace(body))
	}
}

// Query runs a native query (server.QueryRequest) on the server at
// baseURL.
func Query(ctx context.Context, baseURL, token string, req *server.QueryRequest) (*server.QueryResponse, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/em/v1/query", bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("client: query: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("client: query: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e server.ErrorResponse
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("client: query: %s: %s", resp.Status, e.Error)
		}
		return nil, fmt.Errorf("client: query: %s", resp.Status)
	}
	var qr server.QueryResponse
	if err := json.Unmarshal(body, &qr); err != nil {
		return nil, fmt.Errorf("client: query: malformed answer: %w", err)
	}
	return &qr, nil
}
