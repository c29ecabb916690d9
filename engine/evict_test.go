package engine_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

// TestIdleSeriesLeaveMemory: series whose data is checkpointed and that no
// one holds leave memory; they come back transparently on the next write
// or query, and a held handle keeps working.
func TestIdleSeriesLeaveMemory(t *testing.T) {
	db := open(t, t.TempDir(), nil)
	defer db.Close()
	const n = 2000
	held, err := db.Series("churn", engine.Labels{"id": "held"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := db.ObserveAt(time.Unix(0, int64(i)), "churn", float64(i), engine.Labels{"id": strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := held.ObserveAtNanos(1, 1); err != nil {
		t.Fatal(err)
	}
	if got := db.LiveSeries(); got < n {
		t.Fatalf("%d series in memory before the checkpoint, want %d", got, n+1)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for db.LiveSeries() > 1 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := db.LiveSeries(); got > 1 {
		t.Fatalf("%d series still in memory after a checkpoint and GC, want 1 (the held one)", got)
	}
	// Everything is still there, and comes back on demand.
	if c, err := db.Query("churn").Scalar(query.Count); err != nil || c != n+1 {
		t.Fatalf("count %v (%v), want %d", c, err, n+1)
	}
	rows, err := db.Query("churn", query.Re("id", "1.")).GroupBy("id").AggregateBy(query.Count)
	if err != nil || len(rows) != 10 {
		t.Fatalf("grouped over evicted series: %d rows, %v", len(rows), err)
	}
	// Writes through a new lookup and through the held handle.
	if err := db.Observe("churn", 5, engine.Labels{"id": "7"}); err != nil {
		t.Fatal(err)
	}
	if err := held.ObserveAtNanos(2, 2); err != nil {
		t.Fatal(err)
	}
	again, _ := db.Series("churn", engine.Labels{"id": "held"})
	if again != held {
		t.Fatal("a held handle and a new lookup gave two objects for one series")
	}
	if c, _ := db.Query("churn", query.Eq("id", "7")).Scalar(query.Count); c != 2 {
		t.Fatalf("series 7: %v points, want 2", c)
	}
	if c, _ := db.Query("churn", query.Eq("id", "held")).Scalar(query.Count); c != 2 {
		t.Fatalf("held series: %v points, want 2", c)
	}
	if db.SeriesCount() != n+1 {
		t.Fatalf("series count %d", db.SeriesCount())
	}
}
