package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/eventmetrics/eventmetrics/client"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/server"
)

// The ingest benchmarks run the server and the load generator on this
// machine, over 127.0.0.1, with 4 concurrent senders (2 per core): the
// figure is end to end, including the client's encoding and the fsync
// before each answer.

const benchSeries = 100

// BenchmarkIngestJSON posts JSON batches of 5,000 points (100 series).
func BenchmarkIngestJSON(b *testing.B) {
	ts := startServer(b, b.TempDir(), server.Options{})
	defer ts.stop()
	const per = 5000
	var seq atomic.Int64
	body := func(base int64) []byte {
		var buf bytes.Buffer
		buf.WriteString(`{"points":[`)
		for i := range per {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(`{"name":"bench","labels":{"instance":"i`)
			buf.WriteString(strconv.Itoa(i % benchSeries))
			buf.WriteString(`","job":"api"},"value":`)
			buf.WriteString(strconv.FormatFloat(float64(i)*0.25, 'g', -1, 64))
			buf.WriteString(`,"timestamp":`)
			buf.WriteString(strconv.FormatInt(base+int64(i/benchSeries)*1e9, 10))
			buf.WriteByte('}')
		}
		buf.WriteString("]}")
		return buf.Bytes()
	}
	sample := body(0)
	b.ReportAllocs()
	b.SetParallelism(2)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		hc := &http.Client{Transport: &http.Transport{}}
		defer hc.CloseIdleConnections()
		for pb.Next() {
			resp, err := hc.Post(ts.url+"/em/v1/ingest", "application/json", bytes.NewReader(body(seq.Add(1)*1e12)))
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	pts := float64(b.N) * per
	b.ReportMetric(pts/time.Since(start).Seconds(), "points/s")
	b.ReportMetric(float64(len(sample))/per, "B/point")
}

// BenchmarkRemoteWrite posts remote-write requests of 2,000 samples (100
// series × 20), as Prometheus sends them (protobuf, snappy).
func BenchmarkRemoteWrite(b *testing.B) {
	ts := startServer(b, b.TempDir(), server.Options{})
	defer ts.stop()
	const perSeries = 20
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(2)
	var bodyBytes atomic.Int64
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		hc := &http.Client{Transport: &http.Transport{}}
		defer hc.CloseIdleConnections()
		var req prompb.WriteRequest
		for s := range benchSeries {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  []prompb.Label{{Name: "__name__", Value: "bench"}, {Name: "instance", Value: fmt.Sprint("i", s)}, {Name: "job", Value: "api"}},
				Samples: make([]prompb.Sample, perSeries),
			})
		}
		var raw, enc []byte
		for pb.Next() {
			base := seq.Add(1) * 1e6
			for s := range req.Timeseries {
				for i := range req.Timeseries[s].Samples {
					req.Timeseries[s].Samples[i] = prompb.Sample{Timestamp: base + int64(i)*1000, Value: float64(s*i) * 0.5}
				}
			}
			n := req.Size()
			if cap(raw) < n {
				raw = make([]byte, n)
			}
			raw = raw[:n]
			if _, err := req.MarshalToSizedBuffer(raw); err != nil {
				b.Error(err)
				return
			}
			enc = snappy.Encode(enc[:cap(enc)], raw)
			bodyBytes.Add(int64(len(enc)))
			hr, _ := http.NewRequest("POST", ts.url+"/api/v1/write", bytes.NewReader(enc))
			hr.Header.Set("Content-Encoding", "snappy")
			hr.Header.Set("Content-Type", "application/x-protobuf")
			resp, err := hc.Do(hr)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 204 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	pts := float64(b.N) * benchSeries * perSeries
	b.ReportMetric(pts/time.Since(start).Seconds(), "points/s")
	b.ReportMetric(float64(bodyBytes.Load())/pts, "B/point")
}

// BenchmarkClientWriter writes through client.Writer (background batches
// of 10,000 points, batch ids, one sender) from 4 goroutines.
func BenchmarkClientWriter(b *testing.B) {
	ts := startServer(b, b.TempDir(), server.Options{})
	defer ts.stop()
	c, err := client.New(ts.url, nil)
	if err != nil {
		b.Fatal(err)
	}
	labels := make([]engine.Labels, benchSeries)
	for i := range labels {
		labels[i] = engine.Labels{"instance": fmt.Sprint("i", i), "job": "api"}
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(2)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			if err := c.ObserveAt(time.Unix(0, i), "bench", float64(i), labels[i%benchSeries]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := c.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "points/s")
}
