package engine_test

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/query"
)

const crashWriters = 4

// crashSyncEvery is the SyncInterval period of the crash child. Points
// acknowledged more than crashSyncEvery + crashMargin before the kill must
// survive; the margin covers the fsync itself and a loaded CI machine
// (the race detector, other packages' tests on the other core).
const (
	crashSyncEvery = 50 * time.Millisecond
	crashMargin    = 400 * time.Millisecond
)

var crashRollups = []time.Duration{time.Second}

func crashValue(g, i int) float64 { return float64(g)*1e9 + float64(i) + 0.25 }
func crashTS(i int) int64         { return 1_700_000_000_000_000_000 + int64(i)*1_000_000 }

// crashTSOutOfOrder is the timestamp of write i in the out-of-order
// variant: each block of 64 writes goes backwards in time, so chunks
// overlap and compactions have work.
func crashTSOutOfOrder(i int) int64 { return crashTS(i/64*64 + 63 - i%64) }

// TestCrashChild is the writer process of TestCrashKill9: it writes
// sequential points from several goroutines and reports each acknowledged
// write on stdout.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("EVENTMETRICS_CRASH_DIR")
	if dir == "" {
		t.Skip("crash child process only")
	}
	mode, _ := strconv.Atoi(os.Getenv("EVENTMETRICS_CRASH_MODE"))
	tsOf := crashTS
	if os.Getenv("EVENTMETRICS_CRASH_OOO") != "" {
		tsOf = crashTSOutOfOrder
	}
	db, err := engine.Open(dir, &engine.Options{
		Sync:            engine.SyncMode(mode),
		SyncEvery:       crashSyncEvery,
		ChunkPoints:     64,
		CheckpointBytes: 64 << 10,     // checkpoint often, so kills land inside them too
		Rollups:         crashRollups, // the points are years old: cold blocks with rollups
	})
	if err != nil {
		fmt.Println("OPEN-ERROR", err)
		os.Exit(3)
	}
	var out sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	// Compactions run all the time too, so that kills land inside them:
	// every round's restart leaves small chunks for them to merge.
	go func() {
		for {
			time.Sleep(30 * time.Millisecond)
			if err := db.Compact(); err != nil {
				fmt.Println("ERR compact", err)
				os.Exit(6)
			}
			out.Lock()
			st := db.LastCompaction()
			fmt.Fprintf(w, "c %d %d %d\n", st.ChunksMerged, st.ChunksBlocked, st.BlocksOpened)
			w.Flush()
			out.Unlock()
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < crashWriters; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			s, err := db.Series("crash", engine.Labels{"g": strconv.Itoa(g)})
			if err != nil {
				fmt.Println("ERR", err)
				os.Exit(4)
			}
			// Resume after what a previous round stored.
			start := 0
			if n, err := db.Query("crash", query.Eq("g", strconv.Itoa(g))).Scalar(query.Count); err == nil {
				start = int(n)
			}
			for i := start; ; i++ {
				if err := s.ObserveAtNanos(tsOf(i), crashValue(g, i)); err != nil {
					fmt.Println("ERR", err)
					os.Exit(5)
				}
				out.Lock()
				fmt.Fprintf(w, "%d %d\n", g, i)
				w.Flush()
				out.Unlock()
			}
		}(g)
	}
	wg.Wait()
}

func TestCrashKill9(t *testing.T) {
	rounds := 10
	if testing.Short() {
		rounds = 3
	}
	for _, mode := range []engine.SyncMode{engine.SyncAlways, engine.SyncInterval} {
		t.Run(mode.String(), func(t *testing.T) { crashRounds(t, mode, rounds, false) })
	}
	// Out-of-order writes under constant compaction: kills land inside
	// merges of overlapping chunks.
	t.Run("always-out-of-order", func(t *testing.T) { crashRounds(t, engine.SyncAlways, rounds, true) })
}

