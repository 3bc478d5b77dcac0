package server

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/internal/wait"
)

// TestAnswerCacheSharesOneRead: callers of one key that arrive while a read
// is running share its answer (one read, not one per caller); once the
// answer's watch fires, the next callers read once more, again together;
// another key reads on its own.
func TestAnswerCacheSharesOneRead(t *testing.T) {
	c := newAnswerCache(8)
	changed := make(chan struct{})
	release := make(chan struct{})
	var mu sync.Mutex
	reads := 0
	read := func() (*cachedAnswer, error) {
		mu.Lock()
		reads++
		n := reads
		mu.Unlock()
		<-release
		ws := memdb.NewWatchSet()
		if n == 1 {
			ws.Add(changed)
		}
		return &cachedAnswer{index: uint64(n), value: n, ws: ws}, nil
	}
	const callers = 50
	load := func() []uint64 {
		t.Helper()
		var wg sync.WaitGroup
		got := make([]uint64, callers)
		for i := range callers {
			wg.Go(func() {
				e, err := c.load("web", read)
				if err != nil {
					t.Errorf("load: %v", err)
					return
				}
				got[i] = e.index
			})
		}
		// Release the read once it runs: the callers parked on its flight
		// share it, and those that come later find its answer cached (a
		// caller that read on its own would wait for a release that never
		// comes, and the test would time out).
		wait.Eventually(t, 10*time.Second, func() error {
			c.mu.Lock()
			defer c.mu.Unlock()
			if _, running := c.flights["web"]; !running {
				return errors.New("no read of web is running")
			}
			return nil
		})
		release <- struct{}{}
		wg.Wait()
		return got
	}
	for i, idx := range load() {
		if idx != 1 {
			t.Fatalf("caller %d: index %d, want 1 (the one read)", i, idx)
		}
	}
	if reads != 1 {
		t.Fatalf("%d reads for %d callers, want 1", reads, callers)
	}
	// Unchanged: answered from the cache without a read.
	if e, err := c.load("web", read); err != nil || e.index != 1 {
		t.Fatalf("cached load = %v, %v; want index 1", e, err)
	}
	close(changed)
	for i, idx := range load() {
		if idx != 2 {
			t.Fatalf("after the change, caller %d: index %d, want 2", i, idx)
		}
	}
	if reads != 2 {
		t.Fatalf("after the change, %d reads in all, want 2", reads)
	}
	go func() { release <- struct{}{} }()
	if e, err := c.load("db", read); err != nil || e.index != 3 {
		t.Fatalf("another key: %v, %v; want its own read (index 3)", e, err)
	}
	if got := c.evaluations.Load(); got != 3 {
		t.Fatalf("evaluations = %d, want 3", got)
	}
}
