package remote_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/internal/testutil"
)

// server is a real remote-write receiver (VictoriaMetrics or Prometheus)
// run by a test on 127.0.0.1, with a data directory that survives a
// restart.
type server struct {
	t    testing.TB
	kind string // "victoria-metrics" or "prometheus"
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
	logs   bytes.Buffer
	client *http.Client
}

func startServer(t testing.TB, kind string) *server {
	s := &server{t: t, kind: kind, bin: testutil.Binary(t, kind, kind), dir: t.TempDir(), port: testutil.FreePort(t), client: &http.Client{Timeout: 10 * time.Second}}
	if kind == "prometheus" {
		// Resent samples after a restart of the sender are older than
		// what the head holds: accepted only within the out-of-order window.
		cfg := "global:\n  scrape_interval: 1h\nstorage:\n  tsdb:\n    out_of_order_time_window: 2h\n"
		if err := os.WriteFile(filepath.Join(s.dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		s.stop()
		s.client.CloseIdleConnections()
		if t.Failed() {
			s.mu.Lock()
			t.Logf("%s log (tail):\n%s", kind, tail(s.logs.String(), 4000))
			s.mu.Unlock()
		}
	})
	s.start()
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// start (re)starts the server on its port and data directory.
func (s *server) start() {
	t := s.t
	var args []string
	switch s.kind {
	case "victoria-metrics":
		args = []string{"-storageDataPath=" + filepath.Join(s.dir, "data"), "-httpListenAddr=127.0.0.1:" + strconv.Itoa(s.port),
			"-dedup.minScrapeInterval=1ms", "-retentionPeriod=100y", "-search.latencyOffset=0s", "-loggerLevel=ERROR"}
	case "prometheus":
		args = []string{"--config.file=" + filepath.Join(s.dir, "prometheus.yml"), "--storage.tsdb.path=" + filepath.Join(s.dir, "data"),
			"--web.listen-address=127.0.0.1:" + strconv.Itoa(s.port), "--web.enable-remote-write-receiver", "--log.level=warn"}
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	s.mu.Lock()
	cmd.Stdout, cmd.Stderr = &lockedWriter{s}, &lockedWriter{s}
	s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s exited at start: %v", s.kind, err)
		default:
		}
		path := "/-/ready"
		if s.kind == "victoria-metrics" {
			path = "/health"
		}
		resp, err := s.client.Get(s.base() + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60s: %v", s.kind, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type lockedWriter struct{ s *server }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.logs.Write(p)
}

// shutdown stops the server with SIGTERM (VictoriaMetrics keeps the last
// second of acknowledged samples in memory: a SIGKILL would lose them on
// the receiver's side), waiting up to 30 s before a SIGKILL.
func (s *server) shutdown() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// stop kills the server (SIGKILL: an outage, not a clean stop).
func (s *server) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

func (s *server) base() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// writeURL is the receiver's remote-write endpoint.
func (s *server) writeURL() string {
	return s.base() + "/api/v1/write" // the same path for both
}

// query evaluates an instant PromQL (MetricsQL) query at time at and
// returns the values by the label lbl of each result ("" for a single
// series result).
func (s *server) query(q string, at time.Time, lbl string) (map[string]float64, error) {
	if s.kind == "victoria-metrics" {
		// Make what was just written searchable.
		if resp, err := s.client.Get(s.base() + "/internal/force_flush"); err == nil {
			resp.Body.Close()
		}
	}
	samples, err := testutil.Query(s.client, s.base(), q, at) // the client has a 10 s timeout
	if err != nil {
		return nil, err
	}
	res := map[string]float64{}
	for _, r := range samples {
		v, err := strconv.ParseFloat(r.Value, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %v", q, r.Value)
		}
		res[r.Metric[lbl]] = v
	}
	return res, nil
}
