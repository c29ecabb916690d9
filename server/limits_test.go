package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"

	"github.com/eventmetrics/eventmetrics/server"
)

// TestBadRequests sends malformed, oversized, slow and tricky requests:
// each gets a 4xx (or the connection is cut, for slow clients), and the
// server keeps serving.
func TestBadRequests(t *testing.T) {
	ts := startServer(t, "", server.Options{
		MaxBodyBytes:        64 << 10,
		MaxDecodedBytes:     256 << 10,
		MaxPointsPerRequest: 1000,
		MaxSeriesPerRequest: 10,
		MaxHeaderBytes:      4 << 10,
		MaxConcurrentWrites: 1,
		ReadHeaderTimeout:   300 * time.Millisecond,
		ReadTimeout:         4 * time.Second,
	})
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	manyPoints := func(n, series int) []byte {
		pts := make([]json.RawMessage, n)
		for i := range pts {
			pts[i] = pt("m", 1, int64(i+1), map[string]string{"s": fmt.Sprint(i % series)})
		}
		b, _ := json.Marshal(map[string]any{"points": pts})
		return b
	}
	// A snappy header announcing 1 GiB, and a gzip bomb of zeros.
	var bomb []byte
	bomb = binary.AppendUvarint(bomb, 1<<30)
	bomb = append(bomb, make([]byte, 100)...)
	zeros := gz(make([]byte, 8<<20))

	cases := []struct {
		name, method, path string
		body               []byte
		hdr                map[string]string
		want               int
		msg                string
	}{
		{"malformed JSON", "POST", "/em/v1/ingest", []byte(`{"points":[`), nil, 400, "malformed JSON"},
		{"JSON of the wrong shape", "POST", "/em/v1/ingest", []byte(`{"points":{}}`), nil, 400, "malformed JSON"},
		{"too many points", "POST", "/em/v1/ingest", manyPoints(1001, 1), nil, 413, "more than 1000 points"},
		{"too many series", "POST", "/em/v1/ingest", manyPoints(11, 11), nil, 413, "more than 10 distinct series"},
		{"body too large", "POST", "/em/v1/ingest", bytes.Repeat([]byte(" "), 65<<10), nil, 413, "larger than"},
		{"unknown encoding", "POST", "/em/v1/ingest", []byte(`{}`), map[string]string{"Content-Encoding": "br"}, 415, "Content-Encoding"},
		{"bad gzip", "POST", "/em/v1/ingest", []byte("not gzip"), map[string]string{"Content-Encoding": "gzip"}, 400, "gzip"},
		{"gzip bomb", "POST", "/em/v1/ingest", zeros, map[string]string{"Content-Encoding": "gzip"}, 413, "decompressed"},
		{"bad snappy", "POST", "/api/v1/write", []byte("\xff\xff\xff\xff\xff\xff"), rwHeaders, 400, "snappy"},
		{"snappy bomb", "POST", "/api/v1/write", bomb, rwHeaders, 413, "decompressed"},
		{"bad protobuf", "POST", "/api/v1/write", snappy.Encode(nil, []byte("\x0a\xff\xff\xff\xff\x0f")), rwHeaders, 400, "protobuf"},
		{"remote write, too many series", "POST", "/api/v1/write", remoteWriteBody(t, 11, 1, 1), rwHeaders, 413, "11 series"},
		{"remote write, too many samples", "POST", "/api/v1/write", remoteWriteBody(t, 2, 501, 1), rwHeaders, 413, "1002 samples"},
		{"bad text", "POST", "/em/v1/import", []byte("a{b=\"c\" 1\n"), nil, 400, "parse"},
		{"native histogram text", "POST", "/em/v1/import", []byte("# TYPE h histogram\nh{} {count:1,sum:1}\n"), nil, 400, ""},
		{"long batch id", "POST", "/em/v1/ingest", []byte(`{"points":[]}`), map[string]string{server.BatchIDHeader: strings.Repeat("x", 300)}, 400, "batch id"},
		{"wrong method", "GET", "/em/v1/ingest", nil, nil, 405, ""},
		{"unknown path", "GET", "/em/v1/nothing", nil, nil, 404, ""},
		{"path escaping the API", "GET", "/em/v1/../../../etc/passwd", nil, nil, 404, ""},
		{"encoded dots", "GET", "/em/v1/%2e%2e/%2e%2e/etc/passwd", nil, nil, 404, ""},
		{"query: malformed", "POST", "/em/v1/query", []byte(`{"name":`), nil, 400, "malformed query"},
		{"query: unknown field", "POST", "/em/v1/query", []byte(`{"name":"m","op":"points","fro":1}`), nil, 400, "unknown field"},
		{"query: unknown op", "POST", "/em/v1/query", []byte(`{"name":"m","op":"median"}`), nil, 400, "unknown op"},
		{"query: bad regexp", "POST", "/em/v1/query", []byte(`{"name":"m","op":"points","matchers":[{"label":"a","op":"=~","value":"("}]}`), nil, 400, "matcher 0"},
		{"query: bad aggregation", "POST", "/em/v1/query", []byte(`{"name":"m","op":"aggregate","aggs":["avg"]}`), nil, 400, "unknown aggregation"},
		{"query: bad percentile", "POST", "/em/v1/query", []byte(`{"name":"m","op":"percentiles","percentiles":[101]}`), nil, 400, "percentile"},
		{"query: bad step", "POST", "/em/v1/query", []byte(`{"name":"m","op":"aggregate","aggs":["count"],"step":"-1m"}`), nil, 400, "step"},
		{"query: bad time", "POST", "/em/v1/query", []byte(`{"name":"m","op":"points","from":"yesterday"}`), nil, 400, "RFC 3339"},
		{"query: nothing selected", "POST", "/em/v1/query", []byte(`{"op":"points"}`), nil, 400, "needs a name"},
		{"query: body too large", "POST", "/em/v1/query", bytes.Repeat([]byte(" "), 2<<20), nil, 413, ""},
		{"series: bad matcher", "GET", "/em/v1/series?name=m&match=nonsense", nil, nil, 400, "matcher"},
		{"series: bad limit", "GET", "/em/v1/series?name=m&limit=-1", nil, nil, 400, "limit"},
		{"label_values: no label", "GET", "/em/v1/label_values", nil, nil, 400, "label"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := ts.do(c.method, c.path, c.body, c.hdr)
			if code != c.want || !strings.Contains(string(body), c.msg) {
				t.Errorf("got %d %.200s, want %d with %q", code, body, c.want, c.msg)
			}
			if code >= 400 && code < 500 && c.want != 404 && c.want != 405 && !strings.HasPrefix(string(body), `{"error":`) {
				t.Errorf("error body is not JSON: %.200s", body)
			}
		})
	}

	// Headers too large: 431.
	code, _ := ts.do("GET", "/em/v1/health", nil, map[string]string{"X-Big": strings.Repeat("a", 16<<10)}) // Go allows 4 KiB of slack
	if code != 431 {
		t.Errorf("large header: %d, want 431", code)
	}

	// Slow clients: one that never finishes its headers and one that never
	// finishes its body are cut off by the timeouts, while others are served.
	slowHeader, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slowHeader.Close()
	fmt.Fprintf(slowHeader, "POST /em/v1/ingest HTTP/1.1\r\nHost: x\r\n")
	slowBody, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slowBody.Close()
	fmt.Fprintf(slowBody, "POST /em/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"points\":[")
	if code, _ := ts.do("GET", "/em/v1/health", nil, nil); code != 200 {
		t.Errorf("health beside slow clients: %d", code)
	}
	// A body arriving slowly holds no write slot: with one slot, another
	// client's write goes through at once.
	start := time.Now()
	if code, resp := ts.ingest(map[string]any{"points": []json.RawMessage{pt("beside", 1, 0, nil)}}, nil); code != 200 || resp.Accepted != 1 {
		t.Errorf("write beside a slow body: %d %+v", code, resp)
	}
	if d := time.Since(start); d > 2*time.Second { // the slow body holds its connection for 4 s

		t.Errorf("write beside a slow body took %v", d)
	}
	for name, c := range map[string]net.Conn{"header": slowHeader, "body": slowBody} {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		start := time.Now()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("slow %s: answered %d %s", name, resp.StatusCode, b)
			}
		}
		if waited := time.Since(start); waited > 10*time.Second {
			t.Errorf("slow %s: connection held for %v past the timeouts", name, waited)
		}
	}

	// After all that, the server works and holds nothing from the bad requests.
	if code, resp := ts.ingest(map[string]any{"points": []json.RawMessage{pt("ok", 1, 0, nil)}}, nil); code != 200 || resp.Accepted != 1 {
		t.Fatalf("good write after bad ones: %d %+v", code, resp)
	}
	if n := ts.count("m"); n != 0 {
		t.Errorf("rejected requests wrote %v points", n)
	}
	st := ts.srv.Stats()
	if st.ClientErrors < uint64(len(cases)) || st.ServerErrors != 0 {
		t.Errorf("stats: %+v", st)
	}
}

