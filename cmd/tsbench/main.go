// Command tsbench shows, in under a minute, what the eventmetrics engine does
// on this machine: how fast it ingests, how much memory and disk it takes,
// how long it takes to reopen after a crash, and how fast it answers the
// standard queries Q1–Q4, on the standard workloads of WORKLOADS.md
// (W-event and W-scrape, generated deterministically from a seed by package
// bench/workload).
//
// Usage:
//
//	go run ./cmd/tsbench                          # W-event, 1,000 series × 1,000 points
//	go run ./cmd/tsbench --full                   # the standard full run: 1,000 × 10,000
//	go run ./cmd/tsbench --full --workload=scrape --writers=2
//	go run ./cmd/tsbench --mode=single            # one ObserveAtNanos per point: latency p50/p99
//	go run ./cmd/tsbench --sync=always --writers=2
//	go run ./cmd/tsbench --out-of-order=0.1 --duplicates=0.01 --seed=7
//	go run ./cmd/tsbench --json > figures.json    # one JSON object on stdout, nothing else
//	go run ./cmd/tsbench --dir=/mnt/nvme/tsb --keep
//
// Phases:
//
//  1. ingest: tsbench re-executes itself as a child process that opens the
//     DB in the data directory, generates the workload and writes it
//     (batches through engine.Batch and DB.Append, or single points through
//     Series.ObserveAtNanos), calls DB.Sync, reports its figures (rates,
//     latencies, VmRSS and VmHWM from /proc/self/status) on stdout, and
//     waits;
//  2. unclean stop: the parent kills the child with SIGKILL — no Close, no
//     final checkpoint — and times engine.Open on the directory (the log
//     replay);
//  3. flush and compact: DB.Compact, then DB.Close;
//  4. disk size: every file under the data directory, log and index included;
//  5. queries Q1–Q4 of WORKLOADS.md on the DB reopened cleanly, the median
//     of 5 runs each, every answer checked against ground truth computed by
//     regenerating the workload from its seed.
//
// How the figures are measured:
//
//   - ingest rate: points / the time from the first point generated to the
//     last write returned, DB.Sync excluded (reported apart). The generator
//     runs inside it, on its own goroutine, dealing each point to the
//     writer that owns its series (series s to writer s mod -writers), as
//     PEERS.md's peers included generation; "generation alone" is the
//     generator's own rate, and the table says when it is the bottleneck
//     (it is, with -out-of-order);
//   - append latency (-mode=single): every Series.ObserveAtNanos timed with
//     time.Now/time.Since into a log-linear histogram (±0.8%); the timing's
//     own cost is measured and shown beside it;
//   - peak RSS: VmHWM of the ingesting process after the ingest and the
//     sync. RSS per active series: (VmRSS right after the last write −
//     VmRSS after Open and a forced GC, before any series exists) / series:
//     it includes every point the engine still holds in memory, not only
//     per-series bookkeeping; the same with the live Go heap after a GC is
//     shown beside it;
//   - reopen: engine.Open after SIGKILL; the log segments present at the
//     kill are hard-linked aside first so that the points the engine
//     replayed (the last ReplayStats.Records records of the log) can be
//     counted afterwards, which gives the replay rate; every synced point
//     must be there after the reopen;
//   - disk: the sizes of every regular file under the data directory after
//     DB.Compact and DB.Close, divided by the points written;
//   - queries: db.Query(...).Percentiles / Step(time.Minute).AggregateBy /
//     Scalars on the DB reopened after Close, each run -runs times (5);
//     the median is reported, and every run's answer is compared with the
//     ground truth (percentiles bit for bit, sums to 1e-9).
//
// It prints a table of every figure (or one JSON object with --json), with
// the Prometheus TSDB figures of PEERS.md beside them when the run is the
// standard full workload (--full). Progress bars go to stderr, only when
// stderr is a terminal and neither --json nor --quiet is given.
//
// Exit status: 0 on success, 1 when a phase fails or an answer is wrong, 2 on
// a bad flag or flag value, 130 when interrupted (the data directory is
// removed all the same unless -keep).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
)

