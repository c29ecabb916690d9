package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/eventmetrics/eventmetrics/client"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/metrics"
	"github.com/eventmetrics/eventmetrics/promapi"
	"github.com/eventmetrics/eventmetrics/remote"
	"github.com/eventmetrics/eventmetrics/server"
)

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "the store's directory (created if missing)")
	listen := fs.String("listen", server.DefaultAddr, "address to listen on (loopback by default: give another interface only on purpose)")
	token := fs.String("token", "", "require this bearer token of every request (default: $EVENTMETRICS_TOKEN; empty = no auth)")
	cors := fs.String("cors", "", "browser origins allowed to call the API, comma-separated (\"*\" = any; default: none)")
	demo := fs.Bool("demo", false, "also write a stream of realistic synthetic events (an HTTP service's requests) through the API")
	retention := fs.Duration("retention", 0, "remove data older than this (0 = keep everything)")
	maxBody := fs.Int64("max-body", 16<<20, "largest request body in bytes, as sent")
	maxDecoded := fs.Int64("max-decoded", 64<<20, "largest request body in bytes, after decompression")
	maxSeries := fs.Int("max-series-per-request", 50_000, "most distinct series one write may carry")
	maxStoreSeries := fs.Int("max-series", 0, "most series the store may hold (0 = unlimited)")
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "on SIGTERM/SIGINT, how long to wait for requests in flight")
	rwURL := fs.String("remote-write", "", "also stream everything stored to this Prometheus remote-write URL (Mimir /api/v1/push, Thanos /api/v1/receive, VictoriaMetrics /api/v1/write), resuming after restarts")
	rwShape := fs.String("remote-write-shape", "raw", "raw (each point a sample) or aggregated (per window: _count, _sum, _bucket, quantiles)")
	rwWindow := fs.Duration("remote-write-window", 10*time.Second, "aggregated shape: the window")
	rwGrace := fs.Duration("remote-write-grace", 10*time.Second, "aggregated shape: how late a point may be and still count in its window")
	rwBuckets := fs.String("remote-write-buckets", ".005,.01,.025,.05,.1,.25,.5,1,2.5,5,10", "aggregated shape: histogram bucket bounds")
	rwQuantiles := fs.String("remote-write-quantiles", "0.5,0.9,0.99", "aggregated shape: exact quantiles per window")
	rwHeaders := fs.String("remote-write-headers", "", "extra request headers, comma-separated K=V (e.g. X-Scope-OrgID=tenant1 for Mimir)")
	rwMatch := fs.String("remote-write-match", "", "only series matching these selectors, ';'-separated (e.g. {job=\"api\"})")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: eventmetrics serve [--data DIR] [--listen ADDR] [--token T] [--demo] [flags]

Runs the store in DIR and serves it over HTTP:
  POST /em/v1/ingest              JSON batches of points (per-point errors, batch ids)
  POST /api/v1/write              Prometheus remote write 1.0 (protobuf + snappy)
  POST /em/v1/import              Prometheus text / OpenMetrics, with timestamps
  POST /api/v1/import/prometheus  the same
  POST /em/v1/query               the native JSON query API
  GET  /em/v1/series, /em/v1/names, /em/v1/labels, /em/v1/label_values, /em/v1/stats, /em/v1/health
A write is answered only once it is durable. SIGTERM or SIGINT: stop accepting,
finish the requests in flight, sync and close the store.

