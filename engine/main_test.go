package engine_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// DB's background work must stop at Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
