package catalog

// The arguments and answers of the prepared query endpoints, as the HTTP API
// and DNS send them to a server inside an rpc envelope, and the command the
// server puts in the Raft log for a write (QueryApplyRequest, whose field
// names are its log format).

// QueryOp is what a PreparedQuery.Apply write does.
type QueryOp string

// The PreparedQuery.Apply operations.
const (
	// QueryOpCreate creates a query; the leader picks its ID.
	QueryOpCreate QueryOp = "create"
	// QueryOpUpdate replaces the query with the same ID.
	QueryOpUpdate QueryOp = "update"
	// QueryOpDelete deletes the query with the ID.
	QueryOpDelete QueryOp = "delete"
)

// QueryApplyRequest is a PreparedQuery.Apply write.
type QueryApplyRequest struct {
	Op    QueryOp
	Query PreparedQuery
}

// QueryApplyResult answers PreparedQuery.Apply: the index the write was
// applied at and the query's ID.
type QueryApplyResult struct {
	Index uint64
	ID    string
}

// QueryRequest names a query by ID, or (Execute, Explain) by ID or name.
type QueryRequest struct {
	IDOrName string
}

// QueryExecuteRequest runs a query (PreparedQuery.Execute).
type QueryExecuteRequest struct {
	// IDOrName is the query's ID or name, or a name a template matches.
	IDOrName string
	// Limit caps how many instances are answered; 0 means all.
	Limit int
	// Agent is the node name of the agent that asked: where a query's
	// Near of "_agent" sorts from. (A ?near= of the request travels in
	// the envelope's QueryOptions.Near and wins over the query's.)
	Agent string
}

// QueryExecuteRemoteRequest runs an already resolved (and rendered) query
// in the datacenter the envelope names, without failing over further
// (PreparedQuery.ExecuteRemote).
type QueryExecuteRemoteRequest struct {
	Query PreparedQuery
	Limit int
}

// QueryExecuteResponse is the answer of an execution, encoded as Consul's
// api.PreparedQueryExecuteResponse.
type QueryExecuteResponse struct {
	// Service is the service that was looked up.
	Service string
	// Nodes are the instances that qualified; never null in JSON.
	Nodes []*CheckServiceNode
	// DNS are the query's DNS options.
	DNS QueryDNS
	// Datacenter is the datacenter that answered.
	Datacenter string
	// Failovers is how many other datacenters were asked.
	Failovers int
}

// QueryExplainResponse is the answer of /v1/query/:id/explain: the query
// as it would run, a template rendered for the name asked.
type QueryExplainResponse struct {
	Query PreparedQuery
}