flags:`)
		fs.PrintDefaults()
	}
	if code, ok := parseArgs(fs, args, 0); !ok {
		return code
	}
	if *token == "" {
		*token = os.Getenv("EVENTMETRICS_TOKEN")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	opts := server.Options{
		BearerToken:         *token,
		MaxBodyBytes:        *maxBody,
		MaxDecodedBytes:     *maxDecoded,
		MaxSeriesPerRequest: *maxSeries,
		Logger:              log,
	}
	if *cors != "" {
		opts.CORSOrigins = strings.Split(*cors, ",")
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintf(stderr, "eventmetrics serve: %v\n", err)
		return 2
	}
	dbOpts := &engine.Options{Retention: *retention, MaxSeries: *maxStoreSeries}
	if err := dbOpts.Validate(); err != nil {
		fmt.Fprintf(stderr, "eventmetrics serve: %v\n", err)
		return 2
	}
	var rw *remote.Config
	if *rwURL != "" {
		c, err := remoteConfig(*rwURL, *rwShape, *rwWindow, *rwGrace, *rwBuckets, *rwQuantiles, *rwHeaders, *rwMatch)
		if err == nil {
			err = c.Validate()
		}
		if err != nil {
			fmt.Fprintf(stderr, "eventmetrics serve: %v\n", err)
			return 2
		}
		rw = &c
	}
	db, err := engine.Open(*data, dbOpts)
	if err != nil {
		fmt.Fprintf(stderr, "eventmetrics serve: %v\n", err)
		return 1
	}
	code := serveDB(db, opts, rw, *listen, *demo, *grace, stdout, stderr, log)
	if err := db.Close(); err != nil {
		fmt.Fprintf(stderr, "eventmetrics serve: close store: %v\n", err)
		return 1
	}
	log.Info("eventmetrics serve: store closed")
	return code
}

func serveDB(db *engine.DB, opts server.Options, rw *remote.Config, listen string, demo bool, grace time.Duration, stdout, stderr io.Writer, log *slog.Logger) int {
	srv := server.New(db, opts)
	if err := srv.Err(); err != nil {
		fmt.Fprintf(stderr, "eventmetrics serve: %v\n", err)
		return 1
	}
	var extra []metrics.Collector
	if rw != nil {
		sender, err := remote.New(db, *rw)
		if err == nil {
			err = sender.Start()
		}
		if err != nil {
			fmt.Fprintf(stderr, "eventmetrics serve: remote write: %v\n", err)
			return 1
		}
		defer func() {
			if err := sender.Close(); err != nil {
				log.Warn("eventmetrics serve: remote write stopped", "err", err)
			}
		}()
		extra = append(extra, sender)
		log.Info("eventmetrics serve: streaming to remote write", "url", rw.URL, "shape", rw.Shape.String())
	}
	if err := srv.MountAll(promapi.Options{}, extra...); err != nil {
		fmt.Fprintf(stderr, "eventmetrics serve: %v\n", err)
		return 1
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(stderr, "eventmetrics serve: %v\n", err)
		return 1
	}
	if host, _, _ := net.SplitHostPort(listen); !isLoopback(host) {
		log.Warn("eventmetrics serve: listening beyond the loopback interface", "addr", ln.Addr().String(), "auth", opts.BearerToken != "")
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "eventmetrics: serving %s on %s\n", db.Dir(), url)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	demoDone := make(chan struct{})
	demoCtx, stopDemo := context.WithCancel(ctx)
	defer stopDemo()
	if demo {
		go func() {
			defer close(demoDone)
			runDemo(demoCtx, url, opts.BearerToken, log)
		}()
	} else {
		close(demoDone)
	}

	code := 0
	select {
	case <-ctx.Done():
		log.Info("eventmetrics serve: signal received, shutting down")
	case err := <-served:
		if err != nil {
			fmt.Fprintf(stderr, "eventmetrics serve: %v\n", err)
			code = 1
		}
	}
	stopDemo()
	<-demoDone
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "eventmetrics serve: shutdown: %v\n", err)
		code = 1
	}
	if code == 0 {
		if err := <-served; err != nil {
			fmt.Fprintf(stderr, "eventmetrics serve: %v\n", err)
			code = 1
		}
	}
	st := srv.Stats()
	log.Info("eventmetrics serve: stopped", "requests", st.Requests, "points", st.PointsAccepted, "deduplicated", st.BatchesDeduplicated)
	return code
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// runDemo writes a synthetic HTTP service's events through the client, as
// any application would: request latencies (log-normal, with a slow
// endpoint, a slow instance and occasional spikes), request counts by
// status code, and a queue depth gauge.
func runDemo(ctx context.Context, url, token string, log *slog.Logger) {
	w, err := client.New(url, &client.Options{BearerToken: token, RetryFor: 5 * time.Second, OnError: func(err error) {
		log.Warn("eventmetrics serve --demo: write failed", "err", err)
	}})
	if err != nil {
		log.Error("eventmetrics serve --demo", "err", err)
		return
	}
	defer w.Close()
	log.Info("eventmetrics serve --demo: writing synthetic events", "metrics", "http_request_duration_seconds, http_requests_total, queue_depth")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	endpoints := []struct {
		path   string
		median float64 // seconds
		weight float64
	}{{"/", 0.012, 5}, {"/api/search", 0.080, 3}, {"/api/checkout", 0.250, 1}, {"/api/login", 0.040, 1}}
	instances := []string{"web-1", "web-2", "web-3"}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	depth := 10.0
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n := 5 + rng.IntN(20) // requests in this 50 ms
		for range n {
			e := endpoints[0]
			r := rng.Float64() * 10
			for _, c := range endpoints {
				if r < c.weight {
					e = c
					break
				}
				r -= c.weight
			}
			inst := instances[rng.IntN(len(instances))]
			lat := e.median * math.Exp(0.5*rng.NormFloat64())
			if inst == "web-3" {
				lat *= 1.6
			}
			if rng.Float64() < 0.01 {
				lat *= 10 // a spike
			}
			code := "200"
			switch x := rng.Float64(); {
			case x < 0.01:
				code = "500"
			case x < 0.04:
				code = "404"
			}
			ls := engine.Labels{"service": "shop", "endpoint": e.path, "instance": inst}
			if err := w.Observe("http_request_duration_seconds", lat, ls); err != nil {
				return
			}
			if err := w.Increment("http_requests_total", 1, engine.Labels{"service": "shop", "endpoint": e.path, "code": code}); err != nil {
				return
			}
		}
		depth = math.Max(0, depth+rng.NormFloat64()*2)
		if err := w.Observe("queue_depth", math.Round(depth), engine.Labels{"service": "shop", "queue": "orders"}); errors.Is(err, client.ErrClosed) {
			return
		}
	}
}

// remoteConfig builds the remote-write configuration of serve's flags.
func remoteConfig(url, shape string, window, grace time.Duration, buckets, quantiles, headers, match string) (remote.Config, error) {
	c := remote.Config{URL: url}
	switch shape {
	case "raw":
		c.Shape = remote.Raw
	case "aggregated":
		c.Shape = remote.Aggregated
		c.Aggregation.Window, c.Aggregation.Grace = window, grace
		var err error
		if c.Aggregation.Buckets, err = floatList(buckets); err != nil {
			return c, fmt.Errorf("--remote-write-buckets: %w", err)
		}
		if c.Aggregation.Quantiles, err = floatList(quantiles); err != nil {
			return c, fmt.Errorf("--remote-write-quantiles: %w", err)
		}
	default:
		return c, fmt.Errorf("--remote-write-shape %q: raw or aggregated", shape)
	}
	if headers != "" {
		c.Headers = map[string]string{}
		for _, kv := range strings.Split(headers, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return c, fmt.Errorf("--remote-write-headers: %q is not K=V", kv)
			}
			c.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if match != "" {
		c.Selectors = strings.Split(match, ";")
	}
	return c, nil
}

func floatList(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
