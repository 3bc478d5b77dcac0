// Package wan runs the WAN gossip pool that the servers of every datacenter
// join (Consul's serf WAN pool), so that each server knows, for every
// datacenter, which servers are alive and how far away they are.
//
// Only servers join it, on the WAN gossip port (8302 by default). A member is
// named "node.dc" (Config.Node and Config.Datacenter; SplitName takes it
// apart) and carries the tags role "consul" and dc; members without them are
// refused, on Join and in gossip (ErrNotServer). In DESIGN.md it sits at the
// bottom of the import graph beside lan: `server` starts a Pool when the agent
// runs as a server, and `federation` reads Members and RTT to route requests
// to other datacenters (and to the nearest ones on failover).
//
// A WAN pool is a LAN pool with other settings: serf on memberlist, with
// another port, label, merge rule and timings. So Pool is built on lan.Pool
// rather than on serf directly, and this is why wan imports lan although
// DESIGN.md's table has lan and wan import serf and memberlist only: a second
// copy of lan's mapping of serf (its config, events, log bridge, name
// conflicts, join errors, shutdown ordering) would be several hundred lines
// to keep in step, and every fix to one would be owed to the other. lan
// holds the mechanism and keeps what differs in its Config (Timings, Label,
// JoinPort, Merge); wan holds the WAN's values and rules. Its types are
// aliases of lan's (Member, Event, Timings, Coordinate...) so that the
// packages above need not import lan.
//
// The pool is labelled Label ("meridian-wan") and the LAN pool lan.Label
// ("meridian-lan"): gossip with the other label is dropped, so a WAN Join
// aimed at a LAN port, a classic mistake, fails with ErrLabelMismatch instead
// of merging two pools.
//
// The simplest use:
//
//	cfg := wan.DefaultConfig()
//	cfg.Node = "s1"
//	cfg.Datacenter = "dc1"
//	cfg.BindAddr = "10.0.0.5"
//	p, err := wan.New(cfg)
//	if err != nil { ... }
//	defer p.Shutdown()
//	if _, err := p.Join(ctx, []string{"10.1.0.5"}); err != nil { ... } // a dc2 server, port 8302
//	for _, m := range p.Members() {
//		node, dc, _ := wan.SplitName(m.Name)
//		rtt, _ := p.RTT(m.Name)
//		...
//	}
//
// Liveness is judged only over links that exist. A pool admits servers of
// its own datacenter and of the datacenters it links to, and no others:
// they are refused on Join and in gossip (the merge rule, as for
// non-servers), so it never probes them and never marks them failed. In a
// hub-and-spoke federation a spoke's pool holds the hub and itself, the
// hub's everyone. Links are Config.Links (federation.links) or, when none
// are configured, learned: a server of a datacenter not linked yet that
// gossip brings is pinged directly at its advertised address (lan.Pool.Ping's
// gossip ping, over the pool's transport) and admitted, then joined, once
// it answers; when one does not, its datacenter's servers are probed again
// after a backoff from 1s up to Config.LinkProbeInterval. Links and Unreached say which datacenters are
// linked and which were heard of but not reached; Stats carries both.
// Where every datacenter reaches every other, the pool is the full mesh.
//
// DefaultTimings are tuned for links between datacenters: a dead server is
// seen as failed within about 6s, and after a partition heals the two sides
// reconnect by themselves within 10s. Tests start pools on 127.0.0.1 port 0
// with FastTimings.
//
// All methods of Pool are safe for concurrent use.
package wan
