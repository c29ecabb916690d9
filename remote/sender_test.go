package remote_test

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/expose"
	"github.com/eventmetrics/eventmetrics/metrics"
	"github.com/eventmetrics/eventmetrics/query"
	"github.com/eventmetrics/eventmetrics/remote"
)

const baseNs = int64(1_700_000_000_000) * 1e6 // a whole second, in ns

func mustSeries(t testing.TB, db *engine.DB, name string, ls engine.Labels) *engine.Series {
	t.Helper()
	s, err := db.Series(name, ls)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func observe(t testing.TB, s *engine.Series, ns int64, v float64) {
	t.Helper()
	if err := s.ObserveAtNanos(ns, v); err != nil {
		t.Fatal(err)
	}
}

func start(t testing.TB, db *engine.DB, cfg remote.Config) *remote.Sender {
	t.Helper()
	s, err := remote.New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRaw: every point is one sample (ms), in order per series; of
// several points of a series in one millisecond the last is sent and the
// others counted; selectors filter; external labels are added (a series'
// own label wins); headers and auth go with every request.
func TestRaw(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	rcv := newReceiver(t)
	s := start(t, db, remote.Config{
		URL:            rcv.url(),
		Headers:        map[string]string{"X-Scope-OrgID": "tenant-1"},
		BearerToken:    "tok",
		Selectors:      []string{`{__name__=~"temp|load"}`, `up{job="x"}`},
		ExternalLabels: map[string]string{"cluster": "c1", "host": "ext"},
		Shards:         3,
		BatchSize:      7,
	})
	a := mustSeries(t, db, "temp", engine.Labels{"host": "a"})
	b := mustSeries(t, db, "load", nil)
	up := mustSeries(t, db, "up", engine.Labels{"job": "y"}) // filtered out
	want := map[string][]sample{}
	for i := 0; i < 300; i++ {
		ns := baseNs + int64(i)*int64(time.Millisecond)
		observe(t, a, ns, float64(i))
		observe(t, b, ns+1, float64(-i))
		observe(t, up, ns, 1)
		if i%10 == 0 { // two more points in the same ms: the last wins
			observe(t, a, ns+500, 1000+float64(i))
			observe(t, a, ns+999_999, 2000+float64(i))
		}
		va := float64(i)
		if i%10 == 0 {
			va = 2000 + float64(i)
		}
		ms := ns / 1e6
		want["__name__=temp,cluster=c1,host=a"] = append(want["__name__=temp,cluster=c1,host=a"], sample{ms, va})
		want["__name__=load,cluster=c1,host=ext"] = append(want["__name__=load,cluster=c1,host=ext"], sample{ms, float64(-i)})
	}
	waitFor(t, 10*time.Second, "600 samples", func() bool { return rcv.total() >= 600 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got := rcv.snapshot()
	if fmt.Sprint(keys(got)) != fmt.Sprint(keys(want)) {
		t.Fatalf("series %v, want %v", keys(got), keys(want))
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %d samples, want %d\n got %v\nwant %v", k, len(got[k]), len(w), head(got[k]), head(w))
		}
	}
	st := s.Stats()
	if st.Collapsed != 60 || st.Samples != 600 || st.Filtered != 1 || st.Queued != 0 || st.Rejected != 0 {
		t.Fatalf("stats %+v", st)
	}
	if h := rcv.headers; h.Get("X-Scope-OrgID") != "tenant-1" || h.Get("Authorization") != "Bearer tok" {
		t.Fatalf("headers %v", h)
	}
}

func head(s []sample) []sample { return s[:min(len(s), 12)] }

// TestAggregated: per series and window, count, sum, cumulative buckets
// (+Inf included) and exact quantiles, stamped at the window end; points
// up to Grace late are included, later ones counted and not sent; NaN
// points are skipped as in the query layer.
func TestAggregated(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	rcv := newReceiver(t)
	s := start(t, db, remote.Config{
		URL:   rcv.url(),
		Shape: remote.Aggregated,
		Aggregation: remote.Aggregation{
			Window:    10 * time.Second,
			Grace:     5 * time.Second,
			Buckets:   []float64{1, 5},
			Quantiles: []float64{0.5, 1},
			IdleClose: 300 * time.Millisecond,
		},
	})
	lat := mustSeries(t, db, "lat", engine.Labels{"op": "get"})
	sec := int64(time.Second)
	// Window [0,10s): 0.5, 3, 7, 5 (le=5 inclusive); window [10s,20s): 2, 9.
	observe(t, lat, baseNs+1*sec, 0.5)
	observe(t, lat, baseNs+2*sec, 3)
	observe(t, lat, baseNs+9*sec, 7)
	observe(t, lat, baseNs+9*sec+1, math.NaN())
	observe(t, lat, baseNs+11*sec, 2)
	observe(t, lat, baseNs+14*sec, 5) // watermark 14s: window 0 is within grace (ends 10 + 5 > 14)
	observe(t, lat, baseNs+3*sec, 5)  // late but within grace: included in window 0
	observe(t, lat, baseNs+16*sec, 9) // watermark 16s: window 0 closes
	// The sender must have read the points so far (and closed window 0)
	// before the next one is written: otherwise both come in one read and
	// the order of closing and adding depends on timing.
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the first eight points read", func() bool { return s.Stats().Points >= 8 })
	observe(t, lat, baseNs+4*sec, 1) // too late: counted
	w0 := (baseNs + 10*sec) / 1e6
	w1 := (baseNs + 20*sec) / 1e6
	want := map[string][]sample{
		"__name__=lat_count,op=get":          {{w0, 4}, {w1, 3}},
		"__name__=lat_sum,op=get":            {{w0, 15.5}, {w1, 16}},
		"__name__=lat_bucket,le=1,op=get":    {{w0, 1}, {w1, 0}},
		"__name__=lat_bucket,le=5,op=get":    {{w0, 3}, {w1, 2}},
		"__name__=lat_bucket,le=+Inf,op=get": {{w0, 4}, {w1, 3}},
		"__name__=lat,op=get,quantile=0.5":   {{w0, 4}, {w1, 5}},
		"__name__=lat,op=get,quantile=1":     {{w0, 7}, {w1, 9}},
	}
	waitFor(t, 10*time.Second, "both windows", func() bool { return rcv.total() >= 14 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got := rcv.snapshot()
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %v, want %v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("series %v", keys(got))
	}
	if st := s.Stats(); st.Late != 1 || st.NaN != 1 || st.Samples != 14 {
		t.Fatalf("stats %+v", st)
	}
	// The engine's own answer for window 0 agrees.
	n, err := db.Query("lat").FromNanos(baseNs).ToNanos(baseNs + 10*sec).Scalar(query.Count)
	if err != nil || n != 5 { // the too-late point is stored, just not exported
		t.Fatalf("engine count %v %v", n, err)
	}
}

// TestRetries: 5xx and 429 are retried with backoff (Retry-After
// honoured) until accepted; another 4xx drops the batch, counted, and the
// cursor goes on.
func TestRetries(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	rcv := newReceiver(t)
	rcv.respond = func(n int) (int, string) {
		switch n {
		case 1, 2:
			return http.StatusServiceUnavailable, ""
		case 3:
			return http.StatusTooManyRequests, "1"
		case 5:
			return http.StatusBadRequest, ""
		}
		return 0, ""
	}
	s := start(t, db, remote.Config{URL: rcv.url(), Shards: 1, BatchSize: 1000, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, CommitEvery: 20 * time.Millisecond})
	x := mustSeries(t, db, "x", nil)
	began := time.Now()
	observe(t, x, baseNs, 1)
	waitFor(t, 10*time.Second, "the first sample", func() bool { return rcv.total() == 1 })
	if d := time.Since(began); d < time.Second {
		t.Fatalf("Retry-After: 1 not honoured: delivered after %v", d)
	}
	observe(t, x, baseNs+int64(time.Second), 2) // request 5: rejected
	waitFor(t, 5*time.Second, "the rejection", func() bool { return s.Stats().Rejected == 1 })
	observe(t, x, baseNs+2*int64(time.Second), 3)
	observe(t, x, baseNs+3*int64(time.Second), 4)
	waitFor(t, 5*time.Second, "the third and fourth samples", func() bool { return rcv.total() == 3 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Retries != 3 || st.Rejected != 1 || st.RejectedBatches != 1 || st.Samples != 3 {
		t.Fatalf("stats %+v", st)
	}
	if got := rcv.snapshot()["__name__=x"]; !slices.Equal(got, []sample{{baseNs / 1e6, 1}, {baseNs/1e6 + 2000, 3}, {baseNs/1e6 + 3000, 4}}) {
		t.Fatalf("received %v", got)
	}
	// The rejected batch is not sent again after a restart: the cursor
	// passed it.
	s2 := start(t, db, remote.Config{URL: rcv.url()})
	time.Sleep(300 * time.Millisecond)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if rcv.total() != 3 {
		t.Fatalf("after a restart the receiver has %d samples, want 3", rcv.total())
	}
}

// TestRestart: a sender closed and started again (on a reopened DB too)
// resumes after what was acknowledged: every sample arrives exactly once.
// For Aggregated, open windows are rebuilt and closed windows not sent
// again.
func TestRestart(t *testing.T) {
	for _, shape := range []remote.Shape{remote.Raw, remote.Aggregated} {
		t.Run(shape.String(), func(t *testing.T) {
			dir := t.TempDir()
			db := openDB(t, dir)
			rcv := newReceiver(t)
			cfg := remote.Config{URL: rcv.url(), Shape: shape, Aggregation: remote.Aggregation{Window: time.Second, IdleClose: 400 * time.Millisecond}}
			s := start(t, db, cfg)
			x := mustSeries(t, db, "x", engine.Labels{"k": "v"})
			y := mustSeries(t, db, "y", nil)
			n := 0
			write := func(k int) {
				for i := 0; i < k; i++ {
					ns := baseNs + int64(n)*int64(100*time.Millisecond)
					observe(t, x, ns, float64(n))
					observe(t, y, ns, 1)
					n++
				}
			}
			write(25) // 2.5 s: windows 0, 1 closed, 2 open (for Aggregated)
			if shape == remote.Raw {
				waitFor(t, 5*time.Second, "50 samples", func() bool { return rcv.total() == 50 })
			} else {
				time.Sleep(200 * time.Millisecond) // shorter than IdleClose: window 2 stays open
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			write(25)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openDB(t, dir)
			defer db.Close()
			x, y = mustSeries(t, db, "x", engine.Labels{"k": "v"}), mustSeries(t, db, "y", nil)
			s = start(t, db, cfg)
			write(25)
			if shape == remote.Raw {
				waitFor(t, 5*time.Second, "150 samples", func() bool { return rcv.total() >= 150 })
			} else {
				// 7.5 s of points: 8 windows × 2 series × 3 samples (count, sum, +Inf).
				waitFor(t, 5*time.Second, "48 samples", func() bool { return rcv.total() >= 48 })
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			got := rcv.snapshot()
			for k, ss := range got {
				for i := 1; i < len(ss); i++ {
					if ss[i].t <= ss[i-1].t {
						t.Fatalf("%s: sample %d (%v) not after %v: sent twice or out of order", k, i, ss[i], ss[i-1])
					}
				}
			}
			if shape == remote.Aggregated {
				var total, sum float64
				for _, smp := range got["__name__=x_count,k=v"] {
					total += smp.v
				}
				for _, smp := range got["__name__=x_sum,k=v"] {
					sum += smp.v
				}
				if total != 75 || sum != 74*75/2 || len(got["__name__=x_count,k=v"]) != 8 {
					t.Fatalf("x: windows %v, count %v, sum %v; want 8 windows, 75, %d", got["__name__=x_count,k=v"], total, sum, 74*75/2)
				}
			} else if len(got["__name__=x,k=v"]) != 75 || rcv.total() != 150 {
				t.Fatalf("x: %d samples, total %d", len(got["__name__=x,k=v"]), rcv.total())
			}
		})
	}
}

// TestBackpressure: with the receiver stuck, the sender holds at most
// QueueCapacity samples and stops reading the feed; nothing is dropped;
// once the receiver answers, everything arrives.
func TestBackpressure(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	rcv := newReceiver(t)
	rcv.block = make(chan struct{})
	s := start(t, db, remote.Config{URL: rcv.url(), QueueCapacity: 100, Shards: 2, BatchSize: 10})
	x := mustSeries(t, db, "x", nil)
	var b engine.Batch
	for i := 0; i < 5000; i++ {
		b.Add(x, baseNs+int64(i)*int64(time.Millisecond), float64(i))
	}
	if err := db.Append(&b); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	st := s.Stats()
	// The reader reads at most min(BatchSize×Shards, capacity/2) points
	// beyond what fits in the queue (the batches in flight hold BatchSize
	// each).
	if st.Queued > 100+20+2*10 || st.Points > 100+20+2*10+20 {
		t.Fatalf("with a stuck receiver: %d queued, %d read", st.Queued, st.Points)
	}
	rcv.mu.Lock()
	close(rcv.block)
	rcv.block = nil
	rcv.mu.Unlock()
	waitFor(t, 10*time.Second, "5000 samples", func() bool { return rcv.total() == 5000 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestShardOrder: with many shards, small batches and random delays at
// the receiver, each series' samples arrive in order.
func TestShardOrder(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	rcv := newReceiver(t)
	rcv.respond = func(n int) (int, string) {
		time.Sleep(time.Duration(n%3) * time.Millisecond)
		if n%7 == 0 {
			return 500, ""
		}
		return 0, ""
	}
	s := start(t, db, remote.Config{URL: rcv.url(), Shards: 8, BatchSize: 5, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	var ss []*engine.Series
	for k := 0; k < 20; k++ {
		ss = append(ss, mustSeries(t, db, "s", engine.Labels{"k": fmt.Sprint(k)}))
	}
	var b engine.Batch
	for i := 0; i < 200; i++ {
		for _, x := range ss {
			b.Add(x, baseNs+int64(i)*int64(time.Millisecond), float64(i))
		}
	}
	if err := db.Append(&b); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "4000 samples", func() bool { return rcv.total() == 4000 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for k, smp := range rcv.snapshot() {
		for i := range smp {
			if smp[i].v != float64(i) {
				t.Fatalf("%s: sample %d is %v: out of order", k, i, smp[i])
			}
		}
	}
}

// TestCollect: the sender's state is on a metrics registry's exposition.
func TestCollect(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	rcv := newReceiver(t)
	s := start(t, db, remote.Config{URL: rcv.url(), Feed: "vm"})
	reg, err := metrics.NewRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterCollector(s); err != nil {
		t.Fatal(err)
	}
	observe(t, mustSeries(t, db, "x", nil), baseNs, 1)
	waitFor(t, 5*time.Second, "a sample", func() bool { return rcv.total() == 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := expose.Encode(&sb, expfmt.NewFormat(expfmt.TypeTextPlain), fams); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	for _, want := range []string{
		`eventmetrics_remote_samples_sent_total{feed="vm"} 1`,
		`eventmetrics_remote_dropped_total{feed="vm",reason="rejected"} 0`,
		`eventmetrics_remote_queue_length{feed="vm"} 0`,
		`eventmetrics_remote_delivery_lag_seconds_count{feed="vm"} 1`,
		`eventmetrics_remote_cursor_segment{feed="vm"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q:\n%s", want, out)
		}
	}
}

// TestConfig: bad configurations are refused with a reason.
func TestConfig(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	for _, c := range []remote.Config{
		{},
		{URL: "ftp://x"},
		{URL: "http://x", Shards: -1},
		{URL: "http://x", Selectors: []string{"{"}},
		{URL: "http://x", Shape: remote.Aggregated, Aggregation: remote.Aggregation{Buckets: []float64{2, 1}}},
		{URL: "http://x", Shape: remote.Aggregated, Aggregation: remote.Aggregation{Quantiles: []float64{1.5}}},
		{URL: "http://x", Shape: remote.Aggregated, Aggregation: remote.Aggregation{Window: time.Microsecond}},
		{URL: "http://x", MinBackoff: time.Second, MaxBackoff: time.Millisecond},
	} {
		if _, err := remote.New(db, c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}
