package federation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/meridian/meridian/rpc"
)

// Methods of the federation's own calls between servers; package server
// registers them.
const (
	// MethodRelay carries a RelayRequest to a server of the next hop.
	MethodRelay = "Federation.Relay"
	// MethodRoutes answers a RoutesRequest with the server's
	// Advertisement, blocking until it changes.
	MethodRoutes = "Federation.Routes"
)

// RelayRequest is a request for a datacenter that is not a neighbour,
// handed from server to server along a route. Each hop rides its own
// stream of its own link; the endpoint at Dest runs Method on Body as it
// would a request from a neighbour, checking the token Body carries.
type RelayRequest struct {
	// Origin is the datacenter the request entered the federation at.
	Origin string
	// Dest is the datacenter that answers it.
	Dest string
	// Via lists the datacenters the request crossed, Origin first: a hop
	// never hands it to one of them again.
	Via []string
	// Hops is how many links the request crossed (len(Via)); a relay
	// refuses it past MaxHops.
	Hops int
	// Method and Body are the request itself, Body msgpack-encoded.
	Method string
	Body   []byte
	// Wait is how long the endpoint may hold a blocking request before it
	// answers (its wait and jitter); 0 for any other request.
	Wait time.Duration
	// Read is true when the request is a read, safe to send twice.
	Read bool
}

// IsRead reports whether the relayed request may be sent twice.
func (r *RelayRequest) IsRead() bool { return r.Read }

// Blocking reports the relayed request's wait.
func (r *RelayRequest) Blocking() (time.Duration, bool) { return r.Wait, r.Wait > 0 }

// RelayReply is the encoded answer of a relayed request.
type RelayReply struct {
	Body []byte
}

// Relay errors, as they cross the wire back to the origin.
var (
	// errUndeliverable is a relay's answer when it cannot hand the
	// request on (no route from it, its next hops down, a loop, the hop
	// limit): the hop before tries another route.
	errUndeliverable = &rpc.Error{Code: "relay_undeliverable", Message: "relay cannot deliver"}
	// errRelayMaybeDelivered is a relay's answer when a write it handed on
	// may have been applied: nobody sends it again.
	errRelayMaybeDelivered = &rpc.Error{Code: "relay_maybe_delivered", Message: "relayed request may have been delivered"}
)

// LocalFunc runs method on an encoded request at this server, as a call
// from the network would (rpc.Server.Dispatch), and returns the encoded
// answer.
type LocalFunc func(ctx context.Context, method string, body []byte) ([]byte, error)

// Known reports whether dc is this datacenter, is in the WAN pool, or was
// ever routed to: a datacenter that is known but has no path now is
// unreachable (503), not unknown (500).
func (f *Forwarder) Known(dc string) bool {
	return f.router.Known(dc) || f.table.Seen(dc)
}

// Reachable reports whether a request for dc has somewhere to go now: an
// alive server of it out of quarantine or one whose route exchange works,
// or a route through a neighbour. It claims no probe.
func (f *Forwarder) Reachable(dc string) bool {
	if f.router.Reachable(dc) || f.table.Linked(dc) {
		return true
	}
	for _, r := range f.table.Lookup(dc) {
		if r.NextHop != dc && (f.router.Reachable(r.NextHop) || f.table.Linked(r.NextHop)) {
			return true
		}
	}
	return false
}

// Datacenters lists every known datacenter: the local one first, then by
// round-trip time along the best path to it, then by name; those with no
// path now come last.
func (f *Forwarder) Datacenters() []string {
	dcs := f.router.Datacenters()
	for _, r := range f.table.Routes() {
		if !slices.Contains(dcs, r.Dest) {
			dcs = append(dcs, r.Dest)
		}
	}
	local := f.cfg.Datacenter
	dist := func(dc string) time.Duration {
		if dc == local {
			return -1
		}
		if rs := f.table.Lookup(dc); len(rs) > 0 {
			return rs[0].RTT
		}
		if d, ok := f.router.RTT(dc); ok && f.router.Reachable(dc) {
			return d
		}
		return time.Hour
	}
	d := make(map[string]time.Duration, len(dcs))
	for _, dc := range dcs {
		d[dc] = dist(dc)
	}
	slices.SortFunc(dcs, func(a, b string) int { return cmp.Or(cmp.Compare(d[a], d[b]), cmp.Compare(a, b)) })
	return dcs
}

