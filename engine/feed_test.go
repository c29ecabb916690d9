package engine_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/query"
	"github.com/eventmetrics/eventmetrics/wal"
)

// feedValue identifies write i of the feed tests.
func feedValue(i int) float64 { return float64(i) + 0.5 }
func feedTS(i int) int64      { return 1_700_000_000_000_000_000 + int64(i)*1_000 }

// writeFeedPoints writes points [from, to) in batches of up to 7 points
// over 3 series (so records hold several points).
func writeFeedPoints(t testing.TB, db *engine.DB, from, to int) {
	t.Helper()
	var ss [3]*engine.Series
	for k := range ss {
		s, err := db.Series("feed", engine.Labels{"k": strconv.Itoa(k)})
		if err != nil {
			t.Fatal(err)
		}
		ss[k] = s
	}
	var b engine.Batch
	for i := from; i < to; {
		b.Reset()
		for n := 1 + i%7; n > 0 && i < to; n-- {
			b.Add(ss[i%3], feedTS(i), feedValue(i))
			i++
		}
		if err := db.Append(&b); err != nil {
			t.Fatal(err)
		}
	}
}

// drainFeed reads points until none arrive for quiet.
func drainFeed(t testing.TB, f *engine.Feed, max int, quiet time.Duration) ([]engine.FeedPoint, engine.FeedPos) {
	t.Helper()
	var all []engine.FeedPoint
	var end engine.FeedPos
	for {
		ctx, cancel := context.WithTimeout(context.Background(), quiet)
		pts, e, err := f.Next(ctx, nil, max)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return all, end
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, pts...)
		end = e
	}
}

// checkFeedRun checks that pts are writes [from, to), in order, with their
// series and positions increasing.
func checkFeedRun(t testing.TB, db *engine.DB, pts []engine.FeedPoint, from, to int) {
	t.Helper()
	if len(pts) != to-from {
		t.Fatalf("feed delivered %d points, want writes %d..%d (%d)", len(pts), from, to-1, to-from)
	}
	for k, p := range pts {
		i := from + k
		if math.Float64bits(p.V) != math.Float64bits(feedValue(i)) || p.T != feedTS(i) {
			t.Fatalf("point %d: (%d, %v), want write %d (%d, %v)", k, p.T, p.V, i, feedTS(i), feedValue(i))
		}
		if k > 0 && !pts[k-1].Pos.Less(p.Pos) {
			t.Fatalf("point %d: position %s not after %s", k, p.Pos, pts[k-1].Pos)
		}
		name, ls, err := db.SeriesLabels(p.Series)
		if err != nil || name != "feed" || len(ls) != 1 || ls[0].Value != strconv.Itoa(i%3) {
			t.Fatalf("point %d: series %d is %s %v (%v), want feed{k=%d}", k, p.Series, name, ls, err, i%3)
		}
	}
}

