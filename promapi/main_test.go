package promapi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// DB, test server and promtool process must be gone by then. The PromQL
// engine starts no goroutine of its own (no query tracker is configured),
// so nothing of it is ignored; the pebble exception is the engine
// package's (see engine/main_test.go).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/cockroachdb/pebble/v2.(*ConcurrencyLimitScheduler).periodicGranter"))
}
