// Package federation carries requests between datacenters.
//
// Every server of every datacenter is a member of the WAN gossip pool (package
// wan). The server package turns that membership into []Server and feeds it
// to a Router, which keeps, per datacenter, the alive servers nearest first
// by round-trip time (serf's Vivaldi coordinates) and the datacenters in
// order of distance (/v1/catalog/datacenters).
//
// A request for another datacenter (?dc=dc2, web.service.dc2.consul) arrives
// at a local server, which hands it to Forwarder.Forward: the forwarder picks
// the nearest reachable server of the target DC and sends the request over a
// long-lived WAN link to it, one link per remote server, dialed on first use:
// a QUIC connection (TLS 1.3, each request on its own stream, so one slow
// request never holds up another), or, with TransportTCP, a yamux session
// over TCP. Both are rpc.Session, so nothing here knows which it has. The
// remote server answers the request as its own (forwarding to its leader
// when needed) and the answer travels back.
//
// Failures are told apart as Consul does: a datacenter nobody knows is
// rpc.ErrNoPathToDC (HTTP 500, DNS NXDOMAIN); a known one whose servers are
// all dead, cut off or in quarantine after failing is rpc.ErrDCUnreachable
// (HTTP 503, DNS SERVFAIL), answered at once or within Config.Timeout, never
// a hang. A server that fails a request is skipped for a short, growing
// quarantine (up to 4s), so a healed partition is used again within seconds.
//
// Views answer repeated ?stale reads of another datacenter from a local copy
// kept current by one blocking query per distinct read over the link, so
// that they cost a map lookup instead of a WAN round trip.
//
// Failover holds the one ordering rule of failover: the NearestN other
// datacenters by distance, then a list, each at most once. Prepared queries
// (package server, stored in catalog) and the agent's per-service failover
// policy both walk it. DESIGN.md places prepared queries in this package;
// their storage and execution live with the state store in server and
// catalog instead, since executing one is a catalog read, and only the
// ordering and the forwarding are federation's.
package federation
