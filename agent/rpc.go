package agent

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
)

// serverList is a client's view of its datacenter's alive servers, kept from
// LAN gossip. Calls stick to one server while it answers and move to the
// next when it does not.
type serverList struct {
	mu    sync.Mutex
	addrs []string
	next  int
}

func (l *serverList) update(members []lan.Member, dc string) {
	var addrs []string
	for _, m := range members {
		if meta, ok := server.ParseMember(m); ok && meta.Datacenter == dc && m.Status == lan.StatusAlive {
			addrs = append(addrs, meta.Addr)
		}
	}
	sort.Strings(addrs)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(addrs) != len(l.addrs) {
		// Spread clients over the servers instead of all on the first.
		l.next = 0
		if len(addrs) > 0 {
			l.next = rand.N(len(addrs))
		}
	}
	l.addrs = addrs
}

// forgetDeadServers closes a client's sessions to servers that gossip
// declared failed or gone, so that calls waiting on them move to another
// server now rather than after the session's keepalive timeout.
func (a *Agent) forgetDeadServers(members []lan.Member) {
	for _, m := range members {
		if meta, ok := server.ParseMember(m); ok && m.Status != lan.StatusAlive {
			a.pool.Forget(meta.Addr)
		}
	}
}

// pick returns the servers to try, the sticky one first.
func (l *serverList) pick() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.addrs)
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, l.addrs[(l.next+i)%n])
	}
	return out
}

// failed moves the sticky choice past addr.
func (l *serverList) failed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.addrs); n > 0 && l.addrs[l.next%n] == addr {
		l.next = (l.next + 1) % n
	}
}

// clientPoolConfig is a client's connections to its servers. Gossip does
// not notice a path cut between this client and one server while other
// members still reach both, so the session must: it pings its server every
// second and gives up on a ping or a write that gets nowhere for 2s
// (instead of yamux's 30s and 10s: on a LAN a live server answers in
// milliseconds, and a socket that takes no bytes for 2s has a dead or
// wedged peer), and a redial waits 2s at most (a lost SYN is resent after
// 1s), so that calls move to another server within a few seconds rather
// than each waiting for its caller's timeout. The pings cost one small
// frame a second per server a client talks to.
func clientPoolConfig(logger *slog.Logger, dial func(ctx context.Context, addr string) (net.Conn, error)) rpc.PoolConfig {
	return rpc.PoolConfig{
		Logger:      logger,
		DialTimeout: 2 * time.Second,
		Yamux:       rpc.YamuxConfig{KeepAliveInterval: time.Second, ConnectionWriteTimeout: 2 * time.Second},
		Dial:        dial,
	}
}

// RPC calls a server endpoint: in-process on a server, otherwise on a server
// of the datacenter, trying the next one when a server cannot be reached.
// A request without a token gets the agent's default token, as in Consul.
func (a *Agent) RPC(ctx context.Context, method string, args, reply any) error {
	if d, ok := args.(interface{ DefaultToken(string) }); ok && a.cfg.ACL.Enabled {
		a.tokens.mu.RLock()
		def := a.tokens.Default
		a.tokens.mu.RUnlock()
		d.DefaultToken(def)
	}
	if a.server != nil {
		return a.server.Call(ctx, method, args, reply)
	}
	if q, ok := args.(*rpc.Query[catalog.ServiceRequest]); ok && method == rpc.MethodHealthService && q.MinIndex > 0 {
		if r, ok := reply.(*rpc.Answer[[]*catalog.CheckServiceNode]); ok {
			if a.streams(q) {
				return a.streamHealth(ctx, q, r)
			}
			return a.sharedHealth(ctx, q, r)
		}
	}
	return a.forward(ctx, method, args, reply)
}

// sharedHealth answers a blocking health read through a.health: the
// agent's watchers of one read (same service, filters, datacenter,
// consistency and token) share one blocking call to a server, and its
// answer. The answer is shared: read-only, as a server's own.
func (a *Agent) sharedHealth(ctx context.Context, q *rpc.Query[catalog.ServiceRequest], r *rpc.Answer[[]*catalog.CheckServiceNode]) error {
	k := *q
	k.MinIndex, k.MaxWait = 0, 0
	key, err := json.Marshal(&k)
	if err != nil {
		return a.forward(ctx, rpc.MethodHealthService, q, r)
	}
	meta, nodes, err := a.health.Do(ctx, string(key), q.QueryOptions, func(ctx context.Context, opts rpc.QueryOptions) (rpc.QueryMeta, []*catalog.CheckServiceNode, error) {
		up := rpc.Query[catalog.ServiceRequest]{QueryOptions: opts, Args: q.Args}
		var reply rpc.Answer[[]*catalog.CheckServiceNode]
		err := a.forward(ctx, rpc.MethodHealthService, &up, &reply)
		return reply.QueryMeta, reply.Value, err
	})
	r.QueryMeta, r.Value = meta, nodes
	return err
}

// forward calls a server of the datacenter, trying the next one when a
// server cannot be reached.
func (a *Agent) forward(ctx context.Context, method string, args, reply any) error {
	addrs := a.servers.pick()
	if len(addrs) == 0 {
		return fmt.Errorf("no known servers in datacenter %q (is the agent joined?): %w", a.cfg.Datacenter, rpc.ErrNoLeader)
	}
	var err error
	for _, addr := range addrs {
		err = a.pool.Call(ctx, addr, method, args, reply)
		if err == nil || !errors.Is(err, rpc.ErrTransport) || ctx.Err() != nil {
			return err
		}
		if _, isRead := args.(interface{ IsRead() bool }); errors.Is(err, rpc.ErrMaybeDelivered) && !isRead {
			return err // a write the server may have applied: not twice
		}
		a.logger.Debug("server unreachable, trying another", "server", addr, "error", err)
		a.servers.failed(addr)
	}
	return err
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate node id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
