// Package workload generates the standard benchmark workloads of
// WORKLOADS.md (W-event and W-scrape) deterministically from a seed, so
// that figures from different days, versions and engines compare. tsbench
// and the Go benchmarks share it.
package workload

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Kind names a workload.
type Kind int

// The standard workloads.
const (
	Event  Kind = iota // irregular event-time observations: lognormal latencies
	Scrape             // regular samples: an integer random walk every 15 s
)

func (k Kind) String() string {
	if k == Scrape {
		return "W-scrape"
	}
	return "W-event"
}

// ParseKind accepts "event", "W-event", "scrape" and "W-scrape".
func ParseKind(s string) (Kind, error) {
	switch s {
	case "event", "W-event", "w-event":
		return Event, nil
	case "scrape", "W-scrape", "w-scrape":
		return Scrape, nil
	}
	return 0, fmt.Errorf("unknown workload %q (want event or scrape)", s)
}

// StartMillis is the first timestamp of every series, in Unix ms.
const StartMillis = 1_700_000_000_000

// DefaultSeed is the fixed seed of the standard runs.
const DefaultSeed = 20261121

// Config describes one run. The zero value of a field means the standard
// figure.
type Config struct {
	Kind   Kind
	Series int    // default 1000
	Points int    // points per series, default 10,000
	Seed   uint64 // default DefaultSeed
	// OutOfOrder is the fraction (0..1) of points delayed: each is emitted
	// later than its turn, by a random number of rounds (up to 100).
	OutOfOrder float64
	// Duplicates is the fraction (0..1) of points that repeat the previous
	// timestamp of their series.
	Duplicates float64
}

func (c Config) withDefaults() Config {
	if c.Series <= 0 {
		c.Series = 1000
	}
	if c.Points <= 0 {
		c.Points = 10_000
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	return c
}

// Metric returns the metric name of the workload.
func (c Config) Metric() string {
	if c.Kind == Scrape {
		return "queue_depth"
	}
	return "http_request_duration_seconds"
}

var statuses = [...]string{"200", "201", "400", "404", "500"}

// Labels returns the labels of series s: service=svc-(s/100 mod 10),
// endpoint=/api/(s/5 mod 20), status=statuses[s mod 5]. With 1,000 series
// every combination appears once; service="svc-3" selects 100 series and
// endpoint="/api/7" 50.
func Labels(s int) map[string]string {
	l := map[string]string{
		"service":  "svc-" + strconv.Itoa((s/100)%10),
		"endpoint": "/api/" + strconv.Itoa((s/5)%20),
		"status":   statuses[s%5],
	}
	if s >= 1000 {
		l["shard"] = strconv.Itoa(s / 1000)
	}
	return l
}

// Point is one generated observation.
type Point struct {
	Series int
	T      int64 // Unix ns
	V      float64
}

// Gen yields the points of a workload in order: for step i, for each
// series s, point i of s (global round-robin), with the configured share of
// points delayed or duplicated.
type Gen struct {
	cfg     Config
	rng     *rand.Rand
	step, s int
	lastT   []int64 // ms
	lastV   []float64
	delayed delayHeap // min-heap by (due, seq): FIFO among equal due
	seq     uint64
	total   int
	emitted int
}

type delayedPoint struct {
	p   Point
	due int    // emit at step >= due
	seq uint64 // insertion order, for ties
}

// delayHeap orders delayed points by due step, then insertion order.
type delayHeap []delayedPoint

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].seq < h[j].seq
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayedPoint)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// New returns a generator.
func New(cfg Config) *Gen {
	cfg = cfg.withDefaults()
	g := &Gen{
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed*0x9e3779b97f4a7c15+uint64(cfg.Kind))),
		lastT: make([]int64, cfg.Series),
		lastV: make([]float64, cfg.Series),
		total: cfg.Series * cfg.Points,
	}
	for s := range g.lastV {
		g.lastT[s] = StartMillis
		if cfg.Kind == Scrape {
			g.lastV[s] = float64(g.rng.IntN(100))
		}
	}
	return g
}