// Table is the forwarder's route table.
func (f *Forwarder) Table() *Table { return f.table }

// try is one server to send a request to, a server of next hop hop.
type try struct {
	hop    string
	server Server
}

// plan lists the servers a request for dest tries, in order: dest's own
// servers when the link to it is up (or nothing else is known), then
// servers of each next hop that has a route to dest, best route first,
// skipping datacenters in via (the request crossed them already) and
// routes through them.
func (f *Forwarder) plan(dest string, via []string) []try {
	var out []try
	routes := f.table.Lookup(dest)
	relays := routes[:0:0]
	for _, r := range routes {
		if r.NextHop == dest || slices.ContainsFunc(r.Path, func(dc string) bool { return slices.Contains(via, dc) }) {
			continue
		}
		relays = append(relays, r)
	}
	if f.table.Linked(dest) || len(relays) == 0 {
		ss := f.servers(dest)
		for _, s := range ss[:min(len(ss), maxTries)] {
			out = append(out, try{hop: dest, server: s})
		}
	}
	n := 0
	for _, r := range relays {
		ss := f.servers(r.NextHop)
		for _, s := range ss[:min(len(ss), maxHopTries)] {
			if n == maxRelayTries {
				return out
			}
			out = append(out, try{hop: r.NextHop, server: s})
			n++
		}
	}
	return out
}

// servers returns dc's servers to try (Router.Servers); when every one is
// in quarantine or declared failed by WAN gossip, those whose route
// exchange still works: their link is up, whatever a slow request made
// of it, or gossip concluded from probes that crossed paths that are cut
// (in a pool wider than the links).
func (f *Forwarder) servers(dc string) []Server {
	if ss := f.router.Servers(dc); len(ss) > 0 {
		return ss
	}
	var out []Server
	for _, s := range f.router.Members(dc) {
		if !s.Left && f.table.Up(s.Addr) {
			out = append(out, s)
		}
	}
	return out
}

// Forward runs method on a server of datacenter dc and decodes its answer
// into reply. When dc is a neighbour (its link up) it goes to dc's
// servers, nearest first; else, or when they do not answer, it goes as a
// RelayRequest to a server of the next hop of each route to dc, best
// first, which hands it on. A server that cannot be reached or does not
// answer is skipped for the next; a write that may have been delivered is
// never sent twice. The whole request takes at most Config.Timeout (plus a
// blocking query's wait), relays included: each try gets a share of what
// is left, so that a silent link leaves time for the next server. It
// answers rpc.ErrNoPathToDC for a datacenter nobody knows and
// rpc.ErrDCUnreachable when no path to dc answers.
func (f *Forwarder) Forward(ctx context.Context, dc, method string, args, reply any) error {
	if !f.Known(dc) {
		return fmt.Errorf("%w %q", rpc.ErrNoPathToDC, dc)
	}
	wait := blockingWait(args)
	var env *RelayRequest
	send := func(ctx context.Context, t try) error {
		if t.hop == dc {
			return f.links.Call(ctx, t.server.Addr, method, args, reply)
		}
		if env == nil {
			body, err := rpc.Marshal(args)
			if err != nil {
				return fmt.Errorf("relay %s: %w", method, err)
			}
			local := f.cfg.Datacenter
			env = &RelayRequest{Origin: local, Dest: dc, Via: []string{local}, Hops: 1, Method: method, Body: body, Wait: wait, Read: isRead(args)}
		}
		var rr RelayReply
		if err := f.links.Call(ctx, t.server.Addr, MethodRelay, env, &rr); err != nil {
			return err
		}
		if err := rpc.Unmarshal(rr.Body, reply); err != nil {
			return fmt.Errorf("relayed %s reply: %w", method, err)
		}
		return nil
	}
	err := f.deliver(ctx, time.Now().Add(f.cfg.Timeout), dc, nil, method, isRead(args), wait, send)
	if errors.Is(err, errRelayMaybeDelivered) {
		return fmt.Errorf("forward %s to dc %q: %w: %w", method, dc, err, rpc.ErrMaybeDelivered)
	}
	return err
}

