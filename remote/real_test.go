package remote_test

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
	"github.com/eventmetrics/eventmetrics/remote"
)

// The known workload of the real-receiver tests: point i goes to series
// s=i%3 of both rw_gauge (exported raw) and rw_lat (exported aggregated),
// one point per series per millisecond, integer values (sums are exact in
// any order).
const rwSeries = 3

func rwTS(base int64, i int) int64 { return base + int64(i/rwSeries)*int64(time.Millisecond) }
func rwValue(i int) float64        { return float64((i * 37) % 101) }

var (
	rwBuckets   = []float64{10, 25, 50, 90}
	rwQuantiles = []float64{0.5, 0.9}
	rwWindow    = 5 * time.Second
)

// rwWrite writes points [from, to) of the workload in batches.
func rwWrite(t testing.TB, db *engine.DB, base int64, from, to int) {
	var gs, ls [rwSeries]*engine.Series
	for k := 0; k < rwSeries; k++ {
		gs[k] = mustSeries(t, db, "rw_gauge", engine.Labels{"s": strconv.Itoa(k)})
		ls[k] = mustSeries(t, db, "rw_lat", engine.Labels{"s": strconv.Itoa(k)})
	}
	var b engine.Batch
	for i := from; i < to; i++ {
		b.Add(gs[i%rwSeries], rwTS(base, i), rwValue(i))
		b.Add(ls[i%rwSeries], rwTS(base, i), rwValue(i))
		if b.Len() >= 600 || i == to-1 {
			if err := db.Append(&b); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
}

// rwConfigs are the two senders of the workload: raw and aggregated.
func rwConfigs(url string) []remote.Config {
	return []remote.Config{
		{URL: url, Feed: "raw", Selectors: []string{"rw_gauge"}, ExternalLabels: map[string]string{"origin": "em"}, MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond},
		{URL: url, Feed: "agg", Selectors: []string{"rw_lat"}, ExternalLabels: map[string]string{"origin": "em"}, Shape: remote.Aggregated,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
			Aggregation: remote.Aggregation{Window: rwWindow, Grace: time.Second, Buckets: rwBuckets, Quantiles: rwQuantiles, IdleClose: 500 * time.Millisecond}},
	}
}

// rwTotals are the totals compared between eventmetrics and a receiver.
type rwTotals map[string]float64

// engineTotals computes, with eventmetrics' own query layer, what the
// receiver must hold.
func engineTotals(t testing.TB, db *engine.DB, base int64) rwTotals {
	out := rwTotals{}
	var windows int
	for k := 0; k < rwSeries; k++ {
		s := strconv.Itoa(k)
		for _, name := range []string{"rw_gauge", "rw_lat"} {
			v, err := db.Query(name, query.Eq("s", s)).FromBeginning().Scalars(query.Count, query.Sum)
			if err != nil {
				t.Fatal(err)
			}
			out[name+" count s="+s], out[name+" sum s="+s] = v[0], v[1]
		}
		bs, err := db.Query("rw_lat", query.Eq("s", s)).FromBeginning().Buckets(rwBuckets, true)
		if err != nil {
			t.Fatal(err)
		}
		for j, n := range bs {
			le := "+Inf"
			if j < len(rwBuckets) {
				le = strconv.FormatFloat(rwBuckets[j], 'g', -1, 64)
			}
			out["rw_lat bucket le="+le] += float64(n)
		}
		ts, err := db.Query("rw_lat", query.Eq("s", s)).FromBeginning().Timestamps()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int64]bool{}
		for _, x := range ts {
			seen[x/int64(rwWindow)] = true
		}
		windows += len(seen)
	}
	out["rw_lat windows"] = float64(windows)
	return out
}

// serverTotals asks the receiver, through its query API, for the same
// totals.
func serverTotals(srv *server) (rwTotals, error) {
	at := time.Now().Add(time.Minute)
	out := rwTotals{}
	for _, q := range []struct{ expr, key, by string }{
		{`sum by (s) (count_over_time(rw_gauge{origin="em"}[1d]))`, "rw_gauge count s=", "s"},
		{`sum by (s) (sum_over_time(rw_gauge{origin="em"}[1d]))`, "rw_gauge sum s=", "s"},
		{`sum by (s) (sum_over_time(rw_lat_count{origin="em"}[1d]))`, "rw_lat count s=", "s"},
		{`sum by (s) (sum_over_time(rw_lat_sum{origin="em"}[1d]))`, "rw_lat sum s=", "s"},
		{`sum by (le) (sum_over_time(rw_lat_bucket{origin="em"}[1d]))`, "rw_lat bucket le=", "le"},
		{`sum(count_over_time(rw_lat{quantile="0.9"}[1d]))`, "rw_lat windows", ""},
	} {
		res, err := srv.query(q.expr, at, q.by)
		if err != nil {
			return nil, err
		}
		for k, v := range res {
			out[q.key+k] = v
		}
	}
	return out, nil
}

// diff describes how got differs from want ("" when equal).
func diff(got, want rwTotals) string {
	var s string
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			s += fmt.Sprintf("  %s: receiver %v, eventmetrics %v\n", k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			s += fmt.Sprintf("  %s: receiver %v, not in eventmetrics\n", k, g)
		}
	}
	return s
}

