// Package wait holds Eventually, the one deadline-bounded retry that every
// package's tests wait with instead of sleeping. It imports nothing of the
// module, so that the tests of any package, rpc and lan included, can use
// it; internal/testcluster.Eventually is the same function. It also holds
// Figure, which asserts a measured timing figure except under the race
// detector or on an oversubscribed machine.
package wait

import (
	"os"
	"runtime"
	"strconv"
	"strings"
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
// except where a missed figure says nothing of the code, and there it logs
// the miss:
//   - under the race detector, whose instrumentation makes CPU-bound work
//     (handshake crypto, serf's bookkeeping) many times slower;
//   - on a machine whose one-minute load average is above overloaded
//     times its CPUs, as a shared CI host's is at times: the figure then
//     measures the other work.
//
// The figure is asserted by a plain `go test ./...` on a machine that is
// not oversubscribed.
func Figure(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	if Race {
		t.Logf("figure missed under the race detector (asserted only without it): "+format, args...)
		return
	}
	if load, ok := loadAverage(); ok && load > overloaded*float64(runtime.NumCPU()) {
		t.Logf("figure missed at load average %.1f on %d CPUs (asserted only below %gx): "+format,
			append([]any{load, runtime.NumCPU(), overloaded}, args...)...)
		return
	}
	t.Errorf(format, args...)
}

// overloaded is the oversubscription (runnable threads per CPU, by the
// one-minute load average) above which Figure only logs a miss.
const overloaded = 2

// loadAverage is the one-minute load average; ok is false where
// /proc/loadavg cannot be read.
func loadAverage() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f, _, _ := strings.Cut(string(b), " ")
	load, err := strconv.ParseFloat(f, 64)
	return load, err == nil
}
