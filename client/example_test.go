package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/eventmetrics/eventmetrics/client"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/server"
)

// An application writes through engine.Writer; whether it is an embedded
// *engine.DB or a client of a shared server is one constructor call.
func Example() {
	// The shared server (normally `eventmetrics serve`, here in-process).
	dir, _ := os.MkdirTemp("", "eventmetrics-example")
	defer os.RemoveAll(dir)
	db, err := engine.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	srv := server.New(db, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	// The application.
	var w engine.Writer
	w, err = client.New("http://"+ln.Addr().String(), nil) // instead of engine.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range 10 {
		w.ObserveAt(t0.Add(time.Duration(i)*time.Second), "latency", float64(i)/100, engine.Labels{"service": "checkout"})
	}
	w.Increment("requests_total", 10, engine.Labels{"code": "200"})
	if err := w.Close(); err != nil { // sends, and waits for the server's acknowledgement
		log.Fatal(err)
	}

	// Query over HTTP (the same request `eventmetrics query` sends).
	resp, err := client.Query(context.Background(), "http://"+ln.Addr().String(), "", &server.QueryRequest{
		Name: "latency", Op: "percentiles", Percentiles: []float64{50, 90},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("p50, p90:", resp.Values)
	// Output: p50, p90: [0.045 0.081]
}
