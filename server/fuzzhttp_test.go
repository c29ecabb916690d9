package server_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/klauspost/compress/snappy"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/server"
)

// FuzzWriteBodies posts arbitrary bytes to every write endpoint (remote
// write both as snappy of the bytes and as the bytes themselves, text and
// OpenMetrics, JSON): every answer is a 2xx or a 4xx, never a panic or a
// 5xx, and the server still answers afterwards.
func FuzzWriteBodies(f *testing.F) {
	f.Add([]byte(`{"points":[{"name":"m","value":1}]}`))
	f.Add([]byte("m{a=\"b\"} 1 1700000000000\n# EOF\n"))
	f.Add(remoteWriteBody(f, 2, 2, 1))
	f.Add([]byte("\x0a\x05\x0a\x03\x0a\x01a"))
	db, err := engine.Open(f.TempDir(), &engine.Options{Sync: engine.SyncNever})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	srv := server.New(db, server.Options{Logger: quietLogger(), MaxDecodedBytes: 1 << 20, MaxBodyBytes: 1 << 20})
	post := func(t *testing.T, path string, body []byte, hdr ...string) {
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body.Bytes())
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		post(t, "/api/v1/write", snappy.Encode(nil, b))
		post(t, "/api/v1/write", b)
		post(t, "/em/v1/import", b)
		post(t, "/em/v1/import", b, "Content-Type", "application/openmetrics-text")
		post(t, "/em/v1/ingest", b)
		post(t, "/em/v1/ingest", b, "Content-Encoding", "gzip")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", "/em/v1/health", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("health after fuzzed writes: %d", rec.Code)
		}
	})
}
