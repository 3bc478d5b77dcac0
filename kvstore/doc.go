// Package kvstore holds Meridian's key/value store: the go-memdb tables for
// keys, sessions and locks, the functions the Raft FSM calls to change them
// (including atomic transactions), and the reads the HTTP API answers
// /v1/kv, /v1/session and /v1/txn from, with Consul's semantics.
//
// In DESIGN.md it sits at the bottom of the import graph beside catalog: it
// imports only the standard library and go-memdb and knows nothing of the
// network, Raft, HTTP or the catalog. The server builds one memdb database
// from catalog.Tables() plus Tables(); the FSM opens a write transaction,
// calls KVSet, KVLock, SessionDestroy, Txn and the like with the Raft index
// the command was applied at, and commits, or aborts if a function returned
// an error (or Txn returned errors): a failed write may leave partial
// changes in the transaction. Snapshot and Restore write and read kvstore's
// section of a snapshot, after catalog's, on the same stream.
//
// Reads take a read transaction and a memdb.WatchSet (which may be nil) and
// return the index to answer with (X-Consul-Index, at least 1). KVGet
// watches only the key's own radix node, so a blocking GET of one key is
// not woken by writes to others; KVList and KVKeys watch their prefix.
// Deletes leave tombstones so that a recursive read's index moves when a key
// under its prefix is deleted; the leader reaps them with KVReapTombstones.
//
// What the server checks before applying, because kvstore cannot: that a
// session's node and checks exist and are not critical (SessionCreate), and
// which sessions to destroy when a node or a check fails (SessionsForNode,
// SessionsForCheck, then SessionDestroy).
//
// Lock delay. Consul keeps lock delays in each server's memory, stamped
// with the local clock when the FSM applies a session's invalidation, and
// checks them only on the leader before submitting an acquire. Here they
// are replicated state instead: SessionDestroy, KVLock and Txn take now, the
// leader's clock at the time of the request, which the server must carry in
// the Raft command (never time.Now in the FSM). Every server then computes
// the same delays and the same lock outcomes, a new leader enforces the
// delays of the old one, and snapshots carry them. KVLockDelay lets the
// leader refuse early; ReapLockDelays drops expired ones.
//
// Concurrency: the package has no state of its own; safety is memdb's. Any
// number of read transactions may run alongside the one write transaction.
// Values returned by reads are shared with the database and must be treated
// as read-only; values passed to writes are copied, and the caller keeps
// ownership of them.
package kvstore
