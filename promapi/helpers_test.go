package promapi_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventmetrics/eventmetrics/engine"
)

// This file holds the test fixture and an independent evaluator: the
// written points are kept in a plain model, reduced to samples by the
// documented rule (time order, ties in write order, last point of each
// millisecond), and the PromQL functions under test are computed from
// those samples by code that shares nothing with the engine or with
// Prometheus.

// seed returns the random seed: fixed, logged, overridable with
// PROMAPI_SEED.
func seed(t testing.TB) uint64 {
	s := uint64(20260815)
	if v := os.Getenv("PROMAPI_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("PROMAPI_SEED=%q: %v", v, err)
		}
		s = n
	}
	t.Logf("seed %d (set PROMAPI_SEED to replay)", s)
	return s
}

func nsTime(ns int64) time.Time { return time.Unix(0, ns) }

func openDB(t testing.TB, dir string) *engine.DB {
	t.Helper()
	db, err := engine.Open(dir, &engine.Options{Sync: engine.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// point is one written point (ns).
type point struct {
	t int64
	v float64
}

// refSeries is one series of the model, its points in write order.
type refSeries struct {
	name   string
	labels map[string]string
	pts    []point
}

// key names a result series: its labels (with __name__ when kept) in
// Prometheus' text form.
func key(name string, ls map[string]string) string {
	names := slices.Sorted(maps.Keys(ls))
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", n, ls[n])
	}
	b.WriteByte('}')
	return b.String()
}

// keyOf is key for a label map that may hold __name__.
func keyOf(m map[string]string) string {
	ls := maps.Clone(m)
	name := ls["__name__"]
	delete(ls, "__name__")
	return key(name, ls)
}

// sample is one Prometheus sample (ms).
type sample struct {
	t int64
	v float64
}

// samplesOf applies the documented rule to a series' points.
func samplesOf(s *refSeries) []sample {
	idx := make([]int, len(s.pts))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s.pts[idx[a]].t < s.pts[idx[b]].t })
	var out []sample
	for _, i := range idx {
		p := s.pts[i]
		ms := p.t / 1e6
		if p.t%1e6 < 0 {
			ms--
		}
		if n := len(out); n > 0 && out[n-1].t == ms {
			out[n-1].v = p.v
			continue
		}
		out = append(out, sample{ms, p.v})
	}
	return out
}

// window returns the samples in (t-r, t].
func window(ss []sample, t, r int64) []sample {
	var out []sample
	for _, s := range ss {
		if s.t > t-r && s.t <= t {
			out = append(out, s)
		}
	}
	return out
}

const lookback = 5 * 60 * 1000 // ms

// instant returns the sample an instant selector sees at t.
func instant(ss []sample, t int64) (float64, bool) {
	w := window(ss, t, lookback)
	if len(w) == 0 {
		return 0, false
	}
	return w[len(w)-1].v, true
}

// rate is PromQL's rate over (t-r, t]: the increase, corrected for counter
// resets, extrapolated towards the window's ends (by at most half a sample
// interval, and not below zero), per second.
func rate(ss []sample, t, r int64) (float64, bool) {
	w := window(ss, t, r)
	if len(w) < 2 {
		return 0, false
	}
	first, last := w[0], w[len(w)-1]
	inc := last.v - first.v
	for i := 1; i < len(w); i++ {
		if w[i].v < w[i-1].v {
			inc += w[i-1].v
		}
	}
	toStart := float64(first.t-(t-r)) / 1000
	toEnd := float64(t-last.t) / 1000
	sampled := float64(last.t-first.t) / 1000
	avg := sampled / float64(len(w)-1)
	if toStart >= avg*1.1 {
		toStart = avg / 2
	}
	if inc > 0 && first.v >= 0 {
		if toZero := sampled * (first.v / inc); toZero < toStart {
			toStart = toZero
		}
	}
	if toEnd >= avg*1.1 {
		toEnd = avg / 2
	}
	return inc * ((sampled + toStart + toEnd) / sampled) / (float64(r) / 1000), true
}

func avgOverTime(ss []sample, t, r int64) (float64, bool) {
	w := window(ss, t, r)
	if len(w) == 0 {
		return 0, false
	}
	sum := 0.0
	for _, s := range w {
		sum += s.v
	}
	return sum / float64(len(w)), true
}

// bucket is one cumulative histogram bucket.
type bucket struct {
	le, count float64
}

// bucketQuantile is histogram_quantile over classic buckets: find the
// bucket holding rank q*total and interpolate linearly inside it; the +Inf
// bucket answers the greatest finite bound.
func bucketQuantile(q float64, bs []bucket) float64 {
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	n := len(bs)
	if n < 2 || !math.IsInf(bs[n-1].le, 1) || bs[n-1].count == 0 {
		return math.NaN()
	}
	rank := q * bs[n-1].count
	b := sort.Search(n-1, func(i int) bool { return bs[i].count >= rank })
	if b == n-1 {
		return bs[n-2].le
	}
	if b == 0 && bs[0].le <= 0 {
		return bs[0].le
	}
	start, end, count := 0.0, bs[b].le, bs[b].count
	if b > 0 {
		start = bs[b-1].le
		count -= bs[b-1].count
		rank -= bs[b-1].count
	}
	return start + (end-start)*(rank/count)
}

