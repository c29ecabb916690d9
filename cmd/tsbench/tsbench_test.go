package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain doubles as the ingest child: tsbench re-executes its own
// executable, which under go test is the test binary.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(childMain(spec))
	}
	goleak.VerifyTestMain(m)
}

// tiny is a workload small enough for tests on which every query selects
// something: 400 series reach service="svc-3" (series 300..399).
var tiny = []string{"-series=400", "-points=25"}

func runTsbench(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	start := time.Now()
	code = run(context.Background(), args, &out, &errb)
	t.Logf("tsbench %s: exit %d in %v", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond))
	return code, out.String(), errb.String()
}

func TestTable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	code, out, errOut := runTsbench(t, append(tiny, "-dir="+dir)...)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"W-event", "sync=interval", "batch 1,000",
		"generation alone", "M points/s",
		"ingest rate", "ingest time", "sync after ingest",
		"peak RSS during ingest", "MiB", "RSS per active series", "KiB",
		"reopen after kill -9", "replay rate",
		"compact", "size on disk", "bytes per point", "B/point",
		"Q1 latency", "Q2 latency", "Q3 latency", "Q4 latency", "median of 5",
		"count = 10,000,", "all correct", "full workload only", "10,000 points",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "WRONG") {
		t.Errorf("a wrong answer:\n%s", out)
	}
	// stderr is not a terminal here: phase lines, but no progress bar.
	if !strings.Contains(errOut, "tsbench: ingest:") || strings.Contains(errOut, "%|") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data directory %s still there without -keep (stat: %v)", dir, err)
	}
}

// jsonReport is what -json must print, read independently of the report
// type.
type jsonReport struct {
	Workload        string `json:"workload"`
	Series          int    `json:"series"`
	PointsPerSeries int    `json:"points_per_series"`
	Points          int64  `json:"points"`
	Mode            string `json:"mode"`
	Writers         int    `json:"writers"`
	Batch           int    `json:"batch_size"`
	Sync            string `json:"sync"`
	Verified        bool   `json:"answers_verified"`
	Standard        bool   `json:"standard_full_workload"`
	Generate        struct {
		PointsPerSec float64 `json:"points_per_sec"`
	} `json:"generate"`
	Ingest struct {
		PointsPerSec float64 `json:"points_per_sec"`
		Seconds      float64 `json:"seconds"`
		Sync         string  `json:"sync"`
		Latency      *struct {
			P50 float64 `json:"p50_ns"`
			P99 float64 `json:"p99_ns"`
			Max float64 `json:"max_ns"`
		} `json:"append_latency"`
	} `json:"ingest"`
	Memory struct {
		PeakRSS      int64   `json:"peak_rss_bytes"`
		RSSPerSeries float64 `json:"rss_per_series_bytes"`
	} `json:"memory"`
	Reopen struct {
		Seconds     float64 `json:"seconds"`
		Records     int     `json:"replayed_records"`
		Points      int64   `json:"replayed_points"`
		PointsAfter int64   `json:"points_after_reopen"`
	} `json:"reopen_after_kill"`
	Disk struct {
		Bytes         int64   `json:"bytes"`
		BytesPerPoint float64 `json:"bytes_per_point"`
	} `json:"disk"`
	Queries []struct {
		Name     string    `json:"name"`
		Series   int       `json:"series"`
		Points   int64     `json:"points"`
		MedianMs float64   `json:"median_ms"`
		RunsMs   []float64 `json:"runs_ms"`
		Verified bool      `json:"verified"`
	} `json:"queries"`
	Reference struct {
		Applicable bool   `json:"applicable"`
		Note       string `json:"note"`
	} `json:"reference"`
}

func parseJSON(t *testing.T, out string) jsonReport {
	t.Helper()
	// One object and nothing after it.
	var r jsonReport
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON object (next: %v)", err)
	}
	return r
}

