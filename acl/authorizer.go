package acl

import (
	"errors"
	"fmt"
	"strings"

	iradix "github.com/hashicorp/go-immutable-radix"
)

// ErrPermissionDenied is what every refused check wraps (match it with
// errors.Is); the error itself is a *PermissionDeniedError naming the
// permission that was missing.
var ErrPermissionDenied = errors.New("permission denied")

// PermissionDeniedError is a refused check: the token (by AccessorID, never
// its secret) lacked Access to Resource on Segment.
type PermissionDeniedError struct {
	AccessorID string
	Resource   Resource
	Segment    string
	Access     Access
}

// Error reads as Consul's does, capital P included: clients (Consul's own
// acl.IsErrPermissionDenied among them) look for "Permission denied".
func (e *PermissionDeniedError) Error() string {
	perm := e.Resource.String() + ":" + e.Access.String()
	if !e.Resource.segmented() {
		return fmt.Sprintf("Permission denied: token with AccessorID '%s' lacks permission '%s'", e.AccessorID, perm)
	}
	return fmt.Sprintf("Permission denied: token with AccessorID '%s' lacks permission '%s' on %q", e.AccessorID, perm, e.Segment)
}

// Is makes errors.Is(err, ErrPermissionDenied) true.
func (e *PermissionDeniedError) Is(target error) bool { return target == ErrPermissionDenied }

// segmentRules are the compiled rules of one segmented resource: exact
// rules in a map, prefix rules in a radix tree whose longest match is the
// rule that applies.
type segmentRules struct {
	exact  map[string]Access
	prefix *iradix.Tree
}

// Authorizer answers whether a token may do something. It is the compiled
// form of every rule a token holds (its policies, its roles' policies, its
// service and node identities), built once by NewAuthorizer and read-only
// afterwards: safe for concurrent use, and cheap (a map lookup and a radix
// walk per check).
//
// For a segmented resource an exact rule on the segment wins; otherwise the
// longest prefix rule that the segment starts with; otherwise the default
// policy. A rule found but not granting enough denies; it does not fall
// through to the default. Between policies that set a rule on the same
// segment, deny wins, then the widest grant.
type Authorizer struct {
	accessorID   string
	segments     [numSegmented]*segmentRules
	switches     [numResources]Access
	defaultAllow bool
}

// NewAuthorizer compiles rules for the token with accessorID (named in
// denials). defaultAllow is the default policy: what a check no rule
// speaks to answers, except that acl (managing ACLs) is denied unless a rule
// grants it, as in Consul.
func NewAuthorizer(accessorID string, defaultAllow bool, rules ...Rules) *Authorizer {
	a := &Authorizer{accessorID: accessorID, defaultAllow: defaultAllow}
	type merged struct{ exact, prefix map[string]Access }
	var m [numSegmented]merged
	set := func(into map[string]Access, seg string, acc Access) {
		if old, ok := into[seg]; !ok || acc.precedes(old) {
			into[seg] = acc
		}
	}
	for _, rs := range rules {
		for _, r := range rs {
			if r.Access == AccessDefault || r.Resource >= numResources {
				continue
			}
			if !r.Resource.segmented() {
				if old := a.switches[r.Resource]; old == AccessDefault || r.Access.precedes(old) {
					a.switches[r.Resource] = r.Access
				}
				continue
			}
			mm := &m[r.Resource]
			if mm.exact == nil {
				mm.exact, mm.prefix = map[string]Access{}, map[string]Access{}
			}
			if r.Prefix {
				set(mm.prefix, r.Segment, r.Access)
			} else {
				set(mm.exact, r.Segment, r.Access)
			}
		}
	}
	for i, mm := range m {
		if mm.exact == nil {
			continue
		}
		txn := iradix.New().Txn()
		for seg, acc := range mm.prefix {
			txn.Insert([]byte(seg), acc)
		}
		sr := &segmentRules{prefix: txn.Commit()}
		if len(mm.exact) > 0 {
			sr.exact = mm.exact
		}
		a.segments[i] = sr
	}
	return a
}

// AccessorID is the AccessorID of the token the authorizer is for.
func (a *Authorizer) AccessorID() string { return a.accessorID }

// rule returns the rule that applies to segment of res, AccessDefault when
// none does.
func (a *Authorizer) rule(res Resource, segment string) Access {
	if !res.segmented() {
		if res >= numResources {
			return AccessDeny
		}
		return a.switches[res]
	}
	sr := a.segments[res]
	if sr == nil {
		return AccessDefault
	}
	if acc, ok := sr.exact[segment]; ok {
		return acc
	}
	if _, v, ok := sr.prefix.Root().LongestPrefix([]byte(segment)); ok {
		return v.(Access)
	}
	return AccessDefault
}

// Allowed reports whether the token may act on segment of res with want
// (AccessRead, AccessList or AccessWrite; anything else is refused).
// Switch resources ignore segment.
func (a *Authorizer) Allowed(res Resource, segment string, want Access) bool {
	if a == nil || want < AccessRead {
		return false
	}
	acc := a.rule(res, segment)
	if acc == AccessDefault {
		return a.defaultAllow && res != ResACL
	}
	return acc.grants(want)
}

// Check is Allowed as an error: nil, or a *PermissionDeniedError naming the
// permission that was missing.
func (a *Authorizer) Check(res Resource, segment string, want Access) error {
	if a.Allowed(res, segment, want) {
		return nil
	}
	id := ""
	if a != nil {
		id = a.accessorID
	}
	return &PermissionDeniedError{AccessorID: id, Resource: res, Segment: segment, Access: want}
}

// AllowedWritePrefix reports whether the token may write every segment of
// res that starts with prefix (a recursive KV delete): the rule that
// applies to prefix grants write and no rule under prefix, exact or
// prefix, grants less.
func (a *Authorizer) AllowedWritePrefix(res Resource, prefix string) bool {
	if a == nil || !res.segmented() {
		return false
	}
	if !a.Allowed(res, prefix, AccessWrite) {
		return false
	}
	sr := a.segments[res]
	if sr == nil {
		return true
	}
	for seg, acc := range sr.exact {
		if strings.HasPrefix(seg, prefix) && acc != AccessWrite {
			return false
		}
	}
	ok := true
	sr.prefix.Root().WalkPrefix([]byte(prefix), func(_ []byte, v any) bool {
		if v.(Access) != AccessWrite {
			ok = false
		}
		return !ok
	})
	return ok
}

// ServiceIdentityRules are the rules a service identity stands for, as
// Consul expands it: write on the service and its sidecar proxy, read on
// every service and node (for discovery).
func ServiceIdentityRules(service string) Rules {
	return Rules{
		{Resource: ResService, Segment: service, Access: AccessWrite},
		{Resource: ResService, Segment: service + "-sidecar-proxy", Access: AccessWrite},
		{Resource: ResService, Prefix: true, Access: AccessRead},
		{Resource: ResNode, Prefix: true, Access: AccessRead},
	}
}

// NodeIdentityRules are the rules a node identity stands for, as Consul
// expands it: write on the node, read on every service.
func NodeIdentityRules(node string) Rules {
	return Rules{
		{Resource: ResNode, Segment: node, Access: AccessWrite},
		{Resource: ResService, Prefix: true, Access: AccessRead},
	}
}
