package rpc

import "time"

// KVReplicationStatus is how one KV replication rule fares on the leader
// of the datacenter that replicates it (/v1/operator/replication).
type KVReplicationStatus struct {
	// Prefix and SourceDatacenter are the rule's; Writes is what a write
	// under the prefix gets here: "refuse" or "forward".
	Prefix           string
	SourceDatacenter string
	Writes           string
	// Running is true while this leader replicates the rule.
	Running bool
	// ReplicatedIndex is the source's index the local copy is complete up
	// to (stored through Raft, so that a new leader resumes from it).
	ReplicatedIndex uint64
	// LastSuccess and LastError are when the last round of replication
	// succeeded and failed (zero: never); LastErrorMessage says why.
	LastSuccess      time.Time
	LastError        time.Time
	LastErrorMessage string
	// Lag is how far behind the source the copy was at its last round:
	// from the source's answer arriving to its changes applied, or, while
	// rounds fail, the time since the last success.
	Lag time.Duration
	// KeysApplied and Applies count the keys written or deleted and the
	// Raft writes made since this server became leader.
	KeysApplied uint64
	Applies     uint64
}
