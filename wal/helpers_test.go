package wal

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

var seedFlag = flag.Uint64("wal.seed", 0, "random seed for the randomized wal tests (0: from the clock)")

// TestMain fails the run if goroutines of this package outlive the tests
// (goleak is not available; this is the same check by hand).
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 {
		if err := waitNoLeaks(5 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// ourGoroutines returns the stacks of the goroutines running code of this
// package, other than the caller and TestMain.
func ourGoroutines() []string {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var ours []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "eventmetrics/wal.") && !strings.Contains(g, "wal.waitNoLeaks") && !strings.Contains(g, "wal.TestMain") {
			ours = append(ours, g)
		}
	}
	return ours
}

// waitNoLeaks waits until no goroutine of this package runs (but the
// caller), or reports the ones that do.
func waitNoLeaks(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		gs := ourGoroutines()
		if len(gs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("goroutine leak: %d goroutines left:\n%s", len(gs), strings.Join(gs, "\n\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkLeaks fails t if goroutines of this package outlive it. Tests that
// use it do not run in parallel.
func checkLeaks(t testing.TB) {
	t.Cleanup(func() {
		if err := waitNoLeaks(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
}

// newRand returns a seeded RNG; the seed is logged and can be fixed with
// -wal.seed.
func newRand(t testing.TB) *rand.Rand {
	seed := *seedFlag
	if seed == 0 {
		if s := os.Getenv("WAL_SEED"); s != "" {
			seed, _ = strconv.ParseUint(s, 10, 64)
		}
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -wal.seed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// payload returns the deterministic record number id of size bytes: the id
// in the first 8 bytes (when there is room), then bytes derived from it.
func payload(id uint64, size int) []byte {
	b := make([]byte, size)
	x := id*0x9e3779b97f4a7c15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	if size >= 8 {
		binary.LittleEndian.PutUint64(b, id)
	}
	return b
}

// randSize returns a record size: mostly small, sometimes up to ~100 KB,
// sometimes 0.
func randSize(rng *rand.Rand) int {
	switch r := rng.IntN(100); {
	case r < 5:
		return 0
	case r < 70:
		return 8 + rng.IntN(64)
	case r < 95:
		return 8 + rng.IntN(4096)
	default:
		return 8 + rng.IntN(100_000)
	}
}

type replayed struct {
	rec []byte
	pos Pos
}

// replayAll replays dir from segment from and returns copies of the records.
func replayAll(fs vfs.FS, dir string, from uint64, repair bool) ([]replayed, ReplayStats, error) {
	var out []replayed
	st, err := Replay(dir, from, ReplayOptions{FS: fs, Repair: repair}, func(rec []byte, pos Pos) error {
		out = append(out, replayed{rec: bytes.Clone(rec), pos: pos})
		return nil
	})
	return out, st, err
}

// want is a record the test appended, with the position Append returned.
type want struct {
	rec []byte
	pos Pos
}

// checkExact fails t unless got equals ws, records and positions.
func checkExact(t testing.TB, got []replayed, ws []want) {
	t.Helper()
	if len(got) != len(ws) {
		t.Fatalf("replayed %d records, want %d", len(got), len(ws))
	}
	for i := range ws {
		if !bytes.Equal(got[i].rec, ws[i].rec) {
			t.Fatalf("record %d at %v: %d bytes differ from the %d appended", i, got[i].pos, len(got[i].rec), len(ws[i].rec))
		}
		if ws[i].pos != (Pos{}) && got[i].pos != ws[i].pos {
			t.Fatalf("record %d: replayed at %v, appended at %v", i, got[i].pos, ws[i].pos)
		}
	}
}

// checkPrefix fails t unless got is a prefix of ws at least minLen long.
func checkPrefix(t testing.TB, got []replayed, ws [][]byte, minLen int) {
	t.Helper()
	if len(got) > len(ws) {
		t.Fatalf("replayed %d records, only %d were appended", len(got), len(ws))
	}
	if len(got) < minLen {
		t.Fatalf("replayed %d records, but %d were acknowledged durable", len(got), minLen)
	}
	for i := range got {
		if !bytes.Equal(got[i].rec, ws[i]) {
			t.Fatalf("record %d at %v differs from the one appended (%d vs %d bytes)", i, got[i].pos, len(got[i].rec), len(ws[i]))
		}
	}
}

func mustOpen(t testing.TB, fs vfs.FS, dir string, o Options) *Writer {
	t.Helper()
	o.FS = fs
	w, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// readFile returns the contents of a file in fs.
func readFile(t testing.TB, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, st.Size())
	if n, err := f.ReadAt(b, 0); n != len(b) {
		t.Fatalf("read %s: %d of %d bytes: %v", name, n, len(b), err)
	}
	return b
}

// writeFile replaces a file in fs with data (synced, and its directory
// too, so that crash clones see the new file).
func writeFile(t testing.TB, fs vfs.FS, name string, data []byte) {
	t.Helper()
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Clone(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syncDir(fs, fs.PathDir(name)); err != nil {
		t.Fatal(err)
	}
}

func segPath(fs vfs.FS, dir string, seg uint64) string { return fs.PathJoin(dir, segmentName(seg)) }

func listDir(t testing.TB, fs vfs.FS, dir string) string {
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, " ")
}
