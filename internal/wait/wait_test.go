package wait

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps what Fatalf said instead of ending
// the goroutine, so that a failing wait can be checked.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	if len(args) > 0 {
		r.failed = strings.TrimSpace(errors.Join(args[len(args)-1].(error)).Error())
	}
	panic(r)
}

func TestEventually(t *testing.T) {
	calls := 0
	took := Eventually(t, 5*time.Second, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 || took > time.Second {
		t.Errorf("Eventually took %d calls and %v, want 3 calls within a second", calls, took)
	}

	r := &recorder{TB: t}
	start := time.Now()
	func() {
		defer func() { _ = recover() }()
		Eventually(r, 50*time.Millisecond, func() error { return errors.New("never") })
	}()
	if r.failed != "never" {
		t.Errorf("a wait that never succeeds failed with %q, want fn's last error %q", r.failed, "never")
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > time.Second {
		t.Errorf("a 50ms wait failed after %v", d)
	}
}

func TestLoadAverage(t *testing.T) {
	load, ok := loadAverage()
	if _, err := os.Stat("/proc/loadavg"); err != nil {
		if ok {
			t.Errorf("loadAverage() = %v, true without /proc/loadavg", load)
		}
		return
	}
	if !ok || load < 0 {
		t.Errorf("loadAverage() = %v, %v; want the first field of /proc/loadavg", load, ok)
	}
}
