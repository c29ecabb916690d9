package metrics_test

import (
	"fmt"
	"time"

	"github.com/eventmetrics/eventmetrics/metrics"
)

func Example() {
	reg, _ := metrics.NewRegistry(&metrics.RegistryOptions{Prefix: "shop"})
	requests := metrics.Must(reg.CounterVec(metrics.Opts{
		Name:     "http.requests",
		Help:     "HTTP requests served.",
		Labels:   []string{"method", "code"},
		Defaults: metrics.Labels{"code": "200"},
	}))
	latency := metrics.Must(reg.Histogram(metrics.HistogramOpts{
		Opts:    metrics.Opts{Name: "http.latency", Help: "Latency.", Unit: time.Millisecond},
		Buckets: []float64{10, 100, 1000},
	}))

	get := metrics.Must(requests.Bind(metrics.Labels{"method": "GET"})) // partially bound: keep it
	ok := metrics.Must(get.With(nil))                                   // code defaults to 200
	ok.Inc()
	metrics.Must(get.With(metrics.Labels{"code": "404"})).Inc()
	latency.Observe(42)

	_, err := requests.With(metrics.Labels{"colour": "red"})
	fmt.Println(err)

	_ = reg.SetLevel("http", metrics.Disabled) // every http.* metric stops recording
	ok.Inc()
	fmt.Println(ok.Value(), latency.Count())
	// Output:
	// metrics: label mismatch: shop_http_requests_total: unknown label "colour" (declared: method, code)
	// 1 1
}
