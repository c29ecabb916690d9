package dashboard_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/dashboard"
	"github.com/eventmetrics/eventmetrics/engine"
)

// fixtureNow is the store's clock in the tests: "the last hour" is the hour
// before it.
var fixtureNow = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

// The fixture's series. Every point lies in the last hour before
// fixtureNow, except the one "old" point of latency, a day earlier.
const (
	latency     = "http_request_duration_seconds"
	queue       = "queue_depth"
	errorsTotal = "errors_total"

	latencyPoints = 120 // per series, 3 series
	queuePoints   = 60
)

// openFixture opens a store in a temporary folder, fills it with known
// data, and returns it; it is closed when the test ends.
func openFixture(t testing.TB) *engine.DB {
	t.Helper()
	db, err := engine.Open(t.TempDir(), &engine.Options{
		Now:                    func() time.Time { return fixtureNow },
		NoBackgroundCompaction: true,
		Sync:                   engine.SyncNever,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			t.Error(err)
		}
	})
	start := fixtureNow.Add(-time.Hour)
	routes := []engine.Labels{
		{"route": "/api", "method": "GET"},
		{"route": "/api", "method": "POST"},
		{"route": "/home", "method": "GET"},
	}
	for k, ls := range routes {
		for i := range latencyPoints {
			ts := start.Add(time.Duration(i+1) * 29 * time.Second)
			v := 0.05*float64(k+1) + 0.01*float64(i%20) + 0.002*float64(i)
			if err := db.ObserveAt(ts, latency, v, ls); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One old point, outside the last hour.
	if err := db.ObserveAt(fixtureNow.Add(-24*time.Hour), latency, 99, routes[0]); err != nil {
		t.Fatal(err)
	}
	for i := range queuePoints {
		ts := start.Add(time.Duration(i+1) * 59 * time.Second)
		v := float64(i % 7)
		if i == 30 {
			v = math.NaN()
		}
		if err := db.ObserveAt(ts, queue, v, nil); err != nil {
			t.Fatal(err)
		}
	}
	for s := range 4 {
		ls := engine.Labels{"service": fmt.Sprintf("svc-%d", s), "zone": []string{"a", "b"}[s%2]}
		for i := range 10 {
			ts := start.Add(time.Duration(i+1) * 5 * time.Minute)
			if err := db.ObserveAt(ts, errorsTotal, float64(i*(s+1)), ls); err != nil {
				t.Fatal(err)
			}
		}
	}
	return db
}

// serve starts the dashboard over db on 127.0.0.1.
func serve(t testing.TB, db *engine.DB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(dashboard.New(db))
	t.Cleanup(srv.Close)
	return srv
}

// get requests path with the query values, and decodes the JSON answer
// into out (when not nil). It returns the status and the raw body.
func get(t testing.TB, srv *httptest.Server, path string, q url.Values, out any) (int, []byte) {
	t.Helper()
	u := srv.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); path != "/" && ct != "application/json; charset=utf-8" && resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: content type %q, want JSON", u, ct)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: decode %s: %v", u, body, err)
		}
	}
	return resp.StatusCode, body
}