// Relay answers a RelayRequest that a server of another datacenter handed
// to this one: local runs it when this is its destination; else it goes on
// to the next hop, within what is left of the time its sender gave it. A
// request that crossed this datacenter already, or crossed MaxHops links,
// is refused and logged.
func (f *Forwarder) Relay(ctx context.Context, req *RelayRequest, reply *RelayReply, local LocalFunc) error {
	here := f.cfg.Datacenter
	if req.Method == MethodRelay || req.Method == MethodRoutes {
		return fmt.Errorf("%w: %s cannot be relayed", errUndeliverable, req.Method)
	}
	if req.Dest == here {
		body, err := local(ctx, req.Method, req.Body)
		reply.Body = body
		return err
	}
	var reason string
	switch {
	case slices.Contains(req.Via, here):
		reason = "routing loop: the request crossed this datacenter already"
	case req.Hops >= MaxHops || len(req.Via) >= MaxHops:
		reason = fmt.Sprintf("hop limit: the request crossed %d links, the limit is %d", req.Hops, MaxHops)
	case req.Dest == "":
		reason = "no destination datacenter"
	}
	if reason != "" {
		f.log.Warn("relay refused", "origin", req.Origin, "dc", req.Dest, "via", req.Via, "reason", reason)
		return fmt.Errorf("%w: %s to dc %q: %s", errUndeliverable, req.Method, req.Dest, reason)
	}
	if !f.Known(req.Dest) {
		return fmt.Errorf("%w: no path from dc %q to dc %q", errUndeliverable, here, req.Dest)
	}
	next := *req
	next.Via = append(slices.Clip(req.Via), here)
	next.Hops = req.Hops + 1
	send := func(ctx context.Context, t try) error {
		return f.links.Call(ctx, t.server.Addr, MethodRelay, &next, reply)
	}
	// Answer before the sender gives up on this server, so that it hears
	// why and tries another route instead of writing this one off.
	deadline := time.Now().Add(f.cfg.Timeout)
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl) - req.Wait
		deadline = time.Now().Add(min(f.cfg.Timeout, left-relayMargin(left)))
	}
	err := f.deliver(ctx, deadline, req.Dest, next.Via, req.Method, req.Read, req.Wait, send)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rpc.ErrMaybeDelivered) || errors.Is(err, errRelayMaybeDelivered):
		return fmt.Errorf("%w: %s via dc %q: %v", errRelayMaybeDelivered, req.Method, here, err)
	case errors.Is(err, rpc.ErrDCUnreachable) || errors.Is(err, rpc.ErrNoPathToDC) || errors.Is(err, errUndeliverable):
		return fmt.Errorf("%w: via dc %q: %v", errUndeliverable, here, err)
	}
	return err
}

// relayMargin is how much sooner than its sender a relay gives up, so
// that its answer arrives in time: a few per cent of what is left, so
// that a path of dozens of hops keeps most of federation.timeout for its
// far end.
func relayMargin(left time.Duration) time.Duration {
	return min(max(left/32, 5*time.Millisecond), 50*time.Millisecond)
}

