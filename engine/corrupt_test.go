package engine_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

// TestTableCorruption flips a bit at several places of the stored tables:
// each time, the open fails saying the store is corrupt, or the queries
// over the damaged range fail with an error — never wrong numbers — and
// Check reports the damage.
func TestTableCorruption(t *testing.T) {
	for _, frac := range []float64{0.2, 0.4, 0.5, 0.6, 0.8} {
		t.Run(fmt.Sprint(frac), func(t *testing.T) { tableCorruption(t, frac) })
	}
}

func tableCorruption(t *testing.T, frac float64) {
	dir := t.TempDir()
	db := open(t, dir, nil)
	s, _ := db.Series("m", engine.Labels{"a": "b"})
	var b engine.Batch
	for i := 0; i < 20000; i++ {
		b.Add(s, int64(i)*1e9, math.Sqrt(float64(i))) // ~7 bytes a point: many table blocks
	}
	if err := db.Append(&b); err != nil {
		t.Fatal(err)
	}
	db.Close()
	var big string
	var size int64
	filepath.Walk(filepath.Join(dir, "data"), func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".sst") && info.Size() > size {
			big, size = p, info.Size()
		}
		return nil
	})
	if big == "" {
		t.Fatal("no tables")
	}
	data, _ := os.ReadFile(big)
	data[int(float64(len(data))*frac)] ^= 0x40
	os.WriteFile(big, data, 0o644)

	db, err := engine.Open(dir, &engine.Options{CacheSize: 1})
	if err != nil {
		if !strings.Contains(err.Error(), "corrupt") && !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("open of a damaged store: %v", err)
		}
		t.Logf("open refused: %.120s", err)
		return
	}
	defer db.Close()
	vs, qerr := db.Query("m").Values()
	if qerr == nil {
		if len(vs) != 20000 {
			t.Fatalf("%d values after a bit flip, and no error", len(vs))
		}
		for i, v := range vs {
			if v != math.Sqrt(float64(i)) {
				t.Fatalf("wrong value %v at %d after a bit flip, and no error", v, i)
			}
		}
	} else {
		t.Logf("query over damaged data: %.160s", qerr)
	}
	r, err := db.Check()
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case qerr != nil && r.OK():
		t.Fatalf("the query failed, but check found no damage")
	case !r.OK():
		t.Logf("check: %.160s", r.Problems[0])
	default:
		t.Logf("the flipped bit hit bytes that nothing reads")
	}
}

// TestCloseWhileBusy closes the DB under concurrent writers and readers:
// late calls get ErrClosed (never a panic or a hang), and every write that
// returned nil is there after reopening.
func TestCloseWhileBusy(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, &engine.Options{ChunkPoints: 32, CheckpointBytes: 16 << 10})
	var acked [4]atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s, err := db.Series("busy", engine.Labels{"w": string(rune('a' + w))})
			if err != nil {
				return
			}
			for i := 0; ; i++ {
				if err := s.ObserveAtNanos(int64(i), float64(i)); err != nil {
					if !errors.Is(err, engine.ErrClosed) {
						t.Errorf("write after Close: %v, want ErrClosed", err)
					}
					return
				}
				acked[w].Store(int64(i + 1))
			}
		}(w)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, err := db.Query("busy").Scalar(query.Count); err != nil {
				if !errors.Is(err, engine.ErrClosed) {
					t.Errorf("query after Close: %v", err)
				}
				return
			}
		}
	}()
	for acked[0].Load() < 2000 {
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	db = open(t, dir, nil)
	defer db.Close()
	for w := 0; w < 4; w++ {
		vs, err := db.Query("busy", query.Eq("w", string(rune('a'+w)))).Values()
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(vs)) < acked[w].Load() {
			t.Fatalf("writer %d: %d points kept, %d acknowledged", w, len(vs), acked[w].Load())
		}
		for i, v := range vs {
			if v != float64(i) {
				t.Fatalf("writer %d: point %d = %v", w, i, v)
			}
		}
	}
}

// TestTimestampExtremes: the whole int64 range is accepted, stored and
// selected exactly, with no overflow in delta encoding or range bounds.
func TestTimestampExtremes(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, &engine.Options{ChunkPoints: 4})
	s, _ := db.Series("ext", nil)
	ts := []int64{math.MinInt64, math.MinInt64 + 1, -1, 0, 1, math.MaxInt64 - 1, math.MaxInt64, math.MinInt64, 0, math.MaxInt64}
	for i, t0 := range ts {
		if err := s.ObserveAtNanos(t0, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	check := func(db *engine.DB) {
		t.Helper()
		got, _, err := db.Query("ext").Points()
		if err != nil || len(got) != len(ts) {
			t.Fatalf("%d points (%v), want %d", len(got), err, len(ts))
		}
		for i := 1; i < len(got); i++ {
			if got[i] < got[i-1] {
				t.Fatalf("not in time order: %v", got)
			}
		}
		if got[0] != math.MinInt64 || got[len(got)-1] != math.MaxInt64 {
			t.Fatalf("extremes lost: %v", got)
		}
		// To is exclusive: MaxInt64 itself is excluded by To(MaxInt64).
		n, _ := db.Query("ext").ToNanos(math.MaxInt64).Scalar(query.Count)
		if n != float64(len(ts)-2) {
			t.Fatalf("ToNanos(MaxInt64) counted %v, want %d", n, len(ts)-2)
		}
		n, _ = db.Query("ext").FromNanos(math.MaxInt64).Scalar(query.Count)
		if n != 2 {
			t.Fatalf("FromNanos(MaxInt64) counted %v, want 2", n)
		}
		n, _ = db.Query("ext").FromNanos(-1).ToNanos(2).Scalar(query.Count)
		if n != 4 {
			t.Fatalf("[-1, 2) counted %v, want 4", n)
		}
	}
	check(db)
	db.Close()
	db = open(t, dir, nil)
	defer db.Close()
	check(db)
	if r, err := db.Check(); err != nil || !r.OK() {
		t.Fatalf("check: %v %v", err, r.Problems)
	}
}
