package testutil

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
	"sync"
	"testing"
	"time"
)

// Tests against real servers and clients (Prometheus, promtool,
// VictoriaMetrics, Chromium, from Debian's packages) skip when the binary
// is missing on a developer's machine, and fail instead when
// EVENTMETRICS_REQUIRE_SERVERS=1 (.ci/run sets it after installing them).

// RequireServers reports whether a missing server binary fails the test.
func RequireServers() bool { return os.Getenv("EVENTMETRICS_REQUIRE_SERVERS") == "1" }

// Binary returns the path of name in PATH, or skips the test (fails it
// when RequireServers); pkg is the Debian package that provides it.
func Binary(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if RequireServers() {
			t.Fatalf("%s is required (EVENTMETRICS_REQUIRE_SERVERS=1; apt-get install %s): %v", name, pkg, err)
		}
		t.Skipf("%s not installed (apt-get install %s): %v", name, pkg, err)
	}
	return p
}

// FreePort returns a TCP port of 127.0.0.1 free right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Prometheus is a real Prometheus server run by a test on 127.0.0.1 with
// a fresh data directory; it is killed when the test ends, and its log is
// printed if the test failed.
type Prometheus struct {
	URL    string // http://127.0.0.1:port
	t      testing.TB
	exited chan error
	client *http.Client
}

// StartPrometheus runs the prometheus binary with config (YAML) and extra
// flags; it skips or fails the test as Binary does when it is missing.
func StartPrometheus(t testing.TB, config string, flags ...string) *Prometheus {
	t.Helper()
	bin := Binary(t, "prometheus", "prometheus")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	args := append([]string{"--config.file=" + cfgPath, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(port)}, flags...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr, cmd.Dir = &logs, &logs, dir
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &Prometheus{URL: "http://127.0.0.1:" + strconv.Itoa(port), t: t, exited: make(chan error, 1), client: &http.Client{Timeout: 5 * time.Second}}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		cancel()
		p.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	return p
}

// Sample is one element of an instant query's result.
type Sample struct {
	Metric map[string]string
	Value  string // as Prometheus formats it
}

// Query runs the instant query q at time at through the Prometheus HTTP
// API at base (this server's, or any compatible one).
func Query(c *http.Client, base, q string, at time.Time) ([]Sample, error) {
	u := fmt.Sprintf("%s/api/v1/query?query=%s&time=%.3f", base, url.QueryEscape(q), float64(at.UnixMilli())/1000)
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("%v: %s", err, body)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("%s: %s", q, out.Error)
	}
	res := make([]Sample, len(out.Data.Result))
	for i, r := range out.Data.Result {
		res[i] = Sample{Metric: r.Metric, Value: fmt.Sprint(r.Value[1])}
	}
	return res, nil
}

// Query runs an instant query on this Prometheus.
func (p *Prometheus) Query(q string, at time.Time) ([]Sample, error) {
	return Query(p.client, p.URL, q, at)
}

// Wait polls ok every 250 ms until it returns true, for at most limit; it
// fails the test on timeout (with ok's last error) or if Prometheus exits.
func (p *Prometheus) Wait(what string, limit time.Duration, ok func() (bool, error)) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-p.exited:
			p.exited <- err
			p.t.Fatalf("%s: prometheus exited: %v", what, err)
		default:
		}
		done, err := ok()
		if done {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: not within %v (last error: %v)", what, limit, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// lockedBuffer collects a child's output; it may be read while written.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
