package encode

import (
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
)

// Random seeds are fixed by default, logged, and can be overridden with
// -seed=N or ENCODE_SEED=N.
var seedFlag = flag.Uint64("seed", 0, "random seed for the encode tests (0: $ENCODE_SEED, else a fixed default)")

const defaultSeed = 20261121

var logSeedOnce sync.Once

func testSeed(tb testing.TB) uint64 {
	s := uint64(defaultSeed)
	if env := os.Getenv("ENCODE_SEED"); env != "" {
		v, err := strconv.ParseUint(env, 10, 64)
		if err != nil {
			tb.Fatalf("bad ENCODE_SEED %q: %v", env, err)
		}
		s = v
	}
	if *seedFlag != 0 {
		s = *seedFlag
	}
	if _, ok := tb.(*testing.B); ok {
		logSeedOnce.Do(func() { tb.Logf("random seed %d (override with -seed=N or ENCODE_SEED=N)", s) })
	} else {
		tb.Logf("random seed %d (override with -seed=N or ENCODE_SEED=N)", s)
	}
	return s
}

// newRand returns a generator for the test seed, salted so that each use
// gets its own stream.
func newRand(tb testing.TB, salt uint64) *rand.Rand {
	return rand.New(rand.NewPCG(testSeed(tb), salt))
}

// Timestamps start near 2023-11-14 in Unix nanoseconds, as the workloads do.
const (
	baseT = 1_700_000_000_000 * int64(1e6)
	ms    = int64(1e6)
	sec   = int64(1e9)
)

// Timestamp shapes.

func tsRegular(n int, step int64) []int64 {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = baseT + int64(i)*step
	}
	return ts
}

// tsJittered: 15 s apart, each delta off by up to ±50 ms (ms granular).
func tsJittered(r *rand.Rand, n int) []int64 {
	ts := make([]int64, n)
	t := baseT
	for i := range ts {
		ts[i] = t
		t += 15*sec + (r.Int64N(101)-50)*ms
	}
	return ts
}

// tsGappy: every 10 s, with a gap of 1..60 minutes after 1% of the points.
func tsGappy(r *rand.Rand, n int) []int64 {
	ts := make([]int64, n)
	t := baseT
	for i := range ts {
		ts[i] = t
		t += 10 * sec
		if r.IntN(100) == 0 {
			t += (1 + r.Int64N(60)) * 60 * sec
		}
	}
	return ts
}

// tsEvent is W-event: ms granular, deltas uniform 500..1500 ms.
func tsEvent(r *rand.Rand, n int) []int64 {
	ts := make([]int64, n)
	t := baseT
	for i := range ts {
		ts[i] = t
		t += (500 + r.Int64N(1001)) * ms
	}
	return ts
}

// Value shapes.

func vsConst(n int, v float64) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = v
	}
	return vs
}

// vsCounter: a monotonic counter growing by 0..100 a point.
func vsCounter(r *rand.Rand, n int) []float64 {
	vs := make([]float64, n)
	c := 1e6
	for i := range vs {
		vs[i] = c
		c += float64(r.IntN(101))
	}
	return vs
}

// vsGauge: a slowly moving gauge with one decimal (like a temperature),
// often repeating.
func vsGauge(r *rand.Rand, n int) []float64 {
	vs := make([]float64, n)
	g := 200
	for i := range vs {
		if r.IntN(4) == 0 {
			g += r.IntN(5) - 2
		}
		vs[i] = float64(g) / 10
	}
	return vs
}

// vsRandom: uniform random floats in [0, 1000), full precision.
func vsRandom(r *rand.Rand, n int) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = r.Float64() * 1000
	}
	return vs
}

// vsLognormal is W-event's values: lognormal mu=-3 sigma=1.
func vsLognormal(r *rand.Rand, n int) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = math.Exp(-3 + r.NormFloat64())
	}
	return vs
}

// vsWalk is W-scrape's values: an integer random walk, step -3..+3, floor 0.
func vsWalk(r *rand.Rand, n int) []float64 {
	vs := make([]float64, n)
	v := 50
	for i := range vs {
		vs[i] = float64(v)
		v = max(0, v+r.IntN(7)-3)
	}
	return vs
}

// vsBits: values with uniformly random bits (every kind of float, NaN
// payloads included).
func vsBits(r *rand.Rand, n int) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = math.Float64frombits(r.Uint64())
	}
	return vs
}
