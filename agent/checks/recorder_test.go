package checks

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// result is one Notify call.
type result struct {
	id, status, output string
}

// recorder collects Notify calls and wakes waiters on each one.
type recorder struct {
	mu      sync.Mutex
	got     []result
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{changed: make(chan struct{}, 1)}
}

func (r *recorder) notify(id, status, output string) {
	r.mu.Lock()
	r.got = append(r.got, result{id, status, output})
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) results() []result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]result(nil), r.got...)
}

// waitFor waits until cond accepts the results so far, failing the test
// with cond's last error after d.
func (r *recorder) waitFor(t *testing.T, d time.Duration, cond func([]result) error) []result {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		got := r.results()
		err := cond(got)
		if err == nil {
			return got
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			t.Fatalf("after %s: %v (results: %q)", d, err, got)
		}
	}
}

// waitN waits for at least n results and returns them.
func (r *recorder) waitN(t *testing.T, n int) []result {
	t.Helper()
	return r.waitFor(t, 5*time.Second, func(got []result) error {
		if len(got) < n {
			return fmt.Errorf("got %d results, want %d", len(got), n)
		}
		return nil
	})
}

// startRunner starts spec with a new recorder and stops it at cleanup.
func startRunner(t *testing.T, spec Spec) (*Runner, *recorder) {
	t.Helper()
	rec := newRecorder()
	r, err := Start(spec, rec.notify, nil)
	if err != nil {
		t.Fatalf("Start(%+v) = %v, want nil error", spec, err)
	}
	t.Cleanup(r.Stop)
	return r, rec
}
