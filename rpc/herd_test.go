package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/wait"
)

// upstream is a blocking read's far end: its answer's index moves when
// change is called, and a call blocks until it passes MinIndex or the
// wait ends.
type upstream struct {
	mu      sync.Mutex
	index   uint64
	changed chan struct{}
	calls   atomic.Int64
}

func newUpstream() *upstream { return &upstream{index: 10, changed: make(chan struct{})} }

func (u *upstream) change() {
	u.mu.Lock()
	u.index++
	close(u.changed)
	u.changed = make(chan struct{})
	u.mu.Unlock()
}

func (u *upstream) call(ctx context.Context, opts QueryOptions) (QueryMeta, uint64, error) {
	u.calls.Add(1)
	t := time.NewTimer(opts.MaxWait)
	defer t.Stop()
	for {
		u.mu.Lock()
		idx, ch := u.index, u.changed
		u.mu.Unlock()
		if idx > opts.MinIndex {
			return QueryMeta{Index: idx}, idx, nil
		}
		select {
		case <-ch:
		case <-t.C:
			return QueryMeta{Index: idx}, idx, nil
		case <-ctx.Done():
			return QueryMeta{}, 0, ctx.Err()
		}
	}
}

// joined is how many callers wait on the call in progress for key.
func joined(h *Herd[uint64], key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.entries[key]; e != nil && e.flight != nil {
		return e.flight.waiters
	}
	return 0
}

// TestHerdOneCallPerChange: callers blocked on one key wake on one change
// with one upstream call among them, every one with the new answer; a
// caller that leaves does not cut the others' call short.
func TestHerdOneCallPerChange(t *testing.T) {
	h := NewHerd[uint64](time.Minute)
	u := newUpstream()
	const callers = 200
	for round := range 3 {
		before := u.calls.Load()
		start := uint64(10 + round)
		var wg sync.WaitGroup
		got := make([]uint64, callers)
		leaver, leave := context.WithCancel(context.Background())
		for i := range callers {
			ctx := context.Background()
			if i == 0 {
				ctx = leaver
			}
			wg.Go(func() {
				meta, v, err := h.Do(ctx, "web", QueryOptions{MinIndex: start, MaxWait: 30 * time.Second}, u.call)
				if err != nil && i != 0 {
					t.Errorf("caller %d: %v", i, err)
				}
				if err == nil && meta.Index != v {
					t.Errorf("caller %d: meta index %d, value %d", i, meta.Index, v)
				}
				got[i] = v
			})
		}
		// Wait until every caller blocks on the one call, then let one
		// leave, then change.
		wait.Eventually(t, 10*time.Second, func() error {
			if n := joined(h, "web"); n < callers-1 {
				return fmt.Errorf("%d of %d callers share the call", n, callers-1)
			}
			return nil
		})
		leave()
		u.change()
		wg.Wait()
		for i, v := range got[1:] {
			if v != start+1 {
				t.Fatalf("round %d, caller %d: answer %d, want %d", round, i+1, v, start+1)
			}
		}
		if n := u.calls.Load() - before; n != 1 {
			t.Errorf("round %d: %d upstream calls for %d callers of one change, want 1", round, n, callers)
		}
	}
}

// TestHerdWaitEndsUnchanged: a caller whose wait ends before any change
// gets the unchanged answer at its own deadline, even while another
// caller's longer call is still blocked upstream.
func TestHerdWaitEndsUnchanged(t *testing.T) {
	h := NewHerd[uint64](time.Minute)
	u := newUpstream()
	long := make(chan error, 1)
	go func() {
		_, _, err := h.Do(context.Background(), "web", QueryOptions{MinIndex: 10, MaxWait: 20 * time.Second}, u.call)
		long <- err
	}()
	wait.Eventually(t, 10*time.Second, func() error {
		if u.calls.Load() == 0 {
			return errors.New("the long call has not reached upstream")
		}
		return nil
	})
	start := time.Now()
	meta, _, err := h.Do(context.Background(), "web", QueryOptions{MinIndex: 10, MaxWait: 200 * time.Millisecond}, u.call)
	took := time.Since(start)
	if err != nil || meta.Index != 10 {
		t.Fatalf("short wait at 10 = %+v, %v; want the unchanged index 10", meta, err)
	}
	if took < 150*time.Millisecond || took > 10*time.Second {
		t.Errorf("short wait returned after %v, want about its 200ms", took)
	}
	u.change()
	if err := <-long; err != nil {
		t.Fatal(err)
	}
}