func crashRounds(t *testing.T, mode engine.SyncMode, rounds int, ooo bool) {
	var merged, blocked, opened atomic.Int64 // by the child's compactions
	defer func() {
		t.Logf("the children's compactions merged %d chunks, packed %d into cold blocks, unpacked %d blocks", merged.Load(), blocked.Load(), opened.Load())
		if !t.Failed() && blocked.Load() == 0 {
			t.Errorf("no compaction packed a cold block: the kills never met one")
		}
		if ooo && !t.Failed() && (merged.Load() == 0 || opened.Load() == 0) {
			t.Errorf("no compaction merged chunks or unpacked a block: the kills never met one")
		}
	}()
	tsOf := crashTS
	if ooo {
		tsOf = crashTSOutOfOrder
	}
	{
		{
			rng := testutil.Rand(t)
			dir := t.TempDir()
			for round := 0; round < rounds; round++ {
				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
				cmd.Env = append(os.Environ(), "EVENTMETRICS_CRASH_DIR="+dir, "EVENTMETRICS_CRASH_MODE="+strconv.Itoa(int(mode)))
				if ooo {
					cmd.Env = append(cmd.Env, "EVENTMETRICS_CRASH_OOO=1")
				}
				stdout, _ := cmd.StdoutPipe()
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				type ack struct {
					i  int
					at time.Time
				}
				acks := make([][]ack, crashWriters)
				done := make(chan struct{})
				go func() {
					defer close(done)
					sc := bufio.NewScanner(stdout)
					for sc.Scan() {
						f := strings.Fields(sc.Text())
						if len(f) == 4 && f[0] == "c" {
							for k, c := range []*atomic.Int64{&merged, &blocked, &opened} {
								n, _ := strconv.Atoi(f[k+1])
								c.Add(int64(n))
							}
							continue
						}
						if len(f) != 2 {
							t.Errorf("child said %q", sc.Text())
							continue
						}
						g, _ := strconv.Atoi(f[0])
						i, _ := strconv.Atoi(f[1])
						acks[g] = append(acks[g], ack{i, time.Now()})
					}
				}()
				time.Sleep(time.Duration(150+rng.IntN(850)) * time.Millisecond)
				cmd.Process.Signal(syscall.SIGKILL)
				killedAt := time.Now()
				<-done
				cmd.Wait()

				db, err := engine.Open(dir, &engine.Options{Rollups: crashRollups, NoBackgroundCompaction: true})
				if err != nil {
					t.Fatalf("round %d: reopen after kill: %v", round, err)
				}
				// Blocks and rollups consistent with the points; counts
				// from rollups equal counts from points.
				if r, err := db.Check(); err != nil || !r.OK() {
					t.Fatalf("round %d: check after kill: %v %v", round, err, r.Problems)
				}
				raw, err1 := db.Query("crash").Step(time.Second).AggregateBy(query.Count)
				ro, err2 := db.Query("crash").Step(time.Second).UseRollups().AggregateBy(query.Count)
				if err1 != nil || err2 != nil || len(raw) != 1 || len(ro) != 1 || !slices.EqualFunc(raw[0].Values, ro[0].Values, slices.Equal) {
					t.Fatalf("round %d: counts per second from rollups differ from the points (%v %v)", round, err1, err2)
				}
				total := 0
				for g := 0; g < crashWriters; g++ {
					ts, vs, err := db.Query("crash", query.Eq("g", strconv.Itoa(g))).Points()
					if err != nil {
						t.Fatal(err)
					}
					// Exactly writes 0..n-1, each once, bit-exact: no duplicate,
					// no hole, nothing never written. (Writes are identified by
					// their value; the survivors of a crash are a prefix of the
					// log, so a prefix of each writer's writes.)
					idx := make([]int, len(vs))
					for k := range vs {
						idx[k] = int(vs[k] - float64(g)*1e9)
						if math.Float64bits(vs[k]) != math.Float64bits(crashValue(g, idx[k])) || ts[k] != tsOf(idx[k]) {
							t.Fatalf("round %d writer %d: stored point (%d, %v) was never written", round, g, ts[k], vs[k])
						}
					}
					slices.Sort(idx)
					for i := range idx {
						if idx[i] != i {
							t.Fatalf("round %d writer %d: write %d is missing or doubled (found %d at rank %d)", round, g, i, idx[i], i)
						}
					}
					// Every acknowledged point is there (for SyncInterval: those
					// acknowledged more than one interval, plus fsync time,
					// before the kill).
					need := -1
					for _, a := range acks[g] {
						if mode == engine.SyncAlways || a.at.Before(killedAt.Add(-crashSyncEvery-crashMargin)) {
							need = max(need, a.i)
						}
					}
					if need >= len(vs) {
						t.Fatalf("round %d writer %d: point %d was acknowledged but only %d points survived", round, g, need, len(vs))
					}
					total += len(vs)
				}
				t.Logf("round %d: killed after %d acks; %d points stored; replay %+v", round, countAcks(acks), total, db.ReplayStats())
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func countAcks[T any](a [][]T) int {
	n := 0
	for _, x := range a {
		n += len(x)
	}
	return n
}
