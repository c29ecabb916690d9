package promapi_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/internal/testutil"
	"github.com/eventmetrics/eventmetrics/promapi"
)

// runPromtool runs promtool with args, bounded in time, and returns its
// standard output.
func runPromtool(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1", "HTTP_PROXY=", "http_proxy=")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("promtool %q: %v\n%s%s", args, err, out, stderr)
	}
	return out
}

// TestPromtool queries the API with the real promtool, instant and range,
// and compares its output with the independent evaluator.
func TestPromtool(t *testing.T) {
	bin := testutil.Binary(t, "promtool", "prometheus")
	s := newServer(t, promapi.Options{}) // httptest listens on 127.0.0.1
	t.Run("instant", func(t *testing.T) {
		for _, expr := range exprs {
			for _, at := range instantTimes {
				out := runPromtool(t, bin, "query", "instant", "-o", "json", "--time="+secs(at), s.srv.URL, expr)
				var vec []apiSeries
				if err := json.Unmarshal(out, &vec); err != nil {
					t.Fatalf("%s: %v in %s", expr, err, out)
				}
				compareResults(t, "promtool "+expr+"@"+strconv.FormatInt(at, 10), vectorResult(t, vec, at), s.f.eval(expr, at))
			}
		}
	})
	t.Run("range", func(t *testing.T) {
		start, end, step := t0+10*60*1000, t0+span+3*60*1000, int64(30_000)
		for _, expr := range exprs {
			out := runPromtool(t, bin, "query", "range", "-o", "json", "--start="+secs(start), "--end="+secs(end), "--step=30s", s.srv.URL, expr)
			var mat []apiSeries
			if err := json.Unmarshal(out, &mat); err != nil {
				t.Fatalf("%s: %v in %s", expr, err, out)
			}
			got := matrixResults(t, mat)
			for at := start; at <= end; at += step {
				compareResults(t, "promtool range "+expr+"@"+strconv.FormatInt(at, 10), got[at], s.f.eval(expr, at))
				delete(got, at)
			}
			for at := range got {
				t.Errorf("%s: a step at %d, off the grid", expr, at)
			}
		}
	})
	t.Run("text output", func(t *testing.T) {
		// promtool's default output: "metric => value @[seconds]".
		at := t0 + 30*60*1000
		out := runPromtool(t, bin, "query", "instant", "--time="+secs(at), s.srv.URL, "count(temperature)")
		want := "{} => 3 @[" + strconv.FormatInt(at/1000, 10) + "]\n"
		if string(out) != want {
			t.Errorf("%q, want %q", out, want)
		}
	})
}
