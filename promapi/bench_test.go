package promapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/promapi"
)

// Benchmark data: 100 counters req_total{svc,inst} and 20 classic
// histograms of 10 buckets (200 series lat_bucket{inst,le}), a point every
// 15s for 1h: 300 series, 72,000 points.
const (
	benchCounters   = 100
	benchHistograms = 20
	benchBuckets    = 10
	benchPoints     = 240
)

func benchDB(b *testing.B) *engine.DB {
	b.Helper()
	db := openDB(b, b.TempDir())
	b.Cleanup(func() { db.Close() })
	var batch engine.Batch
	add := func(name string, ls engine.Labels, v func(i int) float64) {
		s, err := db.Series(name, ls)
		if err != nil {
			b.Fatal(err)
		}
		for i := range benchPoints {
			batch.Add(s, (t0+int64(i)*tick)*1e6+int64(i%7)*1e5, v(i))
		}
	}
	for c := range benchCounters {
		add("req_total", engine.Labels{"svc": fmt.Sprint(c % 10), "inst": fmt.Sprint(c)}, func(i int) float64 { return float64(i * (c + 1)) })
	}
	for h := range benchHistograms {
		for k := range benchBuckets {
			le := "+Inf"
			if k < benchBuckets-1 {
				le = fmt.Sprint(0.01 * float64(int(1)<<k))
			}
			add("lat_bucket", engine.Labels{"inst": fmt.Sprint(h), "le": le}, func(i int) float64 { return float64(i * (k + 1) * (h + 1)) })
		}
	}
	if err := db.Append(&batch); err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkQuery runs instant and range queries through the HTTP handler
// (form parsing, PromQL, the adapter, JSON). samples/s counts the points in
// the selectors' windows.
//
//	go test -run '^$' -bench BenchmarkQuery -benchmem ./promapi/
func BenchmarkQuery(b *testing.B) {
	db := benchDB(b)
	h := promapi.New(db, promapi.Options{})
	end := t0 + (benchPoints-1)*tick
	perSeries := func(from, to int64) float64 { // points of one series in (from, to]
		n := 0
		for i := range benchPoints {
			if t := t0 + int64(i)*tick; t > from && t <= to {
				n++
			}
		}
		return float64(n)
	}
	const w = 5 * 60 * 1000
	for _, c := range []struct {
		name, expr string
		series     int
		rng        bool
	}{
		{"rate", "sum by (svc) (rate(req_total[5m]))", benchCounters, false},
		{"histogram_quantile", "histogram_quantile(0.99, sum by (le) (rate(lat_bucket[5m])))", benchHistograms * benchBuckets, false},
	} {
		for _, rng := range []bool{false, true} {
			form := url.Values{"query": {c.expr}}
			samples := float64(c.series)
			name := c.name + "/instant"
			if rng {
				start := t0 + 10*60*1000
				form.Set("start", secs(start))
				form.Set("end", secs(end))
				form.Set("step", "60")
				samples *= perSeries(start-w, end)
				name = c.name + "/range"
			} else {
				form.Set("time", secs(end))
				samples *= perSeries(end-w, end)
			}
			body := form.Encode()
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				start := time.Now()
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, "/api/v1/query", strings.NewReader(body))
					if rng {
						req = httptest.NewRequest(http.MethodPost, "/api/v1/query_range", strings.NewReader(body))
					}
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
				b.ReportMetric(samples*float64(b.N)/time.Since(start).Seconds(), "samples/s")
			})
		}
	}
}
