package rpc

// Method names of the prepared query endpoints; their arguments and answers
// are catalog's types.
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