// fixture is the data of the API tests.
type fixture struct {
	series []*refSeries
	start  int64 // ms: the first point
	end    int64 // ms: after the last point
}

const (
	t0   = int64(1_700_000_040_000) // ms, a whole minute
	span = int64(60 * 60 * 1000)    // 1h of data
	tick = int64(15_000)            // a sample every 15s
)

// newFixture builds the model: counters http_requests_total{code,
// instance} (with a reset), cumulative buckets latency_bucket{le,
// instance}, and gauges temperature{room} with several points in some
// milliseconds and late points.
func newFixture(rng *rand.Rand) *fixture {
	f := &fixture{start: t0, end: t0 + span}
	jitter := func() int64 { return rng.Int64N(2_000_000_000) } // up to 2s of ns
	for _, code := range []string{"200", "500"} {
		for _, inst := range []string{"a", "b"} {
			s := &refSeries{name: "http_requests_total", labels: map[string]string{"code": code, "instance": inst}}
			total := float64(rng.IntN(1000))
			for t := t0; t < t0+span; t += tick {
				if code == "500" && inst == "b" && t == t0+span/2 {
					total = 0 // a counter reset
				}
				total += float64(rng.IntN(50))
				ts := t*1e6 + jitter()
				s.pts = append(s.pts, point{ts, total})
				if rng.IntN(4) == 0 { // a second event in the same ms
					total += float64(1 + rng.IntN(5))
					s.pts = append(s.pts, point{ts + rng.Int64N(1000), total})
				}
			}
			f.series = append(f.series, s)
		}
	}
	les := []string{"0.05", "0.1", "0.5", "1", "+Inf"}
	for _, inst := range []string{"a", "b"} {
		counts := make([]float64, len(les))
		bs := make([]*refSeries, len(les))
		for i, le := range les {
			bs[i] = &refSeries{name: "latency_bucket", labels: map[string]string{"le": le, "instance": inst}}
		}
		for t := t0; t < t0+span; t += tick {
			ts := t*1e6 + jitter()
			cum := 0.0
			for i := range les {
				cum += float64(rng.IntN(20))
				counts[i] += cum
			}
			// Keep cumulative across buckets: bucket i holds all below.
			for i := range les {
				bs[i].pts = append(bs[i].pts, point{ts, counts[i]})
			}
		}
		f.series = append(f.series, bs...)
	}
	for _, room := range []string{"kitchen", "hall", "attic"} {
		s := &refSeries{name: "temperature", labels: map[string]string{"room": room}}
		for t := t0; t < t0+span; t += tick {
			if room == "attic" && t > t0+span-10*tick {
				break // stops early: disappears after the lookback
			}
			ts := t*1e6 + jitter()
			s.pts = append(s.pts, point{ts, 15 + 10*rng.Float64()})
			for range rng.IntN(3) { // more points in the same ms, some at the same ns
				s.pts = append(s.pts, point{ts + rng.Int64N(2), 15 + 10*rng.Float64()})
			}
		}
		f.series = append(f.series, s)
	}
	return f
}

