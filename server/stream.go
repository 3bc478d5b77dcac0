package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/rpc"
)

// HealthEvent is one event of a subscription to a service's health
// (rpc.MethodSubscribeHealth): the answer at Index, told as the keys of its
// instances in the answer's order (InstanceKey) and the instances that are
// new or changed since the subscription's previous event (all of them in
// its first). An instance not in Changed is the one of that key the
// subscriber already has.
type HealthEvent struct {
	rpc.QueryMeta
	Order   []string
	Changed []*catalog.CheckServiceNode
}

// InstanceKey names an instance of a health answer: its node and service
// ID.
func InstanceKey(n *catalog.CheckServiceNode) string {
	return n.Node.Node + "\x00" + n.Service.ID
}

// healthDelta is the event that takes a subscriber from prev to next: an
// instance whose node, service and checks are unchanged (the same rows,
// or rows of the same modify indexes: every write of a row gives it a new
// one, and reads build check values afresh) is not sent again.
func healthDelta(prev, next []*catalog.CheckServiceNode) (order []string, changed []*catalog.CheckServiceNode) {
	had := make(map[string]*catalog.CheckServiceNode, len(prev))
	for _, p := range prev {
		had[InstanceKey(p)] = p
	}
	order = make([]string, len(next))
	for i, n := range next {
		order[i] = InstanceKey(n)
		if p := had[order[i]]; p == nil || !sameInstance(p, n) {
			changed = append(changed, n)
		}
	}
	return order, changed
}

func sameInstance(a, b *catalog.CheckServiceNode) bool {
	if a.Node.ModifyIndex != b.Node.ModifyIndex || a.Service.ModifyIndex != b.Service.ModifyIndex || len(a.Checks) != len(b.Checks) {
		return false
	}
	for i, c := range a.Checks {
		if d := b.Checks[i]; c.CheckID != d.CheckID || c.ModifyIndex != d.ModifyIndex {
			return false
		}
	}
	return true
}

// subscriptions are the streaming subscriptions a server serves (client
// agents' views of watched services, rpc.MethodSubscribeHealth): their
// counts, and the events they send, each made and encoded once per
// (query, reader, index it starts from, index it brings) however many
// subscriptions send it. The zero value is ready to use.
type subscriptions struct {
	open    atomic.Int64  // subscriptions being served now
	events  atomic.Uint64 // events sent, over all subscriptions
	encodes atomic.Uint64 // events encoded

	mu     sync.Mutex
	latest map[string]*latestEvents // by query and reader
}

// latestEvents are the events that bring a query's subscribers, for one
// reader, to its latest index, by the index each starts from: subscribers
// in step share one; older ones are dropped when a newer index comes, so
// that a big answer is kept once.
type latestEvents struct {
	to     uint64
	byFrom map[uint64]*encodedEvent
}

// encodedEvent is one event as sent: from the answer of a query at an
// index (0: none, a whole snapshot) to its answer at latestEvents.to,
// both cut down for the reader auth (nil: not cut), and that answer.
type encodedEvent struct {
	auth   *acl.Authorizer
	ready  chan struct{} // closed once the rest is set
	answer []*catalog.CheckServiceNode
	ev     rpc.Encoded
	err    error
}

// maxEventQueries bounds the queries whose latest events are kept; past
// it, an arbitrary one is dropped.
const maxEventQueries = 1024

// SubscriptionStats are the counts of a server's streaming subscriptions.
type SubscriptionStats struct {
	// Open is how many subscriptions the server serves now.
	Open int64
	// Snapshots is how many events it has sent, over all of them.
	Snapshots uint64
	// Encodes is how many it has made and encoded: one per (query,
	// reader, index from, index to), however many subscriptions sent it.
	Encodes uint64
}

// event returns the encoded event of key from index from to index to for
// auth, with the answer at to: the one already made, the one another
// subscription is making (waiting for it), or the one build makes, kept
// for the others while to is the latest index of key.
func (c *subscriptions) event(key string, from, to uint64, auth *acl.Authorizer, build func() ([]*catalog.CheckServiceNode, rpc.Encoded, error)) ([]*catalog.CheckServiceNode, rpc.Encoded, error) {
	if auth != nil {
		key += "\x00" + auth.AccessorID()
	}
	c.mu.Lock()
	le := c.latest[key]
	if le != nil && le.to == to {
		if e := le.byFrom[from]; e != nil && e.auth == auth {
			c.mu.Unlock()
			<-e.ready // an encoding in this process: it does not block
			return e.answer, e.ev, e.err
		}
	}
	e := &encodedEvent{auth: auth, ready: make(chan struct{})}
	switch {
	case le != nil && le.to > to:
		// A subscriber that read an older answer: its event is its own.
	case le != nil && le.to == to:
		le.byFrom[from] = e
	default:
		if c.latest == nil {
			c.latest = make(map[string]*latestEvents)
		}
		if le == nil && len(c.latest) >= maxEventQueries {
			for k := range c.latest {
				delete(c.latest, k)
				break
			}
		}
		le = &latestEvents{to: to, byFrom: map[uint64]*encodedEvent{from: e}}
		c.latest[key] = le
	}
	c.mu.Unlock()
	c.encodes.Add(1)
	e.answer, e.ev, e.err = build()
	close(e.ready)
	if e.err != nil {
		c.mu.Lock()
		if le.byFrom[from] == e {
			delete(le.byFrom, from)
		}
		c.mu.Unlock()
	}
	return e.answer, e.ev, e.err
}

