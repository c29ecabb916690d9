package server_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/promapi"
	"github.com/eventmetrics/eventmetrics/server"
)

// TestPrometheusRemoteWriteAndScrape: a real Prometheus scrapes the
// server's /metrics every second and remote-writes what it scrapes into
// the server's /api/v1/write. The scrape works (the server's own metrics
// reach Prometheus), and the points arrive and count right: PromQL over
// eventmetrics (its Prometheus API) gives the same count_over_time as
// Prometheus over its own storage.
func TestPrometheusRemoteWriteAndScrape(t *testing.T) {
	testutil.Binary(t, "prometheus", "prometheus")
	ts := startServerAt(t, "", "127.0.0.1:0", server.Options{}, func(s *server.Server) error { return s.MountAll(promapi.Options{}) })
	prom := testutil.StartPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: eventmetrics
    static_configs:
      - targets: ['%s']
remote_write:
  - url: %s/api/v1/write
    queue_config:
      batch_send_deadline: 500ms
`, ts.addr, ts.url))
	// value runs an instant query on the API at base and returns the value
	// of its single result ("" for none).
	value := func(base, q string, at time.Time) (string, error) {
		res, err := testutil.Query(ts.hc, base, q, at)
		if err != nil || len(res) != 1 {
			return "", err
		}
		return res[0].Value, nil
	}
	// Five scrapes of our /metrics, and the server's counters seen there.
	prom.Wait("five scrapes", 45*time.Second, func() (bool, error) {
		v, err := value(prom.URL, `count_over_time(up{job="eventmetrics"}[10m])`, time.Now())
		n, _ := strconv.Atoi(v)
		return err == nil && n >= 5, err
	})
	prom.Wait("the server's own metrics in Prometheus", 45*time.Second, func() (bool, error) {
		v, err := value(prom.URL, `max(eventmetrics_server_points_accepted_total)`, time.Now())
		f, _ := strconv.ParseFloat(v, 64)
		return err == nil && f > 0, err // points remote-written into us, counted by us, scraped back
	})
	// Every `up` sample Prometheus scraped up to a moment reaches us, once.
	at := time.Now().Add(-2 * time.Second)
	q := `count_over_time(up{job="eventmetrics"}[10m])`
	theirs, err := value(prom.URL, q, at)
	if err != nil || theirs == "" {
		t.Fatalf("prometheus: %q %v", theirs, err)
	}
	var ours string
	prom.Wait("the remote-written samples", 45*time.Second, func() (bool, error) {
		var err error
		ours, err = value(ts.url, q, at)
		return err == nil && ours == theirs, err
	})
	// And stay equal: nothing arrives twice later.
	time.Sleep(2 * time.Second)
	if again, err := value(ts.url, q, at); err != nil || again != theirs {
		t.Fatalf("count over our data changed to %q (%v), Prometheus says %s", again, err, theirs)
	}
	t.Logf("count_over_time(up[10m]) at %v: Prometheus %s, eventmetrics %s", at.Format(time.TimeOnly), theirs, ours)
	if code, body := ts.do("GET", "/metrics", nil, nil); code != 200 || !strings.Contains(string(body), "eventmetrics_server_batches_accepted_total") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
}