func checkSane(t *testing.T, r jsonReport, series, points int) {
	t.Helper()
	total := int64(series * points)
	if r.Series != series || r.PointsPerSeries != points || r.Points != total {
		t.Errorf("series %d × points %d = %d, want %d × %d", r.Series, r.PointsPerSeries, r.Points, series, points)
	}
	if !(r.Ingest.PointsPerSec > 0) || !(r.Generate.PointsPerSec > 0) || !(r.Ingest.Seconds > 0) {
		t.Errorf("ingest %v points/s in %v s, generation %v points/s", r.Ingest.PointsPerSec, r.Ingest.Seconds, r.Generate.PointsPerSec)
	}
	if r.Ingest.Sync != r.Sync || r.Sync == "" {
		t.Errorf("sync %q beside the ingest, %q for the run", r.Ingest.Sync, r.Sync)
	}
	if !(r.Disk.BytesPerPoint > 0) || r.Disk.Bytes <= 0 {
		t.Errorf("disk %d bytes, %v bytes/point", r.Disk.Bytes, r.Disk.BytesPerPoint)
	}
	if r.Memory.PeakRSS < 1<<20 || !(r.Memory.RSSPerSeries > 0) {
		t.Errorf("peak RSS %d, RSS per series %v", r.Memory.PeakRSS, r.Memory.RSSPerSeries)
	}
	if !(r.Reopen.Seconds > 0) || r.Reopen.PointsAfter != total || r.Reopen.Points <= 0 || r.Reopen.Points > total {
		t.Errorf("reopen: %v s, %d points replayed, %d after, want %d", r.Reopen.Seconds, r.Reopen.Points, r.Reopen.PointsAfter, total)
	}
	if !r.Verified || len(r.Queries) != 4 {
		t.Fatalf("verified %v, %d queries", r.Verified, len(r.Queries))
	}
	for i, q := range r.Queries {
		if want := "Q" + string(rune('1'+i)); q.Name != want || !q.Verified || len(q.RunsMs) != 5 || !(q.MedianMs > 0) || q.Series == 0 || q.Points == 0 {
			t.Errorf("query %d: %+v", i, q)
		}
	}
	if q4 := r.Queries[3]; q4.Points != total || q4.Series != series {
		t.Errorf("Q4 counted %d points of %d series, want %d of %d", q4.Points, q4.Series, total, series)
	}
	if r.Reference.Applicable || !strings.Contains(r.Reference.Note, "full workload only") {
		t.Errorf("reference: %+v", r.Reference)
	}
}

func TestJSON(t *testing.T) {
	code, out, errOut := runTsbench(t, append(tiny, "-json")...)
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
	}
	if errOut != "" {
		t.Errorf("-json wrote to stderr:\n%s", errOut)
	}
	r := parseJSON(t, out)
	checkSane(t, r, 400, 25)
	if r.Workload != "W-event" || r.Mode != "batch" || r.Writers != 1 || r.Batch != 1000 || r.Sync != "interval" {
		t.Errorf("run described as %s %s %d writers batch %d sync %s", r.Workload, r.Mode, r.Writers, r.Batch, r.Sync)
	}
	if r.Ingest.Latency != nil {
		t.Errorf("append latency reported in batch mode")
	}
}

// TestSingleMode: single points from two writers, with out-of-order points
// and duplicate timestamps, on W-scrape, sync=never.
func TestSingleMode(t *testing.T) {
	code, out, errOut := runTsbench(t, append(tiny, "-json", "-quiet", "-mode=single", "-writers=2",
		"-workload=scrape", "-sync=never", "-out-of-order=0.2", "-duplicates=0.1", "-seed=7")...)
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
	}
	r := parseJSON(t, out)
	checkSane(t, r, 400, 25)
	if r.Workload != "W-scrape" || r.Mode != "single" || r.Writers != 2 || r.Batch != 0 || r.Sync != "never" {
		t.Errorf("run described as %s %s %d writers batch %d sync %s", r.Workload, r.Mode, r.Writers, r.Batch, r.Sync)
	}
	l := r.Ingest.Latency
	if l == nil || !(l.P50 > 0) || l.P99 < l.P50 || l.Max < l.P99 {
		t.Errorf("append latency %+v", l)
	}
	// Every point is its own log record.
	if r.Reopen.Records < 10000 {
		t.Errorf("replayed %d records, want at least 10000", r.Reopen.Records)
	}
}

