// Command peers compares eventmetrics with Prometheus TSDB, both embedded
// as Go libraries in this one process, on the standard workloads of
// WORKLOADS.md: one engine after the other on the same generated data,
// every query answer checked against the exact ground truth (package
// bench/truth), and a table of figures with ratios.
//
//	go run . --workload=event --full          # 1,000 series × 10,000 points
//	go run . --workload=scrape --points=1000  # smaller
//	go run . --full --json > event.json       # JSON instead of the table
//	go run . merge run1.json run2.json        # medians of several runs
//
// What is timed, for both engines alike:
//   - ingest: from the start of the writers to the end of the last batch;
//     the points are generated before (excluded), series resolution and
//     building each batch are included. 1 writer, and 2 writers each
//     owning half of the series, kept in step (see stepper).
//   - flush+close: making everything durable and compact (Prometheus:
//     Compact, CompactHead of the rest, Close; eventmetrics: Compact,
//     Close).
//   - bytes per point on disk after that: everything in the directory, and
//     the data alone (Prometheus blocks; eventmetrics' pebble directory);
//     and everything after a plain Close without compaction (the 2-writer
//     DB).
//   - reopen: Open of the closed directory.
//   - Q1–Q4: median of --runs runs (5), on the reopened DB.
//   - peak RSS: each engine ingests again in a child process (this program
//     re-executed), generating the points as it goes, so that the figure
//     is the engine's plus a small generator; --rss=false skips it.
//
// It lives in its own Go module (bench/peers) so that the main module never
// depends on Prometheus.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/truth"
	"github.com/eventmetrics/eventmetrics/bench/workload"
)

// runner is one engine under test.
type runner interface {
	name() string
	open(dir string) error
	// ingest writes every shard from its own goroutine and returns the
	// wall time in seconds.
	ingest(shards []shard, batch int) (float64, error)
	ingestStream(g *workload.Gen, batch int) error
	flushClose() error
	close() error
	dataSize(dir string) (int64, error)
	dataName() string
	q1() ([]float64, error)
	q2() (float64, error)
	q3() (starts []int64, counts, sums []float64, err error)
	q4() (count, sum float64, err error)
	verify() error
}

// figure is one row of the table.
type figure struct {
	Key    string  `json:"key"`
	Label  string  `json:"label"`
	Better string  `json:"better"` // "higher" or "lower"
	Prom   float64 `json:"prometheus"`
	EM     float64 `json:"eventmetrics"`
	// RunRatios holds the ratio of each run, in a merged result.
	RunRatios []float64 `json:"run_ratios,omitempty"`
}

func (f figure) ratio() float64 {
	if f.Prom == 0 {
		return 0
	}
	return f.EM / f.Prom
}

type machine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model"`
	MemTotal   string `json:"mem_total"`
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
}

// result is the outcome of one run on one workload.
type result struct {
	Date        string               `json:"date"`
	Workload    string               `json:"workload"`
	Series      int                  `json:"series"`
	Points      int                  `json:"points_per_series"`
	Batch       int                  `json:"batch"`
	Runs        int                  `json:"query_runs"`
	Order       string               `json:"order"`
	GenerationS float64              `json:"generation_s"`
	Versions    map[string]string    `json:"versions"`
	Machine     machine              `json:"machine"`
	Figures     []figure             `json:"figures"`
	Checks      []string             `json:"checks"`
	QueryMS     map[string][]float64 `json:"query_ms"` // engine/Qn -> every run
	Merged      int                  `json:"merged_runs,omitempty"`
}

