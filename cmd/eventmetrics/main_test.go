package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventmetrics/eventmetrics/engine"
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
	db.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"compact", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "merged") {
		t.Fatalf("compact: exit %d\n%s%s", code, out.String(), errb.String())
	}
	t.Log(out.String())
	if code := run([]string{"compact", "--retention", "-1s", dir}, &out, &errb); code != 2 {
		t.Fatalf("negative retention: exit %d", code)
	}
	db, err = engine.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	vs, err := db.Query("m").Values()
	if err != nil || len(vs) != 3000 || vs[0] != 1 || vs[2999] != 3000 {
		t.Fatalf("after compact: %d values, %v", len(vs), err)
	}
}
