package expose_test

import (
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"github.com/eventmetrics/eventmetrics/expose"
	"github.com/eventmetrics/eventmetrics/metrics"
)

func ExampleWriteText() {
	reg, _ := metrics.NewRegistry(nil)
	c := metrics.Must(reg.CounterVec(metrics.Opts{Name: "jobs", Help: "Jobs run.", Labels: []string{"queue"}}))
	metrics.Must(c.WithValues("say \"hi\"\n")).Inc()
	_ = expose.WriteText(os.Stdout, reg)
	// http.Handle("/metrics", expose.Handler(reg, nil)) serves the same.
	// Output:
	// # HELP jobs_total Jobs run.
	// # TYPE jobs_total counter
	// jobs_total{queue="say \"hi\"\n"} 1
}

func BenchmarkHandler(b *testing.B) {
	r := fullRegistry(b)
	v := metrics.Must(r.CounterVec(metrics.Opts{Name: "many", Labels: []string{"k"}}))
	for i := range 1000 {
		metrics.Must(v.WithValues(strconv.Itoa(i))).Inc()
	}
	h := expose.Handler(r, nil)
	req := httptest.NewRequest("GET", "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
