package remote_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.uber.org/goleak"

	"github.com/eventmetrics/eventmetrics/engine"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/cockroachdb/pebble/v2.(*ConcurrencyLimitScheduler).periodicGranter"))
}

// sample is one received sample.
type sample struct {
	t int64
	v float64
}

// receiver is a remote-write endpoint for tests: it decodes requests,
// checks their framing, and keeps every sample per series (in arrival
// order). respond, when set, chooses the status of each request (0 =
// accept).
type receiver struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	series   map[string][]sample
	requests int
	headers  http.Header
	respond  func(n int) (status int, retryAfter string)
	block    chan struct{} // when non-nil, requests wait for it to close
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, series: make(map[string][]sample)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/api/v1/write" }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	block := r.block
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-req.Context().Done():
			return
		}
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if req.Header.Get("Content-Encoding") != "snappy" || req.Header.Get("Content-Type") != "application/x-protobuf" ||
		req.Header.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" {
		r.t.Errorf("bad headers: %v", req.Header)
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		r.t.Errorf("not snappy: %v", err)
		http.Error(w, err.Error(), 400)
		return
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		r.t.Errorf("not a WriteRequest: %v", err)
		http.Error(w, err.Error(), 400)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.headers = req.Header.Clone()
	if r.respond != nil {
		if st, ra := r.respond(r.requests); st != 0 {
			if ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			http.Error(w, "test says no", st)
			return
		}
	}
	for _, ts := range wr.Timeseries {
		var parts []string
		for i, l := range ts.Labels {
			if i > 0 && ts.Labels[i-1].Name >= l.Name {
				r.t.Errorf("labels not sorted: %v", ts.Labels)
			}
			parts = append(parts, l.Name+"="+l.Value)
		}
		key := strings.Join(parts, ",")
		for _, s := range ts.Samples {
			r.series[key] = append(r.series[key], sample{s.Timestamp, s.Value})
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// snapshot returns a copy of the received samples.
func (r *receiver) snapshot() map[string][]sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]sample, len(r.series))
	for k, v := range r.series {
		out[k] = append([]sample(nil), v...)
	}
	return out
}

func (r *receiver) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.series {
		n += len(v)
	}
	return n
}

// waitFor polls cond every 10ms for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openDB(t testing.TB, dir string) *engine.DB {
	t.Helper()
	db, err := engine.Open(dir, &engine.Options{Sync: engine.SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func keys(m map[string][]sample) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
