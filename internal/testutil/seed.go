// Package testutil holds helpers shared by the project's tests.
package testutil

import (
	"flag"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "random seed for randomized tests (0 = from the clock, or $EVENTMETRICS_SEED)")

// Rand returns a random source whose seed is logged and can be overridden
// with -seed or EVENTMETRICS_SEED, so a failure can be replayed.
func Rand(t testing.TB) *rand.Rand {
	seed := *seedFlag
	if seed == 0 {
		if s := os.Getenv("EVENTMETRICS_SEED"); s != "" {
			seed, _ = strconv.ParseUint(s, 10, 64)
		}
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("random seed %d (rerun with -seed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}
