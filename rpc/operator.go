package rpc

// Method names of the operator's Raft endpoints; both take a
// Write[RaftPeerRequest] and answer a WriteResult.
const (
	// MethodRaftRemovePeer removes a server from the Raft configuration.
	MethodRaftRemovePeer = "Operator.RaftRemovePeer"
	// MethodRaftTransferLeader hands leadership to another voter.
	MethodRaftTransferLeader = "Operator.RaftTransferLeader"
)

// MethodRaftCommitIndex asks the leader for its last Raft index once it has
// confirmed its leadership (a struct{} in, a uint64 out): a follower that
// has applied up to it has seen every write committed before the call.
const MethodRaftCommitIndex = "Operator.RaftCommitIndex"

// RaftPeerRequest names a Raft server by ID or by address (remove-peer
// takes exactly one); a transfer with neither picks the most up-to-date
// voter.
type RaftPeerRequest struct {
	ID      string
	Address string
}
