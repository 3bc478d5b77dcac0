// Package wait holds Eventually, the one deadline-bounded retry that every
// package's tests wait with instead of sleeping. It imports nothing of the
// module, so that the tests of any package, rpc and lan included, can use
// it; internal/testcluster.Eventually is the same function. It also holds
// Figure, which asserts a measured timing figure everywhere but under the
// race detector.
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

// Figure checks a timing figure a test exists to measure (a round-trip
// count, a detection time): it fails t with the message when ok is false,
// except under the race detector, whose instrumentation makes CPU-bound
// work (handshake crypto, serf's bookkeeping) many times slower, so that a
// missed figure there says nothing of the code; there it logs the miss.
// The figure is asserted by the plain `go test ./...` run.
func Figure(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	switch {
	case ok:
	case Race:
		t.Logf("figure missed under the race detector (asserted only without it): "+format, args...)
	default:
		t.Errorf(format, args...)
	}
}
