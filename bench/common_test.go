package bench

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/truth"
	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
)

// PointsEnv selects the points per series of the engine, WAL and query
// benchmarks: 10000 is the full standard workload (10M points); the default
// is 1000 (1M points), so that the whole suite runs in a few minutes.
const PointsEnv = "EVENTMETRICS_BENCH_POINTS"

// sizes are the data sizes of one suite.
type sizes struct {
	series      int   // series of the engine, WAL and query workloads (1000: the standard label sets)
	points      int   // points per series of those workloads
	encSeries   int   // series the encode benchmarks cut chunks from
	encPoints   int   // points per series generated for the encode benchmarks
	indexSeries []int // series counts of the index benchmarks
	batch       int   // points per Append (and per WAL batch record)
}

func defaultSizes() sizes {
	points := 1000
	if s := os.Getenv(PointsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			panic(fmt.Sprintf("%s=%q: want a positive number of points per series", PointsEnv, s))
		}
		points = n
	}
	return sizes{
		series:      1000,
		points:      points,
		encSeries:   16,
		encPoints:   2048, // 32 chunks of 1024 points
		indexSeries: []int{1_000, 100_000},
		batch:       1000,
	}
}

// benchCase is one leaf benchmark. The Benchmark functions run lists of
// them; the smoke test runs each once on tiny sizes.
type benchCase struct {
	name string
	run  func(b *testing.B)
}

func runCases(b *testing.B, cases []benchCase) {
	for _, c := range cases {
		b.Run(c.name, c.run)
	}
}

// suite holds the sizes and the shared, lazily built data of one run.
type suite struct {
	sz sizes

	mu       sync.Mutex
	data     map[dataKey]*dataset
	fixtures map[fixtureKey]*fixture
}

type dataKey struct {
	kind           workload.Kind
	series, points int
}

// dataset is a generated workload with its ground truth.
type dataset struct {
	cfg   workload.Config
	pts   []workload.Point
	truth *truth.Data

	once    sync.Once
	answers *truth.Truth
}

func (d *dataset) want() *truth.Truth {
	d.once.Do(func() { d.answers = d.truth.All() })
	return d.answers
}

func newSuite(sz sizes) *suite {
	return &suite{sz: sz, data: map[dataKey]*dataset{}, fixtures: map[fixtureKey]*fixture{}}
}

var (
	stdOnce  sync.Once
	stdSuite *suite
)

// std returns the suite of the Benchmark functions (sizes from the
// environment).
func std() *suite {
	stdOnce.Do(func() { stdSuite = newSuite(defaultSizes()) })
	return stdSuite
}

// workloadData generates (once per suite) the workload kind with the given
// shape.
func (s *suite) workloadData(kind workload.Kind, series, points int) *dataset {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := dataKey{kind, series, points}
	if d := s.data[k]; d != nil {
		return d
	}
	pts, cfg := workload.Collect(workload.Config{Kind: kind, Series: series, Points: points})
	d := &dataset{cfg: cfg, pts: pts, truth: truth.New(cfg, pts)}
	s.data[k] = d
	return d
}

// std returns the engine/query workload of the suite.
func (s *suite) std(kind workload.Kind) *dataset {
	return s.workloadData(kind, s.sz.series, s.sz.points)
}

var kinds = []workload.Kind{workload.Event, workload.Scrape}

func openDB(tb testing.TB, dir string, opts *engine.Options) *engine.DB {
	tb.Helper()
	db, err := engine.Open(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

// dirSize returns the bytes of the regular files under dir.
func dirSize(tb testing.TB, dir string) int64 {
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
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// handles resolves every series of the dataset in db, in series order.
func handles(tb testing.TB, db *engine.DB, d *dataset) []*engine.Series {
	hs := make([]*engine.Series, d.cfg.Series)
	for s := range hs {
		h, err := db.Series(d.cfg.Metric(), workload.Labels(s))
		if err != nil {
			tb.Fatal(err)
		}
		hs[s] = h
	}
	return hs
}

// shard is the share of one writer (see workload.Split).
type shard = workload.Shard

// ingest writes every shard from its own goroutine through db.Append in
// batches of batch points.
func ingest(db *engine.DB, hs []*engine.Series, shards []shard, batch int) error {
	var wg sync.WaitGroup
	errs := make([]error, len(shards))
	for w := range shards {
		wg.Go(func() {
			sh := &shards[w]
			var bt engine.Batch
			for i, s := range sh.Series {
				bt.Add(hs[s], sh.T[i], sh.V[i])
				if bt.Len() == batch || i == len(sh.Series)-1 {
					if err := db.Append(&bt); err != nil {
						errs[w] = err
						return
					}
					bt.Reset()
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// perSecond is n per second of d.
func perSecond(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}
