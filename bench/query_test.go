package bench

import (
	"os"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/bench/truth"
	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

type fixtureKey struct {
	kind   workload.Kind
	stored bool
}

// fixture is a DB holding a whole workload, ingested with one writer in
// batches of 1,000 points: "stored" was closed and reopened, so that every
// point is read from pebble; "head" was left open after the ingest, so that
// the points not yet checkpointed are read from memory.
type fixture struct {
	db  *engine.DB
	dir string
	d   *dataset
}

func (s *suite) fixture(b *testing.B, kind workload.Kind, stored bool) *fixture {
	d := s.std(kind)
	s.mu.Lock()
	defer s.mu.Unlock()
	k := fixtureKey{kind, stored}
	if f := s.fixtures[k]; f != nil {
		return f
	}
	dir, err := os.MkdirTemp("", "eventmetrics-bench-query-")
	if err != nil {
		b.Fatal(err)
	}
	db := openDB(b, dir, nil)
	if err := ingest(db, handles(b, db, d), workload.Split(d.pts, 1), s.sz.batch); err != nil {
		b.Fatal(err)
	}
	if stored {
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		db = openDB(b, dir, nil)
	}
	f := &fixture{db: db, dir: dir, d: d}
	s.fixtures[k] = f
	return f
}

// closeFixtures closes and removes every query fixture.
func (s *suite) closeFixtures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, f := range s.fixtures {
		f.db.Close()
		os.RemoveAll(f.dir)
		delete(s.fixtures, k)
	}
}

// The queries of WORKLOADS.md, as the engine runs them (see package truth
// for their exact definitions).

func q1(db *engine.DB, cfg workload.Config) *query.Query {
	l := truth.Q1Labels
	return db.Query(cfg.Metric(), query.Eq("service", l["service"]), query.Eq("endpoint", l["endpoint"]), query.Eq("status", l["status"]))
}

func q2(db *engine.DB, cfg workload.Config) *query.Query {
	return db.Query(cfg.Metric(), query.Eq("service", truth.Q2Service)).FromNanos(truth.Q2From(cfg))
}

func q3(db *engine.DB, cfg workload.Config) *query.Query {
	return db.Query(cfg.Metric(), query.Eq("endpoint", truth.Q3Endpoint)).Step(time.Duration(truth.Q3Step))
}

func q4(db *engine.DB, cfg workload.Config) *query.Query { return db.Query(cfg.Metric()) }

// runQ1..runQ4 run a query and check its answer against the truth.

func runQ1(db *engine.DB, d *dataset) error {
	ps, err := q1(db, d.cfg).Percentiles(50, 90, 99)
	if err != nil {
		return err
	}
	return truth.CheckPercentiles("Q1", ps, d.want().Q1)
}

func runQ2(db *engine.DB, d *dataset) error {
	ps, err := q2(db, d.cfg).Percentiles(99)
	if err != nil {
		return err
	}
	return truth.CheckPercentiles("Q2", ps, []float64{d.want().Q2})
}

func runQ3(db *engine.DB, d *dataset) error {
	rows, err := q3(db, d.cfg).AggregateBy(query.Sum, query.Count)
	if err != nil {
		return err
	}
	var starts []int64
	var sums, counts []float64
	if len(rows) == 1 {
		starts = rows[0].Times
		for _, v := range rows[0].Values {
			sums, counts = append(sums, v[0]), append(counts, v[1])
		}
	}
	_, err = truth.CheckWindows(starts, counts, sums, d.want().Q3)
	return err
}

func runQ4(db *engine.DB, d *dataset) error {
	v, err := q4(db, d.cfg).Scalars(query.Count, query.Sum)
	if err != nil {
		return err
	}
	_, err = truth.CheckScalars(v[0], v[1], d.want().Q4)
	return err
}

func (s *suite) queryCases() []benchCase {
	type qdef struct {
		name   string
		check  func(*engine.DB, *dataset) error
		run    func(*engine.DB, workload.Config) error // the timed call
		points func(*truth.Truth) int
	}
	qs := []qdef{
		{"Q1", runQ1, func(db *engine.DB, cfg workload.Config) error {
			_, err := q1(db, cfg).Percentiles(50, 90, 99)
			return err
		}, func(t *truth.Truth) int { return t.Q1Count }},
		{"Q2", runQ2, func(db *engine.DB, cfg workload.Config) error {
			_, err := q2(db, cfg).Percentiles(99)
			return err
		}, func(t *truth.Truth) int { return t.Q2N }},
		{"Q3", runQ3, func(db *engine.DB, cfg workload.Config) error {
			_, err := q3(db, cfg).AggregateBy(query.Sum, query.Count)
			return err
		}, func(t *truth.Truth) int { return t.Q3N }},
		{"Q4", runQ4, func(db *engine.DB, cfg workload.Config) error {
			_, err := q4(db, cfg).Scalars(query.Count, query.Sum)
			return err
		}, func(t *truth.Truth) int { return t.Q4.N() }},
	}
	var cases []benchCase
	for _, kind := range kinds {
		for _, stored := range []bool{true, false} {
			state := "stored"
			if !stored {
				state = "head"
			}
			for _, q := range qs {
				cases = append(cases, benchCase{kind.String() + "/" + state + "/" + q.name, func(b *testing.B) {
					f := s.fixture(b, kind, stored)
					if err := q.check(f.db, f.d); err != nil {
						b.Fatalf("%v %s %s: wrong answer: %v", kind, state, q.name, err)
					}
					n := q.points(f.d.want())
					b.ReportAllocs()
					ops := 0
					for b.Loop() {
						if err := q.run(f.db, f.d.cfg); err != nil {
							b.Fatal(err)
						}
						ops++
					}
					b.ReportMetric(perSecond(float64(ops*n), b.Elapsed()), "points/s")
				}})
			}
		}
	}
	return cases
}

// BenchmarkQuery runs Q1–Q4 of WORKLOADS.md on both workloads, on a DB that
// was closed and reopened (stored: every chunk in pebble) and on one left
// open after the ingest (head: what was not checkpointed yet is read from
// memory). Each answer is checked against the exact ground truth before
// the timer starts. points/s counts the points each query selects.
func BenchmarkQuery(b *testing.B) {
	s := std()
	defer s.closeFixtures()
	runCases(b, s.queryCases())
}
