package engine_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// DB's background work must stop at Close.
//
// One exception, not ours: when pebble.Open fails after it registered its
// compaction scheduler (an injected I/O error late in Open, in the fault
// tests), pebble v2.1.7 returns without unregistering it, and the
// scheduler's periodic granter goroutine stays behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/cockroachdb/pebble/v2.(*ConcurrencyLimitScheduler).periodicGranter"))
}
