package expose_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/expose"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/metrics"
)

// TestPromtoolCheckMetrics feeds the text exposition of a registry using
// every type, with hostile label values, to the real promtool.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := testutil.Binary(t, "promtool", "prometheus")
	var buf bytes.Buffer
	if err := expose.WriteText(&buf, fullRegistry(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\ninput:\n%s", err, out, buf.Bytes())
	}
	// promtool must also reject a broken exposition (the check can fail).
	bad := strings.Replace(buf.String(), `path="two\nlines"`, "path=\"two\nlines\"", 1)
	if bad == buf.String() {
		t.Fatal("test input lacks the escaped newline")
	}
	cmd = exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(bad)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("promtool accepted a raw newline in a label value:\n%s", out)
	}
}

// TestPrometheusScrape starts a real Prometheus server on 127.0.0.1 that
// scrapes the handler every second (OpenMetrics, as Prometheus asks for
// it) and checks the values through Prometheus' query API.
func TestPrometheusScrape(t *testing.T) {
	testutil.Binary(t, "prometheus", "prometheus")
	r := fullRegistry(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var formats struct {
		ch chan string
	}
	formats.ch = make(chan string, 1000)
	h := expose.Handler(r, nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.ServeHTTP(w, req)
		select {
		case formats.ch <- w.Header().Get("Content-Type"):
		default:
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	prom := testutil.StartPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: eventmetrics
    static_configs:
      - targets: ['%s']
`, ln.Addr().String()))
	queryAPI := func(q string) ([]testutil.Sample, error) { return prom.Query(q, time.Now()) }
	// Wait (bounded) until the counters of every label value are in.
	var res []testutil.Sample
	prom.Wait("a scrape", 30*time.Second, func() (bool, error) {
		var err error
		res, err = queryAPI(`app_http_requests_total`)
		return err == nil && len(res) == len(weird), err
	})
	for _, s := range res {
		idx := -1
		for i, w := range weird {
			if s.Metric["path"] == w {
				idx = i
			}
		}
		if idx < 0 {
			t.Fatalf("label value changed on the way: %q", s.Metric["path"])
		}
		if s.Value != strconv.Itoa(idx+1) || s.Metric["instance_name"] != "it's \"me\"\\" || s.Metric["method"] != "GET" {
			t.Fatalf("sample %v, want value %d", s, idx+1)
		}
	}
	checks := map[string]string{
		`app_queue_depth{queue="two\nlines"}`:                                  "30",
		`app_http_request_duration_seconds_bucket{path="C:\\path\\",le="0.5"}`: "1",
		`app_http_request_duration_seconds_count{path="C:\\path\\"}`:           "3",
		`app_http_request_duration_seconds_sum{path="C:\\path\\"}`:             "3.75",
		`app_response_size_bytes{path="say \"hi\"",quantile="0.99"}`:           "298",
		`app_response_size_bytes_count{path="say \"hi\""}`:                     "2",
		`app_up`:                                "1",
		`app_build_info{version=~"v1.2.3\n.*"}`: "1",
	}
	for q, want := range checks {
		res, err := queryAPI(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || res[0].Value != want {
			t.Errorf("%s = %v, want %s", q, res, want)
		}
	}
	// Prometheus asked for, and got, OpenMetrics.
	ct := <-formats.ch
	if !strings.HasPrefix(ct, "application/openmetrics-text; version=1.0.0") {
		t.Errorf("Prometheus was served %q", ct)
	}
	// Updates reach Prometheus on the next scrapes.
	metrics.Must(metrics.Must(r.CounterVec(metrics.Opts{Name: "late.arrival", Labels: []string{"k"}})).WithValues("v")).Add(41.5)
	prom.Wait("the update scraped", 30*time.Second, func() (bool, error) {
		res, err := queryAPI(`app_late_arrival_total{k="v"}`)
		return err == nil && len(res) == 1 && res[0].Value == "41.5", err
	})
}
