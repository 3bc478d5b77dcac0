package kvstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
)

// The arguments and answers of the KV, session and transaction endpoints,
// as the HTTP API sends them to a server inside an rpc envelope, and the
// commands the server puts in the Raft log for them (KVRequest,
// SessionRequest, TxnRequest). Their field names are their wire and log
// format: a log written by an earlier version decodes into them.

// KVRequest is one KV write (KV.Apply). Op is one of the verbs that write:
// VerbSet, VerbCAS, VerbLock, VerbUnlock, VerbDelete, VerbDeleteCAS or
// VerbDeleteTree, meaning what they mean in a transaction; Key is a prefix
// for VerbDeleteTree. Now is the leader's clock (Unix nanoseconds) when it
// accepted the write: the leader sets it, whatever the caller sent, and
// lock delays are judged by it so every server decides alike.
type KVRequest struct {
	Op      Verb
	Key     string
	Value   []byte
	Flags   uint64
	Index   uint64
	Session string
	Now     int64
}

// KVApply applies one KV write at Raft index idx and reports its outcome:
// false for a failed CAS, a refused lock or unlock. It is a transaction of
// one operation (applyOp, as Txn applies each of its operations), whose
// expected refusals, errors in a transaction, are false here.
func KVApply(tx *memdb.Txn, idx uint64, req *KVRequest) (bool, error) {
	switch req.Op {
	case VerbSet, VerbCAS, VerbLock, VerbUnlock, VerbDelete, VerbDeleteCAS, VerbDeleteTree:
	default:
		return false, fmt.Errorf("unknown kv operation %q: %w", req.Op, ErrInvalidKey)
	}
	op := TxnOp{Verb: req.Op, Key: req.Key, Value: req.Value, Flags: req.Flags, Index: req.Index, Session: req.Session}
	_, err := applyOp(tx, idx, time.Unix(0, req.Now), &op)
	if _, ok := errors.AsType[*refusal](err); ok {
		return false, nil
	}
	return err == nil, err
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
	// SessionOpCreate creates a session; the leader picks its ID.
	SessionOpCreate SessionOp = "create"
	// SessionOpDestroy destroys a session and releases (or deletes) its
	// keys.
	SessionOpDestroy SessionOp = "destroy"
)

// SessionRequest is a Session.Apply write. Now is set by the leader, as in
// KVRequest.
type SessionRequest struct {
	Op      SessionOp
	Session Session
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

// TxnRequest is a transaction (Txn.Apply). A read-only one is answered
// without Raft, by any server when AllowStale is set, else by the leader
// (after confirming its leadership when RequireConsistent is set). Now is
// set by the leader.
type TxnRequest struct {
	Ops               []*TxnOp
	AllowStale        bool
	RequireConsistent bool
	Now               int64
}

// TxnResponse is what a transaction did: Results when it was applied (or
// read), Errors when it was rolled back.
type TxnResponse struct {
	Results []*TxnResult
	Errors  []*TxnError
}
