package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// TestServeRemoteWrite: `serve --remote-write URL` streams what it stores
// to a remote-write receiver (here a recording one on 127.0.0.1), and the
// sender's state shows on /metrics.
func TestServeRemoteWrite(t *testing.T) {
	var mu sync.Mutex
	got := map[float64]int{} // value -> samples received
	var names []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		raw, err := snappy.Decode(nil, body)
		var req prompb.WriteRequest
		if err == nil {
			err = req.Unmarshal(raw)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, ts := range req.Timeseries {
			for _, l := range ts.Labels {
				if l.Name == "__name__" && l.Value != "rw_test" {
					names = append(names, l.Value)
				}
			}
			for _, s := range ts.Samples {
				got[s.Value]++
			}
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	addr := freeAddr(t)
	cmd, out := child(t, nil, "serve", "--data", t.TempDir(), "--listen", addr, "--remote-write", recv.URL+"/api/v1/write")
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/em/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	const n = 500
	var pts []string
	now := time.Now().UnixNano()
	for i := 0; i < n; i++ {
		pts = append(pts, fmt.Sprintf(`{"name":"rw_test","labels":{"k":"v%d"},"value":%d,"timestamp":%d}`, i%7, i, now+int64(i)*1e6))
	}
	resp, err := http.Post("http://"+addr+"/em/v1/ingest", "application/json", strings.NewReader(`{"batch_id":"test-batch-1","points":[`+strings.Join(pts, ",")+`]}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("ingest: %v %v", err, resp)
	}
	resp.Body.Close()
	deadline = time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		k := 0
		for i := 0; i < n; i++ {
			if got[float64(i)] > 0 {
				k++
			}
		}
		mu.Unlock()
		if k == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver has %d of the %d points after 30 s\n%s", k, n, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	if len(names) > 0 {
		t.Errorf("series other than the stored metric were sent (the server's bookkeeping must stay home): %v", names)
	}
	mu.Unlock()
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte("eventmetrics_remote_samples_sent_total")) || !bytes.Contains(metrics, []byte("eventmetrics_server_points_accepted_total")) {
		t.Fatalf("/metrics lacks the sender's or the server's state:\n%s", metrics)
	}
	stopServe(t, cmd)
}
