package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

// runPhases runs every phase and returns the figures. A phase that fails
// returns a nil report; wrong query answers return the report and an error.
func runPhases(ctx context.Context, c *config, stderr io.Writer) (*report, error) {
	logf := func(format string, args ...any) {
		if c.Log {
			fmt.Fprintf(stderr, "tsbench: "+format+"\n", args...)
		}
	}
	rep := newReport(c)
	dd, err := makeDataDir(c.Dir)
	if err != nil {
		return nil, err
	}
	c.Dir = dd.path
	rep.Dir = dd.path
	rep.FS = fsType(dd.path)
	rep.Kept = c.Keep
	defer func() {
		if c.Keep {
			logf("data kept in %s", dd.path)
			return
		}
		if err := dd.remove(); err != nil {
			fmt.Fprintf(stderr, "tsbench: remove the data directory: %v\n", err)
		}
	}()
	wc := c.workload()
	logf("%s, %d series × %d points = %d points (%s), %s, sync=%s",
		c.Kind, c.Series, c.Points, c.total(), rep.Shape, writeSetup(c), c.Sync)
	if c.Single && c.Sync == engine.SyncAlways && c.total() > 100_000 && !c.Quiet {
		fmt.Fprintf(stderr, "tsbench: warning: -mode=single with -sync=always waits for one fsync per point (often 100 µs to 1 ms): %d points may take a long time\n", c.total())
	}
	logf("data directory %s on %s (%s)", dd.path, orUnknown(rep.FS), map[bool]string{true: "kept: -keep", false: "removed at the end; -keep keeps it"}[c.Keep])

	// 1. Ingest, in the child, which reports and is then killed.
	cr, err := runChild(ctx, c, stderr)
	if err != nil {
		return nil, err
	}
	rep.fillIngest(c, cr)

	// 2. Reopen after the unclean stop.
	logf("killed the ingest process with SIGKILL after DB.Sync; reopening (log replay)")
	snap, snapErr := snapshotLog(dd.path)
	opts := &engine.Options{Sync: c.Sync}
	start := time.Now()
	db, err := engine.Open(dd.path, opts)
	if err != nil {
		if snap != nil {
			snap.remove()
		}
		return nil, fmt.Errorf("reopen after the unclean stop: %w", err)
	}
	rep.Reopen.Seconds = time.Since(start).Seconds()
	st := db.ReplayStats()
	rep.Reopen.Segments, rep.Reopen.Records, rep.Reopen.LogBytes = st.Segments, st.Records, st.Bytes
	rep.Reopen.TornTail, rep.Reopen.TruncatedBytes = st.TornTail, st.TruncatedBytes
	if snapErr == nil {
		n, err := snap.countReplayed(st.Records)
		snap.remove()
		if err != nil {
			rep.Reopen.PointsNote = "not counted: " + err.Error()
		} else {
			rep.Reopen.Points = n
			rep.Reopen.PointsPerSec = float64(n) / rep.Reopen.Seconds
		}
	} else {
		rep.Reopen.PointsNote = "not counted: " + snapErr.Error()
	}
	// Every point was acknowledged before DB.Sync returned: all must be
	// there.
	v, err := db.Query(wc.Metric()).Scalars(query.Count)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("count after the reopen: %w", err)
	}
	rep.Reopen.PointsAfter = int64(v[0])
	logf("reopen: %v; replayed %d log records, %.1f MiB, %d points",
		secs(rep.Reopen.Seconds), st.Records, mib(st.Bytes), rep.Reopen.Points)
	if rep.Reopen.PointsAfter != c.total() {
		db.Close()
		rep.comparePeers(c)
		return rep, fmt.Errorf("after kill -9 and reopen the DB holds %d points; %d were written and synced", rep.Reopen.PointsAfter, c.total())
	}

	// 3. Flush and compact, then close.
	start = time.Now()
	if err := db.Compact(); err != nil {
		db.Close()
		return nil, fmt.Errorf("compact: %w", err)
	}
	rep.Compact.CompactSeconds = time.Since(start).Seconds()
	start = time.Now()
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	rep.Compact.CloseSeconds = time.Since(start).Seconds()

	// 4. Disk size.
	du, err := measureDisk(dd.path)
	if err != nil {
		return nil, err
	}
	rep.Disk.diskUsage = du
	rep.Disk.BytesPerPoint = float64(du.Bytes) / float64(c.total())
	logf("compact %v, close %v; on disk %.1f MiB in %d files: %.2f bytes/point",
		secs(rep.Compact.CompactSeconds), secs(rep.Compact.CloseSeconds), mib(du.Bytes), du.Files, rep.Disk.BytesPerPoint)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// 5. Ground truth, then the queries on the DB reopened cleanly.
	var done atomic.Int64
	bar := startProgress(c.Progress, stderr, "truth", c.total(), &done)
	start = time.Now()
	tr, err := groundTruth(c, &done)
	bar.finish()
	if err != nil {
		return nil, err
	}
	logf("ground truth regenerated from the seed in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	db, err = engine.Open(dd.path, opts)
	if err != nil {
		return nil, fmt.Errorf("reopen after close: %w", err)
	}
	rep.CleanReopenSeconds = time.Since(start).Seconds()
	qerr := runQueries(ctx, c, db, tr, rep, logf)
	if err := db.Close(); err != nil && qerr == nil {
		qerr = fmt.Errorf("close after the queries: %w", err)
	}
	if ms, err := readMemStatus(); err == nil {
		rep.Memory.ParentPeakRSS = ms.Peak
	}
	rep.LoadAvgEnd = loadAverage()
	rep.comparePeers(c)
	return rep, qerr
}

