package federation

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

// scriptedViews is a view set whose one view fetches what the test sends
// on answers, counting the fetches.
func scriptedViews(t *testing.T) (*view, chan<- *viewAnswer, *atomic.Int32) {
	t.Helper()
	f, err := New(Config{Datacenter: "dc1", Transport: TransportTCP, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	vs := NewViews(f)
	answers := make(chan *viewAnswer)
	var fetches atomic.Int32
	v := vs.start(viewKey{dc: "dc2", method: "m"}, func(ctx context.Context, _ uint64) (any, uint64, error) {
		fetches.Add(1)
		select {
		case a := <-answers:
			return a.value, a.index, a.err
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	})
	t.Cleanup(vs.Close)
	answers <- &viewAnswer{index: 1, value: "one"}
	<-v.ready
	return v, answers, &fetches
}

// TestViewParksBlockingReads: blocking readers of a view wait on it, not
// each on a query of their own, and wake when its index moves.
func TestViewParksBlockingReads(t *testing.T) {
	v, answers, fetches := scriptedViews(t)
	const readers = 10
	got := make(chan *viewAnswer, readers)
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() { got <- v.await(context.Background(), 1, 10*time.Second) })
	}
	// Every reader parked on the one query in flight.
	wait.Eventually(t, 10*time.Second, func() error {
		if n := v.parked.Load(); n != readers {
			return fmt.Errorf("%d readers parked, want %d", n, readers)
		}
		return nil
	})
	answers <- &viewAnswer{index: 2, value: "two"}
	wg.Wait()
	close(got)
	for a := range got {
		if a == nil || a.index != 2 || a.value != "two" {
			t.Fatalf("parked reader woke with %+v, want index 2", a)
		}
	}
	if n := fetches.Load(); n > 3 {
		t.Errorf("%d readers caused %d fetches, want the view's own (2, and the next one parked)", readers, n)
	}

	// A reader whose wait passes gets what the view holds.
	start := time.Now()
	if a := v.await(context.Background(), 2, 50*time.Millisecond); a == nil || a.index != 2 {
		t.Errorf("await past its wait = %+v, want the answer at index 2", a)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("await with nothing new returned after %v, want its 50ms wait", d)
	}
	// A view that fails wakes its readers with the error.
	failed := make(chan *viewAnswer, 1)
	go func() { failed <- v.await(context.Background(), 2, 10*time.Second) }()
	wait.Eventually(t, 10*time.Second, func() error {
		if n := v.parked.Load(); n != 1 {
			return fmt.Errorf("%d readers parked, want 1", n)
		}
		return nil
	})
	cut := errors.New("dc2 unreachable")
	answers <- &viewAnswer{err: cut}
	if a := <-failed; a == nil || !errors.Is(a.err, cut) {
		t.Errorf("parked reader of a failed view woke with %+v, want its error", a)
	}
	// And one whose context ends gets nil.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	answers <- &viewAnswer{index: 3, value: "three"}
	wait.Eventually(t, 10*time.Second, func() error {
		if a := v.ans.Load(); a == nil || a.index != 3 {
			return fmt.Errorf("view holds %+v, want the answer at index 3", a)
		}
		return nil
	})
	if a := v.await(ctx, 3, time.Second); a != nil {
		t.Errorf("await with a done context = %+v, want nil", a)
	}
}
