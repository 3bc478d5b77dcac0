// Package server is one Raft server of a datacenter: the replicated state
// store, the Raft FSM that is its only writer, the leader's duties, and the
// RPC endpoints that client agents and other servers call.
//
// Where it sits (DESIGN.md): below the agent, above catalog, kvstore, lan and
// rpc. The agent owns the LAN gossip pool and hands it in; the server owns the
// server port (8300), on which the first byte of each connection selects Raft
// or a yamux session of RPC streams, in the clear or inside TLS (Config.TLS;
// see package rpc).
//
// Reads are answered from the local go-memdb database: with AllowStale by any
// server, otherwise by the leader (a follower forwards), and with
// RequireConsistent only after the leader has confirmed its leadership with a
// quorum. Blocking queries park on go-memdb watch channels. Client agents'
// streaming views subscribe to a service's health (stream.go): the server
// sends each new answer of its own state, shared with the blocking queries
// of the same read and encoded once for every subscriber. Writes are Raft
// log entries; hashicorp/raft groups concurrent Apply calls into shared disk
// writes, and the FSM applies committed entries in batches, one memdb
// transaction each. The leader writes its own copy of new entries while it
// sends them to the followers (leaderLog, raftlog.go); an entry is applied,
// and its writer answered, only once it is on the leader's disk and on a
// follower's.
//
// The leader reconciles LAN membership into the catalog: every member is a
// node with a serfHealth check that turns critical when the member fails, and
// the node is deregistered when it leaves or is reaped. It also adds servers
// that join the LAN pool to the Raft configuration, as non-voters that
// autopilot promotes once they are healthy and caught up, and removes those
// that leave; autopilot also removes dead servers above quorum
// (autopilot.go). Agents send their LAN coordinates to the leader, which writes them
// to the catalog in batches, one Raft entry per CoordinateUpdatePeriod
// (coordinate.go); reads with ?near sort by them.
//
// A Server is safe for concurrent use.
package server