// Default run: small enough to finish well within a minute on a 2-core
// machine, large enough that every standard query selects what it does on
// the full workload (1,000 series: Q2 matches 100 series, Q3 50).
const (
	defaultSeries = 1000
	defaultPoints = 1000
	fullSeries    = 1000
	fullPoints    = 10_000
	defaultBatch  = 1000
	defaultRuns   = 5
	maxBatch      = 1 << 20
	maxTotal      = 1 << 31 // points per run: beyond, the ground truth alone needs GBs
)

func main() {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(childMain(spec))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second interrupt kills tsbench at once
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config is one run's settings. It is passed to the ingest child as JSON.
type config struct {
	Kind       workload.Kind   `json:"kind"`
	Series     int             `json:"series"`
	Points     int             `json:"points"` // per series
	Seed       uint64          `json:"seed"`
	OutOfOrder float64         `json:"out_of_order"`
	Duplicates float64         `json:"duplicates"`
	Writers    int             `json:"writers"`
	Batch      int             `json:"batch"` // points per Append (batch mode)
	Sync       engine.SyncMode `json:"sync"`
	Single     bool            `json:"single"` // --mode=single
	Dir        string          `json:"dir"`
	Keep       bool            `json:"-"`
	JSON       bool            `json:"-"`
	Quiet      bool            `json:"-"`
	Full       bool            `json:"-"`
	Runs       int             `json:"-"`
	// Progress: draw progress bars on stderr. Log: print phase lines on
	// stderr.
	Progress bool `json:"progress"`
	Log      bool `json:"log"`
}

func (c *config) workload() workload.Config {
	return workload.Config{Kind: c.Kind, Series: c.Series, Points: c.Points, Seed: c.Seed, OutOfOrder: c.OutOfOrder, Duplicates: c.Duplicates}
}

func (c *config) total() int64 { return int64(c.Series) * int64(c.Points) }

func (c *config) modeName() string {
	if c.Single {
		return "single"
	}
	return "batch"
}

// standard reports whether the run is the standard full workload of
// WORKLOADS.md, to which the PEERS.md figures apply.
func (c *config) standard() bool {
	return c.Series == fullSeries && c.Points == fullPoints && c.Seed == workload.DefaultSeed &&
		c.OutOfOrder == 0 && c.Duplicates == 0
}

// usageError is a bad flag or flag value: exit status 2. printed: the flag
// package has already reported it, with the usage.
type usageError struct {
	msg     string
	printed bool
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// choice is a flag.Value restricted to a few words.
type choice struct {
	val     string
	allowed []string
}

func (c *choice) String() string { return c.val }

func (c *choice) Set(s string) error {
	for _, a := range c.allowed {
		if s == a {
			c.val = s
			return nil
		}
	}
	return fmt.Errorf("want %s", strings.Join(c.allowed, ", "))
}

const usageHead = `tsbench: what the eventmetrics engine does on this machine, in under a minute.

Usage: go run ./cmd/tsbench [flags]

Ingests a standard workload (WORKLOADS.md) in a child process, kills it with
SIGKILL, times the reopen (log replay), compacts, measures the disk size, and
times the queries Q1-Q4 (median of runs, answers checked). The default run is
1,000 series x 1,000 points; --full is the standard 1,000 x 10,000.

Flags:
`

// parseFlags turns the command line into a config. The error is a
// *usageError for bad flags and values (and flag.ErrHelp for -h).
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("tsbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	kind := &choice{val: "event", allowed: []string{"event", "scrape"}}
	syncMode := &choice{val: "interval", allowed: []string{"always", "interval", "never"}}
	mode := &choice{val: "batch", allowed: []string{"batch", "single"}}
	fs.Var(kind, "workload", "the workload (`event|scrape`): W-event or W-scrape of WORKLOADS.md")
	series := fs.Int("series", defaultSeries, "number of series")
	points := fs.Int("points", defaultPoints, "points per series")
	full := fs.Bool("full", false, "the standard full workload: 1,000 series × 10,000 points (compared with PEERS.md)")
	writers := fs.Int("writers", 1, "concurrent writers, each owning a disjoint share of the series")
	batch := fs.Int("batch", defaultBatch, "points per DB.Append (batch mode only)")
	fs.Var(syncMode, "sync", "durability of writes (`always|interval|never`): engine.Options.Sync; interval fsyncs every 1 s")
	fs.Var(mode, "mode", "how points are written (`batch|single`): engine.Batch + DB.Append, or one Series.ObserveAtNanos per point (with latency p50/p99)")
	dir := fs.String("dir", "", "data directory `path`, empty or missing (default: a new temporary directory)")
	keep := fs.Bool("keep", false, "keep the data directory afterwards (default: remove what tsbench wrote)")
	asJSON := fs.Bool("json", false, "print the figures as one JSON object on stdout (and nothing else)")
	quiet := fs.Bool("quiet", false, "no progress bars or phase lines on stderr")
	ooo := fs.Float64("out-of-order", 0, "`fraction` (0..1) of points delayed by up to 100 rounds")
	dups := fs.Float64("duplicates", 0, "`fraction` (0..1) of points that repeat their series' previous timestamp")
	seed := fs.Uint64("seed", workload.DefaultSeed, "seed of the generator (the standard runs use the default)")
	runs := fs.Int("runs", defaultRuns, "runs of each query; the median is reported")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		// The flag package has printed the error and the usage.
		return nil, &usageError{msg: err.Error(), printed: true}
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (tsbench takes only flags)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	c := &config{
		Series: *series, Points: *points, Seed: *seed, OutOfOrder: *ooo, Duplicates: *dups,
		Writers: *writers, Batch: *batch, Single: mode.val == "single", Dir: *dir,
		Keep: *keep, JSON: *asJSON, Quiet: *quiet, Full: *full, Runs: *runs,
	}
	c.Kind, _ = workload.ParseKind(kind.val)
	switch syncMode.val {
	case "always":
		c.Sync = engine.SyncAlways
	case "never":
		c.Sync = engine.SyncNever
	default:
		c.Sync = engine.SyncInterval
	}
	if *full {
		if set["series"] || set["points"] {
			return nil, usagef("-full sets -series=%d and -points=%d: give either -full or -series/-points", fullSeries, fullPoints)
		}
		c.Series, c.Points = fullSeries, fullPoints
	}
	switch {
	case c.Series < 1 || c.Series > math.MaxUint32/2:
		return nil, usagef("-series: must be at least 1, got %d", c.Series)
	case c.Points < 1:
		return nil, usagef("-points: must be at least 1, got %d", c.Points)
	case c.total() > maxTotal:
		return nil, usagef("-series × -points = %d points: at most %d per run", c.total(), int64(maxTotal))
	case c.Writers < 1 || c.Writers > c.Series:
		return nil, usagef("-writers: must be between 1 and the number of series (%d), got %d", c.Series, c.Writers)
	case c.Batch < 1 || c.Batch > maxBatch:
		return nil, usagef("-batch: must be between 1 and %d, got %d", maxBatch, c.Batch)
	case c.Single && set["batch"]:
		return nil, usagef("-batch applies to -mode=batch only (single mode writes one point per call)")
	case !(c.OutOfOrder >= 0 && c.OutOfOrder < 1):
		return nil, usagef("-out-of-order: must be a fraction in [0, 1), got %v", c.OutOfOrder)
	case !(c.Duplicates >= 0 && c.Duplicates < 1):
		return nil, usagef("-duplicates: must be a fraction in [0, 1), got %v", c.Duplicates)
	case c.Seed == 0:
		return nil, usagef("-seed: must be positive (the generator reads 0 as the default seed %d)", uint64(workload.DefaultSeed))
	case c.Runs < 1 || c.Runs > 1000:
		return nil, usagef("-runs: must be between 1 and 1000, got %d", c.Runs)
	}
	return c, nil
}

// run is the whole command; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue *usageError
		if !errors.As(err, &ue) || !ue.printed {
			fmt.Fprintf(stderr, "tsbench: %v\nRun 'tsbench -h' for the flags.\n", err)
		}
		return 2
	}
	c.Log = !c.Quiet && !c.JSON
	c.Progress = c.Log && isTerminal(stderr)
	if err := checkDir(c.Dir); err != nil {
		fmt.Fprintf(stderr, "tsbench: %s\nRun 'tsbench -h' for the flags.\n", err)
		return 2
	}
	rep, err := runPhases(ctx, c, stderr)
	if rep != nil {
		if c.JSON {
			if werr := writeJSON(stdout, rep); werr != nil && err == nil {
				err = werr
			}
		} else {
			writeTable(stdout, rep)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "tsbench: interrupted (%v)\n", err)
			return 130
		}
		fmt.Fprintf(stderr, "tsbench: %v\n", err)
		return 1
	}
	return 0
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
