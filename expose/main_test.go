package expose_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/cockroachdb/pebble/v2.(*ConcurrencyLimitScheduler).periodicGranter"),
		// Idle keep-alive connections of the HTTP client used against the
		// test servers.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}