// runQueries times Q1–Q4 (median of c.Runs runs each) and checks every
// answer against the ground truth.
func runQueries(ctx context.Context, c *config, db *engine.DB, tr *truth, rep *report, logf func(string, ...any)) error {
	wc := c.workload()
	metric := wc.Metric()
	var wrong []string
	add := func(q queryReport, ds []time.Duration, err error) {
		q.setTimes(ds)
		if err != nil {
			q.Error = err.Error()
			wrong = append(wrong, q.Name+": "+err.Error())
		} else {
			q.Verified = true
		}
		rep.Queries = append(rep.Queries, q)
		logf("%s: median %.3f ms of %d runs; %s; %s", q.Name, q.MedianMs, len(ds), q.Answer, map[bool]string{true: "correct", false: "WRONG"}[q.Verified])
	}

	// Q1: exact p50/p90/p99 over every point of one series, full range.
	{
		q := db.Query(metric, eqMatchers(q1Labels)...)
		want := percentilesOf(tr.Q1, 50, 90, 99)
		var got []float64
		ds, err := timeRuns(ctx, c.Runs, func() (err error) {
			got, err = q.Percentiles(50, 90, 99)
			return err
		}, func() error {
			for i := range want {
				if !sameFloat(got[i], want[i]) {
					return fmt.Errorf("p50/p90/p99 = %v, want %v", got, want)
				}
			}
			return nil
		})
		add(queryReport{
			Name: "Q1", What: "exact p50/p90/p99, one series (service=svc-0, endpoint=/api/0, status=200), full range",
			Series: tr.Q1Series, Points: int64(len(tr.Q1)),
			Answer: fmt.Sprintf("p50/p90/p99 = %s", fmtFloats(want)),
		}, ds, err)
	}
	// Q2: exact p99 over the series with service="svc-3", last 10%.
	{
		q := db.Query(metric, eqMatchers(q2Labels)...).FromNanos(q2From(wc))
		want := percentilesOf(tr.Q2, 99)
		var got []float64
		ds, err := timeRuns(ctx, c.Runs, func() (err error) {
			got, err = q.Percentiles(99)
			return err
		}, func() error {
			if !sameFloat(got[0], want[0]) {
				return fmt.Errorf("p99 = %v, want %v", got[0], want[0])
			}
			return nil
		})
		add(queryReport{
			Name: "Q2", What: `exact p99, the series with service="svc-3", last 10% of the time range`,
			Series: tr.Q2Series, Points: int64(len(tr.Q2)),
			Answer: fmt.Sprintf("p99 = %s", fmtFloats(want)),
		}, ds, err)
	}
	// Q3: sum and count per 60 s tumbling window, endpoint="/api/7".
	{
		q := db.Query(metric, eqMatchers(q3Labels)...).Step(q3Step)
		var pts int64
		for _, cell := range tr.Q3 {
			pts += int64(cell[1])
		}
		var rows []query.Row
		ds, err := timeRuns(ctx, c.Runs, func() (err error) {
			rows, err = q.AggregateBy(query.Sum, query.Count)
			return err
		}, func() error { return checkQ3(rows, tr.Q3) })
		add(queryReport{
			Name: "Q3", What: `sum and count per 60 s window, the series with endpoint="/api/7", full range`,
			Series: tr.Q3Series, Points: pts,
			Answer: fmt.Sprintf("%s windows", commas(int64(len(tr.Q3)))),
		}, ds, err)
	}
	// Q4: count and sum over every point of every series.
	{
		q := db.Query(metric)
		var v []float64
		ds, err := timeRuns(ctx, c.Runs, func() (err error) {
			v, err = q.Scalars(query.Count, query.Sum)
			return err
		}, func() error {
			if int64(v[0]) != c.total() || v[0] != float64(c.total()) {
				return fmt.Errorf("count = %v, want %d (the points written)", v[0], c.total())
			}
			if !closeFloat(v[1], tr.Sum) {
				return fmt.Errorf("sum = %v, want %v", v[1], tr.Sum)
			}
			return nil
		})
		add(queryReport{
			Name: "Q4", What: "count and sum, every point of every series",
			Series: c.Series, Points: c.total(),
			Answer: fmt.Sprintf("count = %s, sum = %.6g", commas(c.total()), tr.Sum),
		}, ds, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rep.Verified = len(wrong) == 0
	if len(wrong) > 0 {
		return errors.New("wrong answers: " + strings.Join(wrong, "; "))
	}
	return nil
}

// checkQ3 compares the rows of Q3 with the ground truth.
func checkQ3(rows []query.Row, want map[int64]*[2]float64) error {
	if len(want) == 0 {
		if len(rows) != 0 {
			return fmt.Errorf("%d rows, want none", len(rows))
		}
		return nil
	}
	if len(rows) != 1 {
		return fmt.Errorf("%d rows, want 1 (no grouping)", len(rows))
	}
	r := rows[0]
	if len(r.Times) != len(want) {
		return fmt.Errorf("%d windows, want %d", len(r.Times), len(want))
	}
	for i, t := range r.Times {
		w := want[t]
		if w == nil {
			return fmt.Errorf("window at %d has no points in the ground truth", t)
		}
		sum, count := r.Values[i][0], r.Values[i][1]
		if count != w[1] || !closeFloat(sum, w[0]) {
			return fmt.Errorf("window at %d: sum %v count %v, want sum %v count %v", t, sum, count, w[0], w[1])
		}
	}
	return nil
}

// timeRuns times n runs of fn, checking each run's answer with check
// (untimed). It stops at the first error.
func timeRuns(ctx context.Context, n int, fn, check func() error) ([]time.Duration, error) {
	ds := make([]time.Duration, 0, n)
	for range n {
		if err := ctx.Err(); err != nil {
			return ds, err
		}
		start := time.Now()
		err := fn()
		ds = append(ds, time.Since(start))
		if err == nil {
			err = check()
		}
		if err != nil {
			return ds, err
		}
	}
	return ds, nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtFloats(vs []float64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprintf("%.6g", v)
	}
	return strings.Join(s, "/")
}

func secs(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown filesystem"
	}
	return s
}

func goVersion() string { return runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH }
