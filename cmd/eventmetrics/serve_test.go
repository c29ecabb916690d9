package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/eventmetrics/eventmetrics/client"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

// TestMain runs the test binary as a child process when asked: as
// `eventmetrics ARGS...` (EM_TEST_CHILD=cmd) or as a writer through the
// client (EM_TEST_CHILD=writer). Otherwise it runs the tests, with goleak.
func TestMain(m *testing.M) {
	switch os.Getenv("EM_TEST_CHILD") {
	case "cmd":
		os.Exit(run(strings.Split(os.Getenv("EM_TEST_ARGS"), "\x1f"), os.Stdout, os.Stderr))
	case "writer":
		os.Exit(writerChild())
	}
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/cockroachdb/pebble/v2.(*ConcurrencyLimitScheduler).periodicGranter"))
}

// child starts the test binary as `eventmetrics args...`.
func child(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "EM_TEST_CHILD=cmd", "EM_TEST_ARGS="+strings.Join(args, "\x1f"))
	cmd.Env = append(cmd.Env, env...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &out.buf
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `eventmetrics serve` on dir and addr and waits until it
// answers.
func startServe(t *testing.T, dir, addr string) *exec.Cmd {
	t.Helper()
	cmd, out := child(t, nil, "serve", "--data", dir, "--listen", addr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/em/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopServe sends SIGTERM and waits for a clean exit.
func stopServe(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v", err)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("serve did not exit within 60s of SIGTERM")
	}
}

// writerChild writes EM_TEST_POINTS points with the unique values
// EM_TEST_WRITER*1e9 + i through the client, syncing every 100 points and
// printing "acked N" after each Sync that returned nil.
func writerChild() int {
	w, _ := strconv.Atoi(os.Getenv("EM_TEST_WRITER"))
	n, _ := strconv.Atoi(os.Getenv("EM_TEST_POINTS"))
	c, err := client.New(os.Getenv("EM_TEST_URL"), &client.Options{MaxBatchPoints: 37, FlushEvery: 5 * time.Millisecond,
		RetryFor: 2 * time.Minute, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, RequestTimeout: 5 * time.Second})
	if err != nil {
		fmt.Println("err", err)
		return 1
	}
	ls := engine.Labels{"writer": strconv.Itoa(w)}
	for i := range n {
		if err := c.Observe("acktest", float64(w*1_000_000_000+i), ls); err != nil {
			fmt.Println("err", err)
			return 1
		}
		if i%100 == 99 {
			if err := c.Sync(); err != nil {
				fmt.Println("err", err)
			} else {
				fmt.Println("acked", i+1)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := c.Close(); err != nil {
		fmt.Println("err", err)
		return 1
	}
	fmt.Println("acked", n)
	return 0
}

// TestWritersAcrossServerRestarts: several writer processes write through
// the client while the server process is killed (SIGKILL) and restarted,
// then stopped (SIGTERM) and restarted: every point a writer saw
// acknowledged is stored exactly once, and no point is stored twice.
func TestWritersAcrossServerRestarts(t *testing.T) {
	const writers, points = 3, 6000
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EM_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (EM_TEST_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	addr := freeAddr(t)
	srv := startServe(t, dir, addr)

	exe, _ := os.Executable()
	type writer struct {
		cmd *exec.Cmd
		out *syncBuffer
	}
	ws := make([]writer, writers)
	for i := range ws {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "EM_TEST_CHILD=writer", fmt.Sprint("EM_TEST_WRITER=", i+1), fmt.Sprint("EM_TEST_POINTS=", points), "EM_TEST_URL=http://"+addr)
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ws[i] = writer{cmd, out}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
	}
	acked := func() int {
		n := 0
		for _, w := range ws {
			w.out.mu.Lock()
			n += strings.Count(w.out.buf.String(), "acked")
			w.out.mu.Unlock()
		}
		return n
	}
	// Restarts while the writers run: kill -9 twice, SIGTERM once, each
	// after a random share of the work.
	for round, how := range []string{"kill", "term", "kill"} {
		target := (round + 1) * writers * points / 100 / 4
		for deadline := time.Now().Add(60 * time.Second); acked() < target+rng.IntN(writers*5); {
			if time.Now().After(deadline) {
				t.Fatalf("writers stalled at %d acks", acked())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if how == "kill" {
			srv.Process.Kill()
			srv.Wait()
		} else {
			stopServe(t, srv)
		}
		t.Logf("round %d: %s the server after %d acks", round, how, acked())
		time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
		srv = startServe(t, dir, addr)
	}
	for i, w := range ws {
		done := make(chan error, 1)
		go func() { done <- w.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("writer %d: %v\n%s", i+1, err, w.out.buf.String())
			}
		case <-time.After(3 * time.Minute):
			t.Fatalf("writer %d did not finish", i+1)
		}
	}
	stopServe(t, srv)

	db, err := engine.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	vs, err := db.Query("acktest").Values()
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[float64]int, len(vs))
	for _, v := range vs {
		seen[v]++
	}
	for i, w := range ws {
		last := 0
		sc := bufio.NewScanner(strings.NewReader(w.out.buf.String()))
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
				last, _ = strconv.Atoi(n)
			} else if sc.Text() != "" {
				t.Errorf("writer %d: %s", i+1, sc.Text())
			}
		}
		if last != points {
			t.Errorf("writer %d: acknowledged %d of %d points", i+1, last, points)
		}
		for j := range last {
			v := float64((i+1)*1_000_000_000 + j)
			if seen[v] != 1 {
				t.Fatalf("writer %d point %d: stored %d times", i+1, j, seen[v])
			}
		}
	}
	if len(vs) != writers*points {
		t.Errorf("%d points stored, want %d", len(vs), writers*points)
	}
}

// TestSIGTERMUnderLoad: SIGTERM while writers post batches: the server
// stops accepting, finishes what is in flight, syncs and closes the store
// and exits 0 in time; every batch answered 200 is stored, once.
func TestSIGTERMUnderLoad(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	srv := startServe(t, dir, addr)
	var next atomic.Int64
	var mu sync.Mutex
	var ackedVals []float64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var refused atomic.Int64
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				base := next.Add(500) - 500
				var b strings.Builder
				b.WriteString(`{"points":[`)
				for i := range 500 {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, `{"name":"load","labels":{"k":"%d"},"value":%d,"timestamp":%d}`, i%7, base+int64(i), base+int64(i))
				}
				b.WriteString("]}")
				resp, err := hc.Post("http://"+addr+"/em/v1/ingest", "application/json", strings.NewReader(b.String()))
				if err != nil {
					refused.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					for i := range 500 {
						ackedVals = append(ackedVals, float64(base+int64(i)))
					}
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(time.Second)
	start := time.Now()
	stopServe(t, srv)
	took := time.Since(start)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("SIGTERM to exit: %v; %d batches acknowledged; %d refused after", took, len(ackedVals)/500, refused.Load())
	if took > 10*time.Second {
		t.Errorf("shutdown took %v", took)
	}
	if len(ackedVals) == 0 || refused.Load() == 0 {
		t.Fatalf("the load did not overlap the shutdown: %d acked, %d refused", len(ackedVals), refused.Load())
	}
	db, err := engine.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	vs, err := db.Query("load").Values()
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[float64]int, len(vs))
	for _, v := range vs {
		seen[v]++
		if seen[v] > 1 {
			t.Fatalf("value %v stored twice", v)
		}
	}
	for _, v := range ackedVals {
		if seen[v] != 1 {
			t.Fatalf("acknowledged value %v stored %d times", v, seen[v])
		}
	}
	if n, _ := db.Query("load").Scalar(query.Count); int(n) < len(ackedVals) {
		t.Errorf("count %v < acked %d", n, len(ackedVals))
	}
}

// TestCommandsAgainstServer drives import, query, export and stats the way
// a user would.
func TestCommandsAgainstServer(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	url := "http://" + addr
	srv := startServe(t, dir, addr)
	var lines strings.Builder
	for i := range 50 {
		fmt.Fprintf(&lines, `{"name":"lat","labels":{"svc":"%s"},"value":%d,"timestamp":%d}`+"\n", []string{"a", "b"}[i%2], i, 1_700_000_000_000_000_000+int64(i)*1e9)
	}
	in := dir + ".jsonl"
	os.WriteFile(in, []byte(lines.String()), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"import", "--url", url, in}, &out, &errb); code != 0 || !strings.Contains(out.String(), "imported 50 points") {
		t.Fatalf("import: %d %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"query", "--url", url, "--agg", "count,max", "--group-by", "svc", `lat{svc=~"a|b"}`}, &out, &errb); code != 0 {
		t.Fatalf("query: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `{svc="a"}`) || !strings.Contains(out.String(), "49") {
		t.Errorf("query table:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"query", "--url", url, "--json", "--percentiles", "50", `lat{svc="b"}`}, &out, &errb); code != 0 {
		t.Fatalf("query json: %d %s", code, errb.String())
	}
	var qr struct{ Values []float64 }
	if err := json.Unmarshal(out.Bytes(), &qr); err != nil || len(qr.Values) != 1 || qr.Values[0] != 25 {
		t.Errorf("p50 of 1,3,...,49: %s %v", out.String(), err)
	}
	if code := run([]string{"query", "--url", url, `lat{svc=}`}, &out, &errb); code != 2 {
		t.Errorf("bad selector: exit %d", code)
	}
	stopServe(t, srv)

	out.Reset()
	if code := run([]string{"query", "--data", dir, "--step", "10s", "--agg", "count", "--from", "2023-11-14T22:13:20Z", "lat"}, &out, &errb); code != 0 {
		t.Fatalf("query --data: %d %s", code, errb.String())
	}
	if n := strings.Count(out.String(), "Z  10\n"); n != 5 || !strings.Contains(out.String(), "2023-11-14T22:14:00Z") {
		t.Errorf("windows of 10 s over 50 s of points:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"export", "--format", "csv", dir, `lat{svc="a"}`}, &out, &errb); code != 0 {
		t.Fatalf("export: %d %s", code, errb.String())
	}
	if n := strings.Count(out.String(), "\n"); n != 26 || !strings.HasPrefix(out.String(), "name,labels,timestamp,value\n") {
		t.Errorf("csv export (%d lines):\n%s", n, out.String())
	}
	csvFile := dir + ".csv"
	os.WriteFile(csvFile, out.Bytes(), 0o644)
	dir2 := t.TempDir()
	out.Reset()
	if code := run([]string{"import", "--format", "csv", "--data", dir2, csvFile}, &out, &errb); code != 0 {
		t.Fatalf("import csv: %d %s", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"export", dir2}, &out, &errb); code != 0 {
		t.Fatalf("export jsonl: %d %s", code, errb.String())
	}
	if n := strings.Count(out.String(), `"svc":"a"`); n != 25 {
		t.Errorf("round trip through CSV: %d points\n%s", n, out.String())
	}
	out.Reset()
	if code := run([]string{"stats", "--json", dir}, &out, &errb); code != 0 {
		t.Fatalf("stats: %d %s", code, errb.String())
	}
	var st struct {
		Series, Points uint64
		Labels         []struct {
			Name   string
			Values int
		}
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.Points < 50 || len(st.Labels) != 1 || st.Labels[0].Values != 2 {
		t.Errorf("stats: %s %v", out.String(), err)
	}
	out.Reset()
	if code := run([]string{"serve", "--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "/api/v1/write") {
		t.Errorf("serve --help: %d", code)
	}
}
