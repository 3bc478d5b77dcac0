// Package federation carries requests between datacenters.
//
// Every server of every datacenter is a member of the WAN gossip pool (package
// wan), or of the pools of the links it has. The server package turns that membership into []Server and feeds it
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
// Datacenters need not all reach each other. Every server runs a route
// exchange (Forwarder.Run) with each server of another datacenter that WAN
// gossip sees alive: one call (MethodRoutes) held open over the link,
// answered with that server's Advertisement (every datacenter it reaches
// and the path to it, its own datacenter first) as soon as a path in it
// changes, and every RefreshInterval anyway (fresh round-trip times). The
// Table keeps, for each destination, the best route per neighbour: a
// direct link wins whenever it is up, then the lowest round trip (serf's
// distance to the neighbour plus what it advertised), then fewer hops.
// It is a path vector: a path that crosses this datacenter or holds one
// twice, starts elsewhere than at its advertiser, or is longer than
// MaxHops is refused and logged with the datacenter and the reason; paths
// through the asker are not sent to it (split horizon). A neighbour
// server whose exchange fails, or that gossip declares failed, has its
// routes withdrawn at once, and the change travels on as triggered
// updates. The exchange dials with Config.DialTLS, so with
// verify_server_hostname a server is believed to be of the datacenter
// its certificate names, and its advertisement must name that one.
//
// A request for a datacenter that is not a neighbour goes as a
// RelayRequest (origin, destination, the datacenters crossed, a hop count,
// the encoded request and the caller's token inside it) to a server of
// the next hop, which hands it on over its own link, each hop on its own
// stream, until the destination runs it as a call from the network
// (rpc.Server.Dispatch): its ACL checks are the destination's. A relay
// gives up a little before its sender does, answering why, so that the
// sender tries the next server or the next route within the same
// Config.Timeout; a relay never hands a request back to a datacenter it
// crossed. A relay that lets a request time out is probed (a route
// exchange call, answered at once); if it does not answer that either
// within a second (or half of Config.Timeout), its link is closed and the
// routes through it are withdrawn, within about Config.Timeout of the
// first request it lost instead of QUIC's idle timeout; one that answers
// was slow beyond it and keeps its link. With rpc's QUIC defaults a
// neighbour that falls silent with no request in flight is found out
// within 3.25s of its last packet (keepalives every 250ms, 3s idle).
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
