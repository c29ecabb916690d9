package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	db, err := engine.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := db.Series("m", engine.Labels{"a": "b"})
	for i := 0; i < 5000; i++ {
		s.ObserveAtNanos(int64(i), float64(i)/3)
	}
	// Locked while open: a clear error, exit 2.
	var out, errb bytes.Buffer
	if code := run([]string{"check", dir}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "locked") {
		t.Fatalf("check of an open store: exit %d, %q", code, errb.String())
	}
	db.Close()
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "ok: no damage") || !strings.Contains(out.String(), "5000 points") {
		t.Fatalf("check of a good store: exit %d\n%s%s", code, out.String(), errb.String())
	}
	// Damage a table: exit 1 and say what.
	var big string
	var size int64
	filepath.Walk(filepath.Join(dir, "data"), func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".sst") && info.Size() > size {
			big, size = p, info.Size()
		}
		return nil
	})
	data, _ := os.ReadFile(big)
	data[len(data)/2] ^= 0x08
	os.WriteFile(big, data, 0o644)
	out.Reset()
	errb.Reset()
	code := run([]string{"check", dir}, &out, &errb)
	if code != 1 {
		t.Fatalf("check of a damaged store: exit %d\n%s%s", code, out.String(), errb.String())
	}
	t.Logf("damaged store:\n%s%s", out.String(), errb.String())
	if code := run([]string{"check"}, &out, &errb); code != 2 {
		t.Fatalf("check without a directory: exit %d", code)
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}

func TestCompactCommand(t *testing.T) {
	dir := t.TempDir()
	db, err := engine.Open(dir, &engine.Options{ChunkPoints: 64})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := db.Series("m", nil)
	// Points in reverse: out-of-order chunks to merge.
	for i := 3000; i > 0; i-- {
		s.ObserveAtNanos(int64(i)*1e9, float64(i))
	}
	lat, _ := db.Series("lat", nil) // values that do not compress to nothing: rollups pay
	for i := 1; i <= 3000; i++ {
		lat.ObserveAtNanos(int64(i)*1e9, math.Exp(math.Sin(float64(i)*0.7)*3))
	}
	db.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"compact", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "merged") {
		t.Fatalf("compact: exit %d\n%s%s", code, out.String(), errb.String())
	}
	t.Log(out.String())
	if code := run([]string{"compact", "--retention", "-1s", dir}, &out, &errb); code != 2 {
		t.Fatalf("negative retention: exit %d", code)
	}
	for _, bad := range []string{"1x", "1h,1m", "1ms"} {
		errb.Reset()
		if code := run([]string{"compact", "--rollups", bad, dir}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "rollup") {
			t.Fatalf("--rollups %s: exit %d: %s", bad, code, errb.String())
		}
	}
	// The points are from 1970: cold. Pack them, with rollups.
	out.Reset()
	if code := run([]string{"compact", "--rollups", "1m,1h", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "with rollups") {
		t.Fatalf("compact --rollups: exit %d\n%s%s", code, out.String(), errb.String())
	}
	t.Log(out.String())
	db, err = engine.Open(dir, &engine.Options{Rollups: []time.Duration{time.Minute, time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	vs, err := db.Query("m").Values()
	if err != nil || len(vs) != 3000 || vs[0] != 1 || vs[2999] != 3000 {
		t.Fatalf("after compact: %d values, %v", len(vs), err)
	}
	if r, err := db.Check(); err != nil || !r.OK() || r.Blocks == 0 || r.Rollups == 0 {
		t.Fatalf("check after compact: %+v %v", r, err)
	}
	rows, err := db.Query("lat").Step(time.Minute).UseRollups().AggregateBy(query.Count)
	if err != nil || len(rows) != 1 || len(rows[0].Times) != 51 || rows[0].Values[0][0] != 59 || rows[0].Values[1][0] != 60 {
		t.Fatalf("counts per minute from rollups: %+v %v", rows, err)
	}
}
