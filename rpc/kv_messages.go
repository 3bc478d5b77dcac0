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
