package bench

import (
	"fmt"
	"testing"

	"github.com/eventmetrics/eventmetrics/bench/truth"
	"github.com/eventmetrics/eventmetrics/bench/workload"
	"github.com/eventmetrics/eventmetrics/engine"
)

// TestQueriesMatchTruth checks Q1–Q4 against the ground truth on small
// workloads with late (out-of-order) and duplicate points, which the
// standard workloads do not have, from 1 and 2 writers, on the head and
// after a reopen.
func TestQueriesMatchTruth(t *testing.T) {
	for _, kind := range kinds {
		for _, c := range []struct{ ooo, dup float64 }{{0, 0}, {0.1, 0.02}} {
			for _, writers := range []int{1, 2} {
				name := fmt.Sprintf("%v/ooo=%v/dup=%v/writers=%d", kind, c.ooo, c.dup, writers)
				t.Run(name, func(t *testing.T) {
					pts, cfg := workload.Collect(workload.Config{Kind: kind, Series: 1000, Points: 60, Seed: 7, OutOfOrder: c.ooo, Duplicates: c.dup})
					d := &dataset{cfg: cfg, pts: pts, truth: truth.New(cfg, pts)}
					dir := t.TempDir()
					// Small chunks, so that the points span many chunks.
					opts := &engine.Options{ChunkPoints: 16}
					db := openDB(t, dir, opts)
					if err := ingest(db, handles(t, db, d), workload.Split(pts, writers), 1000); err != nil {
						t.Fatal(err)
					}
					check := func(state string) {
						for i, q := range []func(*engine.DB, *dataset) error{runQ1, runQ2, runQ3, runQ4} {
							if err := q(db, d); err != nil {
								t.Errorf("%s: Q%d: %v", state, i+1, err)
							}
						}
					}
					check("head")
					if err := db.Compact(); err != nil {
						t.Fatal(err)
					}
					check("after Compact")
					if err := db.Close(); err != nil {
						t.Fatal(err)
					}
					db = openDB(t, dir, opts)
					defer db.Close()
					check("reopened")
				})
			}
		}
	}
}
