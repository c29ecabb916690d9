package dashboard_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/dashboard"
	"github.com/eventmetrics/eventmetrics/engine"
)

// benchStore holds 4 series of one metric, a point every 2 s each over the
// 4 days before fixtureNow (691,200 points), checkpointed; with rollups it
// also has minute and hour rollups of everything older than a day.
func benchStore(b *testing.B, rollups bool) (*engine.DB, int) {
	b.Helper()
	opts := &engine.Options{Now: func() time.Time { return fixtureNow }, NoBackgroundCompaction: true, Sync: engine.SyncNever}
	if rollups {
		opts.Rollups = []time.Duration{time.Minute, time.Hour}
	}
	db, err := engine.Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			b.Error(err)
		}
	})
	const every = 2 * time.Second
	n := int(4 * 24 * time.Hour / every)
	start := fixtureNow.Add(-4 * 24 * time.Hour)
	for s := range 4 {
		ser, err := db.Series("latency", engine.Labels{"host": fmt.Sprintf("h%d", s)})
		if err != nil {
			b.Fatal(err)
		}
		var batch engine.Batch
		for i := range n {
			batch.Add(ser, start.Add(time.Duration(i)*every).UnixNano(), math.Exp(math.Sin(float64(i+s))*2))
		}
		if err := db.Append(&batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Compact(); err != nil {
		b.Fatal(err)
	}
	return db, 4 * n
}

// BenchmarkPercentiles measures the heaviest endpoint: p50/p90/p99 in 120
// windows over every point of a range, exact (holding every value) or from
// rollups for the cold part.
func BenchmarkPercentiles(b *testing.B) {
	for _, tc := range []struct {
		name    string
		rollups bool
		query   string
	}{
		{"exact/24h", false, "metric=latency&last=24h&rollups=off"},
		{"exact/4d", false, "metric=latency&last=4d&rollups=off"},
		{"rollups/4d", true, "metric=latency&last=4d&rollups=on"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			db, _ := benchStore(b, tc.rollups)
			h := dashboard.New(db)
			req := httptest.NewRequest(http.MethodGet, "/dashboard/api/percentiles?"+tc.query, nil)
			// The points the range covers, for points/s.
			var pts int
			{
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dashboard/api/histogram?bounds=1&"+tc.query, nil))
				if rec.Code != 200 {
					b.Fatalf("%d: %s", rec.Code, rec.Body)
				}
				var hr histogramResp
				if err := json.Unmarshal(rec.Body.Bytes(), &hr); err != nil {
					b.Fatal(err)
				}
				pts = int(hr.Total)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d: %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(pts)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
		})
	}
}
