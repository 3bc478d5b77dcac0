package checks

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: every
// runner, server and script a test starts must be gone by the end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