// Config returns the configuration with defaults filled in.
func (g *Gen) Config() Config { return g.cfg }

// Total returns the number of points the generator yields.
func (g *Gen) Total() int { return g.total }

// Next returns the next point, or false when every point was yielded.
func (g *Gen) Next() (Point, bool) {
	for {
		// Delayed points whose time has come go first.
		if n := len(g.delayed); n > 0 && (g.delayed[0].due <= g.step || g.step >= g.cfg.Points) {
			p := heap.Pop(&g.delayed).(delayedPoint).p
			g.emitted++
			return p, true
		}
		if g.step >= g.cfg.Points {
			return Point{}, false
		}
		p := g.gen(g.s, g.step)
		g.s++
		if g.s == g.cfg.Series {
			g.s = 0
			g.step++
		}
		if g.cfg.OutOfOrder > 0 && g.step > 0 && g.rng.Float64() < g.cfg.OutOfOrder {
			due := g.step + 1 + g.rng.IntN(100)
			heap.Push(&g.delayed, delayedPoint{p: p, due: due, seq: g.seq})
			g.seq++
			continue
		}
		g.emitted++
		return p, true
	}
}

func (g *Gen) gen(s, i int) Point {
	t := g.lastT[s]
	if i > 0 {
		if g.cfg.Duplicates > 0 && g.rng.Float64() < g.cfg.Duplicates {
			// same timestamp as the previous point
		} else if g.cfg.Kind == Scrape {
			t += 15_000
		} else {
			t += 500 + int64(g.rng.IntN(1001))
		}
	}
	g.lastT[s] = t
	var v float64
	if g.cfg.Kind == Scrape {
		if i > 0 {
			v = g.lastV[s] + float64(g.rng.IntN(7)-3)
			if v < 0 {
				v = 0
			}
		} else {
			v = g.lastV[s]
		}
		g.lastV[s] = v
	} else {
		v = math.Exp(-3 + g.rng.NormFloat64())
	}
	return Point{Series: s, T: t * 1_000_000, V: v}
}

// Range returns the time range [min, max] (Unix ns) the workload covers,
// approximately for W-event (the expected end). It assumes no duplicates:
// with Duplicates > 0, series end earlier (a duplicate does not advance
// time).
func (c Config) Range() (int64, int64) {
	c = c.withDefaults()
	step := int64(15_000)
	if c.Kind == Event {
		step = 1000
	}
	return StartMillis * 1_000_000, (StartMillis + step*int64(c.Points-1)) * 1_000_000
}

// Collect generates every point of the workload into memory, in the
// generator's order, and returns them with the configuration (defaults
// filled in). A full standard run is 10M points (240 MB).
func Collect(cfg Config) ([]Point, Config) {
	g := New(cfg)
	pts := make([]Point, 0, g.Total())
	for {
		p, ok := g.Next()
		if !ok {
			return pts, g.Config()
		}
		pts = append(pts, p)
	}
}

// Shard is the share of one of several writers: the points of the series
// s with s % writers == w, in generation order.
type Shard struct {
	Series []int32
	T      []int64 // Unix ns
	V      []float64
}

// Split deals pts out to writers shards (each writer owns whole series, so
// each series' points keep their order).
func Split(pts []Point, writers int) []Shard {
	sh := make([]Shard, writers)
	for i := range sh {
		n := len(pts)/writers + 1
		sh[i] = Shard{make([]int32, 0, n), make([]int64, 0, n), make([]float64, 0, n)}
	}
	for _, p := range pts {
		w := &sh[p.Series%writers]
		w.Series = append(w.Series, int32(p.Series))
		w.T = append(w.T, p.T)
		w.V = append(w.V, p.V)
	}
	return sh
}
