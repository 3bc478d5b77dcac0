package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
)

// QueryBackendStreaming is the X-Consul-Query-Backend of an answer served
// from a client agent's streaming view, as Consul names it.
const QueryBackendStreaming = "streaming"

// DefaultStreamViewIdle is how long a client agent keeps a streaming view
// (and its server subscription) after its last watcher has left: a watch
// loop that asks again at once finds it still current.
const DefaultStreamViewIdle = time.Minute

// streamFirstEvent bounds how long a new subscription may go without its
// first snapshot: a server that does not send one is further behind than
// the view (cut off from its leader) and another is tried. After
// streamBehindLimit such subscriptions in a row, the view takes the next
// server's answer whatever its index: the datacenter's state went back
// (a snapshot restored), and the view follows it as a direct read would.
const (
	streamFirstEvent  = 10 * time.Second
	streamBehindLimit = 3
)

// errBehind ends a subscription whose server sent no first snapshot
// within streamFirstEvent.
var errBehind = errors.New("server sent no snapshot at the view's index: it is behind")

// healthQuery and healthAnswer are the envelopes of a service's health.
type (
	healthQuery  = rpc.Query[catalog.ServiceRequest]
	healthAnswer = rpc.Answer[[]*catalog.CheckServiceNode]
)

// healthViews are a client agent's materialized views of the health of
// the services its users watch (use_streaming_backend): one per query
// (service, filters, token), kept current by one subscription to a server
// (rpc.MethodSubscribeHealth), so that however many blocking queries a
// view answers, the servers serve one subscription. A view is made by the
// first blocking query that needs it and closed idle after the last one
// has left. Safe for concurrent use.
type healthViews struct {
	a    *Agent
	log  *slog.Logger
	idle time.Duration

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	mu     sync.Mutex
	views  map[string]*healthView
	closed bool
	wg     sync.WaitGroup
}

// healthView is the view of one query.
type healthView struct {
	q      healthQuery // MinIndex and MaxWait unset
	key    string
	cancel context.CancelFunc
	refs   int         // guarded by healthViews.mu
	idle   *time.Timer // guarded by healthViews.mu; set while refs is 0

	mu      sync.Mutex
	have    bool
	ans     healthAnswer
	err     error         // the view failed: every waiter gets it
	changed chan struct{} // closed and replaced when ans or err changes
}

func newHealthViews(a *Agent, idle time.Duration) *healthViews {
	if idle <= 0 {
		idle = DefaultStreamViewIdle
	}
	ctx, cancel := context.WithCancel(a.ctx)
	return &healthViews{a: a, log: a.logger.With("component", "stream"), idle: idle, ctx: ctx, cancel: cancel, views: make(map[string]*healthView)}
}

// streams reports whether a blocking health read is answered from a
// streaming view: a client agent with use_streaming_backend, a read of its
// own datacenter, and not ?consistent (which only the leader answers) nor
// ?near (sorted for the caller).
func (a *Agent) streams(q *healthQuery) bool {
	return a.views != nil && q.MinIndex > 0 && !q.RequireConsistent && q.Near == "" &&
		(q.Datacenter == "" || q.Datacenter == a.cfg.Datacenter)
}