type options struct {
	kind     workload.Kind
	series   int
	points   int
	batch    int
	runs     int
	rss      bool
	promLast bool
	dir      string

	memProfile string
	only       string
	settle     time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "merge" {
		if err := merge(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "peers:", err)
			os.Exit(1)
		}
		return
	}
	var (
		kindFlag = flag.String("workload", "event", "event or scrape")
		series   = flag.Int("series", 1000, "series")
		points   = flag.Int("points", 1000, "points per series")
		full     = flag.Bool("full", false, "the standard size: 1,000 series × 10,000 points")
		batch    = flag.Int("batch", 1000, "points per batch (one Commit, one Append)")
		runs     = flag.Int("runs", 5, "runs of each query (the median is reported)")
		rss      = flag.Bool("rss", true, "measure peak RSS during ingest in a child process per engine")
		order    = flag.String("order", "prometheus-first", "prometheus-first or eventmetrics-first")
		asJSON   = flag.Bool("json", false, "print JSON instead of the table")
		dir      = flag.String("dir", "", "parent directory of the engines' data (default: the system temp dir)")
		child    = flag.String("child-rss", "", "internal: ingest with this engine and report peak RSS")
		memProf  = flag.String("memprofile", "", "with --child-rss: write a heap profile at the end of the ingest")
		only     = flag.String("only", "", "run one engine only: prometheus or eventmetrics (no ratios)")
		settle   = flag.Duration("settle", 0, "wait this long after reopening before the queries (background work of the engines settles)")
	)
	flag.Parse()
	kind, err := workload.ParseKind(*kindFlag)
	if err != nil {
		fatal(err)
	}
	if *full {
		*series, *points = 1000, 10_000
	}
	if *order != "prometheus-first" && *order != "eventmetrics-first" {
		fatal(fmt.Errorf("--order=%s: want prometheus-first or eventmetrics-first", *order))
	}
	o := options{memProfile: *memProf, only: *only, settle: *settle, kind: kind, series: *series, points: *points, batch: *batch, runs: *runs, rss: *rss,
		promLast: *order == "eventmetrics-first", dir: *dir}
	if *child != "" {
		if err := childRSS(*child, o); err != nil {
			fatal(err)
		}
		return
	}
	res, err := run(o)
	if err != nil {
		fatal(err)
	}
	res.Order = *order
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fatal(err)
		}
		return
	}
	printTable(os.Stdout, res)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "peers: FAILED:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func newRunner(name string, l *load) (runner, error) {
	switch name {
	case "prometheus", "Prometheus":
		return &prom{l: l}, nil
	case "eventmetrics":
		return &em{l: l}, nil
	}
	return nil, fmt.Errorf("unknown engine %q", name)
}

func run(o options) (*result, error) {
	res := &result{
		Date:     time.Now().Format("2006-01-02 15:04 MST"),
		Workload: o.kind.String(), Series: o.series, Points: o.points, Batch: o.batch, Runs: o.runs,
		Versions: versions(),
		Machine:  machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), MemTotal: memTotal(), LoadBefore: loadAvg()},
		QueryMS:  map[string][]float64{},
	}
	logf("generating %v: %d series × %d points", o.kind, o.series, o.points)
	l := newLoad(workload.Config{Kind: o.kind, Series: o.series, Points: o.points}, []int{1, 2})
	res.GenerationS = l.genTime.Seconds()
	logf("generated %d points in %.2fs; ground truth computed", l.n, res.GenerationS)

	names := []string{"prometheus", "eventmetrics"}
	if o.promLast {
		names = []string{"eventmetrics", "prometheus"}
	}
	if o.only != "" {
		if _, err := newRunner(o.only, l); err != nil {
			return nil, err
		}
		names = []string{o.only}
	}
	figs := map[string]map[string]float64{}
	for _, name := range names {
		r, _ := newRunner(name, l)
		runtime.GC() // each engine starts from a clean heap
		debug.FreeOSMemory()
		m, checks, err := measure(r, l, o, res)
		if err != nil {
			return nil, err
		}
		if o.rss {
			peak, err := runChild(name, o)
			if err != nil {
				return nil, err
			}
			m["rss"] = peak
		}
		figs[r.name()] = m
		res.Checks = append(res.Checks, checks...)
	}
	defs := []struct{ key, label, better string }{
		{"ingest1", "ingest M points/s, 1 writer", "higher"},
		{"ingest2", "ingest M points/s, 2 writers", "higher"},
		{"flush", "flush+close s (after the 1-writer ingest)", "lower"},
		{"bpp_all", "bytes/point on disk, everything, after flush+compaction", "lower"},
		{"bpp_data", "bytes/point on disk, data only (Prometheus blocks; eventmetrics pebble data/)", "lower"},
		{"bpp_close", "bytes/point on disk, everything, after a plain Close (the 2-writer DB)", "lower"},
		{"rss", "peak RSS MiB during 1-writer ingest (child process)", "lower"},
		{"reopen", "reopen ms", "lower"},
		{"q1", "Q1 ms (p50/p90/p99 of one series)", "lower"},
		{"q2", "Q2 ms (p99 of 100 series, last 10%)", "lower"},
		{"q3", "Q3 ms (count+sum per 60 s, 50 series)", "lower"},
		{"q4", "Q4 ms (count+sum of every point)", "lower"},
	}
	for _, d := range defs {
		p, ok1 := figs["Prometheus"][d.key]
		e, ok2 := figs["eventmetrics"][d.key]
		if !ok1 && !ok2 {
			continue
		}
		res.Figures = append(res.Figures, figure{Key: d.key, Label: d.label, Better: d.better, Prom: p, EM: e})
	}
	res.Machine.LoadAfter = loadAvg()
	return res, nil
}

