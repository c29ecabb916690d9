package server_test

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

	"github.com/eventmetrics/eventmetrics/promapi"
	"github.com/eventmetrics/eventmetrics/server"
)

// TestPrometheusRemoteWriteAndScrape: a real Prometheus scrapes the
// server's /metrics every second and remote-writes what it scrapes into
// the server's /api/v1/write. The scrape works (the server's own metrics
// reach Prometheus), and the points arrive and count right: PromQL over
// eventmetrics (its Prometheus API) gives the same count_over_time as
// Prometheus over its own storage.
func TestPrometheusRemoteWriteAndScrape(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("EVENTMETRICS_REQUIRE_SERVERS") == "1" {
			t.Fatalf("prometheus is required (EVENTMETRICS_REQUIRE_SERVERS=1): %v", err)
		}
		t.Skipf("prometheus not installed (apt-get install prometheus): %v", err)
	}
	ts := startServerAt(t, "", "127.0.0.1:0", server.Options{}, func(s *server.Server) error { return s.MountAll(promapi.Options{}) })

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: eventmetrics
    static_configs:
      - targets: ['%s']
remote_write:
  - url: %s/api/v1/write
    queue_config:
      batch_send_deadline: 500ms
`, ts.addr, ts.url)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, prom, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr, cmd.Dir = &logs, &logs, dir
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
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	// instant runs a PromQL query at time at on the API at base and returns
	// the value of its single result ("" for none).
	instant := func(base, q string, at time.Time) (string, error) {
		u := fmt.Sprintf("%s/api/v1/query?query=%s&time=%.3f", base, url.QueryEscape(q), float64(at.UnixMilli())/1000)
		resp, err := hc.Get(u)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var out struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return "", fmt.Errorf("%v: %s", err, body)
		}
		if out.Status != "success" {
			return "", fmt.Errorf("%s: %s", q, out.Error)
		}
		if len(out.Data.Result) != 1 {
			return "", nil
		}
		return fmt.Sprint(out.Data.Result[0].Value[1]), nil
	}
	promAPI := "http://127.0.0.1:" + strconv.Itoa(port)
	wait := func(what string, ok func() (bool, error)) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			select {
			case err := <-exited:
				exited <- err
				t.Fatalf("prometheus exited: %v", err)
			default:
			}
			done, err := ok()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 45 s (last error: %v)", what, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// Five scrapes of our /metrics, and the server's counters seen there.
	wait("five scrapes", func() (bool, error) {
		v, err := instant(promAPI, `count_over_time(up{job="eventmetrics"}[10m])`, time.Now())
		n, _ := strconv.Atoi(v)
		return err == nil && n >= 5, err
	})
	wait("the server's own metrics in Prometheus", func() (bool, error) {
		v, err := instant(promAPI, `max(eventmetrics_server_points_accepted_total)`, time.Now())
		f, _ := strconv.ParseFloat(v, 64)
		return err == nil && f > 0, err // points remote-written into us, counted by us, scraped back
	})
	// Every `up` sample Prometheus scraped up to a moment reaches us, once.
	at := time.Now().Add(-2 * time.Second)
	q := `count_over_time(up{job="eventmetrics"}[10m])`
	theirs, err := instant(promAPI, q, at)
	if err != nil || theirs == "" {
		t.Fatalf("prometheus: %q %v", theirs, err)
	}
	var ours string
	wait("the remote-written samples", func() (bool, error) {
		var err error
		ours, err = instant(ts.url, q, at)
		return err == nil && ours == theirs, err
	})
	// And stay equal: nothing arrives twice later.
	time.Sleep(2 * time.Second)
	if again, err := instant(ts.url, q, at); err != nil || again != theirs {
		t.Fatalf("count over our data changed to %q (%v), Prometheus says %s", again, err, theirs)
	}
	t.Logf("count_over_time(up[10m]) at %v: Prometheus %s, eventmetrics %s", at.Format(time.TimeOnly), theirs, ours)
	if code, body := ts.do("GET", "/metrics", nil, nil); code != 200 || !strings.Contains(string(body), "eventmetrics_server_batches_accepted_total") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
}
