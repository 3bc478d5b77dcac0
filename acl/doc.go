// Package acl holds Meridian's access control, in Consul's dialect: the
// tokens, policies and roles (go-memdb tables the Raft FSM changes, a
// section of every snapshot), Consul's rule language (HCL or JSON, parsed
// with HCL v1 as Consul parses it) and the Authorizer a token's rules
// compile into, with the Resolver that caches authorizers by secret.
//
// In DESIGN.md it sits at the bottom of the import graph beside catalog
// and kvstore: it imports only the standard library, go-memdb (and the
// immutable radix tree under it) and hashicorp/hcl, and knows nothing of
// the network, Raft or HTTP. The server adds Tables() to its one database;
// the FSM opens a write transaction, calls TokenSet, PolicySet, RoleSet,
// Bootstrap and the deletes with the Raft index the command was applied
// at, and commits (or aborts on an error). Anything that needs a clock
// (ExpirationTTL into ExpirationTime, CreateTime) is decided by the server
// before the command goes to Raft, never in the FSM.
//
// Checking a request:
//
//	auth, err := resolver.Resolve(secret, acl.Index(tx, nil), time.Now, acl.LoadFrom(txn, dc, false))
//	if err != nil { ... deny ... }
//	if err := auth.Check(acl.ResKey, "app/x", acl.AccessWrite); err != nil { ... 403 ... }
//
// Rules: for a resource named by a segment (key, service, node, session,
// event, query, agent) an exact rule on the segment wins, else the
// longest prefix rule it starts with, else the default policy; a rule that
// is found but grants too little denies. When several policies set a rule
// on the same segment deny wins, then the widest grant (write, list, read).
// operator, keyring, acl, mesh and peering are single switches. Service
// and node identities expand as Consul's (ServiceIdentityRules,
// NodeIdentityRules). The default policy never grants acl: managing ACLs
// needs a rule (the global-management policy has it).
//
// Secrets: tokens are indexed by the SHA-256 of their SecretID and compared
// in constant time once found; errors and denials name tokens by
// AccessorID only.
//
// Concurrency: an Authorizer is immutable; a Resolver has its own lock; the
// table functions rely on memdb's transactions. Values returned by reads
// are shared with the database or freshly copied, and must be treated as
// read-only; values passed to writes are copied.
package acl