// measure runs every phase on one engine and returns its figures.
func measure(r runner, l *load, o options, res *result) (map[string]float64, []string, error) {
	m := map[string]float64{}
	var checks []string
	fail := func(err error) (map[string]float64, []string, error) {
		r.close()
		return nil, nil, fmt.Errorf("%s: %w", r.name(), err)
	}
	dir, err := os.MkdirTemp(o.dir, "peers-"+r.name()+"-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)

	// 1 writer: ingest, flush+close, disk, reopen, queries, full check.
	if err := r.open(dir); err != nil {
		return fail(err)
	}
	logf("%s: ingest, 1 writer", r.name())
	sec, err := r.ingest(l.shards[1], o.batch)
	if err != nil {
		return fail(err)
	}
	m["ingest1"] = float64(l.n) / sec / 1e6
	start := time.Now()
	if err := r.flushClose(); err != nil {
		return fail(err)
	}
	m["flush"] = time.Since(start).Seconds()
	all, err := dirSize(dir)
	if err != nil {
		return fail(err)
	}
	data, err := r.dataSize(dir)
	if err != nil {
		return fail(err)
	}
	m["bpp_all"], m["bpp_data"] = float64(all)/float64(l.n), float64(data)/float64(l.n)
	start = time.Now()
	if err := r.open(dir); err != nil {
		return fail(err)
	}
	m["reopen"] = float64(time.Since(start).Microseconds()) / 1e3
	time.Sleep(o.settle)
	logf("%s: %.2f M points/s; flush+close %.2fs; %.2f B/point (%s %.2f); reopen %.0f ms; queries",
		r.name(), m["ingest1"], m["flush"], m["bpp_all"], r.dataName(), m["bpp_data"], m["reopen"])

	var q3Err, q4Err float64
	// Each query returns how long the engine took (only the query: the
	// check of its answer against the truth comes after).
	queries := []struct {
		key string
		run func() (time.Duration, error)
	}{
		{"q1", func() (time.Duration, error) {
			start := time.Now()
			ps, err := r.q1()
			el := time.Since(start)
			if err != nil {
				return el, err
			}
			return el, truth.CheckPercentiles("Q1", ps, l.want.Q1)
		}},
		{"q2", func() (time.Duration, error) {
			start := time.Now()
			p, err := r.q2()
			el := time.Since(start)
			if err != nil {
				return el, err
			}
			return el, truth.CheckPercentiles("Q2", []float64{p}, []float64{l.want.Q2})
		}},
		{"q3", func() (time.Duration, error) {
			start := time.Now()
			starts, counts, sums, err := r.q3()
			el := time.Since(start)
			if err != nil {
				return el, err
			}
			rel, err := truth.CheckWindows(starts, counts, sums, l.want.Q3)
			q3Err = max(q3Err, rel)
			return el, err
		}},
		{"q4", func() (time.Duration, error) {
			start := time.Now()
			c, s, err := r.q4()
			el := time.Since(start)
			if err != nil {
				return el, err
			}
			rel, err := truth.CheckScalars(c, s, l.want.Q4)
			q4Err = max(q4Err, rel)
			return el, err
		}},
	}
	for _, q := range queries {
		var ms []float64
		for range o.runs {
			el, err := q.run()
			if err != nil {
				return fail(fmt.Errorf("WRONG ANSWER or error: %w", err))
			}
			ms = append(ms, float64(el.Microseconds())/1e3)
		}
		res.QueryMS[r.name()+"/"+strings.ToUpper(q.key)] = ms
		m[q.key] = median(ms)
	}
	checks = append(checks, fmt.Sprintf("%s: Q1 (%d points) and Q2 (%d points) percentiles bit-exact; Q3 %d windows (%d points) and Q4 (%d points) counts exact, sums within the summation bound (largest relative error vs the exactly rounded sum: Q3 %.1e, Q4 %.1e)",
		r.name(), l.want.Q1Count, l.want.Q2N, len(l.want.Q3.Start), l.want.Q3N, l.want.Q4.N(), q3Err, q4Err))
	logf("%s: Q1 %.1f ms, Q2 %.1f ms, Q3 %.1f ms, Q4 %.1f ms; reading back every point", r.name(), m["q1"], m["q2"], m["q3"], m["q4"])
	if err := r.verify(); err != nil {
		return fail(fmt.Errorf("WRONG DATA: %w", err))
	}
	checks = append(checks, fmt.Sprintf("%s: every one of the %d points read back with its timestamp and value bits", r.name(), l.n))
	if err := r.close(); err != nil {
		return fail(err)
	}
	runtime.GC()

	// 2 writers, into a fresh directory.
	dir2, err := os.MkdirTemp(o.dir, "peers-"+r.name()+"-2w-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir2)
	if err := r.open(dir2); err != nil {
		return fail(err)
	}
	logf("%s: ingest, 2 writers", r.name())
	sec, err = r.ingest(l.shards[2], o.batch)
	if err != nil {
		return fail(err)
	}
	m["ingest2"] = float64(l.n) / sec / 1e6
	c, s, err := r.q4()
	if err != nil {
		return fail(err)
	}
	if _, err := truth.CheckScalars(c, s, l.want.Q4); err != nil {
		return fail(fmt.Errorf("after the 2-writer ingest: %w", err))
	}
	checks = append(checks, fmt.Sprintf("%s: 2-writer ingest holds every point (Q4 count and sum)", r.name()))
	if err := r.close(); err != nil {
		return fail(err)
	}
	closed, err := dirSize(dir2)
	if err != nil {
		return fail(err)
	}
	m["bpp_close"] = float64(closed) / float64(l.n)
	logf("%s: %.2f M points/s with 2 writers; %.2f B/point after a plain Close", r.name(), m["ingest2"], m["bpp_close"])
	return m, checks, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// runChild re-executes this program to ingest with one engine and returns
// its peak RSS in MiB.
func runChild(name string, o options) (float64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	logf("%s: peak RSS run (child process)", name)
	cmd := exec.Command(exe, "--child-rss="+name, "--workload="+o.kind.String(),
		"--series="+strconv.Itoa(o.series), "--points="+strconv.Itoa(o.points), "--batch="+strconv.Itoa(o.batch), "--dir="+o.dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%s: RSS child: %w", name, err)
	}
	var r struct{ PeakKiB int64 }
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("%s: RSS child said %q: %w", name, out, err)
	}
	return float64(r.PeakKiB) / 1024, nil
}

// childRSS ingests the workload with one writer, generating points as it
// goes, and prints the peak RSS reached by the end of the ingest.
func childRSS(name string, o options) error {
	l := &load{cfg: workload.Config{Kind: o.kind, Series: o.series, Points: o.points}}
	r, err := newRunner(name, l)
	if err != nil {
		return err
	}
	g := workload.New(l.cfg)
	l.cfg = g.Config()
	dir, err := os.MkdirTemp(o.dir, "peers-rss-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := r.open(dir); err != nil {
		return err
	}
	if err := r.ingestStream(g, o.batch); err != nil {
		r.close()
		return err
	}
	peak, err := vmHWM()
	if err != nil {
		return err
	}
	if o.memProfile != "" {
		f, err := os.Create(o.memProfile)
		if err != nil {
			return err
		}
		runtime.GC()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
		f.Close()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(os.Stderr, "heap in use %d MiB, heap sys %d MiB, total sys %d MiB, peak RSS %d MiB\n", ms.HeapInuse>>20, ms.HeapSys>>20, ms.Sys>>20, peak>>10)
	}
	// Flush as the measured run does, so that the engine stops cleanly.
	if err := r.flushClose(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(struct{ PeakKiB int64 }{peak})
}

// vmHWM returns the peak resident set size of this process's address
// space (VmHWM in /proc/self/status, KiB). Not getrusage's ru_maxrss: the
// child is started by vfork+exec, and Linux carries the parent's
// high-water mark, taken at exec, into the child's ru_maxrss.
func vmHWM() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

func versions() map[string]string {
	v := map[string]string{"go": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/prometheus/prometheus", "github.com/cockroachdb/pebble/v2":
				v[d.Path] = d.Version
			}
		}
	}
	v["github.com/eventmetrics/eventmetrics"] = checkoutRev()
	return v
}

// checkoutRev describes the checkout the eventmetrics module is built from
// (replace => ../..): its commit, and whether files outside bench/ differ
// from it.
func checkoutRev() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "unknown"
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	rev := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench").Output()
	if err == nil && len(strings.TrimSpace(string(st))) > 0 {
		rev += " + uncommitted changes outside bench/"
	}
	return rev
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "MemTotal:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kib, _ := strconv.ParseFloat(f[1], 64)
				return fmt.Sprintf("%.1f GiB", kib/(1<<20))
			}
		}
	}
	return "unknown"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func printTable(w *os.File, r *result) {
	title := fmt.Sprintf("%s: %d series × %d points = %d points, batch %d", r.Workload, r.Series, r.Points, r.Series*r.Points, r.Batch)
	if r.Merged > 1 {
		title += fmt.Sprintf(", median of %d runs", r.Merged)
	}
	fmt.Fprintf(w, "## %s\n\n", title)
	fmt.Fprintf(w, "%s; %d CPUs (%s), %s RAM; load average %s before, %s after; eventmetrics %s; Go %s, Prometheus %s, pebble %s; order %s; generation (excluded from ingest) %.2f s\n\n",
		r.Date, r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.LoadBefore, r.Machine.LoadAfter,
		r.Versions["github.com/eventmetrics/eventmetrics"], r.Versions["go"], r.Versions["github.com/prometheus/prometheus"], r.Versions["github.com/cockroachdb/pebble/v2"], r.Order, r.GenerationS)
	if r.Merged > 1 {
		fmt.Fprintln(w, "| figure | Prometheus TSDB | eventmetrics | ratio eventmetrics/Prometheus (of the medians) | ratio in each run | better |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|")
	} else {
		fmt.Fprintln(w, "| figure | Prometheus TSDB | eventmetrics | ratio eventmetrics/Prometheus | better |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---|")
	}
	for _, f := range r.Figures {
		if r.Merged > 1 {
			var rs []string
			for _, x := range f.RunRatios {
				rs = append(rs, fmt.Sprintf("%.2f", x))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.2f | %s | %s |\n", f.Label, num(f.Prom), num(f.EM), f.ratio(), strings.Join(rs, ", "), f.Better)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.2f | %s |\n", f.Label, num(f.Prom), num(f.EM), f.ratio(), f.Better)
	}
	fmt.Fprintln(w)
	for _, c := range r.Checks {
		fmt.Fprintf(w, "- %s\n", c)
	}
	fmt.Fprintln(w)
}

func num(x float64) string {
	switch {
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	default:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
}

// merge reads results (JSON files of this program) and prints, per
// workload, the median of every figure.
func merge(args []string) error {
	fs := flag.NewFlagSet("merge", flag.ExitOnError)
	asJSON := fs.Bool("json", false, "print JSON instead of the table")
	fs.Parse(args)
	if fs.NArg() == 0 {
		return errors.New("usage: peers merge [--json] run1.json run2.json ...")
	}
	byWorkload := map[string][]*result{}
	var order []string
	for _, name := range fs.Args() {
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		r := new(result)
		if err := json.Unmarshal(b, r); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if byWorkload[r.Workload] == nil {
			order = append(order, r.Workload)
		}
		byWorkload[r.Workload] = append(byWorkload[r.Workload], r)
	}
	var out []*result
	for _, wl := range order {
		rs := byWorkload[wl]
		m := *rs[0]
		m.Merged = len(rs)
		m.Figures = nil
		var dates, orders, before, after []string
		for _, r := range rs {
			dates, orders = append(dates, r.Date), append(orders, r.Order)
			before, after = append(before, r.Machine.LoadBefore), append(after, r.Machine.LoadAfter)
		}
		m.Date, m.Order = strings.Join(dates, ", "), strings.Join(orders, ", ")
		m.Machine.LoadBefore, m.Machine.LoadAfter = strings.Join(before, " / "), strings.Join(after, " / ")
		for i, f := range rs[0].Figures {
			var ps, es []float64
			for _, r := range rs {
				if i < len(r.Figures) && r.Figures[i].Key == f.Key {
					ps, es = append(ps, r.Figures[i].Prom), append(es, r.Figures[i].EM)
					f.RunRatios = append(f.RunRatios, r.Figures[i].ratio())
				}
			}
			f.Prom, f.EM = median(ps), median(es)
			m.Figures = append(m.Figures, f)
		}
		out = append(out, &m)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for _, r := range out {
		printTable(os.Stdout, r)
	}
	return nil
}
