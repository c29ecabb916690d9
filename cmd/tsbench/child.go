package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
)

// The ingest runs in a child process so that the parent can stop it the
// way a crash would (SIGKILL: no Close, no final checkpoint, nothing
// flushed but what the engine already handed to the kernel) and then time
// the recovery. Protocol:
//
//   - the parent starts its own executable with childEnv set to the config
//     as JSON, stdin a pipe it never writes to, stdout a pipe, and stderr
//     its own (for the progress bars and errors);
//   - the child opens the DB, generates and writes the workload, calls
//     DB.Sync, and prints one line: childDone followed by a childResult as
//     JSON; then it blocks reading stdin;
//   - the parent reads that line and kills the child with SIGKILL. (Should
//     the parent die first, the child reads EOF on stdin and exits, without
//     closing the DB either.)

// childEnv is the environment variable that makes the executable the ingest
// child; its value is the config as JSON.
const childEnv = "TSBENCH_INGEST_CHILD"

// childDone starts the child's result line on stdout.
const childDone = "tsbench-ingest-done "

// childResult is what the child measured.
type childResult struct {
	GenerateNs int64 `json:"generate_ns"` // the generator alone
	SeriesNs   int64 `json:"series_ns"`   // resolving the series handles (creating the series)
	IngestNs   int64 `json:"ingest_ns"`
	SyncNs     int64 `json:"sync_ns"` // DB.Sync after the ingest
	Points     int64 `json:"points"`

	// Single mode: latency of one ObserveAtNanos, ns.
	LatencyP50  float64 `json:"latency_p50_ns,omitempty"`
	LatencyP99  float64 `json:"latency_p99_ns,omitempty"`
	LatencyP999 float64 `json:"latency_p999_ns,omitempty"`
	LatencyMax  float64 `json:"latency_max_ns,omitempty"`
	LatencyMean float64 `json:"latency_mean_ns,omitempty"`
	// TimerP50 is the median cost of the timing itself (time.Now and
	// time.Since around nothing), included in every latency sample.
	TimerP50 float64 `json:"timer_p50_ns,omitempty"`

	// Memory (bytes), from /proc/self/status.
	RSSBeforeSeries int64 `json:"rss_before_series"` // VmRSS after Open and a forced GC, before the series exist
	RSSAfterIngest  int64 `json:"rss_after_ingest"`  // VmRSS right after the last write
	PeakRSS         int64 `json:"peak_rss"`          // VmHWM after the ingest and the sync
	LiveHeapAfter   int64 `json:"live_heap_after"`   // Go heap in use after the ingest and a forced GC
	LiveHeapBefore  int64 `json:"live_heap_before"`  // the same, before the series exist
}

// childMain is the ingest child. It returns the exit status.
func childMain(spec string) int {
	var c config
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		fmt.Fprintf(os.Stderr, "tsbench (ingest child): bad %s: %v\n", childEnv, err)
		return 2
	}
	res, err := childIngest(&c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tsbench (ingest child): %v\n", err)
		return 1
	}
	b, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tsbench (ingest child): %v\n", err)
		return 1
	}
	if _, err := fmt.Fprintf(os.Stdout, "%s%s\n", childDone, b); err != nil {
		return 1
	}
	// Wait to be killed. EOF means the parent is gone: stop, still without
	// closing the DB.
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 3
}

