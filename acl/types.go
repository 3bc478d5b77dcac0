package acl

import (
	crand "crypto/rand"
	"fmt"
	"time"
)

// The built-in objects, with Consul's fixed IDs.
const (
	// ManagementPolicyID is the global-management policy: everything, ACLs
	// included. The bootstrap token holds it.
	ManagementPolicyID   = "00000000-0000-0000-0000-000000000001"
	ManagementPolicyName = "global-management"
	// AnonymousAccessorID and AnonymousSecretID are the anonymous token's,
	// used by every request that carries no token.
	AnonymousAccessorID = "00000000-0000-0000-0000-000000000002"
	AnonymousSecretID   = "anonymous"
)

// ManagementRules are the global-management policy's rules, as Consul
// writes them.
const ManagementRules = `acl = "write"
agent_prefix "" { policy = "write" }
event_prefix "" { policy = "write" }
key_prefix "" { policy = "write" }
keyring = "write"
node_prefix "" { policy = "write" }
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" { policy = "write" }
service_prefix "" { policy = "write" intentions = "write" }
session_prefix "" { policy = "write" }
`

// PolicyLink names a policy from a token or role. Writes may give the ID
// or only the Name (resolved to the ID when stored); reads give both.
type PolicyLink struct {
	ID   string
	Name string `json:",omitempty"`
}

// RoleLink names a role from a token, as PolicyLink does a policy.
type RoleLink struct {
	ID   string
	Name string `json:",omitempty"`
}

// ServiceIdentity grants what a service instance needs (see
// ServiceIdentityRules), in Datacenters only when that is not empty.
type ServiceIdentity struct {
	ServiceName string
	Datacenters []string `json:",omitempty"`
}

// NodeIdentity grants what a node's agent needs (see NodeIdentityRules), in
// Datacenter only.
type NodeIdentity struct {
	NodeName   string
	Datacenter string
}

// Token is an ACL token. AccessorID names it in every API and log;
// SecretID is what a request presents, and is never logged.
type Token struct {
	AccessorID        string
	SecretID          string
	Description       string
	Policies          []PolicyLink       `json:",omitempty"`
	Roles             []RoleLink         `json:",omitempty"`
	ServiceIdentities []*ServiceIdentity `json:",omitempty"`
	NodeIdentities    []*NodeIdentity    `json:",omitempty"`
	// Local tokens live only in the datacenter that created them; the
	// others are global and replicated from the primary.
	Local bool
	// ExpirationTime, when set, is when the token stops working.
	// ExpirationTTL is how it was asked for; the server that accepts the
	// write turns it into ExpirationTime.
	ExpirationTime *time.Time    `json:",omitempty"`
	ExpirationTTL  time.Duration `json:",omitempty"`
	CreateTime     time.Time
	CreateIndex    uint64
	ModifyIndex    uint64
}

// Expired reports whether the token has stopped working at now.
func (t *Token) Expired(now time.Time) bool {
	return t.ExpirationTime != nil && !now.Before(*t.ExpirationTime)
}

// Policy is a named set of rules, in Consul's rule language.
type Policy struct {
	ID          string
	Name        string
	Description string
	Rules       string
	// Datacenters, when not empty, limits where the policy applies.
	Datacenters []string `json:",omitempty"`
	CreateIndex uint64
	ModifyIndex uint64
}

// Role is a named set of policies and identities that tokens link to.
type Role struct {
	ID                string
	Name              string
	Description       string
	Policies          []PolicyLink       `json:",omitempty"`
	ServiceIdentities []*ServiceIdentity `json:",omitempty"`
	NodeIdentities    []*NodeIdentity    `json:",omitempty"`
	CreateIndex       uint64
	ModifyIndex       uint64
}

// NewID returns a random (version 4) UUID, the form of every ACL ID and
// secret.
func NewID() (string, error) {
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate acl id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// IsUUID reports whether s is a UUID in the 8-4-4-4-12 hex form.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
