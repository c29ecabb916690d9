package dashboard_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: the
// stores, the test servers and the browser must all be stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
