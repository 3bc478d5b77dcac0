package rpc

// Method names of the prepared query endpoints.
const (
	// MethodQueryApply creates, updates or deletes a query (a write).
	MethodQueryApply = "PreparedQuery.Apply"
	// MethodQueryGet reads one query by ID.
	MethodQueryGet = "PreparedQuery.Get"
	// MethodQueryList reads every query.
	MethodQueryList = "PreparedQuery.List"
	// MethodQueryExecute runs a query, failing over to other datacenters.
	MethodQueryExecute = "PreparedQuery.Execute"
	// MethodQueryExecuteRemote runs a resolved query in the datacenter
	// that received it, with no further failover: what Execute asks the
	// datacenters it fails over to.
	MethodQueryExecuteRemote = "PreparedQuery.ExecuteRemote"
	// MethodQueryExplain resolves a query and answers it as it would run.
	MethodQueryExplain = "PreparedQuery.Explain"
)

// QueryOp is what a PreparedQuery.Apply write does.
type QueryOp string

// The PreparedQuery.Apply operations.
const (
	// QueryCreate creates a query; the leader picks its ID.
	QueryCreate QueryOp = "create"
	// QueryUpdate replaces the query with the same ID.
	QueryUpdate QueryOp = "update"
	// QueryDelete deletes the query with the ID.
	QueryDelete QueryOp = "delete"
)

// QueryRequest is a PreparedQuery.Apply write of a query of type Q
// (catalog.PreparedQuery; package rpc imports no state package).
type QueryRequest[Q any] struct {
	Op    QueryOp
	Query Q
}

// QueryResult answers PreparedQuery.Apply: the index the write was applied
// at and the query's ID.
type QueryResult struct {
	Index uint64
	ID    string
}