// TestFeed: a feed delivers every point written after it was created, in
// log order, split across calls at any point count (inside records too);
// Commit makes the cursor durable: a reopened feed, and a reopened DB,
// resume exactly there, with the stored state.
func TestFeed(t *testing.T) {
	dir := t.TempDir()
	db, err := engine.Open(dir, &engine.Options{CheckpointBytes: 4 << 10, WALSegmentSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	writeFeedPoints(t, db, 0, 100) // before the feed: not delivered
	f, err := db.Feed("sender")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Feed("sender"); !errors.Is(err, engine.ErrFeedOpen) {
		t.Fatalf("second open: %v, want ErrFeedOpen", err)
	}
	if _, err := db.Feed("bad/name"); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	writeFeedPoints(t, db, 100, 2000)
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	pts, _ := drainFeed(t, f, 5, 300*time.Millisecond)
	checkFeedRun(t, db, pts, 100, 2000)

	// Commit inside a record (point 1001 is the 2nd of its record or not:
	// records hold 1 to 7 points), then reopen the feed.
	cut := pts[901]
	if err := f.Commit(cut.Pos, []byte("state-1")); err != nil {
		t.Fatal(err)
	}
	if st := f.Stats(); st.Committed != cut.Pos || st.Delivered != 1900 {
		t.Fatalf("stats %+v", st)
	}
	if err := f.Commit(pts[1899].Pos, nil); err != nil { // a later one, then...
		t.Fatal(err)
	}
	if err := f.Commit(cut.Pos, []byte("state-1")); err != nil { // ...an earlier one: the cursor does not move back
		t.Fatal(err)
	}
	if st := f.Stats(); st.Committed != pts[1899].Pos {
		t.Fatalf("commit moved the cursor back: %+v", st)
	}
	// Back to cut: drop and recreate is not possible while open; use a
	// fresh feed name for the resume check instead.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = db.Feed("sender")
	if err != nil {
		t.Fatal(err)
	}
	pts2, _ := drainFeed(t, f, 3, 200*time.Millisecond)
	checkFeedRun(t, db, pts2, 1999, 2000)
	if s, ok := db.FeedState("sender"); !ok || string(s) != "state-1" {
		t.Fatalf("state %q %v", s, ok)
	}

	// A second feed, committed inside a record, across a DB reopen with
	// checkpoints in between.
	g, err := db.Feed("other")
	if err != nil {
		t.Fatal(err)
	}
	writeFeedPoints(t, db, 2000, 3000)
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	gp, _ := drainFeed(t, g, 4, 200*time.Millisecond)
	checkFeedRun(t, db, gp, 2000, 3000)
	mid := -1
	for k := range gp {
		if gp[k].Pos.Index > 0 {
			mid = k
			break
		}
	}
	if mid < 0 {
		t.Fatal("no point inside a record")
	}
	if err := g.Commit(gp[mid].Pos, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	writeFeedPoints(t, db, 3000, 3500)
	if err := db.Compact(); err != nil { // checkpoints: segments must stay for g
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.Next(context.Background(), nil, 1); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Next after DB close: %v", err)
	}
	db, err = engine.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	g, err = db.Feed("other")
	if err != nil {
		t.Fatal(err)
	}
	gp2, _ := drainFeed(t, g, 1000, 200*time.Millisecond)
	checkFeedRun(t, db, gp2, 2000+mid, 3500)
	if s, _ := db.FeedState("other"); string(s) != "\x01\x02\x03" {
		t.Fatalf("state %q", s)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.DropFeed("other"); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.FeedState("other"); ok {
		t.Fatal("dropped feed still has a state")
	}
}

func walSegments(t testing.TB, dir string) []uint64 {
	t.Helper()
	segs, err := wal.Segments(nil, filepath.Join(dir, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// TestFeedHoldsLog: checkpoints keep the log segments a feed has not
// committed past, and delete them once it has; a feed more than
// MaxFeedLag behind is moved forward, and the points it skips are counted
// exactly.
func TestFeedHoldsLog(t *testing.T) {
	dir := t.TempDir()
	opts := &engine.Options{CheckpointBytes: 1 << 30, WALSegmentSize: 4 << 10, MaxFeedLag: 64 << 10, NoBackgroundCompaction: true}
	db, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f, err := db.Feed("f")
	if err != nil {
		t.Fatal(err)
	}
	writeFeedPoints(t, db, 0, 1000)
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	segs := walSegments(t, dir)
	if len(segs) < 4 {
		t.Fatalf("the checkpoint removed the segments the feed needs: %v", segs)
	}
	pts, end := drainFeed(t, f, 300, 200*time.Millisecond)
	checkFeedRun(t, db, pts, 0, 1000)
	if err := f.Commit(end, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if after := walSegments(t, dir); len(after) > 2 || after[0] < end.Segment {
		t.Fatalf("after commit at %s and a checkpoint, segments %v remain", end, after)
	}

	// Fall far behind: read 100 points of the next 9000, then checkpoint.
	writeFeedPoints(t, db, 1000, 10000)
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	first, _, err := f.Next(context.Background(), nil, 100)
	if err != nil || len(first) != 100 {
		t.Fatalf("%d points, %v", len(first), err)
	}
	checkFeedRun(t, db, first, 1000, 1100)
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	st := f.Stats()
	if st.Skipped != 8900 || st.SkippedBytes <= 64<<10 {
		t.Fatalf("a feed behind by more than MaxFeedLag: stats %+v, want 8900 points skipped", st)
	}
	writeFeedPoints(t, db, 10000, 10010)
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	rest, _ := drainFeed(t, f, 100, 200*time.Millisecond)
	checkFeedRun(t, db, rest, 10000, 10010)
}

// TestFeedCrashChild is the writer and consumer process of
// TestFeedCrashKill9: one goroutine writes points 0, 1, 2, … in batches;
// another reads the feed in small steps and commits; before and after each
// commit it prints the last write delivered before the committed position.
func TestFeedCrashChild(t *testing.T) {
	dir := os.Getenv("EVENTMETRICS_FEED_CRASH_DIR")
	if dir == "" {
		t.Skip("crash child process only")
	}
	mode, _ := strconv.Atoi(os.Getenv("EVENTMETRICS_CRASH_MODE"))
	db, err := engine.Open(dir, &engine.Options{Sync: engine.SyncMode(mode), SyncEvery: 20 * time.Millisecond, CheckpointBytes: 32 << 10, WALSegmentSize: 16 << 10})
	if err != nil {
		fmt.Println("OPEN-ERROR", err)
		os.Exit(3)
	}
	f, err := db.Feed("crash")
	if err != nil {
		fmt.Println("FEED-ERROR", err)
		os.Exit(3)
	}
	start := 0
	if n, err := db.Query("feed").Scalar(query.Count); err == nil {
		start = int(n)
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "start %d\n", start)
	w.Flush()
	go func() {
		for i := start; ; i += 50 {
			writeFeedPoints(t, db, i, i+50)
		}
	}()
	for {
		pts, _, err := f.Next(context.Background(), nil, 37)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(5)
		}
		// Commit at the position of the last point: it is delivered again.
		last := pts[len(pts)-1]
		i := int(last.V)
		fmt.Fprintf(w, "pending %d\n", i-1)
		w.Flush()
		if err := f.Commit(last.Pos, nil); err != nil {
			fmt.Println("ERR", err)
			os.Exit(6)
		}
		fmt.Fprintf(w, "committed %d\n", i-1)
		w.Flush()
	}
}

// TestFeedCrashKill9 kills the writer and consumer process at random
// moments; after each kill the reopened feed resumes at its committed
// cursor: it delivers exactly the stored points after the last committed
// one (no gap, no duplicate, in order).
func TestFeedCrashKill9(t *testing.T) {
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	for _, mode := range []engine.SyncMode{engine.SyncInterval, engine.SyncAlways} {
		t.Run(mode.String(), func(t *testing.T) {
			rng := testutil.Rand(t)
			dir := t.TempDir()
			for round := 0; round < rounds; round++ {
				cmd := exec.Command(os.Args[0], "-test.run=^TestFeedCrashChild$", "-test.v=false")
				cmd.Env = append(os.Environ(), "EVENTMETRICS_FEED_CRASH_DIR="+dir, "EVENTMETRICS_CRASH_MODE="+strconv.Itoa(int(mode)))
				stdout, _ := cmd.StdoutPipe()
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				committed, pending := -2, -2 // -2: nothing said yet
				done := make(chan struct{})
				go func() {
					defer close(done)
					sc := bufio.NewScanner(stdout)
					for sc.Scan() {
						f := strings.Fields(sc.Text())
						if len(f) != 2 {
							t.Errorf("child said %q", sc.Text())
							continue
						}
						n, _ := strconv.Atoi(f[1])
						switch f[0] {
						case "pending":
							pending = n
						case "committed":
							committed = n
						case "start":
						default:
							t.Errorf("child said %q", sc.Text())
						}
					}
				}()
				time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-done
				_ = cmd.Wait()
				if t.Failed() {
					return
				}

				db, err := engine.Open(dir, nil)
				if err != nil {
					t.Fatalf("round %d: reopen: %v", round, err)
				}
				n, err := db.Query("feed").Scalar(query.Count)
				if err != nil {
					t.Fatal(err)
				}
				f, err := db.Feed("crash")
				if err != nil {
					t.Fatal(err)
				}
				if err := db.Sync(); err != nil {
					t.Fatal(err)
				}
				pts, _ := drainFeed(t, f, 1000, 300*time.Millisecond)
				from := int(n) - len(pts)
				// The resumed feed starts right after a committed write:
				// the last one reported, or the one whose commit was in
				// flight at the kill.
				if from-1 != committed && from-1 != pending && !(committed == -2 && from == 0) {
					t.Fatalf("round %d: feed resumed at write %d; the child had committed up to %d (pending %d)", round, from, committed, pending)
				}
				checkFeedRun(t, db, pts, from, int(n))
				t.Logf("round %d: %d points stored, feed resumed at %d (committed %d, pending %d)", round, int(n), from, committed, pending)
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestFeedReplayFromCheckpoint: segments held for a feed do not slow
// recovery: Open replays from the checkpoint's segment only, and the feed
// still delivers everything from the held segments.
func TestFeedReplayFromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	opts := &engine.Options{WALSegmentSize: 4 << 10, NoBackgroundCompaction: true}
	db, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := db.Feed("f")
	if err != nil {
		t.Fatal(err)
	}
	writeFeedPoints(t, db, 0, 2000)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil { // a final checkpoint
		t.Fatal(err)
	}
	held := walSegments(t, dir)
	db, err = engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if rs := db.ReplayStats(); len(held) < 5 || rs.Segments > 1 || rs.Records != 0 {
		t.Fatalf("%d segments held for the feed; Open replayed %d segments, %d records: want only the checkpoint's", len(held), rs.Segments, rs.Records)
	}
	f, err = db.Feed("f")
	if err != nil {
		t.Fatal(err)
	}
	pts, _ := drainFeed(t, f, 500, 200*time.Millisecond)
	checkFeedRun(t, db, pts, 0, 2000)
}