// write stores the fixture: the first two thirds, then a reopen (their
// chunks are then read encoded from pebble), then the rest with late points
// into the first part (overlapping chunks).
func (f *fixture) write(t testing.TB, dir string) *engine.DB {
	t.Helper()
	cut := (t0 + span*2/3) * 1e6
	db := openDB(t, dir)
	put := func(db *engine.DB, s *refSeries, p point) {
		if err := db.ObserveAt(nsTime(p.t), s.name, p.v, s.labels); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range f.series {
		for _, p := range s.pts {
			if p.t < cut {
				put(db, s, p)
			}
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	for _, s := range f.series {
		for _, p := range s.pts {
			if p.t >= cut {
				put(db, s, p)
			}
		}
	}
	// Late points into the first part, now in encoded chunks: for the
	// gauges, one more point in some milliseconds that have one, at the
	// greatest ns already there (a tie: the point written last wins) or one
	// ns later.
	for _, s := range f.series {
		if s.name != "temperature" {
			continue
		}
		n := len(s.pts)
		for i := 0; i < n && s.pts[i].t < cut; i += 7 {
			ms := s.pts[i].t / 1e6
			top := s.pts[i].t
			for _, q := range s.pts[:n] {
				if q.t/1e6 == ms && q.t > top {
					top = q.t
				}
			}
			if i%2 == 1 && (top+1)/1e6 == ms {
				top++
			}
			p := point{top, -float64(i)}
			s.pts = append(s.pts, p)
			put(db, s, p)
		}
	}
	return db
}

// result is an evaluated instant vector: series key -> value.
type result map[string]float64

// eval evaluates one of the test expressions at t with the independent
// evaluator.
func (f *fixture) eval(expr string, t int64) result {
	out := result{}
	samples := map[*refSeries][]sample{}
	for _, s := range f.series {
		samples[s] = samplesOf(s)
	}
	const r = 5 * 60 * 1000
	switch expr {
	case "rate(http_requests_total[5m])":
		for _, s := range f.series {
			if s.name == "http_requests_total" {
				if v, ok := rate(samples[s], t, r); ok {
					out[key("", s.labels)] = v
				}
			}
		}
	case "sum by (code) (rate(http_requests_total[5m]))":
		for _, s := range f.series {
			if s.name == "http_requests_total" {
				if v, ok := rate(samples[s], t, r); ok {
					out[key("", map[string]string{"code": s.labels["code"]})] += v
				}
			}
		}
	case "histogram_quantile(0.9, sum by (le) (rate(latency_bucket[5m])))":
		byLE := map[string]float64{}
		for _, s := range f.series {
			if s.name == "latency_bucket" {
				if v, ok := rate(samples[s], t, r); ok {
					byLE[s.labels["le"]] += v
				}
			}
		}
		if len(byLE) > 0 {
			var bs []bucket
			for le, c := range byLE {
				b, err := strconv.ParseFloat(le, 64)
				if err != nil {
					panic(err)
				}
				bs = append(bs, bucket{b, c})
			}
			out[key("", nil)] = bucketQuantile(0.9, bs)
		}
	case "avg_over_time(temperature[5m])":
		for _, s := range f.series {
			if s.name == "temperature" {
				if v, ok := avgOverTime(samples[s], t, r); ok {
					out[key("", s.labels)] = v
				}
			}
		}
	case "count(temperature)":
		n := 0
		for _, s := range f.series {
			if s.name == "temperature" {
				if _, ok := instant(samples[s], t); ok {
					n++
				}
			}
		}
		if n > 0 {
			out[key("", nil)] = float64(n)
		}
	case "temperature":
		for _, s := range f.series {
			if s.name == "temperature" {
				if v, ok := instant(samples[s], t); ok {
					out[key("temperature", s.labels)] = v
				}
			}
		}
	default:
		panic("no reference for " + expr)
	}
	return out
}

// exprs are the expressions compared with the independent evaluator.
var exprs = []string{
	"rate(http_requests_total[5m])",
	"sum by (code) (rate(http_requests_total[5m]))",
	"histogram_quantile(0.9, sum by (le) (rate(latency_bucket[5m])))",
	"avg_over_time(temperature[5m])",
	"count(temperature)",
	"temperature",
}

// close reports whether got is want up to floating-point rounding.
func closeTo(got, want float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	if got == want {
		return true
	}
	return math.Abs(got-want) <= 1e-9*math.Max(math.Abs(want), 1e-3)
}

func compareResults(t *testing.T, what string, got, want result) {
	t.Helper()
	if len(want) == 0 {
		t.Errorf("%s: the reference is empty: the test data does not exercise it", what)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: missing %s (want %v); got %v", what, k, w, got)
			continue
		}
		if !closeTo(g, w) {
			t.Errorf("%s: %s = %v, want %v", what, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %s = %v", what, k, g)
		}
	}
}

// apiValue is a [seconds, "value"] pair of the Prometheus JSON format.
type apiValue [2]json.RawMessage

func (p apiValue) parse(t testing.TB) (int64, float64) {
	t.Helper()
	var sec json.Number
	if err := json.Unmarshal(p[0], &sec); err != nil {
		t.Fatalf("timestamp %s: %v", p[0], err)
	}
	fs, err := strconv.ParseFloat(string(sec), 64)
	if err != nil {
		t.Fatalf("timestamp %s: %v", sec, err)
	}
	var vs string
	if err := json.Unmarshal(p[1], &vs); err != nil {
		t.Fatalf("value %s: %v", p[1], err)
	}
	v, err := strconv.ParseFloat(vs, 64)
	if err != nil {
		t.Fatalf("value %q: %v", vs, err)
	}
	return int64(math.Round(fs * 1000)), v
}

// apiSeries is a vector element or a matrix series.
type apiSeries struct {
	Metric map[string]string `json:"metric"`
	Value  *apiValue         `json:"value"`
	Values []apiValue        `json:"values"`
}

// vectorResult turns a vector into a result, checking every timestamp.
func vectorResult(t testing.TB, vec []apiSeries, at int64) result {
	t.Helper()
	out := result{}
	for _, s := range vec {
		if s.Value == nil {
			t.Fatalf("vector element without value: %+v", s)
		}
		ts, v := s.Value.parse(t)
		if ts != at {
			t.Errorf("sample of %v at %d, want %d", s.Metric, ts, at)
		}
		out[keyOf(s.Metric)] = v
	}
	return out
}

// matrixResults turns a matrix into one result per step.
func matrixResults(t testing.TB, mat []apiSeries) map[int64]result {
	t.Helper()
	out := map[int64]result{}
	for _, s := range mat {
		for _, p := range s.Values {
			ts, v := p.parse(t)
			if out[ts] == nil {
				out[ts] = result{}
			}
			out[ts][keyOf(s.Metric)] = v
		}
	}
	return out
}