func TestAuthAndCORS(t *testing.T) {
	ts := startServer(t, "", server.Options{BearerToken: "s3cret"})
	for _, h := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}, {"Authorization": "Basic czNjcmV0"}} {
		if code, _ := ts.do("GET", "/em/v1/health", nil, h); code != 401 {
			t.Errorf("%v: %d, want 401", h, code)
		}
	}
	code, _ := ts.do("GET", "/em/v1/health", nil, map[string]string{"Authorization": "Bearer s3cret"})
	if code != 200 {
		t.Errorf("right token: %d", code)
	}
	// Mounted handlers are behind the same auth.
	ts.srv.Handle("GET /extra", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "extra") }))
	if code, _ := ts.do("GET", "/extra", nil, nil); code != 401 {
		t.Errorf("mounted handler without token: %d", code)
	}
	if code, b := ts.do("GET", "/extra", nil, map[string]string{"Authorization": "Bearer s3cret"}); code != 200 || string(b) != "extra" {
		t.Errorf("mounted handler: %d %s", code, b)
	}

	// No CORS by default.
	req, _ := http.NewRequest("OPTIONS", ts.url+"/em/v1/query", nil)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := ts.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS header sent by default")
	}
	ts2 := startServer(t, "", server.Options{CORSOrigins: []string{"http://dash.local"}})
	for origin, want := range map[string]string{"http://dash.local": "http://dash.local", "http://evil.example": ""} {
		req, _ := http.NewRequest("OPTIONS", ts2.url+"/em/v1/query", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := ts2.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("origin %s: allowed %q, want %q", origin, got, want)
		}
	}
}
