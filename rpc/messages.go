package rpc

import "time"

// Method names of the RPC endpoints servers answer. Clients, the HTTP API and
// servers forwarding to their leader all name endpoints with these constants.
const (
	MethodStatusLeader   = "Status.Leader"
	MethodStatusPeers    = "Status.Peers"
	MethodRaftConfig     = "Operator.RaftConfiguration"
	MethodCatalogReg     = "Catalog.Register"
	MethodCatalogDereg   = "Catalog.Deregister"
	MethodCatalogNodes   = "Catalog.ListNodes"
	MethodCatalogNode    = "Catalog.NodeServices"
	MethodCatalogSvcs    = "Catalog.ListServices"
	MethodCatalogSvc     = "Catalog.ServiceNodes"
	MethodHealthService  = "Health.ServiceNodes"
	MethodHealthNode     = "Health.NodeChecks"
	MethodHealthChecks   = "Health.ServiceChecks"
	MethodHealthState    = "Health.ChecksInState"
	MethodCatalogDCs     = "Catalog.ListDatacenters"
	MethodInternalLeader = "Internal.LeaderAddr"
	MethodCoordinateDCs  = "Coordinate.ListDatacenters"
	MethodCoordinateLAN  = "Coordinate.ListNodes"
	MethodUIServices     = "Internal.ServiceSummaries"
)

// MethodCoordinateUpdate takes one node's LAN coordinate
// (a Write[catalog.CoordinateEntry]); the leader stores it with the
// next batch.
const MethodCoordinateUpdate = "Coordinate.Update"

// QueryOptions are the read parameters every query carries: where to read,
// how fresh the answer must be, and how long to block for a change.
type QueryOptions struct {
	// Datacenter names the DC to read from; "" means the local one.
	Datacenter string
	// AllowStale lets any server answer from its own view (?stale).
	AllowStale bool
	// RequireConsistent makes the leader confirm its leadership with a
	// quorum before answering (?consistent).
	RequireConsistent bool
	// MinIndex turns the query into a blocking one: the answer waits until
	// its index is greater than MinIndex or MaxWait passes.
	MinIndex uint64
	// MaxWait bounds a blocking query; 0 means the server's default.
	MaxWait time.Duration
	// Near names a node (?near=): the answer is sorted by estimated
	// round-trip time from it, nearest first, where the endpoint supports
	// it. "" leaves the usual order.
	Near string
	// Token is the secret of the ACL token the read is made with; ""
	// means the anonymous token. Never logged.
	Token string
	// ACLSecondary is set by a server of a secondary datacenter that sends
	// the request to its ACL primary (replication, token resolution, ACL
	// writes): the secondary's name. A server that is not the primary
	// itself refuses it with ErrACLNotPrimary rather than pass it on, so
	// that datacenters naming each other primary_datacenter fail clearly
	// instead of forwarding in a loop.
	ACLSecondary string
}

// ACLToken is the token the read is made with.
func (o QueryOptions) ACLToken() string { return o.Token }

// ACLSecondaryOf is the secondary datacenter that sent the read to its
// ACL primary ("" for any other read).
func (o QueryOptions) ACLSecondaryOf() string { return o.ACLSecondary }

// DefaultToken sets the token the read is made with when it has none: an
// agent sends its default token for requests that carry none.
func (o *QueryOptions) DefaultToken(token string) {
	if o.Token == "" {
		o.Token = token
	}
}

// IsRead marks every query as a read: safe to send again when the connection
// failed after sending it.
func (QueryOptions) IsRead() bool { return true }

// Blocking reports whether the query blocks (MinIndex set) and the wait it
// asked for (0: the answering server's default).
func (o QueryOptions) Blocking() (wait time.Duration, blocking bool) {
	return o.MaxWait, o.MinIndex > 0
}

// QueryMeta describes where an answer came from: the index it was read at,
// whether the answering server knew a leader, and how long ago it last
// heard from the leader.
type QueryMeta struct {
	Index       uint64
	KnownLeader bool
	LastContact time.Duration
	// ResultsFilteredByACLs says the answer was cut down to what the
	// token may read (the X-Consul-Results-Filtered-By-ACLs header).
	ResultsFilteredByACLs bool `json:",omitempty"`
	// QueryBackend names what answered a read when it was not a
	// blocking query of a server: "streaming" for a client agent's
	// streaming view (the X-Consul-Query-Backend header). Never sent by
	// a server.
	QueryBackend string `json:",omitempty"`
}

// WriteOptions are the parameters every write carries.
type WriteOptions struct {
	// Datacenter names the DC to write to; "" means the local one.
	Datacenter string
	// Token is the secret of the ACL token the write is made with; ""
	// means the anonymous token. Never logged.
	Token string
	// ACLSecondary is set by a server of a secondary datacenter that sends
	// the request to its ACL primary (replication, token resolution, ACL
	// writes): the secondary's name. A server that is not the primary
	// itself refuses it with ErrACLNotPrimary rather than pass it on, so
	// that datacenters naming each other primary_datacenter fail clearly
	// instead of forwarding in a loop.
	ACLSecondary string
}

// ACLToken is the token the write is made with.
func (o WriteOptions) ACLToken() string { return o.Token }

// ACLSecondaryOf is the secondary datacenter that sent the write to its
// ACL primary ("" for any other write).
func (o WriteOptions) ACLSecondaryOf() string { return o.ACLSecondary }

// DefaultToken sets the token the write is made with when it has none.
func (o *WriteOptions) DefaultToken(token string) {
	if o.Token == "" {
		o.Token = token
	}
}

// Query is the envelope of a read: the common options and the endpoint's
// own arguments.
type Query[A any] struct {
	QueryOptions
	Args A
}

// Answer is the envelope of a read's reply: where it came from and the value.
type Answer[V any] struct {
	QueryMeta
	Value V
}

// Write is the envelope of a write: the common options and the endpoint's
// own arguments.
type Write[A any] struct {
	WriteOptions
	Args A
}

// WriteResult is the reply to a write: the Raft index it was applied at and
// the FSM's answer for writes that have one (a CAS, a lock acquisition).
type WriteResult struct {
	Index uint64
	OK    bool
}

// RaftServer is one member of the Raft configuration, as
// /v1/operator/raft/configuration reports it.
type RaftServer struct {
	ID              string
	Node            string
	Address         string
	Leader          bool
	Voter           bool
	ProtocolVersion string
}

// RaftConfiguration is the Raft configuration of a datacenter.
type RaftConfiguration struct {
	Servers []RaftServer
	Index   uint64
}

// Errors every endpoint may answer, carried with their codes so that callers
// in other processes (and the HTTP API, which maps them to status codes)
// match them with errors.Is.
var (
	// ErrNoLeader means the datacenter has no Raft leader right now.
	ErrNoLeader = &Error{Code: "no_leader", Message: "No cluster leader"}
	// ErrNoPathToDC means the request named a datacenter that is not
	// known.
	ErrNoPathToDC = &Error{Code: "no_path_to_dc", Message: "No path to datacenter"}
	// ErrDCUnreachable means the datacenter is known (its servers are in
	// the WAN pool) but none of them can be reached now.
	ErrDCUnreachable = &Error{Code: "dc_unreachable", Message: "Datacenter unreachable"}
	// ErrNotFound means the named object does not exist.
	ErrNotFound = &Error{Code: "not_found", Message: "not found"}
	// ErrBadRequest means the request itself is wrong; the message says how.
	ErrBadRequest = &Error{Code: "bad_request", Message: "bad request"}
)
