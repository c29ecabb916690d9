package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/server"
)

// testServer is a Server over a DB in a temporary directory, serving on
// 127.0.0.1.
type testServer struct {
	t    testing.TB
	dir  string
	db   *engine.DB
	srv  *server.Server
	url  string
	addr string
	done chan error
	hc   *http.Client
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startServer(t testing.TB, dir string, opts server.Options) *testServer {
	t.Helper()
	return startServerAt(t, dir, "127.0.0.1:0", opts)
}

func startServerAt(t testing.TB, dir, addr string, opts server.Options, setup ...func(*server.Server) error) *testServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := engine.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	srv := server.New(db, opts)
	if err := srv.Err(); err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		if err := f(srv); err != nil {
			db.Close()
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	ts := &testServer{t: t, dir: dir, db: db, srv: srv, addr: ln.Addr().String(), url: "http://" + ln.Addr().String(), done: make(chan error, 1),
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}}
	go func() { ts.done <- srv.Serve(ln) }()
	t.Cleanup(ts.stop)
	return ts
}

// stop shuts the server down and closes the DB (idempotent).
func (ts *testServer) stop() {
	if ts.db == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		ts.t.Errorf("shutdown: %v", err)
	}
	if err := <-ts.done; err != nil {
		ts.t.Errorf("serve: %v", err)
	}
	if err := ts.db.Close(); err != nil {
		ts.t.Errorf("close: %v", err)
	}
	ts.hc.CloseIdleConnections()
	ts.db = nil
}

// do sends a request and returns the status and body.
func (ts *testServer) do(method, path string, body []byte, hdr map[string]string) (int, []byte) {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.url+path, bytes.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := ts.hc.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (ts *testServer) ingest(req any, hdr map[string]string) (int, server.IngestResponse) {
	ts.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	code, body := ts.do("POST", "/em/v1/ingest", b, hdr)
	var resp server.IngestResponse
	if code == 200 || code == 422 {
		if err := json.Unmarshal(body, &resp); err != nil {
			ts.t.Fatalf("answer %s: %v", body, err)
		}
	}
	return code, resp
}

func (ts *testServer) query(req server.QueryRequest) server.QueryResponse {
	ts.t.Helper()
	b, _ := json.Marshal(req)
	code, body := ts.do("POST", "/em/v1/query", b, nil)
	if code != 200 {
		ts.t.Fatalf("query %+v: %d %s", req, code, body)
	}
	var resp server.QueryResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		ts.t.Fatal(err)
	}
	return resp
}

func (ts *testServer) count(name string) float64 {
	ts.t.Helper()
	r := ts.query(server.QueryRequest{Name: name, Op: "aggregate", Aggs: []string{"count"}})
	return float64(r.Values[0])
}

func pt(name string, v float64, ts int64, ls map[string]string) json.RawMessage {
	p := server.Point{Name: name, Labels: ls}
	f := server.Float(v)
	p.Value = &f
	if ts != 0 {
		t := server.Time(ts)
		p.Timestamp = &t
	}
	b, _ := json.Marshal(p)
	return b
}