// deliver sends a request for dest along plan(dest, via) with send until a
// server answers, by deadline (a blocking request gets wait on top). An
// answer from the endpoint, error or not, ends it; a relay that cannot
// deliver, a server that cannot be reached or does not answer moves it to
// the next; a write that may have been delivered ends it.
func (f *Forwarder) deliver(ctx context.Context, deadline time.Time, dest string, via []string, method string, read bool, wait time.Duration, send func(context.Context, try) error) error {
	tries := f.plan(dest, via)
	if len(tries) == 0 {
		return fmt.Errorf("%w %q: no server alive or reachable, and no route", rpc.ErrDCUnreachable, dest)
	}
	var last error
	for i, t := range tries {
		share := time.Until(deadline) / time.Duration(min(len(tries)-i, maxTries))
		if share <= 0 {
			break
		}
		tctx, cancel := context.WithTimeout(ctx, share+wait)
		err := send(tctx, t)
		timedOut := tctx.Err() != nil && ctx.Err() == nil
		cancel()
		relayed := t.hop != dest
		if err == nil {
			f.router.Succeeded(t.server.Addr)
			return nil
		}
		if !errors.Is(err, rpc.ErrTransport) && !timedOut {
			if relayed && errors.Is(err, errUndeliverable) {
				f.log.Debug("relay could not deliver", "dc", dest, "via", t.hop, "server", t.server.Name, "error", err)
				last = err
				continue
			}
			// The endpoint's answer, or a relayed write that may have
			// landed.
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !relayed || !timedOut {
			f.router.Failed(t.server.Addr)
		}
		if timedOut {
			// The link said nothing for its whole share: it is dead to
			// us, whatever QUIC or yamux think of it yet. A relay
			// answers before its share ends, unless the path beyond it
			// is slow: it is not quarantined, and its link, which
			// carries other requests, is closed only if the relay
			// itself does not answer a probe either (suspect).
			if !relayed {
				f.links.Forget(t.server.Addr)
			} else {
				f.suspect(t.server)
			}
			took := (share + wait).Round(time.Millisecond)
			f.log.Warn("wan link timed out", "dc", t.hop, "server", t.server.Name, "addr", t.server.Addr, "after", took)
			err = fmt.Errorf("no answer from %s within %v", t.server.Name, took)
			if !read {
				err = fmt.Errorf("%w: %w", err, rpc.ErrMaybeDelivered)
			}
		} else {
			f.log.Warn("wan link failed", "dc", t.hop, "server", t.server.Name, "addr", t.server.Addr, "error", err)
		}
		if errors.Is(err, rpc.ErrMaybeDelivered) && !read {
			return fmt.Errorf("forward %s to dc %q: %w", method, dest, err)
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("no answer within %v", f.cfg.Timeout)
	}
	return fmt.Errorf("%w %q: %w", rpc.ErrDCUnreachable, dest, last)
}

// probeTimeout is how long a relay that let a request time out has to
// answer a probe before its link is closed: long enough for a loaded
// server, short of QUIC's idle timeout (3s), which would find a dead one
// out too, only later.
func (f *Forwarder) probeTimeout() time.Duration { return max(time.Second, f.cfg.Timeout/2) }

// suspect probes the relay s that let a request time out, once at a time
// per server and in the background: if it does not answer a route
// exchange call (Index 0, answered at once) within probeTimeout, its
// link is closed, which fails the route exchange with it and withdraws
// the routes through it at once, instead of after QUIC's idle timeout.
// One that answers was only slow beyond it, and keeps its link.
func (f *Forwarder) suspect(s Server) {
	f.mu.Lock()
	if f.closed || f.probing[s.Addr] {
		f.mu.Unlock()
		return
	}
	f.probing[s.Addr] = true
	f.probes.Add(1)
	f.mu.Unlock()
	go func() {
		defer f.probes.Done()
		ctx, cancel := context.WithTimeout(context.Background(), f.probeTimeout())
		var ad Advertisement
		err := f.links.Call(ctx, s.Addr, MethodRoutes, &RoutesRequest{Datacenter: f.cfg.Datacenter}, &ad)
		cancel()
		if err != nil && !errors.Is(err, rpc.ErrUnknownMethod) {
			f.log.Warn("relay did not answer a probe after a request timed out: link closed, routes through it withdrawn", "dc", s.Datacenter, "server", s.Name, "addr", s.Addr, "error", err)
			f.links.Forget(s.Addr)
		}
		f.mu.Lock()
		delete(f.probing, s.Addr)
		f.mu.Unlock()
	}()
}

// isRead reports whether args declares itself a read, safe to send twice.
func isRead(args any) bool {
	r, ok := args.(interface{ IsRead() bool })
	return ok && r.IsRead()
}
