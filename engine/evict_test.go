package engine_test

import (
	"fmt"
	"os"
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

// TestSeriesChurnMemory writes waves of new series (the old ones stop):
// the series held in memory follow the active wave, and the heap stays
// within the documented budget — about 2 KiB per active series plus the
// postings of every series ever created (under 1 KiB each with a unique
// label value) plus pebble's fixed memtable and cache.
func TestSeriesChurnMemory(t *testing.T) {
	waves, per := 4, 25_000
	if testing.Short() {
		waves, per = 3, 5_000
	}
	// EVENTMETRICS_CHURN=waves,per scales it (10,100000 for a million series).
	if v := os.Getenv("EVENTMETRICS_CHURN"); v != "" {
		fmt.Sscanf(v, "%d,%d", &waves, &per)
	}
	db := open(t, t.TempDir(), &engine.Options{MemTableSize: 8 << 20, CacheSize: 8 << 20})
	defer db.Close()
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	for w := 0; w < waves; w++ {
		for i := 0; i < per; i++ {
			id := strconv.Itoa(w*per + i)
			if err := db.ObserveAt(time.Unix(0, int64(i)), "churn", 1, engine.Labels{"id": id, "svc": "a"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Compact(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for db.LiveSeries() > per/10 && time.Now().Before(deadline) {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		total := (w + 1) * per
		heap := int64(m.HeapAlloc) - int64(base.HeapAlloc)
		budget := int64(per)*2048 + int64(total)*1024 + 24<<20
		t.Logf("wave %d: %d series so far, %d in memory, heap +%d KiB (budget %d KiB)", w, total, db.LiveSeries(), heap>>10, budget>>10)
		if live := db.LiveSeries(); live > per/10 {
			t.Fatalf("wave %d: %d series still in memory after they went idle", w, live)
		}
		if heap > budget {
			t.Fatalf("wave %d: heap grew by %d KiB, over the budget of %d KiB", w, heap>>10, budget>>10)
		}
	}
	if c, _ := db.Query("churn").Scalar(query.Count); int(c) != waves*per {
		t.Fatalf("count %v, want %d", c, waves*per)
	}
}
