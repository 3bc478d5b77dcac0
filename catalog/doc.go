// Package catalog holds Meridian's service catalog: the go-memdb tables for
// nodes, services and health checks (and the nodes' LAN coordinates, which
// SortByDistance reads for ?near), the functions the Raft FSM calls to
// change them, and the queries the HTTP API, DNS and RPC endpoints answer
// from them.
//
// In DESIGN.md it sits at the bottom of the import graph, beside kvstore: it
// imports only the standard library, go-memdb and google/btree (the
// copy-on-write B-trees some rows hold, store.go), and knows nothing of the
// network, Raft or HTTP. Each server owns one memdb database built from
// Tables() (plus kvstore's tables); the FSM opens a write transaction, calls
// Register, Deregister or the Ensure*/Delete* functions with the Raft index
// the entry was applied at, and commits (or aborts, if a function returned an
// error: a failed write may leave partial changes in the transaction).
//
// Reads take a read transaction and a memdb.WatchSet (which may be nil). Each
// returns the index to answer with (X-Consul-Index): it is at least 1, it
// never goes backwards, and it moves when the query's answer changes. The
// watch set receives channels that fire when that index moves, so a blocking
// query can park on ws.WatchCtx and re-run the read when it fires. Granularity
// comes from per-key indexes: "service.<name>", a row of the index table,
// moves when any instance of that service, any of their checks, or the
// record or node-level checks of a node hosting it change; a node's index
// and watch are its row's (a node's row holds its services and checks, see
// store.go) and move when the node, its services or its checks change. A
// write that changes nothing moves no index and fires no watch.
//
// The exported types encode to JSON exactly as Consul's HTTP API writes them
// (checked against github.com/hashicorp/consul/api) and are plain structs that
// round-trip through msgpack and gob.
//
// Concurrency: the package has no state of its own; safety is memdb's. Any
// number of read transactions may run alongside the one write transaction.
// Values returned by reads are shared with the database and must be treated
// as read-only; values passed to writes are copied, and the caller keeps
// ownership of them.
package catalog