// streamHealth answers a blocking health read from the query's view, as a
// blocking query would: once the view's index is past q.MinIndex, or when
// the wait (capped at max_query_time, plus up to 1/16) is over. Servers
// that do not know subscriptions leave it to sharedHealth. The answer is
// shared: read-only.
func (a *Agent) streamHealth(ctx context.Context, q *healthQuery, r *healthAnswer) error {
	v, err := a.views.get(q)
	if err != nil {
		return a.sharedHealth(ctx, q, r)
	}
	defer a.views.release(v)
	wait := q.MaxWait
	if wait <= 0 {
		wait = a.cfg.DefaultQueryTime
	}
	if a.cfg.MaxQueryTime > 0 {
		wait = min(wait, a.cfg.MaxQueryTime)
	}
	wait += rand.N(wait/16 + 1)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	over := false
	for {
		v.mu.Lock()
		have, ans, verr, changed := v.have, v.ans, v.err, v.changed
		v.mu.Unlock()
		switch {
		case verr != nil && errors.Is(verr, rpc.ErrUnknownMethod):
			return a.sharedHealth(ctx, q, r)
		case verr != nil:
			return verr
		case have && (ans.Index > q.MinIndex || over):
			*r = ans
			r.QueryBackend = QueryBackendStreaming
			return nil
		case over:
			// No snapshot yet: the current answer, without blocking.
			now := *q
			now.MinIndex, now.MaxWait = 0, 0
			return a.forward(ctx, rpc.MethodHealthService, &now, r)
		}
		select {
		case <-changed:
		case <-timer.C:
			over = true
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// get returns the view of q, made and started if there is none, and holds
// it until release.
func (vs *healthViews) get(q *healthQuery) (*healthView, error) {
	k := *q
	k.MinIndex, k.MaxWait, k.AllowStale, k.Datacenter = 0, 0, false, ""
	key, err := json.Marshal(&k)
	if err != nil {
		return nil, err
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.closed {
		return nil, rpc.ErrPoolClosed
	}
	v := vs.views[string(key)]
	if v == nil {
		ctx, cancel := context.WithCancel(vs.ctx)
		v = &healthView{q: k, key: string(key), cancel: cancel, changed: make(chan struct{})}
		vs.views[v.key] = v
		vs.wg.Go(func() { vs.run(ctx, v) })
	}
	if v.idle != nil {
		v.idle.Stop()
		v.idle = nil
	}
	v.refs++
	return v, nil
}

// release lets go of v; the last to leave starts its idle timer.
func (vs *healthViews) release(v *healthView) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	v.refs--
	if v.refs > 0 || vs.closed || vs.views[v.key] != v {
		return
	}
	v.idle = time.AfterFunc(vs.idle, func() {
		vs.mu.Lock()
		defer vs.mu.Unlock()
		if v.refs == 0 && vs.views[v.key] == v {
			delete(vs.views, v.key)
			v.cancel()
		}
	})
}

// close ends every view and waits for their subscriptions to close. Safe
// to call more than once.
func (vs *healthViews) close() {
	vs.mu.Lock()
	vs.closed = true
	for _, v := range vs.views {
		if v.idle != nil {
			v.idle.Stop()
		}
	}
	vs.mu.Unlock()
	vs.cancel()
	vs.wg.Wait()
}

// run keeps v current until ctx ends: it follows a subscription to one
// server and, when it breaks (a server that stops, restarts or cannot be
// reached), subscribes to the next, from the index the view has, so that
// its answers never go back. A server's refusal (the token's rights, a
// bad request) fails the view: its waiters get the error, and the next
// blocking query makes a new view.
func (vs *healthViews) run(ctx context.Context, v *healthView) {
	var backoff time.Duration
	behind := 0
	for {
		got, err := vs.follow(ctx, v, behind >= streamBehindLimit)
		if ctx.Err() != nil {
			v.fail(errViewClosed)
			return
		}
		switch {
		case got:
			behind = 0
		case errors.Is(err, errBehind):
			behind++
		}
		if retryable(err) {
			if got {
				backoff = 0
			}
			backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
			vs.log.Debug("subscription broken, subscribing again", "service", v.q.Args.Service, "error", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				v.fail(errViewClosed)
				return
			}
		}
		vs.log.Debug("streaming view failed", "service", v.q.Args.Service, "error", err)
		vs.mu.Lock()
		if vs.views[v.key] == v {
			delete(vs.views, v.key)
		}
		vs.mu.Unlock()
		v.cancel()
		v.fail(err)
		return
	}
}

// applyHealthEvent is the answer ev brings to a subscriber whose last
// answer was had: its instances in ev's order, each the changed one or
// the one had.
func applyHealthEvent(had map[string]*catalog.CheckServiceNode, ev *server.HealthEvent) ([]*catalog.CheckServiceNode, error) {
	changed := make(map[string]*catalog.CheckServiceNode, len(ev.Changed))
	for _, n := range ev.Changed {
		if n == nil || n.Node == nil || n.Service == nil {
			return nil, errBadEvent
		}
		changed[server.InstanceKey(n)] = n
	}
	nodes := make([]*catalog.CheckServiceNode, len(ev.Order))
	for i, k := range ev.Order {
		n := changed[k]
		if n == nil {
			n = had[k]
		}
		if n == nil {
			return nil, errBadEvent
		}
		nodes[i] = n
	}
	return nodes, nil
}

// errBadEvent ends a subscription whose event names an instance it does
// not carry and the view does not have; the view subscribes again.
var errBadEvent = errors.New("subscription event names an instance neither sent nor known")

// errViewClosed is what the waiters of a view the agent closed get (it
// shuts down).
var errViewClosed = errors.New("streaming view closed: the agent is shutting down")

// fail ends v with err: its waiters return it.
func (v *healthView) fail(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.err = err
	close(v.changed)
	v.changed = make(chan struct{})
}

// retryable reports whether a subscription that ended with err is tried
// again: a broken connection, a server behind the view or without a
// leader, not a refusal.
func retryable(err error) bool {
	return errors.Is(err, rpc.ErrTransport) || errors.Is(err, net.ErrClosed) || errors.Is(err, errBehind) ||
		errors.Is(err, rpc.ErrNoLeader) || !isRemote(err)
}

// isRemote reports whether err is a server's answer (an *rpc.Error).
func isRemote(err error) bool {
	_, ok := errors.AsType[*rpc.Error](err)
	return ok
}

// follow subscribes v to one server and applies its snapshots until the
// subscription ends; got reports whether any arrived. Snapshots older
// than the view's are ignored, unless reset: then the first replaces the
// view whatever its index.
func (vs *healthViews) follow(ctx context.Context, v *healthView, reset bool) (got bool, err error) {
	addrs := vs.a.servers.pick()
	if len(addrs) == 0 {
		return false, rpc.ErrNoLeader
	}
	addr := addrs[0]
	q := v.q
	v.mu.Lock()
	if !reset {
		q.MinIndex = v.ans.Index
	}
	v.mu.Unlock()
	sub, err := vs.a.pool.Subscribe(ctx, addr, rpc.MethodSubscribeHealth, &q)
	if err != nil {
		vs.a.servers.failed(addr)
		return false, err
	}
	defer sub.Close()
	var late atomic.Bool
	first := time.AfterFunc(streamFirstEvent, func() {
		late.Store(true)
		sub.Close()
	})
	defer first.Stop()
	var had map[string]*catalog.CheckServiceNode // the subscription's last answer, by instance
	for {
		var ev server.HealthEvent
		if err := sub.Recv(&ev); err != nil {
			if !got && late.Load() && ctx.Err() == nil {
				err = errBehind
			}
			if retryable(err) {
				vs.a.servers.failed(addr)
			}
			return got, err
		}
		nodes, err := applyHealthEvent(had, &ev)
		if err != nil {
			return got, err
		}
		had = make(map[string]*catalog.CheckServiceNode, len(nodes))
		for _, n := range nodes {
			had[server.InstanceKey(n)] = n
		}
		v.mu.Lock()
		if !v.have || ev.Index >= v.ans.Index || (reset && !got) {
			v.have, v.ans = true, healthAnswer{QueryMeta: ev.QueryMeta, Value: nodes}
			close(v.changed)
			v.changed = make(chan struct{})
		}
		v.mu.Unlock()
		if !got {
			first.Stop()
			got = true
		}
	}
}
