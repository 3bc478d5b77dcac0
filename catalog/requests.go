package catalog

// The arguments of the catalog's read endpoints, as the HTTP API sends them
// to a server inside an rpc.Query envelope.

// NodesRequest selects nodes (or the services of nodes) by node metadata.
type NodesRequest struct {
	NodeMeta map[string]string
}

// NodeRequest names one node.
type NodeRequest struct {
	Node string
}

// ServiceRequest names a service and filters its instances.
type ServiceRequest struct {
	Service string
	ServiceQuery
}

// ChecksRequest names a service (health/checks) or a state (health/state)
// and filters by node metadata.
type ChecksRequest struct {
	Name     string
	NodeMeta map[string]string
}
