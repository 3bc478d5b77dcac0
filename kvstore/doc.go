// Package kvstore holds Meridian's key/value store: the go-memdb tables for
// keys, sessions and locks (the keys themselves in a copy-on-write B-tree
// that one memdb row holds, see below), the functions the Raft FSM calls to change them
// (including atomic transactions), and the reads the HTTP API answers
// /v1/kv, /v1/session and /v1/txn from, with Consul's semantics.
//
// In DESIGN.md it sits at the bottom of the import graph beside catalog: it
// imports only the standard library, go-memdb and google/btree and knows
// nothing of the network, Raft, HTTP or the catalog. The server builds one memdb database
// from catalog.Tables() plus Tables(); the FSM opens a write transaction,
// calls KVSet, KVLock, SessionDestroy, Txn and the like with the Raft index
// the command was applied at, and commits, or aborts if a function returned
// an error (or Txn returned errors): a failed write may leave partial
// changes in the transaction. Snapshot and Restore write and read kvstore's
// section of a snapshot, after catalog's, on the same stream.
//
// Reads take a read transaction and a memdb.WatchSet (which may be nil) and
// return the index to answer with (X-Consul-Index, at least 1). KVGet
// watches only its key, so a blocking GET of one key is not woken by
// writes to others; KVList and KVKeys watch their prefix, woken by any
// write or delete under it.
// Deletes leave tombstones so that a recursive read's index moves when a key
// under its prefix is deleted; the leader reaps them with KVReapTombstones.
//
// Memory. A key costs its record (key, value and fixed fields in one
// allocation: 124 bytes for a 100-byte value under a 13-byte key, 128 on
// the heap) and its slot in a B-tree node (16 bytes, in nodes nearly full
// after a restore, half full after writes in key order): 148 to 168 bytes
// of heap in all, where a go-memdb row cost 625. The entries are not
// memdb rows but a github.com/google/btree BTreeG whose current version is
// the one row of the "kv_entries" table: a write transaction clones it
// (nodes are copied as they are first written) and stores the clone in
// that row, so it commits or aborts with everything else the transaction
// does, catalog changes included, and a read transaction reads the version
// of its snapshot. Watches are channels of a registry of the keys and
// prefixes blocking reads wait on, closed once a write that changed them
// commits (memdb's Txn.Defer); only watched keys cost memory.
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
// Concurrency: the package has no state of its own besides each
// database's watch registry (which has its lock); safety is memdb's. Any
// number of read transactions may run alongside the one write transaction.
// Values returned by reads must be treated as read-only (sessions are
// shared with the database; an entry's value is a copy); values passed to
// writes are copied, and the caller keeps ownership of them.
package kvstore