func TestKeep(t *testing.T) {
	dir := t.TempDir() // exists and is empty
	code, out, errOut := runTsbench(t, append(tiny, "-quiet", "-keep", "-dir="+dir)...)
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
	}
	if errOut != "" {
		t.Errorf("-quiet wrote to stderr:\n%s", errOut)
	}
	if !strings.Contains(out, "Data kept in "+dir) {
		t.Errorf("table does not say where the data is:\n%s", out)
	}
	for _, sub := range []string{"wal", "data"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
			t.Errorf("-keep: %s/%s missing: %v", dir, sub, err)
		}
	}
	// Without -keep, an existing empty directory is emptied, not removed.
	dir2 := t.TempDir()
	if code, _, errOut := runTsbench(t, append(tiny, "-quiet", "-dir="+dir2)...); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
	}
	if names, err := os.ReadDir(dir2); err != nil || len(names) != 0 {
		t.Errorf("-dir without -keep: %v left, err %v", names, err)
	}
	// The default directory is a temporary one, removed afterwards.
	code, out, errOut = runTsbench(t, append(tiny, "-json")...)
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
	}
	var r struct {
		Dir  string `json:"dir"`
		Kept bool   `json:"dir_kept"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Dir == "" || r.Kept {
		t.Fatalf("dir %q kept %v: %v", r.Dir, r.Kept, err)
	}
	if _, err := os.Stat(r.Dir); !os.IsNotExist(err) {
		t.Errorf("default data directory %s still there (stat: %v)", r.Dir, err)
	}
	// A non-empty directory is refused: tsbench would not know its points.
	if code, _, errOut := runTsbench(t, "-dir="+dir); code != 2 || !strings.Contains(errOut, "-dir") || !strings.Contains(errOut, "not empty") {
		t.Errorf("non-empty -dir: exit %d, stderr:\n%s", code, errOut)
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stderr: names the flag
	}{
		{[]string{"-bogus"}, "-bogus"},
		{[]string{"--no-such-flag=1"}, "-no-such-flag"},
		{[]string{"-workload=logs"}, "-workload"},
		{[]string{"-sync=sometimes"}, "-sync"},
		{[]string{"-mode=bulk"}, "-mode"},
		{[]string{"-series=abc"}, "-series"},
		{[]string{"-series=0"}, "-series"},
		{[]string{"-points=-1"}, "-points"},
		{[]string{"-writers=0"}, "-writers"},
		{[]string{"-series=3", "-writers=4"}, "-writers"},
		{[]string{"-batch=0"}, "-batch"},
		{[]string{"-mode=single", "-batch=10"}, "-batch"},
		{[]string{"-out-of-order=1.5"}, "-out-of-order"},
		{[]string{"-duplicates=-0.1"}, "-duplicates"},
		{[]string{"-seed=0"}, "-seed"},
		{[]string{"-runs=0"}, "-runs"},
		{[]string{"-full", "-points=10"}, "-full"},
		{[]string{"-series=100000", "-points=100000"}, "-points"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errb)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if out.Len() != 0 {
				t.Errorf("stdout: %q", out.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr does not name %q:\n%s", tc.want, errb.String())
			}
			if !strings.Contains(errb.String(), "Usage") && !strings.Contains(errb.String(), "tsbench -h") {
				t.Errorf("stderr does not point to the usage:\n%s", errb.String())
			}
		})
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-full") {
		t.Errorf("-h: exit %d, stderr:\n%s", code, errb.String())
	}
}

func TestLatencyHist(t *testing.T) {
	// Buckets tile the values without gaps.
	for b := 1; b < 40<<latSubBits; b++ {
		_, hi := latBucketRange(b - 1)
		lo, _ := latBucketRange(b)
		if lo != hi {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", b, lo, b-1, hi)
		}
		if latBucket(lo) != b {
			t.Fatalf("latBucket(%d) = %d, want %d", lo, latBucket(lo), b)
		}
	}
	h := newLatencyHist()
	for v := 1; v <= 100_000; v++ {
		h.record(time.Duration(v))
	}
	for _, p := range []float64{50, 90, 99} {
		want := p / 100 * 100_000
		if got := h.quantile(p); math.Abs(got-want)/want > 0.01 {
			t.Errorf("p%v = %v, want %v ± 1%%", p, got, want)
		}
	}
	if h.quantile(100) != 100_000 || h.mean() != 50_000.5 {
		t.Errorf("max %v mean %v", h.quantile(100), h.mean())
	}
}

func TestMedian(t *testing.T) {
	if m := median([]time.Duration{5, 1, 4, 2, 3}); m != 3 {
		t.Errorf("median = %v", m)
	}
	if m := median([]time.Duration{4, 1, 3, 2}); m != 2 {
		t.Errorf("median = %v", m) // (2+3)/2 in integer ns
	}
}
