// Package lan runs the LAN gossip pool that every agent of a datacenter joins.
//
// A Pool is one member of the pool: serf on memberlist, bound to the LAN
// gossip port (8301 by default). It gives membership with tags, failure
// detection (a member killed without leaving is seen as failed within about
// three seconds with DefaultConfig), graceful leave, force-leave, reaping of
// failed and left members, rejoin from a snapshot after a restart, and user
// events. In DESIGN.md it sits at the bottom of the import graph beside `wan`:
// `agent` and `server` use it and it imports only serf and memberlist.
//
// The simplest use:
//
//	cfg := lan.DefaultConfig()
//	cfg.NodeName = "web-1"
//	cfg.BindAddr = "10.0.0.5"
//	p, err := lan.New(cfg)
//	if err != nil { ... }
//	defer p.Shutdown()
//	if _, err := p.Join(ctx, []string{"10.0.0.2", "10.0.0.3:8301"}); err != nil { ... }
//
// Tests start several pools in one process on 127.0.0.1 port 0 with
// FastTimings, read the real port back with Addr, and join them.
//
// Membership changes are delivered as Events on Config.EventCh, in the order
// serf produced them. Node names must be unique: when two members claim the
// same name, Join reports a *NameConflictError (matching ErrNameConflict) and
// pools that witness the conflict send a NameConflict event; neither member
// is shut down and the member known first keeps the name.
//
// Every packet and stream carries the pool's label (Config.Label, "meridian-lan"
// with DefaultConfig) and members drop gossip with another label, so a LAN
// pool and the WAN pool never merge: a Join aimed at a port of the other kind
// fails with a *LabelMismatchError (ErrLabelMismatch). A Join aimed at a pool
// with another encryption key fails with ErrEncryptionMismatch. Config.Merge
// lets the caller refuse members (serf's merge delegate), on Join and in
// gossip.
//
// Each member keeps a Vivaldi network coordinate (serf's), learnt from the
// round trip times of its probes: Pool.Coordinate, Pool.MemberCoordinate and
// Pool.RTT estimate how far members are from each other.
//
// All methods of Pool are safe for concurrent use. Timings, Label, JoinPort
// and Merge hold what differs between a LAN and a WAN pool, so the `wan`
// package builds the WAN pool on Pool with its own defaults.
package lan