func childIngest(c *config) (*childResult, error) {
	res := &childResult{}
	logf := func(format string, args ...any) {
		if c.Log {
			fmt.Fprintf(os.Stderr, "tsbench: "+format+"\n", args...)
		}
	}
	db, err := engine.Open(c.Dir, &engine.Options{Sync: c.Sync})
	if err != nil {
		return nil, err
	}
	// No Close: the parent kills this process.

	// 1. The generator alone.
	var done atomic.Int64
	bar := startProgress(c.Progress, os.Stderr, "generate", c.total(), &done)
	d, err := generate(c, &done)
	bar.finish()
	if err != nil {
		return nil, err
	}
	res.GenerateNs = int64(d)
	logf("generation alone: %d points in %v (%.1f M points/s; not stored)", c.total(), d.Round(time.Millisecond), mps(c.total(), d))

	// 2. The series.
	runtime.GC()
	debug.FreeOSMemory()
	before, err := readMemStatus()
	if err != nil {
		return nil, err
	}
	res.RSSBeforeSeries = before.RSS
	res.LiveHeapBefore = liveHeap()
	start := time.Now()
	handles := make([]*engine.Series, c.Series)
	wc := c.workload()
	for s := range handles {
		if handles[s], err = db.Series(wc.Metric(), workload.Labels(s)); err != nil {
			return nil, err
		}
	}
	res.SeriesNs = int64(time.Since(start))

	// 3. The ingest.
	if c.Single {
		res.TimerP50 = timerOverhead()
	}
	done.Store(0)
	bar = startProgress(c.Progress, os.Stderr, "ingest", c.total(), &done)
	r, err := ingest(db, c, handles, &done)
	bar.finish()
	if err != nil {
		return nil, err
	}
	after, err := readMemStatus()
	if err != nil {
		return nil, err
	}
	res.IngestNs, res.Points, res.RSSAfterIngest = int64(r.Elapsed), r.Points, after.RSS
	if h := r.Latency; h != nil {
		res.LatencyP50, res.LatencyP99, res.LatencyP999 = h.quantile(50), h.quantile(99), h.quantile(99.9)
		res.LatencyMax, res.LatencyMean = h.quantile(100), h.mean()
	}

	// 4. Sync: every write acknowledged so far is durable.
	start = time.Now()
	if err := db.Sync(); err != nil {
		return nil, err
	}
	res.SyncNs = int64(time.Since(start))
	peak, err := readMemStatus()
	if err != nil {
		return nil, err
	}
	res.PeakRSS = peak.Peak
	res.LiveHeapAfter = liveHeap()
	logf("ingest: %d points in %v (%.2f M points/s, %s, sync=%s); sync %v; peak RSS %.0f MiB",
		r.Points, r.Elapsed.Round(time.Millisecond), mps(r.Points, r.Elapsed), writeSetup(c), c.Sync,
		time.Duration(res.SyncNs).Round(time.Microsecond), mib(res.PeakRSS))
	return res, nil
}

// timerOverhead returns the median cost of timing an empty operation the
// way single mode times each append.
func timerOverhead() float64 {
	h := newLatencyHist()
	for range 200_000 {
		t0 := time.Now()
		h.record(time.Since(t0))
	}
	return h.quantile(50)
}

// liveHeap returns the bytes of Go heap in use after a forced GC.
func liveHeap() int64 {
	runtime.GC()
	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	return int64(st.HeapAlloc)
}

// runChild runs the ingest child on c and returns its result once it is
// dead, killed by SIGKILL after it reported.
func runChild(ctx context.Context, c *config, stderr io.Writer) (*childResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find my executable to start the ingest child: %w", err)
	}
	spec, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the ingest child: %w", err)
	}
	var res *childResult
	var protoErr error
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, childDone); ok {
			res = &childResult{}
			if err := json.Unmarshal([]byte(rest), res); err != nil {
				res, protoErr = nil, fmt.Errorf("ingest child: bad result %q: %w", rest, err)
			}
			break
		}
		fmt.Fprintf(stderr, "ingest child: %s\n", line)
	}
	if res != nil {
		// The unclean stop.
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			_ = cmd.Wait()
			return nil, fmt.Errorf("kill the ingest child: %w", err)
		}
	}
	// Drain stdout so that Wait can finish (nothing more is expected).
	_, _ = io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if protoErr != nil {
		return nil, protoErr
	}
	if res == nil {
		if werr == nil {
			werr = errors.New("exited without reporting")
		}
		return nil, fmt.Errorf("ingest child failed: %w", werr)
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) {
		return nil, fmt.Errorf("ingest child: expected death by SIGKILL, got %v", werr)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return nil, fmt.Errorf("ingest child: expected death by SIGKILL, got %v", werr)
	}
	return res, nil
}

// writeSetup describes how points were written, e.g. "1 writer, batch 1000".
func writeSetup(c *config) string {
	w := fmt.Sprintf("%d writers", c.Writers)
	if c.Writers == 1 {
		w = "1 writer"
	}
	if c.Single {
		return w + ", single points (Series.ObserveAtNanos)"
	}
	return fmt.Sprintf("%s, batch %d", w, c.Batch)
}

func mps(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }
func mib(b int64) float64                  { return float64(b) / (1 << 20) }
