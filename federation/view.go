package federation

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian/meridian/rpc"
)

// View settings: how long one blocking query of a view waits, and how long
// a view nobody reads lives on.
const (
	viewWait = 5 * time.Minute
	viewIdle = 2 * time.Minute
	maxViews = 1024
)

// Views answers reads of other datacenters from local copies kept current
// by one blocking query per distinct read, held open over the WAN link:
// repeated reads cost a map lookup instead of a WAN round trip, and are
// fresh within the blocking query's delay (the time the change takes to
// travel back). A view whose refresh fails stops answering until it
// succeeds again, so a cut-off datacenter is reported as such, not served
// from an old copy. Safe for concurrent use.
type Views struct {
	f *Forwarder

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.RWMutex
	m  map[viewKey]*view
}

// errViewClosed is the answer of a view that stopped: its readers go to
// the datacenter.
var errViewClosed = errors.New("federation: view closed")

type viewKey struct {
	dc, method, args string
}

// view is one kept read. Its goroutine owns the refresh; readers load ans,
// and blocking readers park on changed.
type view struct {
	ans      atomic.Pointer[viewAnswer]
	ready    chan struct{} // closed after the first fetch
	lastUsed atomic.Int64  // unix nanoseconds
	parked   atomic.Int32  // blocking readers waiting for a change

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every set
}

// set stores a and wakes the readers parked on the view.
func (v *view) set(a *viewAnswer) {
	v.ans.Store(a)
	v.mu.Lock()
	if v.changed != nil {
		close(v.changed)
		v.changed = nil
	}
	v.mu.Unlock()
}

// next is the view's answer now and a channel closed when it changes.
func (v *view) next() (*viewAnswer, <-chan struct{}) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.changed == nil {
		v.changed = make(chan struct{})
	}
	return v.ans.Load(), v.changed
}

// await parks a blocking read until the view's index passes minIndex, the
// view fails, or wait passes (then it answers what the view holds, as a
// blocking query that timed out does); nil when ctx ends first.
func (v *view) await(ctx context.Context, minIndex uint64, wait time.Duration) *viewAnswer {
	v.parked.Add(1)
	defer v.parked.Add(-1)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		a, changed := v.next()
		if a.err != nil || a.index > minIndex {
			return a
		}
		select {
		case <-changed:
		case <-timer.C:
			return v.ans.Load()
		case <-ctx.Done():
			return nil
		}
	}
}

type viewAnswer struct {
	index uint64
	value any // *rpc.Answer[V], never written after it is stored
	err   error
}

// NewViews returns the view set of f; Close stops it.
func NewViews(f *Forwarder) *Views {
	ctx, cancel := context.WithCancel(context.Background())
	return &Views{f: f, ctx: ctx, cancel: cancel, m: map[viewKey]*view{}}
}

// Close stops every view's refresh and waits for them.
func (vs *Views) Close() {
	vs.cancel()
	vs.wg.Wait()
}

// Read answers args (a stale read of another datacenter) from the view of
// that read, starting one on first use. A blocking read that already saw
// the view's index parks on the view until it moves, so however many
// readers block on one read, one query is held open over the WAN. A read
// while the set is full and a read whose view failed go to the
// datacenter directly.
func Read[A, V any](ctx context.Context, vs *Views, dc, method string, args *rpc.Query[A], reply *rpc.Answer[V]) error {
	// The view's own query: the read less how it blocks, which also names
	// it.
	first := *args
	first.MinIndex, first.MaxWait = 0, 0
	b, err := rpc.Marshal(&first)
	if err != nil {
		return vs.f.Forward(ctx, dc, method, args, reply)
	}
	key := viewKey{dc: dc, method: method, args: string(b)}
	v := vs.lookup(key)
	if v == nil {
		v = vs.start(key, func(ctx context.Context, index uint64) (any, uint64, error) {
			q := first
			q.MinIndex, q.MaxWait = index, viewWait
			var r rpc.Answer[V]
			if err := vs.f.Forward(ctx, dc, method, &q, &r); err != nil {
				return nil, 0, err
			}
			return &r, r.Index, nil
		})
		if v == nil {
			return vs.f.Forward(ctx, dc, method, args, reply)
		}
	}
	v.touch(time.Now().UnixNano())
	select {
	case <-v.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	a := v.ans.Load()
	if a.err == nil && args.MinIndex != 0 && a.index <= args.MinIndex {
		wait := args.MaxWait
		if wait <= 0 {
			wait = viewWait
		}
		if a = v.await(ctx, args.MinIndex, wait); a == nil {
			return ctx.Err()
		}
	}
	if a.err != nil {
		return vs.f.Forward(ctx, dc, method, args, reply)
	}
	*reply = *a.value.(*rpc.Answer[V])
	return nil
}

// touch records a use, writing only when the stored time is a second old,
// so that concurrent reads do not fight over the cache line.
func (v *view) touch(now int64) {
	if now-v.lastUsed.Load() > int64(time.Second) {
		v.lastUsed.Store(now)
	}
}

// refreshFunc fetches one round of a view: a blocking read past index.
type refreshFunc func(ctx context.Context, index uint64) (any, uint64, error)

// lookup returns the view of key, nil when there is none.
func (vs *Views) lookup(key viewKey) *view {
	vs.mu.RLock()
	defer vs.mu.RUnlock()
	return vs.m[key]
}

// start returns the view of key, starting it with refresh when there is
// still none; nil when the set is full or closed.
func (vs *Views) start(key viewKey, refresh refreshFunc) *view {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if v := vs.m[key]; v != nil {
		return v
	}
	if len(vs.m) >= maxViews || vs.ctx.Err() != nil {
		return nil
	}
	v := &view{ready: make(chan struct{})}
	v.lastUsed.Store(time.Now().UnixNano())
	vs.m[key] = v
	vs.wg.Add(1)
	go vs.run(key, v, refresh)
	return v
}

// run keeps v current until it goes idle or the set closes.
func (vs *Views) run(key viewKey, v *view, refresh refreshFunc) {
	defer vs.wg.Done()
	defer func() {
		vs.mu.Lock()
		delete(vs.m, key)
		vs.mu.Unlock()
		// A reader that found the view just before it went idle reads
		// the datacenter directly.
		if v.ans.Load() != nil && v.ans.Load().err == nil {
			v.set(&viewAnswer{err: errViewClosed})
		}
	}()
	var index uint64
	first := true
	backoff := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(vs.ctx, viewWait+vs.f.cfg.Timeout+time.Minute)
		ans, idx, err := refresh(ctx, index)
		cancel()
		if vs.ctx.Err() != nil {
			v.set(&viewAnswer{err: vs.ctx.Err()}) // parked readers go
			if first {
				close(v.ready)
			}
			return
		}
		if err != nil {
			v.set(&viewAnswer{err: err})
			index = 0
		} else {
			v.set(&viewAnswer{index: idx, value: ans})
			index = idx
			backoff = 100 * time.Millisecond
		}
		if first {
			close(v.ready)
			first = false
		}
		if v.parked.Load() == 0 && time.Since(time.Unix(0, v.lastUsed.Load())) > viewIdle {
			return
		}
		if err != nil {
			select {
			case <-vs.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}
