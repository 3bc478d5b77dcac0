package rpc

import "time"

// Method names of the ACL endpoints. Every one but ResolveToken needs a
// token with acl:read (reads) or acl:write (writes) in the envelope's
// Token, except Bootstrap, which needs none and works once.
const (
	// MethodACLBootstrap creates the first management token (a write).
	MethodACLBootstrap = "ACL.Bootstrap"
	// MethodACLTokenSet creates or updates a token.
	MethodACLTokenSet = "ACL.TokenSet"
	// MethodACLTokenRead reads a token by AccessorID, or by its secret
	// (the envelope's own token with Self).
	MethodACLTokenRead = "ACL.TokenRead"
	// MethodACLTokenDelete deletes a token.
	MethodACLTokenDelete = "ACL.TokenDelete"
	// MethodACLTokenClone copies a token under a new AccessorID and secret.
	MethodACLTokenClone = "ACL.TokenClone"
	// MethodACLTokenList lists tokens, by policy or role when named.
	MethodACLTokenList = "ACL.TokenList"
	// MethodACLPolicySet, ...Read, ...Delete and ...List are the policy
	// endpoints; Read takes an ID or a Name.
	MethodACLPolicySet    = "ACL.PolicySet"
	MethodACLPolicyRead   = "ACL.PolicyRead"
	MethodACLPolicyDelete = "ACL.PolicyDelete"
	MethodACLPolicyList   = "ACL.PolicyList"
	// MethodACLRoleSet, ...Read, ...Delete and ...List are the role
	// endpoints; Read takes an ID or a Name.
	MethodACLRoleSet    = "ACL.RoleSet"
	MethodACLRoleRead   = "ACL.RoleRead"
	MethodACLRoleDelete = "ACL.RoleDelete"
	MethodACLRoleList   = "ACL.RoleList"
	// MethodACLResolve answers what the token with the envelope's Token
	// as its secret may do: its AccessorID, rules and expiry, for an agent
	// that is not a server to check requests with.
	MethodACLResolve = "ACL.ResolveToken"
)

// ACLSetRequest creates (Create) or updates an ACL object of type T
// (acl.Token, acl.Policy or acl.Role; package rpc imports no state
// package). A create with empty IDs has the leader pick them.
type ACLSetRequest[T any] struct {
	Object T
	Create bool
}

// ACLIDRequest names an ACL object by ID or, for policies and roles, by
// Name; Self reads the token whose secret the envelope carries.
type ACLIDRequest struct {
	ID   string
	Name string
	Self bool
	// Description is a clone's new description ("" keeps the original's).
	Description string
}

// ACLListRequest filters a token or role list by the policy (or, for
// tokens, the role) they link to; empty lists all.
type ACLListRequest struct {
	Policy string
	Role   string
}

// ACLBootstrapRequest asks for the first management token. ResetIndex,
// when not 0, must be the index of the last bootstrap: an operator reset.
type ACLBootstrapRequest struct {
	ResetIndex uint64
	// Secret, when set, is the SecretID the token gets (a UUID).
	Secret string
}

// Errors of the ACL checks, coded so that they keep their meaning across
// RPC hops and the HTTP API maps them to 403.
var (
	// ErrPermissionDenied is a request its token may not make; the message
	// names the missing permission.
	ErrPermissionDenied = &Error{Code: "permission_denied", Message: "Permission denied"}
	// ErrACLNotFound is a token secret no token has.
	ErrACLNotFound = &Error{Code: "acl_not_found", Message: "ACL not found"}
	// ErrACLDisabled is an ACL endpoint called where ACLs are off.
	ErrACLDisabled = &Error{Code: "acl_disabled", Message: "ACL support disabled"}
	// ErrACLNotPrimary is a request a secondary sent to its ACL primary
	// (rpc.QueryOptions.ACLSecondary) reaching a datacenter that is not
	// the primary itself; the message names both datacenters.
	ErrACLNotPrimary = &Error{Code: "acl_not_primary", Message: "not the ACL primary datacenter"}
)

// MethodACLReplicationStatus answers how a secondary datacenter's leader
// replicates ACLs from the primary (rpc.Query[struct{}]; a read that
// needs no token, as Consul's /v1/acl/replication).
const MethodACLReplicationStatus = "ACL.ReplicationStatus"

// ACLReplicationStatus is Consul's /v1/acl/replication answer. The
// indexes are the primary's, as last applied here.
type ACLReplicationStatus struct {
	Enabled              bool
	Running              bool
	SourceDatacenter     string
	ReplicationType      string
	ReplicatedIndex      uint64
	ReplicatedRoleIndex  uint64
	ReplicatedTokenIndex uint64
	LastSuccess          time.Time
	LastError            time.Time
	LastErrorMessage     string
}
