package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
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
	benchRemoteWrite(b, ts.url+"/api/v1/write")
}

// BenchmarkRemoteWriteVictoriaMetrics feeds the same stream to
// VictoriaMetrics (Debian package victoria-metrics), started here on
// 127.0.0.1 with a temporary directory, for comparison. VictoriaMetrics
// answers before the samples are on disk (it buffers them for about a
// second); eventmetrics answers once they are durable.
func BenchmarkRemoteWriteVictoriaMetrics(b *testing.B) {
	bin, err := exec.LookPath("victoria-metrics")
	if err != nil {
		if os.Getenv("EVENTMETRICS_REQUIRE_SERVERS") == "1" {
			b.Fatal("victoria-metrics is not installed (apt-get install victoria-metrics)")
		}
		b.Skip("victoria-metrics is not installed (apt-get install victoria-metrics)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-storageDataPath", b.TempDir(), "-httpListenAddr", addr, "-retentionPeriod", "100y", "-loggerLevel", "ERROR")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("victoria-metrics did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	benchRemoteWrite(b, "http://"+addr+"/api/v1/write")
}

// benchRemoteWrite sends remote-write requests of 100 series × 20 samples,
// each with its own timestamps (within the last day, so that any store
// keeps them), from 4 goroutines.
func benchRemoteWrite(b *testing.B, url string) {
	const perSeries = 20
	var seq atomic.Int64
	base0 := time.Now().Add(-24 * time.Hour).UnixMilli()
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
			base := base0 + seq.Add(1)*perSeries
			for s := range req.Timeseries {
				for i := range req.Timeseries[s].Samples {
					req.Timeseries[s].Samples[i] = prompb.Sample{Timestamp: base + int64(i), Value: float64(s*i) * 0.5}
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
			hr, _ := http.NewRequest("POST", url, bytes.NewReader(enc))
			hr.Header.Set("Content-Encoding", "snappy")
			hr.Header.Set("Content-Type", "application/x-protobuf")
			hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
			resp, err := hc.Do(hr)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
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
