package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/eventmetrics/eventmetrics/client"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
	"github.com/eventmetrics/eventmetrics/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/cockroachdb/pebble/v2.(*ConcurrencyLimitScheduler).periodicGranter"))
}

type served struct {
	db   *engine.DB
	srv  *server.Server
	addr string
	done chan error
}

// serve runs a server over the store in dir on addr ("127.0.0.1:0" for
// any port).
func serve(t *testing.T, dir, addr string, opts server.Options) *served {
	t.Helper()
	db, err := engine.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &served{db: db, srv: server.New(db, opts), done: make(chan error, 1)}
	var ln net.Listener
	for i := 0; ; i++ { // the port of a server just stopped may take a moment
		if ln, err = net.Listen("tcp", addr); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go func() { s.done <- s.srv.Serve(ln) }()
	return s
}

func (s *served) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	if err := <-s.done; err != nil {
		t.Error(err)
	}
	if err := s.db.Close(); err != nil {
		t.Error(err)
	}
}

func count(t *testing.T, db *engine.DB, name string, ms ...query.Matcher) float64 {
	t.Helper()
	n, err := db.Query(name, ms...).Scalar(query.Count)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWriterIsTheEngineInterface(t *testing.T) {
	dir := t.TempDir()
	s := serve(t, dir, "127.0.0.1:0", server.Options{})
	defer s.stop(t)
	c, err := client.New("http://"+s.addr, &client.Options{MaxBatchPoints: 7})
	if err != nil {
		t.Fatal(err)
	}
	var w engine.Writer = c // the same calls as on an *engine.DB
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	for i := range 100 {
		if err := w.ObserveAt(t0.Add(time.Duration(i)), "lat", float64(i), engine.Labels{"svc": "a\"b\\c\n"}); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now()
	if err := w.Observe("now", 1, nil); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := w.Increment("reqs", 2, engine.Labels{"code": "200"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s.db, "lat", query.Eq("svc", "a\"b\\c\n")); n != 100 {
		t.Errorf("lat: %v points", n)
	}
	ts, vs, err := s.db.Query("lat").Points()
	if err != nil || ts[0] != t0.UnixNano() || vs[99] != 99 {
		t.Errorf("points: %v %v %v", ts[:1], vs[99:], err)
	}
	if ts, _ := s.db.Query("now").Timestamps(); len(ts) != 1 || ts[0] < before.UnixNano() {
		t.Errorf("Observe stamps now: %v", ts)
	}
	if v, _ := s.db.Query("reqs").Scalar(query.Last); v != 10 {
		t.Errorf("counter total %v, want 10", v)
	}
	// Bad input is refused at once where the client can tell.
	if err := w.Observe("", 1, nil); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("empty name: %v", err)
	}
	if err := w.Increment("reqs", -1, nil); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("negative increment: %v", err)
	}
	if err := w.Observe("x", 1, engine.Labels{"a": "\xff"}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("invalid UTF-8: %v", err)
	}
	// What only the server can tell comes back from Sync; the valid points
	// of the batch are kept.
	w.Observe("ok", 1, nil)
	w.Observe("bad", 1, engine.Labels{"a": "nul\x00"})
	if err := w.Sync(); err == nil || !strings.Contains(err.Error(), "rejected 1 of 2") {
		t.Errorf("Sync after an invalid point: %v", err)
	}
	if err := w.Sync(); err != nil {
		t.Errorf("errors are reported once: %v", err)
	}
	if n := count(t, s.db, "ok"); n != 1 {
		t.Errorf("valid point of a partly rejected batch: %v", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Observe("x", 1, nil); !errors.Is(err, client.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := w.Sync(); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Sync after Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, client.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// TestLostAcknowledgements: the server writes a batch but its answer is
// lost (a proxy answers 502 instead, or the connection drops); the client
// retries, and the point is stored once.
func TestLostAcknowledgements(t *testing.T) {
	dir := t.TempDir()
	s := serve(t, dir, "127.0.0.1:0", server.Options{})
	defer s.stop(t)
	var calls atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		s.srv.ServeHTTP(rec, r)
		switch calls.Add(1) % 3 {
		case 1:
			w.WriteHeader(http.StatusBadGateway) // written, but the client hears a failure
		case 2:
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close() // written, and the connection drops
		default:
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		}
	}))
	defer proxy.Close()
	c, err := client.New(proxy.URL, &client.Options{MaxBatchPoints: 10, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		c.ObserveAt(time.Unix(0, int64(i)), "m", float64(i), nil)
		if i%100 == 99 {
			if err := c.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	vs, err := s.db.Query("m").Values()
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1000 {
		t.Fatalf("%d points stored, want 1000", len(vs))
	}
	for i, v := range vs {
		if v != float64(i) {
			t.Fatalf("point %d is %v", i, v)
		}
	}
	if st := s.srv.Stats(); st.BatchesDeduplicated < 100 {
		t.Errorf("stats: %+v: the retries were not deduplicated", st)
	}
}

// TestServerRestart: writes go on while the server is down; the client
// retries until it is back, and nothing is lost or doubled.
func TestServerRestart(t *testing.T) {
	dir := t.TempDir()
	s := serve(t, dir, "127.0.0.1:0", server.Options{})
	addr := s.addr
	c, err := client.New("http://"+addr, &client.Options{MaxBatchPoints: 50, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				if err := c.ObserveAt(time.Unix(0, int64(i)), "m", float64(g*10000+i), engine.Labels{"g": string(rune('a' + g))}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	s.stop(t)
	time.Sleep(100 * time.Millisecond)
	s = serve(t, dir, addr, server.Options{})
	defer s.stop(t)
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s.db, "m"); n != 8000 {
		t.Errorf("%v points, want 8000", n)
	}
	if cnt, _ := s.db.Query("m").Step(time.Hour).BySeries().AggregateBy(query.Count); len(cnt) != 4 {
		t.Errorf("series: %d", len(cnt))
	}
}

// TestPermanentErrorsAreNotRetried: a 401 drops the batch at once, and Sync
// says why.
func TestPermanentErrorsAreNotRetried(t *testing.T) {
	s := serve(t, t.TempDir(), "127.0.0.1:0", server.Options{BearerToken: "t"})
	defer s.stop(t)
	var errs atomic.Int64
	c, _ := client.New("http://"+s.addr, &client.Options{BearerToken: "wrong", OnError: func(error) { errs.Add(1) }})
	c.Observe("m", 1, nil)
	start := time.Now()
	err := c.Sync()
	if err == nil || !strings.Contains(err.Error(), "401") || time.Since(start) > 5*time.Second {
		t.Errorf("Sync: %v after %v", err, time.Since(start))
	}
	if errs.Load() != 1 {
		t.Errorf("OnError called %d times", errs.Load())
	}
	c.Close()
	c, _ = client.New("http://"+s.addr, &client.Options{BearerToken: "t"})
	c.Observe("m", 1, nil)
	if err := c.Close(); err != nil {
		t.Errorf("right token: %v", err)
	}
	// Retries give up after RetryFor.
	c, _ = client.New("http://127.0.0.1:1", &client.Options{RetryFor: 100 * time.Millisecond, MinBackoff: 10 * time.Millisecond})
	c.Observe("m", 1, nil)
	if err := c.Close(); err == nil || !strings.Contains(err.Error(), "dropped after") {
		t.Errorf("unreachable server: %v", err)
	}
	if _, err := client.New("127.0.0.1:9470", nil); err == nil {
		t.Errorf("a URL without scheme was accepted")
	}
}

// TestBackpressure: with the server stalled, writers block once
// MaxPendingPoints are held, instead of growing memory.
func TestBackpressure(t *testing.T) {
	release := make(chan struct{})
	var got atomic.Int64
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.Copy(io.Discard, r.Body)
		got.Add(1)
		io.WriteString(w, `{"accepted":10,"rejected":0}`)
	}))
	defer stall.Close()
	c, _ := client.New(stall.URL, &client.Options{MaxBatchPoints: 10, MaxPendingPoints: 50})
	var written atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			if c.Observe("m", 1, nil) != nil {
				return
			}
			written.Add(1)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	if n := written.Load(); n > 100 || n < 40 {
		t.Errorf("%d points accepted while the server was stalled, want about 50-70", n)
	}
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writer still blocked after the server resumed")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 100 {
		t.Errorf("%d batches sent, want 100", got.Load())
	}
}
