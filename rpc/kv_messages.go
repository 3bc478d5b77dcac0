package rpc

// Method names of the KV, session and transaction endpoints.
const (
	MethodKVApply             = "KV.Apply"
	MethodKVGet               = "KV.Get"
	MethodKVList              = "KV.List"
	MethodKVKeys              = "KV.Keys"
	MethodSessionApply        = "Session.Apply"
	MethodSessionGet          = "Session.Get"
	MethodSessionList         = "Session.List"
	MethodSessionNodeSessions = "Session.NodeSessions"
	MethodSessionRenew        = "Session.Renew"
	MethodTxnApply            = "Txn.Apply"
)

// KVOp is what a KV.Apply write does to a key.
type KVOp string

// The KV.Apply operations, as a PUT or DELETE on /v1/kv names them.
const (
	// KVSet creates or updates a key.
	KVSet KVOp = "set"
	// KVCAS sets a key if its ModifyIndex is Index (0: if absent).
	KVCAS KVOp = "cas"
	// KVLock acquires a key for Session and sets it (?acquire).
	KVLock KVOp = "lock"
	// KVUnlock releases a key held by Session and sets it (?release).
	KVUnlock KVOp = "unlock"
	// KVDelete deletes a key.
	KVDelete KVOp = "delete"
	// KVDeleteCAS deletes a key if its ModifyIndex is Index.
	KVDeleteCAS KVOp = "delete-cas"
	// KVDeleteTree deletes every key under the prefix Key.
	KVDeleteTree KVOp = "delete-tree"
)

// KVRequest is one KV write. Now is the leader's clock (Unix nanoseconds)
// when it accepted the write; the leader sets it, whatever the caller sent,
// and the FSM uses it for lock delays so every server decides alike.
type KVRequest struct {
	Op      KVOp
	Key     string
	Value   []byte
	Flags   uint64
	Index   uint64
	Session string
	Now     int64
}

// KeyRequest names the key or prefix of a KV read; Separator applies to
// KV.Keys only.
type KeyRequest struct {
	Key       string
	Separator string
}

// SessionOp is what a Session.Apply write does.
type SessionOp string

// The Session.Apply operations.
const (
	// SessionCreate creates a session; the leader picks its ID.
	SessionCreate SessionOp = "create"
	// SessionDestroy destroys a session and releases (or deletes) its keys.
	SessionDestroy SessionOp = "destroy"
)

// SessionRequest is a Session.Apply write of a session of type S (the
// server and the HTTP API both use kvstore.Session; package rpc imports
// neither). Now is set by the leader, as in KVRequest.
type SessionRequest[S any] struct {
	Op      SessionOp
	Session S
	Now     int64
}

// SessionResult answers Session.Apply: the index the write was applied at
// and the session's ID.
type SessionResult struct {
	Index uint64
	ID    string
}

// SessionQuery names a session (Session.Get, Session.Renew) or a node
// (Session.NodeSessions).
type SessionQuery struct {
	ID   string
	Node string
}

// TxnRequest is a transaction of operations of type O (kvstore.TxnOp).
// A read-only transaction is answered without Raft, by any server when
// AllowStale is set, else by the leader (after confirming its leadership
// when RequireConsistent is set). Now is set by the leader.
type TxnRequest[O any] struct {
	Ops               []O
	AllowStale        bool
	RequireConsistent bool
	Now               int64
}

// TxnResponse answers Txn.Apply: Results when it was applied (or read),
// Errors when it was rolled back; Index is the Raft index it was applied
// at, or the index it was read at.
type TxnResponse[R, E any] struct {
	QueryMeta
	Results []R
	Errors  []E
}
