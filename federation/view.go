package federation

import (
	"context"
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

type viewKey struct {
	dc, method, args string
}

// view is one kept read. Its goroutine owns the refresh; readers load ans.
type view struct {
	ans      atomic.Pointer[viewAnswer]
	ready    chan struct{} // closed after the first fetch
	lastUsed atomic.Int64  // unix nanoseconds
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
// the view's index, a read while the set is full, and a read whose view
// failed go to the datacenter directly.
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
	if a.err != nil || (args.MinIndex != 0 && a.index <= args.MinIndex) {
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
	}()
	var index uint64
	first := true
	backoff := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(vs.ctx, viewWait+vs.f.cfg.Timeout+time.Minute)
		ans, idx, err := refresh(ctx, index)
		cancel()
		if vs.ctx.Err() != nil {
			if first {
				v.ans.Store(&viewAnswer{err: vs.ctx.Err()})
				close(v.ready)
			}
			return
		}
		if err != nil {
			v.ans.Store(&viewAnswer{err: err})
			index = 0
		} else {
			v.ans.Store(&viewAnswer{index: idx, value: ans})
			index = idx
			backoff = 100 * time.Millisecond
		}
		if first {
			close(v.ready)
			first = false
		}
		if time.Since(time.Unix(0, v.lastUsed.Load())) > viewIdle {
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
