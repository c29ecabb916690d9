// Command eventmetrics is the command line of eventmetrics.
//
//	eventmetrics serve        run the store in a directory as an HTTP server
//	eventmetrics query        run a query, on a store or through a server
//	eventmetrics export DIR   write points as JSON lines or CSV
//	eventmetrics import       read them back, into a store or a server
//	eventmetrics stats DIR    series, points, disk and label cardinality
//	eventmetrics check DIR    verify every checksum and the index of a store
//	eventmetrics compact DIR  merge chunks, apply retention, reclaim space
//
// Each command prints its flags with --help.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
)

const usage = `usage: eventmetrics <command> [arguments]

commands:
  serve        run the store in --data DIR (default ./data) as an HTTP server
               on --listen ADDR (default 127.0.0.1:9470): JSON and Prometheus
               remote-write ingest, text import, the native query API;
               --demo writes a stream of synthetic events to look at
  query SEL    run a query (aggregations, percentiles, buckets, points, by
               group and window) on a store (--data) or a server (--url);
               prints a table, or JSON with --json
  export DIR   write the points of a store as JSON lines or CSV
  import       write JSON lines or CSV points into a store or a server
  stats DIR    series, points and disk use per metric, cardinality per label
  check DIR    open the store in DIR (replaying its log), verify every chunk's
               checksums, the series entries and the postings; exit 1 if
               anything is damaged
  compact DIR  merge each series' overlapping and small chunks, remove data
               older than --retention, pack chunks older than --cold-after
               into compressed blocks (with --rollups tiers), and reclaim
               the space

Run "eventmetrics COMMAND --help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "query":
		return queryCmd(args[1:], stdout, stderr)
	case "export":
		return exportCmd(args[1:], stdout, stderr)
	case "import":
		return importCmd(args[1:], stdout, stderr)
	case "stats":
		return statsCmd(args[1:], stdout, stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "compact":
		return compactCmd(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "eventmetrics: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repair := fs.Bool("repair-wal", false, "cut the log at a corruption in its middle instead of refusing to open")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: eventmetrics check [--repair-wal] DIR")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	dir := fs.Arg(0)
	if _, err := os.Stat(dir); err != nil {
		fmt.Fprintf(stderr, "eventmetrics check: %v\n", err)
		return 2
	}
	db, err := engine.Open(dir, &engine.Options{RepairWAL: *repair})
	if err != nil {
		fmt.Fprintf(stderr, "eventmetrics check: %v\n", err)
		if errors.Is(err, engine.ErrLocked) {
			return 2
		}
		return 1
	}
	defer db.Close()
	rs := db.ReplayStats()
	fmt.Fprintf(stdout, "log: replayed %d records from %d segments", rs.Records, rs.Segments)
	if rs.TornTail {
		fmt.Fprintf(stdout, " (repaired a torn tail: %d bytes cut)", rs.TruncatedBytes)
	}
	if rs.RepairedCorruption {
		fmt.Fprintf(stdout, " (cut at a corruption: %d bytes dropped)", rs.DroppedBytes)
	}
	fmt.Fprintln(stdout)
	if err := db.Compact(); err != nil {
		fmt.Fprintf(stderr, "eventmetrics check: checkpoint: %v\n", err)
		return 1
	}
	r, err := db.Check()
	if err != nil {
		fmt.Fprintf(stderr, "eventmetrics check: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "store: %d series, %d chunks, %d points, %d postings lists\n", r.Series, r.Chunks, r.Points, r.Postings)
	if r.OK() {
		fmt.Fprintln(stdout, "ok: no damage found")
		return 0
	}
	fmt.Fprintf(stdout, "DAMAGED: %d problems\n", len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintln(stdout, "  "+p)
	}
	return 1
}

func compactCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	fs.SetOutput(stderr)
	retention := fs.Duration("retention", 0, "remove data older than this (0 = keep everything)")
	coldAfter := fs.Duration("cold-after", 24*time.Hour, "pack chunks whose newest point is older than this into cold blocks")
	rollups := fs.String("rollups", "", "rollup tier widths for the cold blocks written, comma-separated (e.g. 1m,1h)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: eventmetrics compact [--retention DURATION] [--cold-after DURATION] [--rollups W,W...] DIR")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	opts := &engine.Options{Retention: *retention, ColdAfter: *coldAfter}
	if *rollups != "" {
		for _, w := range strings.Split(*rollups, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(w))
			if err != nil {
				fmt.Fprintf(stderr, "eventmetrics compact: --rollups: %v\n", err)
				return 2
			}
			opts.Rollups = append(opts.Rollups, d)
		}
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintf(stderr, "eventmetrics compact: %v\n", err)
		return 2
	}
	dir := fs.Arg(0)
	if _, err := os.Stat(dir); err != nil {
		fmt.Fprintf(stderr, "eventmetrics compact: %v\n", err)
		return 2
	}
	db, err := engine.Open(dir, opts)
	if err != nil {
		fmt.Fprintf(stderr, "eventmetrics compact: %v\n", err)
		if errors.Is(err, engine.ErrLocked) {
			return 2
		}
		return 1
	}
	defer db.Close()
	before := dirBytes(dir)
	if err := db.Compact(); err != nil {
		fmt.Fprintf(stderr, "eventmetrics compact: %v\n", err)
		return 1
	}
	st := db.LastCompaction()
	if err := db.Close(); err != nil {
		fmt.Fprintf(stderr, "eventmetrics compact: %v\n", err)
		return 1
	}
	after := dirBytes(dir)
	fmt.Fprintf(stdout, "merged %d chunks into %d, removed %d expired, rewrote %d points in %v\n",
		st.ChunksMerged, st.ChunksWritten, st.ChunksExpired, st.PointsRewrites, st.Duration.Round(1e6))
	fmt.Fprintf(stdout, "packed %d cold chunks into %d blocks (%d with a zstd payload blob, %d with rollups)\n",
		st.ChunksBlocked, st.BlocksWritten, st.BlobsWritten, st.RollupsWritten)
	fmt.Fprintf(stdout, "disk: %d -> %d bytes\n", before, after)
	return 0
}

// dirBytes sums the sizes of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

// parseArgs parses a command's flags and checks that nargs arguments
// follow them. When it fails it has printed why (or the usage) and returns
// the exit code: 0 for --help, 2 for a usage error.
func parseArgs(fs *flag.FlagSet, args []string, nargs int) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() != nargs {
		fs.Usage()
		return 2, false
	}
	return 0, true
}
