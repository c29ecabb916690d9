package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/eventmetrics/eventmetrics/query"
)

// TestChunkChecksum damages one chunk's bytes inside pebble (as a bad disk
// block that pebble's own checksum would not see, or a bug would): the
// query over that chunk fails, naming the series and time, instead of
// returning wrong numbers; other series keep working; Check lists it.
func TestChunkChecksum(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, &Options{ColdAfter: 100 * 365 * 24 * time.Hour}) // loose chunks (blocks: TestBlockDamage)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, name := range []string{"good", "bad"} {
		s, _ := db.Series(name, nil)
		var b Batch
		for i := 0; i < 3000; i++ {
			b.Add(s, int64(i)*1e9, float64(i)*0.5)
		}
		if err := db.Append(&b); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	bad, _ := db.Series("bad", nil)
	// Flip a bit in the payload of the bad series' first chunk.
	it, _ := db.pdb.NewIter(&pebble.IterOptions{LowerBound: appendChunkKey(nil, prefixChunk, bad.id, -1<<63, 0), UpperBound: chunkSeriesEnd(nil, bad.id, 1<<63-1)})
	it.First()
	key := append([]byte(nil), it.Key()...)
	key[0] = prefixChunk
	it.Close()
	v, closer, err := db.pdb.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), v...)
	closer.Close()
	damaged[len(damaged)/2] ^= 0x01
	if err := db.pdb.Set(key, damaged, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	_, err = db.Query("bad").Values()
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("query over a damaged chunk: %v, want a corruption error", err)
	}
	t.Logf("reported as: %v", err)
	// A count over the whole range reads only headers: still exact.
	if n, err := db.Query("bad").Scalar(query.Count); err != nil || n != 3000 {
		t.Fatalf("header-only count: %v %v", n, err)
	}
	if vs, err := db.Query("good").Values(); err != nil || len(vs) != 3000 {
		t.Fatalf("the undamaged series: %d values, %v", len(vs), err)
	}
	r, err := db.Check()
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || !strings.Contains(strings.Join(r.Problems, "\n"), "series") {
		t.Fatalf("check did not find the damage: %+v", r)
	}
	t.Logf("check: %v", r.Problems)
}

// TestBlockDamage damages a cold block's header value, then a blob: the
// query over that series fails naming it, other series keep working, and
// Check lists the damage.
func TestBlockDamage(t *testing.T) {
	for _, target := range []byte{prefixBlockHdr, prefixBlockData} {
		t.Run(map[byte]string{prefixBlockHdr: "header", prefixBlockData: "blob"}[target], func(t *testing.T) {
			db, err := Open(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, name := range []string{"good", "bad"} {
				s, _ := db.Series(name, nil)
				var b Batch
				for i := 0; i < 5000; i++ {
					b.Add(s, int64(i)*1e9, float64(i%16)*0.25) // repeating: the payloads go into a blob
				}
				if err := db.Append(&b); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Compact(); err != nil {
				t.Fatal(err)
			}
			if st := db.LastCompaction(); st.BlobsWritten != 2 {
				t.Fatalf("want a block with a blob per series: %+v", st)
			}
			bad, _ := db.Series("bad", nil)
			key := appendChunkKey(nil, target, bad.id, 0, 0)
			it, _ := db.pdb.NewIter(&pebble.IterOptions{LowerBound: key, UpperBound: []byte{target + 1}})
			if !it.First() {
				t.Fatal("no block")
			}
			key = append(key[:0], it.Key()...)
			it.Close()
			v, closer, err := db.pdb.Get(key)
			if err != nil {
				t.Fatal(err)
			}
			damaged := append([]byte(nil), v...)
			closer.Close()
			damaged[len(damaged)/2] ^= 0x10
			if err := db.pdb.Set(key, damaged, pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			_, err = db.Query("bad").Values()
			if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), "series") {
				t.Fatalf("query over a damaged block: %v, want a corruption error naming the series", err)
			}
			t.Logf("reported as: %v", err)
			if vs, err := db.Query("good").Values(); err != nil || len(vs) != 5000 {
				t.Fatalf("the undamaged series: %d values, %v", len(vs), err)
			}
			r, err := db.Check()
			if err != nil {
				t.Fatal(err)
			}
			if r.OK() {
				t.Fatalf("check did not find the damage: %+v", r)
			}
			t.Logf("check: %v", r.Problems)
		})
	}
}