// waitTotals polls the receiver until its totals equal want (or d passes).
func waitTotals(t testing.TB, srv *server, want rwTotals, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got, err := serverTotals(srv)
		if err == nil && diff(got, want) == "" {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("%s: %v", srv.kind, err)
			}
			t.Fatalf("%s: totals differ after %v:\n%s", srv.kind, d, diff(got, want))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestReceivers: both shapes into a real VictoriaMetrics and a real
// Prometheus (remote-write receiver): for a known workload the totals read
// back through their query APIs equal eventmetrics' own.
func TestReceivers(t *testing.T) {
	for _, kind := range []string{"victoria-metrics", "prometheus"} {
		t.Run(kind, func(t *testing.T) {
			srv := startServer(t, kind)
			db := openDB(t, t.TempDir())
			defer db.Close()
			var senders []*remote.Sender
			for _, cfg := range rwConfigs(srv.writeURL()) {
				senders = append(senders, start(t, db, cfg))
			}
			base := time.Now().Add(-2*time.Minute).Truncate(time.Second).UnixNano() + 123_456 // not on a window edge
			const n = 30_000                                                                  // 10 s per series
			for i := 0; i < n; i += 3000 {
				rwWrite(t, db, base, i, i+3000)
				time.Sleep(20 * time.Millisecond)
			}
			want := engineTotals(t, db, base)
			if want["rw_gauge count s=0"] != n/rwSeries || math.IsNaN(want["rw_lat sum s=1"]) {
				t.Fatalf("engine totals %v", want)
			}
			waitTotals(t, srv, want, 60*time.Second)
			for _, s := range senders {
				st := s.Stats()
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if st.Rejected != 0 || st.Late != 0 || st.Collapsed != 0 {
					t.Errorf("sender stats %+v", st)
				}
				t.Logf("%s: %d samples in %d batches, %d retries, lag p50 %v p99 %v", kind, st.Samples, st.Batches, st.Retries, s.LagQuantile(0.5), s.LagQuantile(0.99))
			}
		})
	}
}

// TestOutageChild is the eventmetrics process of TestOutage: it opens the
// DB, starts both senders, writes the workload from where the DB stands up
// to EVENTMETRICS_RW_N points, waits for the last windows to close and
// stops cleanly. The parent kills it with SIGKILL in the middle.
func TestOutageChild(t *testing.T) {
	dir := os.Getenv("EVENTMETRICS_RW_CHILD_DIR")
	if dir == "" {
		t.Skip("child process of TestOutage only")
	}
	url := os.Getenv("EVENTMETRICS_RW_URL")
	base, _ := strconv.ParseInt(os.Getenv("EVENTMETRICS_RW_BASE"), 10, 64)
	n, _ := strconv.Atoi(os.Getenv("EVENTMETRICS_RW_N"))
	db, err := engine.Open(dir, &engine.Options{SyncEvery: 50 * time.Millisecond, CheckpointBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var senders []*remote.Sender
	for _, cfg := range rwConfigs(url) {
		cfg.CloseTimeout = 30 * time.Second
		cfg.CommitEvery = 100 * time.Millisecond
		senders = append(senders, start(t, db, cfg))
	}
	from := 0
	if c, err := db.Query("rw_gauge").FromBeginning().Scalar(query.Count); err == nil {
		from = int(c)
	}
	fmt.Printf("from %d\n", from)
	for i := from; i < n; i += 300 {
		rwWrite(t, db, base, i, min(i+300, n))
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Printf("wrote %d\n", n)
	time.Sleep(2 * time.Second) // IdleClose: the last windows close
	for _, s := range senders {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		st := s.Stats()
		fmt.Printf("stats queued=%d samples=%d retries=%d rejected=%d late=%d\n", st.Queued, st.Samples, st.Retries, st.Rejected, st.Late)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOutage: the receiver is stopped for a while in the middle, twice,
// and the eventmetrics process (writer and both senders) is killed with
// SIGKILL in the middle and restarted: afterwards the receiver's totals
// equal the engine's exactly: everything arrived, nothing counted twice.
func TestOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: real servers and processes")
	}
	for _, kind := range []string{"victoria-metrics", "prometheus"} {
		t.Run(kind, func(t *testing.T) {
			srv := startServer(t, kind)
			dir := t.TempDir()
			base := time.Now().Add(-5*time.Minute).Truncate(time.Second).UnixNano() + 7_000_000
			const n = 120_000
			child := func() (*exec.Cmd, chan error) {
				cmd := exec.Command(os.Args[0], "-test.run=^TestOutageChild$", "-test.v=false")
				cmd.Env = append(os.Environ(), "EVENTMETRICS_RW_CHILD_DIR="+dir, "EVENTMETRICS_RW_URL="+srv.writeURL(),
					"EVENTMETRICS_RW_BASE="+strconv.FormatInt(base, 10), "EVENTMETRICS_RW_N="+strconv.Itoa(n))
				cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				return cmd, done
			}
			cmd, done := child()
			time.Sleep(700 * time.Millisecond)
			srv.shutdown()
			time.Sleep(time.Second)
			srv.start()
			time.Sleep(500 * time.Millisecond)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			t.Log("eventmetrics killed; restarting it")
			cmd, done = child()
			time.Sleep(800 * time.Millisecond)
			srv.shutdown()
			time.Sleep(800 * time.Millisecond)
			srv.start()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("the restarted child failed: %v", err)
				}
			case <-time.After(120 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatal("the restarted child did not finish in 120 s")
			}
			db, err := engine.Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			want := engineTotals(t, db, base)
			if want["rw_gauge count s=0"] != n/rwSeries {
				t.Fatalf("engine totals %v", want)
			}
			waitTotals(t, srv, want, 60*time.Second)
		})
	}
}