// streamACLRecheck is how often a subscription whose answer does not
// change checks its token again: a token deleted, or stripped of its
// right to read the service, ends the subscription within it (Consul ends
// its streams when a token changes; a change of policy here is seen at
// the resolver's next look). It costs one wake and one resolver cache
// look per subscription per period, with ACLs enabled only.
const streamACLRecheck = 5 * time.Second

func (s *Server) registerStreamEndpoints() {
	if _, ok := callGuards[rpc.MethodSubscribeHealth]; !ok {
		panic("server: endpoint " + rpc.MethodSubscribeHealth + " has no entry in callGuards (acl_calls.go)")
	}
	rpc.RegisterStream(s.rpcServer, rpc.MethodSubscribeHealth, s.subscribeHealth)
}

// Subscriptions counts this server's streaming subscriptions.
func (s *Server) Subscriptions() SubscriptionStats {
	return SubscriptionStats{Open: s.subs.open.Load(), Snapshots: s.subs.events.Load(), Encodes: s.subs.encodes.Load()}
}

// subscribeHealth serves one subscription to a service's health from this
// server's state (as a ?stale read does): the whole answer once its index
// reaches the query's MinIndex (so that a subscriber that was on a server
// further ahead never goes back), then, each time the index moves, what
// changed (HealthEvent). The answers come from the answer cache, shared with every
// blocking query and every other subscription of the same query: a change
// costs one evaluation however many subscribe. Every snapshot is sent
// only after the token is checked again, and cut down to what it may
// read; a token that may no longer read the service ends the
// subscription with the refusal.
func (s *Server) subscribeHealth(ctx context.Context, args *serviceQuery, send func(any) error) error {
	if s.remote(args.Datacenter) {
		return &rpc.Error{Code: rpc.ErrBadRequest.Code, Message: fmt.Sprintf("a subscription is served by a server of its own datacenter, not of %q: subscribe there", args.Datacenter)}
	}
	s.subs.open.Add(1)
	defer s.subs.open.Add(-1)
	key := serviceKey(&args.Args)
	read := s.healthRead(&args.Args)
	var sent uint64
	var sentAuth *acl.Authorizer
	var had []*catalog.CheckServiceNode // the answer sent last, as sent
	for {
		e, err := s.answers.load(key, read)
		if err != nil {
			return err
		}
		auth, err := s.authorizeCall(rpc.MethodSubscribeHealth, args)
		if err != nil {
			return err
		}
		if e.index >= args.MinIndex && (sent == 0 || e.index != sent || auth != sentAuth) {
			from := sent
			if auth != sentAuth {
				from = 0 // what was sent was cut for other rights: all again
			}
			answer, enc, err := s.subs.event(key, from, e.index, auth, func() ([]*catalog.CheckServiceNode, rpc.Encoded, error) {
				ans := rpc.Answer[[]*catalog.CheckServiceNode]{Value: e.value.([]*catalog.CheckServiceNode)}
				if auth != nil {
					if err := filterReply(auth, &ans); err != nil {
						return nil, rpc.Encoded{}, err
					}
				}
				prev := had
				if from == 0 {
					prev = nil
				}
				ev := HealthEvent{QueryMeta: ans.QueryMeta}
				ev.Index = e.index
				s.setQueryMeta(&ev.QueryMeta)
				ev.Order, ev.Changed = healthDelta(prev, ans.Value)
				enc, err := rpc.Encode(&ev)
				return ans.Value, enc, err
			})
			if err != nil {
				return err
			}
			if err := send(enc); err != nil {
				return err
			}
			sent, sentAuth, had = e.index, auth, answer
			s.subs.events.Add(1)
		}
		if s.cfg.ACL.Enabled {
			wctx, cancel := context.WithTimeout(ctx, streamACLRecheck)
			e.ws.WatchCtx(wctx)
			cancel()
		} else {
			e.ws.WatchCtx(ctx)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// healthRead returns the read of a service's health that the answer cache
// evaluates (healthServiceNodes, subscribeHealth): the answer with the
// watch set it registered, which also fires when the state store is
// replaced (a snapshot restored).
func (s *Server) healthRead(r *catalog.ServiceRequest) func() (*cachedAnswer, error) {
	return func() (*cachedAnswer, error) {
		tx, abandon := s.readTxn()
		defer tx.Abort()
		ws := memdb.NewWatchSet()
		ws.Add(abandon)
		idx, nodes, err := catalog.CheckServiceNodes(tx, ws, r.Service, r.ServiceQuery)
		if err != nil {
			return nil, err
		}
		return &cachedAnswer{index: max(idx, 1), value: nodes, ws: ws}, nil
	}
}

// registerStreamMetrics exports the subscription counts, named with prefix:
// <prefix>_subscribe_streams (open now), <prefix>_subscribe_events (events
// sent) and <prefix>_subscribe_encodes (events made and encoded, shared by
// the subscribers in step), Meridian's own.
func (s *Server) registerStreamMetrics(reg prometheus.Registerer, prefix string) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: prefix + "_subscribe_streams",
			Help: "Streaming subscriptions (client agents' views of watched services) this server serves now (Meridian's own).",
		}, func() float64 { return float64(s.subs.open.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: prefix + "_subscribe_events",
			Help: "Events of a watched service's health (its whole answer, then what changed) sent to subscribed client agents (Meridian's own).",
		}, func() float64 { return float64(s.subs.events.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: prefix + "_subscribe_encodes",
			Help: "Events made and encoded for subscribed client agents: one per query, reader and pair of indexes, however many subscriptions send it (Meridian's own).",
		}, func() float64 { return float64(s.subs.encodes.Load()) }),
	)
}
