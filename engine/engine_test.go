package engine_test

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/query"
	"github.com/eventmetrics/eventmetrics/wal"
)

func open(t testing.TB, dir string, o *engine.Options) *engine.DB {
	t.Helper()
	db, err := engine.Open(dir, o)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return db
}

func points(t testing.TB, q *query.Query) ([]int64, []float64) {
	t.Helper()
	ts, vs, err := q.Points()
	if err != nil {
		t.Fatalf("points: %v", err)
	}
	return ts, vs
}

func TestMillionPointsReopen(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 1_000
	}
	const nseries = 100
	dir := t.TempDir()
	rng := testutil.Rand(t)
	db := open(t, dir, &engine.Options{ChunkPoints: 512})
	series := make([]*engine.Series, nseries)
	for i := range series {
		s, err := db.Series("m", engine.Labels{"i": string(rune('a'+i%26)) + string(rune('a'+i/26))})
		if err != nil {
			t.Fatal(err)
		}
		series[i] = s
	}
	want := make([][]float64, nseries)
	wantT := make([][]int64, nseries)
	var b engine.Batch
	for p := 0; p < n; p++ {
		for i, s := range series {
			ts := int64(1_700_000_000_000_000_000) + int64(p)*1_000_000_000 + int64(rng.IntN(1000))
			v := math.Float64frombits(rng.Uint64())
			if p%7 == 0 {
				v = float64(p)
			}
			b.Add(s, ts, v)
			want[i] = append(want[i], v)
			wantT[i] = append(wantT[i], ts)
		}
		if b.Len() >= 5000 {
			if err := db.Append(&b); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if err := db.Append(&b); err != nil {
		t.Fatal(err)
	}
	check := func(db *engine.DB) {
		t.Helper()
		for i := range series {
			ts, vs := points(t, db.Query("m", query.Eq("i", series[i].Labels()[0].Value)))
			if len(ts) != n {
				t.Fatalf("series %d: %d points, want %d", i, len(ts), n)
			}
			for j := range ts {
				if ts[j] != wantT[i][j] || math.Float64bits(vs[j]) != math.Float64bits(want[i][j]) {
					t.Fatalf("series %d point %d: got (%d, %x) want (%d, %x)", i, j, ts[j], math.Float64bits(vs[j]), wantT[i][j], math.Float64bits(want[i][j]))
				}
			}
		}
		c, err := db.Query("m").Scalar(query.Count)
		if err != nil {
			t.Fatal(err)
		}
		nonNaN := 0
		for i := range want {
			for _, v := range want[i] {
				if v == v {
					nonNaN++
				}
			}
		}
		if int(c) != nonNaN {
			t.Fatalf("count %v, want %d", c, nonNaN)
		}
	}
	check(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, dir, nil)
	defer db.Close()
	check(db)
}

func TestSpecialValuesBitExact(t *testing.T) {
	vals := []float64{
		math.NaN(), math.Float64frombits(0x7ff8000000000123), math.Float64frombits(0xfff0000000000001),
		math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, math.MaxFloat64, -math.MaxFloat64,
		math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, 1, -1.5,
	}
	for _, reopen := range []bool{false, true} {
		dir := t.TempDir()
		db := open(t, dir, nil)
		s, err := db.Series("special", nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if err := s.ObserveAtNanos(int64(i), v); err != nil {
				t.Fatal(err)
			}
		}
		if reopen {
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = open(t, dir, nil)
		}
		_, vs := points(t, db.Query("special"))
		if len(vs) != len(vals) {
			t.Fatalf("got %d values, want %d", len(vs), len(vals))
		}
		for i := range vals {
			if math.Float64bits(vs[i]) != math.Float64bits(vals[i]) {
				t.Errorf("reopen=%v value %d: got %x want %x", reopen, i, math.Float64bits(vs[i]), math.Float64bits(vals[i]))
			}
		}
		db.Close()
	}
}

func TestEventTimeSemantics(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	db := open(t, dir, &engine.Options{Now: func() time.Time { return now }, ChunkPoints: 16})
	// Duplicates: both kept and both counted.
	ts := now.Add(-time.Minute)
	for _, v := range []float64{1, 2} {
		if err := db.ObserveAt(ts, "dup", v, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Reverse order.
	s, _ := db.Series("rev", engine.Labels{"k": "v"})
	for i := 99; i >= 0; i-- {
		if err := s.ObserveAt(now.Add(time.Duration(i)*time.Second), float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	// A point from a year ago among recent ones.
	for i := 0; i < 40; i++ {
		if err := db.ObserveAt(now.Add(time.Duration(i-40)*time.Second), "late", float64(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	yearAgo := now.AddDate(-1, 0, 0)
	if err := db.ObserveAt(yearAgo, "late", -1, nil); err != nil {
		t.Fatal(err)
	}
	verify := func(db *engine.DB) {
		t.Helper()
		_, vs := points(t, db.Query("dup"))
		if len(vs) != 2 || vs[0] != 1 || vs[1] != 2 {
			t.Errorf("duplicates: got %v, want [1 2]", vs)
		}
		if c, _ := db.Query("dup").Scalar(query.Count); c != 2 {
			t.Errorf("duplicates counted %v times, want 2", c)
		}
		if l, _ := db.Query("dup").Scalar(query.Last); l != 2 {
			t.Errorf("last of duplicates %v, want 2 (the last written)", l)
		}
		tss, vs := points(t, db.Query("rev", query.Eq("k", "v")))
		if len(vs) != 100 {
			t.Fatalf("reverse: %d points", len(vs))
		}
		for i := range vs {
			if vs[i] != float64(i) || tss[i] != now.Add(time.Duration(i)*time.Second).UnixNano() {
				t.Fatalf("reverse: point %d = (%d, %v)", i, tss[i], vs[i])
			}
		}
		tss, vs = points(t, db.Query("late"))
		if len(vs) != 41 || vs[0] != -1 || tss[0] != yearAgo.UnixNano() {
			t.Fatalf("late point not first: %v", vs[:3])
		}
		vs2, err := db.Query("late").Between(yearAgo, yearAgo.Add(time.Second)).Values()
		if err != nil || len(vs2) != 1 || vs2[0] != -1 {
			t.Fatalf("range around the late point: %v %v", vs2, err)
		}
		n, _ := db.Query("late").Since(20 * time.Second).Scalar(query.Count)
		if n != 20 {
			t.Errorf("Since(20s) counted %v, want 20", n)
		}
	}
	verify(db)
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	verify(db)
	db.Close()
	db = open(t, dir, &engine.Options{Now: func() time.Time { return now }})
	defer db.Close()
	verify(db)
}

func TestLockAndClosed(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, nil)
	if _, err := engine.Open(dir, nil); !errors.Is(err, engine.ErrLocked) {
		t.Fatalf("second Open in the same process: %v, want ErrLocked", err)
	}
	// Another process.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOpen$")
	cmd.Env = append(os.Environ(), "EVENTMETRICS_HELPER_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "LOCKED") {
		t.Fatalf("second Open in another process: err=%v output=%s", err, out)
	}
	s, err := db.Series("x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Observe(1); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Observe":        db.Observe("x", 1, nil),
		"Series.Observe": s.Observe(2),
		"Increment":      db.Increment("c", 1, nil),
		"Sync":           db.Sync(),
		"Close":          db.Close(),
		"Compact":        db.Compact(),
	} {
		if !errors.Is(err, engine.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if _, err := db.Query("x").Values(); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("query after Close: %v", err)
	}
	// The directory is free again.
	db = open(t, dir, nil)
	defer db.Close()
	if n, _ := db.Query("x").Scalar(query.Count); n != 1 {
		t.Errorf("after reopen: %v points, want 1", n)
	}
}

func TestHelperOpen(t *testing.T) {
	dir := os.Getenv("EVENTMETRICS_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	_, err := engine.Open(dir, nil)
	if errors.Is(err, engine.ErrLocked) {
		os.Stdout.WriteString("LOCKED: " + err.Error() + "\n")
		return
	}
	t.Fatalf("Open of a locked directory: %v", err)
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, &engine.Options{MaxLabels: 4, MaxLabelValueLen: 100})
	defer db.Close()
	if err := db.Observe("good", 1, engine.Labels{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	many := engine.Labels{}
	for i := 0; i < 5; i++ {
		many[string(rune('a'+i))] = "v"
	}
	cases := []struct {
		name   string
		labels engine.Labels
		want   string
	}{
		{"", nil, "empty metric name"},
		{"bad\xffname", nil, "invalid UTF-8"},
		{"nul\x00", nil, "control character"},
		{"m", engine.Labels{"k": "bad\xff"}, "invalid UTF-8"},
		{"m", engine.Labels{"": "v"}, "empty label name"},
		{"m", engine.Labels{"__name__": "v"}, "reserved"},
		{"m", many, "5 labels, more than the limit of 4"},
		{"m", engine.Labels{"k": strings.Repeat("x", 101)}, "101 bytes, more than the limit of 100"},
		{strings.Repeat("n", 2000), nil, "more than the limit"},
	}
	for _, c := range cases {
		err := db.Observe(c.name, 1, c.labels)
		if !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Observe(%.20q, %v): %v, want an ErrInvalid saying %q", c.name, c.labels, err, c.want)
		}
	}
	if err := db.Increment("ctr", -1, nil); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("negative increment: %v", err)
	}
	if err := db.Increment("ctr", math.NaN(), nil); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("NaN increment: %v", err)
	}
	var b engine.Batch
	b.Add(nil, 0, 1)
	if err := db.Append(&b); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("batch with nil series: %v", err)
	}
	// Nothing stored was damaged.
	vs, err := db.Query("good", query.Eq("a", "b")).Values()
	if err != nil || len(vs) != 1 || vs[0] != 1 {
		t.Fatalf("stored data after bad input: %v %v", vs, err)
	}
	if _, err := db.Query("good", query.Re("a", "(")).Values(); err == nil || !strings.Contains(err.Error(), "(") {
		t.Errorf("bad regexp: %v", err)
	}
	if err := (&engine.Options{ChunkPoints: 70000}).Validate(); err == nil {
		t.Error("Validate accepted ChunkPoints=70000")
	}
}

func TestMaxSeries(t *testing.T) {
	db := open(t, t.TempDir(), &engine.Options{MaxSeries: 3})
	defer db.Close()
	for i := 0; i < 3; i++ {
		if err := db.Observe("m", 1, engine.Labels{"i": string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	err := db.Observe("m", 1, engine.Labels{"i": "z"})
	if !errors.Is(err, engine.ErrSeriesLimit) {
		t.Fatalf("4th series: %v, want ErrSeriesLimit", err)
	}
	if err := db.Observe("m", 2, engine.Labels{"i": "a"}); err != nil {
		t.Fatalf("write to an existing series at the limit: %v", err)
	}
}

func TestIncrement(t *testing.T) {
	dir := t.TempDir()
	clock := time.Unix(1_700_000_000, 0)
	now := func() time.Time { clock = clock.Add(time.Millisecond); return clock }
	db := open(t, dir, &engine.Options{Now: now})
	for i := 0; i < 10; i++ {
		if err := db.Increment("req", 2, engine.Labels{"code": "200"}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db = open(t, dir, &engine.Options{Now: now})
	defer db.Close()
	if err := db.Increment("req", 1, engine.Labels{"code": "200"}); err != nil {
		t.Fatal(err)
	}
	vs, _ := db.Query("req").Values()
	if len(vs) != 11 || vs[0] != 2 || vs[9] != 20 || vs[10] != 21 {
		t.Fatalf("running totals %v", vs)
	}
}

func TestTornTailAndCorruption(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, &engine.Options{Sync: engine.SyncAlways})
	s, _ := db.Series("m", nil)
	for i := 0; i < 100; i++ {
		if err := s.ObserveAtNanos(int64(i), float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Simulate a crash: copy the directory while the DB is open (every
	// write is synced), then cut the log's last segment.
	crashDir := t.TempDir()
	copyDir(t, dir, crashDir)
	db.Close()
	os.Remove(filepath.Join(crashDir, "LOCK"))
	seg := lastSegment(t, filepath.Join(crashDir, "wal"))
	data, _ := os.ReadFile(seg)
	// Cut 5 bytes off the last record: only it is lost.
	if err := os.WriteFile(seg, data[:len(data)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	db2 := open(t, crashDir, nil)
	if !db2.ReplayStats().TornTail {
		t.Errorf("replay did not report a torn tail: %+v", db2.ReplayStats())
	}
	vs, _ := db2.Query("m").Values()
	if len(vs) != 99 || vs[98] != 98 {
		t.Fatalf("after torn tail: %d values", len(vs))
	}
	if err := s.Observe(1); !errors.Is(err, engine.ErrClosed) {
		t.Fatal(err)
	}
	s2, _ := db2.Series("m", nil)
	if err := s2.ObserveAtNanos(1000, 1000); err != nil {
		t.Fatal(err)
	}
	db2.Close()
	db2 = open(t, crashDir, nil)
	vs, err := db2.Query("m").Values()
	if err != nil {
		t.Fatal(err)
	}
	db2.Close()
	if len(vs) != 100 || vs[99] != 1000 {
		t.Fatalf("write after repair lost: %d values", len(vs))
	}

	// Bit flip in the middle of a segment.
	flipDir := t.TempDir()
	db = open(t, flipDir, &engine.Options{Sync: engine.SyncAlways})
	s, _ = db.Series("m", nil)
	for i := 0; i < 100; i++ {
		s.ObserveAtNanos(int64(i), float64(i))
	}
	crash2 := t.TempDir()
	copyDir(t, flipDir, crash2)
	db.Close()
	os.Remove(filepath.Join(crash2, "LOCK"))
	seg = lastSegment(t, filepath.Join(crash2, "wal"))
	data, _ = os.ReadFile(seg)
	data[len(data)/2] ^= 0x10
	os.WriteFile(seg, data, 0o644)
	_, err = engine.Open(crash2, nil)
	var ce *wal.CorruptionError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), filepath.Base(seg)) {
		t.Fatalf("bit flip: %v, want a wal.CorruptionError naming %s", err, filepath.Base(seg))
	}
	t.Logf("bit flip reported as: %v", err)
	// An explicit repair keeps everything before the damage.
	db3 := open(t, crash2, &engine.Options{RepairWAL: true})
	defer db3.Close()
	vs, _ = db3.Query("m").Values()
	if len(vs) == 0 || len(vs) >= 100 {
		t.Fatalf("repair kept %d values", len(vs))
	}
	for i, v := range vs {
		if v != float64(i) {
			t.Fatalf("repair kept a hole: value %d = %v", i, v)
		}
	}
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func lastSegment(t testing.TB, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for _, e := range ents {
		if info, _ := e.Info(); info != nil && info.Size() > 64 {
			last = filepath.Join(dir, e.Name())
		}
	}
	if last == "" {
		t.Fatal("no log segment with data")
	}
	return last
}
