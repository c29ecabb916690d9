// Command quickstart writes observations into an eventmetrics store, closes
// it, reopens it and prints what queries return.
//
//	go run ./examples/quickstart            # a temporary store, removed afterwards
//	go run ./examples/quickstart -dir ./qs  # keep the store in ./qs
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/query"
)

func main() {
	dir := flag.String("dir", "", "store directory (default: a temporary one, removed at exit)")
	n := flag.Int("n", 100_000, "observations to write")
	flag.Parse()
	if err := run(*dir, *n); err != nil {
		log.Fatal(err)
	}
}

func run(dir string, n int) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "eventmetrics-quickstart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	db, err := engine.Open(dir, nil)
	if err != nil {
		return err
	}
	// Write: one handle per series, then n latencies spread over the last hour.
	services := []string{"checkout", "search", "login"}
	handles := make(map[string]*engine.Series)
	for _, svc := range services {
		if handles[svc], err = db.Series("latency_seconds", engine.Labels{"service": svc}); err != nil {
			return err
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	start := time.Now()
	var b engine.Batch
	for i := 0; i < n; i++ {
		svc := services[i%len(services)]
		ts := now.Add(-time.Hour + time.Duration(i)*time.Hour/time.Duration(n))
		b.Add(handles[svc], ts.UnixNano(), rng.ExpFloat64()*0.05)
		if b.Len() == 1000 {
			if err := db.Append(&b); err != nil {
				return err
			}
			b.Reset()
		}
	}
	if err := db.Append(&b); err != nil {
		return err
	}
	// Single writes, and a counter.
	if err := db.Observe("latency_seconds", 0.250, engine.Labels{"service": "checkout"}); err != nil {
		return err
	}
	for i := 0; i < 5; i++ {
		if err := db.Increment("requests_total", 1, engine.Labels{"code": "200"}); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d observations in %v into %s\n", n+6, time.Since(start).Round(time.Millisecond), dir)
	if err := db.Close(); err != nil {
		return err
	}

	// Reopen and query.
	db, err = engine.Open(dir, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	q := db.Query("latency_seconds", query.Eq("service", "checkout"))
	count, err := q.Scalar(query.Count)
	if err != nil {
		return err
	}
	mean, _ := q.Scalar(query.Mean)
	ps, err := q.Percentiles(50, 90, 99)
	if err != nil {
		return err
	}
	fmt.Printf("checkout: %v points, mean %.4f s, p50 %.4f s, p90 %.4f s, p99 %.4f s\n", count, mean, ps[0], ps[1], ps[2])
	recent, _ := q.Since(5 * time.Minute).Scalar(query.Count)
	fmt.Printf("checkout, last 5 minutes: %v points\n", recent)
	buckets, err := db.Query("latency_seconds").Buckets([]float64{0.01, 0.05, 0.25}, true)
	if err != nil {
		return err
	}
	fmt.Printf("all services, cumulative le 0.01/0.05/0.25/+Inf: %v\n", buckets)
	total, _ := db.Query("requests_total", query.Eq("code", "200")).Scalar(query.Last)
	fmt.Printf("requests_total{code=\"200\"} = %v\n", total)
	return nil
}
