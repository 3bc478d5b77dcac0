// Package wait holds Eventually, the one deadline-bounded retry that every
// package's tests wait with instead of sleeping. It imports nothing of the
// module, so that the tests of any package, rpc and lan included, can use
// it; internal/testcluster.Eventually is the same function.
package wait

import (
	"testing"
	"time"
)

// Eventually calls fn until it returns nil and returns how long that took.
// Once timeout has passed, or the test's context ends, it fails t with fn's
// last error. Attempts are 5ms apart at first, backing off to 100ms; fn
// must bound its own calls, so the wait overruns timeout by at most one
// attempt.
func Eventually(t testing.TB, timeout time.Duration, fn func() error) time.Duration {
	t.Helper()
	start := time.Now()
	pause := 5 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		timer := time.NewTimer(pause) // a retry interval, not synchronisation: fn decides
		select {
		case <-timer.C:
		case <-t.Context().Done():
			timer.Stop()
			t.Fatalf("test ended while waiting: %v", err)
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}
