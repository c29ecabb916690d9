// Command instrument is a small HTTP service instrumented with package
// metrics, its observations stored in an eventmetrics engine and exposed
// for Prometheus. It serves on 127.0.0.1, calls itself a few hundred
// times, prints part of its /metrics page and what the engine answers
// about the same observations, and exits.
//
//	go run ./examples/instrument
//	go run ./examples/instrument -serve 127.0.0.1:8080   # keep serving for a Prometheus
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/expose"
	"github.com/eventmetrics/eventmetrics/metrics"
	"github.com/eventmetrics/eventmetrics/query"
)

var (
	requests = metrics.Must(metrics.Default.CounterVec(metrics.Opts{
		Name: "http.requests", Help: "Requests served.",
		Labels: []string{"path", "code"}, Defaults: metrics.Labels{"code": "200"},
	}))
	latency = metrics.Must(metrics.Default.HistogramVec(metrics.HistogramOpts{
		Opts:    metrics.Opts{Name: "http.latency.seconds", Help: "Handler latency.", Labels: []string{"path"}},
		Buckets: []float64{0.001, 0.002, 0.005, 0.01},
	}))
	inFlight = metrics.Must(metrics.Default.Gauge(metrics.Opts{Name: "http.in_flight", Help: "Requests being served."}))
)

func main() {
	serve := flag.String("serve", "", "keep serving on this address after the demo")
	flag.Parse()
	if err := run(*serve); err != nil {
		log.Fatal(err)
	}
}

func run(serve string) error {
	dir, err := os.MkdirTemp("", "instrument-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := engine.Open(dir, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	metrics.Default.SetEngine(db)
	defer metrics.Default.Flush()

	mux := http.NewServeMux()
	for _, path := range []string{"/", "/slow"} {
		ok := metrics.Must(requests.WithValues(path)) // resolved once: no map work per request
		lat := metrics.Must(latency.WithValues(path))
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			defer inFlight.TrackInProgress()()
			defer lat.Time()()
			if path == "/slow" {
				time.Sleep(time.Duration(1+rand.IntN(3)) * time.Millisecond)
			}
			ok.Inc()
			fmt.Fprintln(w, "hello")
		})
	}
	mux.Handle("/metrics", expose.Handler(metrics.Default, nil))
	mux.Handle("/metrics.json", expose.JSONHandler(metrics.Default, true))

	addr := serve
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	for i := range 300 {
		path := "/"
		if i%3 == 0 {
			path = "/slow"
		}
		resp, err := http.Get(base + path)
		if err != nil {
			return err
		}
		resp.Body.Close()
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return err
	}
	fmt.Println("== /metrics (excerpt)")
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "http_requests_total") || strings.HasPrefix(l, "http_latency_seconds_count") {
			fmt.Println(l)
		}
	}
	resp.Body.Close()

	if err := metrics.Default.Flush(); err != nil {
		return err
	}
	ps, err := db.Query("http_latency_seconds", query.Eq("path", "/slow")).Percentiles(50, 99)
	if err != nil {
		return err
	}
	n, err := db.Query("http_requests_total").AggregateBy(query.Increase)
	if err != nil {
		return err
	}
	fmt.Println("== the engine, over the same observations")
	fmt.Printf("/slow latency p50 %.4fs p99 %.4fs (exact, from every stored observation)\n", ps[0], ps[1])
	if len(n) > 0 {
		fmt.Printf("requests stored: increase %.0f after the first of each series\n", n[0].Values[0][0])
	}
	if serve != "" {
		fmt.Println("serving on", base, "(/metrics, /metrics.json); Ctrl-C to stop")
		select {}
	}
	return nil
}
