package expose_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/expose"
	"github.com/eventmetrics/eventmetrics/metrics"
)

// binary returns the path of a server binary, skipping the test when it
// is missing unless EVENTMETRICS_REQUIRE_SERVERS=1 (CI), which fails it.
func binary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("EVENTMETRICS_REQUIRE_SERVERS") == "1" {
			t.Fatalf("%s not in PATH and EVENTMETRICS_REQUIRE_SERVERS=1 (apt-get install prometheus)", name)
		}
		t.Skipf("%s not in PATH (apt-get install prometheus)", name)
	}
	return p
}

// TestPromtoolCheckMetrics feeds the text exposition of a registry using
// every type, with hostile label values, to the real promtool.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := binary(t, "promtool")
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestPrometheusScrape starts a real Prometheus server on 127.0.0.1 that
// scrapes the handler every second (OpenMetrics, as Prometheus asks for
// it) and checks the values through Prometheus' query API.
func TestPrometheusScrape(t *testing.T) {
	prom := binary(t, "prometheus")
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

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: eventmetrics
    static_configs:
      - targets: ['%s']
`, ln.Addr().String())
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, prom,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
	)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1/query", port)
	type sample struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	queryAPI := func(q string) ([]sample, error) {
		resp, err := client.Get(api + "?query=" + url.QueryEscape(q))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var out struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []sample `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, fmt.Errorf("%v: %s", err, body)
		}
		if out.Status != "success" {
			return nil, fmt.Errorf("query %s: %s", q, out.Error)
		}
		return out.Data.Result, nil
	}
	// Wait (bounded) until the counters of every label value are in.
	deadline := time.Now().Add(30 * time.Second)
	var res []sample
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("prometheus exited: %v", err)
		default:
		}
		res, err = queryAPI(`app_http_requests_total`)
		if err == nil && len(res) == len(weird) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scrape in 30 s: %d results, %v", len(res), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
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
		if s.Value[1] != strconv.Itoa(idx+1) || s.Metric["instance_name"] != "it's \"me\"\\" || s.Metric["method"] != "GET" {
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
		if len(res) != 1 || res[0].Value[1] != want {
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
	deadline = time.Now().Add(30 * time.Second)
	for {
		res, err := queryAPI(`app_late_arrival_total{k="v"}`)
		if err == nil && len(res) == 1 && res[0].Value[1] == "41.5" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("update not scraped: %v %v", res, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
