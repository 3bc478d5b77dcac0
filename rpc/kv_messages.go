package rpc

// Method names of the KV, session and transaction endpoints; their
// arguments and answers are kvstore's types.
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

// Method names of built-in KV replication between datacenters.
const (
	// MethodKVChanges answers what changed under a prefix after an index
	// (Query[kvstore.ChangesRequest] in, Answer[kvstore.Changes] out),
	// blocking as MethodKVList does; a replicating leader reads the source
	// datacenter with it.
	MethodKVChanges = "KV.Changes"
	// MethodKVReplicationStatus is the leader's report of its KV
	// replication rules (Query[struct{}] in,
	// Answer[[]KVReplicationStatus] out).
	MethodKVReplicationStatus = "Operator.KVReplicationStatus"
)
