package acl

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Errors of the writes and reads. Each is wrapped with what was wrong;
// match them with errors.Is.
var (
	// ErrInvalid is a write the rules refuse: a malformed ID or secret, a
	// name in use, a link to nothing, rules that do not parse.
	ErrInvalid = errors.New("invalid acl write")
	// ErrNotFound is a token, policy or role that does not exist.
	ErrNotFound = errors.New("acl object not found")
)

// BootstrapDoneError is a bootstrap after the cluster was bootstrapped.
// ResetIndex is what a reset must name (Consul's acl-bootstrap-reset file).
type BootstrapDoneError struct{ ResetIndex uint64 }

func (e *BootstrapDoneError) Error() string {
	return fmt.Sprintf("ACL bootstrap no longer allowed (reset index: %d)", e.ResetIndex)
}

// namePattern is what policy and role names may be, as in Consul.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9\-_]{1,256}$`)

// serviceNamePattern is what a service identity's name may be, as in Consul.
var serviceNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9\-_]*[a-z0-9])?$`)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// Index returns the highest index at which any ACL table changed (at
// least 1), and adds its watch channel to ws. Authorizers compiled at this
// index are current.
func Index(tx *memdb.Txn, ws memdb.WatchSet) uint64 {
	return max(tableIndexOf(tx, ws, indexAll), 1)
}

// IndexWatch is Index with the one channel that closes when it moves, for
// a caller that keeps the index and checks it cheaply.
func IndexWatch(tx *memdb.Txn) (uint64, <-chan struct{}) {
	ch, raw, err := tx.FirstWatch(tableIndex, "id", indexAll)
	if err != nil || raw == nil {
		return 1, ch
	}
	return max(raw.(*indexRow).Value, 1), ch
}

func tableIndexOf(tx *memdb.Txn, ws memdb.WatchSet, key string) uint64 {
	ch, raw, err := tx.FirstWatch(tableIndex, "id", key)
	if err != nil {
		return 0
	}
	ws.Add(ch)
	if raw == nil {
		return 0
	}
	return raw.(*indexRow).Value
}

// bumpIndex records a change of key (a table) at idx, and of the ACL state
// as a whole.
func bumpIndex(tx *memdb.Txn, key string, idx uint64) error {
	for _, k := range []string{key, indexAll} {
		if err := tx.Insert(tableIndex, &indexRow{Key: k, Value: idx}); err != nil {
			return fmt.Errorf("update acl index %q: %w", k, err)
		}
	}
	return nil
}

// EnsureBuiltins creates the global-management policy and the anonymous
// token (with no policies) when they are missing. The leader applies it
// once ACLs are enabled, and Bootstrap calls it.
func EnsureBuiltins(tx *memdb.Txn, idx uint64, now time.Time) error {
	p, err := tx.First(tablePolicies, "id", ManagementPolicyID)
	if err != nil {
		return fmt.Errorf("read management policy: %w", err)
	}
	if p == nil {
		err := insertPolicy(tx, idx, &Policy{
			ID: ManagementPolicyID, Name: ManagementPolicyName,
			Description: "Builtin Policy that grants unlimited access", Rules: ManagementRules,
		}, nil)
		if err != nil {
			return err
		}
	}
	t, err := tx.First(tableTokens, "id", AnonymousAccessorID)
	if err != nil {
		return fmt.Errorf("read anonymous token: %w", err)
	}
	if t == nil {
		return insertToken(tx, idx, &Token{
			AccessorID: AnonymousAccessorID, SecretID: AnonymousSecretID,
			Description: "Anonymous Token", CreateTime: now,
		}, nil)
	}
	return nil
}

// Bootstrap stores tok, which must hold the global-management policy, as
// the cluster's first management token. It is allowed once: afterwards it
// fails with *BootstrapDoneError, unless resetIndex names the index the
// last bootstrap happened at (an operator's deliberate reset).
func Bootstrap(tx *memdb.Txn, idx uint64, now time.Time, tok *Token, resetIndex uint64) error {
	done := tableIndexOf(tx, nil, indexBootstrap)
	if done != 0 && resetIndex != done {
		return &BootstrapDoneError{ResetIndex: done}
	}
	if err := EnsureBuiltins(tx, idx, now); err != nil {
		return err
	}
	if !slices.ContainsFunc(tok.Policies, func(l PolicyLink) bool { return l.ID == ManagementPolicyID }) {
		return invalidf("a bootstrap token must hold the %s policy", ManagementPolicyName)
	}
	if err := TokenSet(tx, idx, tok); err != nil {
		return err
	}
	return bumpIndex(tx, indexBootstrap, idx)
}

// BootstrapIndex returns the index the cluster was bootstrapped at, 0 when
// it was not.
func BootstrapIndex(tx *memdb.Txn) uint64 { return tableIndexOf(tx, nil, indexBootstrap) }

// TokenSet creates or updates a token. AccessorID and SecretID must be
// UUIDs (the anonymous token's secret excepted); an update keeps the
// token's secret, Local flag, CreateTime and CreateIndex, and must not try
// to change them. Links may name policies and roles by ID or by name; they
// are stored by ID and must exist.
func TokenSet(tx *memdb.Txn, idx uint64, tok *Token) error {
	if !IsUUID(tok.AccessorID) {
		return invalidf("token AccessorID %q is not a UUID", tok.AccessorID)
	}
	raw, err := tx.First(tableTokens, "id", tok.AccessorID)
	if err != nil {
		return fmt.Errorf("read token %s: %w", tok.AccessorID, err)
	}
	existing, _ := raw.(*Token)
	if existing == nil && tok.AccessorID != AnonymousAccessorID && !IsUUID(tok.SecretID) {
		return invalidf("token SecretID is not a UUID")
	}
	if existing != nil {
		if tok.SecretID != "" && subtle.ConstantTimeCompare([]byte(tok.SecretID), []byte(existing.SecretID)) != 1 {
			return invalidf("token %s: a token's SecretID cannot change", tok.AccessorID)
		}
		if tok.Local != existing.Local {
			return invalidf("token %s: a token cannot change between local and global", tok.AccessorID)
		}
	} else {
		other, err := tx.First(tableTokens, "secret", tok.SecretID)
		if err != nil {
			return fmt.Errorf("read token by secret: %w", err)
		}
		if other != nil {
			return invalidf("token SecretID is already in use")
		}
	}
	return insertToken(tx, idx, tok, existing)
}

func insertToken(tx *memdb.Txn, idx uint64, tok *Token, existing *Token) error {
	nt := *tok
	var err error
	if nt.Policies, err = resolvePolicyLinks(tx, tok.Policies); err != nil {
		return fmt.Errorf("token %s: %w", tok.AccessorID, err)
	}
	if nt.Roles, err = resolveRoleLinks(tx, tok.Roles); err != nil {
		return fmt.Errorf("token %s: %w", tok.AccessorID, err)
	}
	if nt.ServiceIdentities, nt.NodeIdentities, err = checkIdentities(tok.ServiceIdentities, tok.NodeIdentities); err != nil {
		return fmt.Errorf("token %s: %w", tok.AccessorID, err)
	}
	nt.ExpirationTTL = 0
	nt.CreateIndex, nt.ModifyIndex = idx, idx
	if existing != nil {
		nt.SecretID = existing.SecretID
		nt.CreateIndex = existing.CreateIndex
		nt.CreateTime = existing.CreateTime
		nt.ExpirationTime = existing.ExpirationTime
	}
	if err := tx.Insert(tableTokens, &nt); err != nil {
		return fmt.Errorf("store token %s: %w", tok.AccessorID, err)
	}
	return bumpIndex(tx, tableTokens, idx)
}

// TokenDelete deletes the token with accessorID. The anonymous token
// cannot be deleted.
func TokenDelete(tx *memdb.Txn, idx uint64, accessorID string) error {
	if strings.EqualFold(accessorID, AnonymousAccessorID) {
		return invalidf("the anonymous token cannot be deleted")
	}
	raw, err := tx.First(tableTokens, "id", accessorID)
	if err != nil {
		return fmt.Errorf("read token %s: %w", accessorID, err)
	}
	if raw == nil {
		return fmt.Errorf("token %s: %w", accessorID, ErrNotFound)
	}
	if err := tx.Delete(tableTokens, raw); err != nil {
		return fmt.Errorf("delete token %s: %w", accessorID, err)
	}
	return bumpIndex(tx, tableTokens, idx)
}

// PolicySet creates or updates a policy. ID must be a UUID, Name a name
// no other policy has, Rules rules that parse. The global-management
// policy keeps its name and rules.
func PolicySet(tx *memdb.Txn, idx uint64, p *Policy) error {
	if !IsUUID(p.ID) {
		return invalidf("policy ID %q is not a UUID", p.ID)
	}
	if !namePattern.MatchString(p.Name) {
		return invalidf("policy name %q: want 1 to 256 letters, digits, - and _", p.Name)
	}
	if _, err := ParseRules(p.Rules); err != nil {
		return fmt.Errorf("policy %q: %w: %w", p.Name, err, ErrInvalid)
	}
	raw, err := tx.First(tablePolicies, "id", p.ID)
	if err != nil {
		return fmt.Errorf("read policy %s: %w", p.ID, err)
	}
	existing, _ := raw.(*Policy)
	if strings.EqualFold(p.ID, ManagementPolicyID) && existing != nil {
		if p.Name != existing.Name {
			return invalidf("the %s policy cannot be renamed", ManagementPolicyName)
		}
		if p.Rules != existing.Rules {
			return invalidf("the rules of the %s policy cannot change", ManagementPolicyName)
		}
	}
	return insertPolicy(tx, idx, p, existing)
}

func insertPolicy(tx *memdb.Txn, idx uint64, p *Policy, existing *Policy) error {
	other, err := tx.First(tablePolicies, "name", p.Name)
	if err != nil {
		return fmt.Errorf("read policy %q: %w", p.Name, err)
	}
	if o, ok := other.(*Policy); ok && !strings.EqualFold(o.ID, p.ID) {
		return invalidf("policy name %q is already in use by policy %s", p.Name, o.ID)
	}
	np := *p
	np.Datacenters = slices.Clone(p.Datacenters)
	np.CreateIndex, np.ModifyIndex = idx, idx
	if existing != nil {
		np.CreateIndex = existing.CreateIndex
	}
	if err := tx.Insert(tablePolicies, &np); err != nil {
		return fmt.Errorf("store policy %q: %w", p.Name, err)
	}
	return bumpIndex(tx, tablePolicies, idx)
}

// PolicyDelete deletes the policy with id. Tokens and roles that link to
// it keep the link, which grants nothing and which reads leave out. The
// global-management policy cannot be deleted.
func PolicyDelete(tx *memdb.Txn, idx uint64, id string) error {
	if strings.EqualFold(id, ManagementPolicyID) {
		return invalidf("the %s policy cannot be deleted", ManagementPolicyName)
	}
	raw, err := tx.First(tablePolicies, "id", id)
	if err != nil {
		return fmt.Errorf("read policy %s: %w", id, err)
	}
	if raw == nil {
		return fmt.Errorf("policy %s: %w", id, ErrNotFound)
	}
	if err := tx.Delete(tablePolicies, raw); err != nil {
		return fmt.Errorf("delete policy %s: %w", id, err)
	}
	return bumpIndex(tx, tablePolicies, idx)
}

// RoleSet creates or updates a role: ID a UUID, Name unique, links to
// policies that exist.
func RoleSet(tx *memdb.Txn, idx uint64, r *Role) error {
	if !IsUUID(r.ID) {
		return invalidf("role ID %q is not a UUID", r.ID)
	}
	if !namePattern.MatchString(r.Name) {
		return invalidf("role name %q: want 1 to 256 letters, digits, - and _", r.Name)
	}
	other, err := tx.First(tableRoles, "name", r.Name)
	if err != nil {
		return fmt.Errorf("read role %q: %w", r.Name, err)
	}
	if o, ok := other.(*Role); ok && !strings.EqualFold(o.ID, r.ID) {
		return invalidf("role name %q is already in use by role %s", r.Name, o.ID)
	}
	raw, err := tx.First(tableRoles, "id", r.ID)
	if err != nil {
		return fmt.Errorf("read role %s: %w", r.ID, err)
	}
	nr := *r
	if nr.Policies, err = resolvePolicyLinks(tx, r.Policies); err != nil {
		return fmt.Errorf("role %q: %w", r.Name, err)
	}
	if nr.ServiceIdentities, nr.NodeIdentities, err = checkIdentities(r.ServiceIdentities, r.NodeIdentities); err != nil {
		return fmt.Errorf("role %q: %w", r.Name, err)
	}
	nr.CreateIndex, nr.ModifyIndex = idx, idx
	if existing, ok := raw.(*Role); ok {
		nr.CreateIndex = existing.CreateIndex
	}
	if err := tx.Insert(tableRoles, &nr); err != nil {
		return fmt.Errorf("store role %q: %w", r.Name, err)
	}
	return bumpIndex(tx, tableRoles, idx)
}

// RoleDelete deletes the role with id; tokens linking to it lose what it
// granted.
func RoleDelete(tx *memdb.Txn, idx uint64, id string) error {
	raw, err := tx.First(tableRoles, "id", id)
	if err != nil {
		return fmt.Errorf("read role %s: %w", id, err)
	}
	if raw == nil {
		return fmt.Errorf("role %s: %w", id, ErrNotFound)
	}
	if err := tx.Delete(tableRoles, raw); err != nil {
		return fmt.Errorf("delete role %s: %w", id, err)
	}
	return bumpIndex(tx, tableRoles, idx)
}

// resolvePolicyLinks returns links by ID, each to a policy that exists,
// without duplicates.
func resolvePolicyLinks(tx *memdb.Txn, links []PolicyLink) ([]PolicyLink, error) {
	var out []PolicyLink
	for _, l := range links {
		p, err := findPolicy(tx, l.ID, l.Name)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(out, func(o PolicyLink) bool { return o.ID == p.ID }) {
			out = append(out, PolicyLink{ID: p.ID, Name: p.Name})
		}
	}
	return out, nil
}

func findPolicy(tx *memdb.Txn, id, name string) (*Policy, error) {
	index, arg := "id", id
	if id == "" {
		index, arg = "name", name
	}
	if arg == "" {
		return nil, invalidf("a policy link needs an ID or a Name")
	}
	raw, err := tx.First(tablePolicies, index, arg)
	if err != nil {
		return nil, fmt.Errorf("read policy %q: %w", arg, err)
	}
	if raw == nil {
		return nil, invalidf("policy %q does not exist", arg)
	}
	return raw.(*Policy), nil
}

func resolveRoleLinks(tx *memdb.Txn, links []RoleLink) ([]RoleLink, error) {
	var out []RoleLink
	for _, l := range links {
		index, arg := "id", l.ID
		if l.ID == "" {
			index, arg = "name", l.Name
		}
		if arg == "" {
			return nil, invalidf("a role link needs an ID or a Name")
		}
		raw, err := tx.First(tableRoles, index, arg)
		if err != nil {
			return nil, fmt.Errorf("read role %q: %w", arg, err)
		}
		if raw == nil {
			return nil, invalidf("role %q does not exist", arg)
		}
		r := raw.(*Role)
		if !slices.ContainsFunc(out, func(o RoleLink) bool { return o.ID == r.ID }) {
			out = append(out, RoleLink{ID: r.ID, Name: r.Name})
		}
	}
	return out, nil
}

// checkIdentities validates and copies service and node identities.
func checkIdentities(svcs []*ServiceIdentity, nodes []*NodeIdentity) ([]*ServiceIdentity, []*NodeIdentity, error) {
	var outS []*ServiceIdentity
	for _, s := range svcs {
		if s == nil || !serviceNamePattern.MatchString(s.ServiceName) || len(s.ServiceName) > 256 {
			name := ""
			if s != nil {
				name = s.ServiceName
			}
			return nil, nil, invalidf("service identity name %q: want lower-case letters, digits, - and _", name)
		}
		c := *s
		c.Datacenters = slices.Clone(s.Datacenters)
		outS = append(outS, &c)
	}
	var outN []*NodeIdentity
	for _, n := range nodes {
		if n == nil || n.NodeName == "" || len(n.NodeName) > 256 {
			return nil, nil, invalidf("a node identity needs a NodeName")
		}
		if n.Datacenter == "" {
			return nil, nil, invalidf("node identity %q needs a Datacenter", n.NodeName)
		}
		c := *n
		outN = append(outN, &c)
	}
	return outS, outN, nil
}

// TokenByAccessor returns the token with accessorID (nil when none) and
// the tokens table's index, watching it in ws.
func TokenByAccessor(tx *memdb.Txn, ws memdb.WatchSet, accessorID string) (*Token, uint64, error) {
	return tokenBy(tx, ws, "id", accessorID)
}

// TokenBySecret returns the token whose SecretID is secret (nil when none),
// compared in constant time once found by its hash.
func TokenBySecret(tx *memdb.Txn, ws memdb.WatchSet, secret string) (*Token, uint64, error) {
	t, idx, err := tokenBy(tx, ws, "secret", secret)
	if t != nil && subtle.ConstantTimeCompare([]byte(t.SecretID), []byte(secret)) != 1 {
		t = nil
	}
	return t, idx, err
}

func tokenBy(tx *memdb.Txn, ws memdb.WatchSet, index, arg string) (*Token, uint64, error) {
	idx := max(tableIndexOf(tx, ws, tableTokens), 1)
	ch, raw, err := tx.FirstWatch(tableTokens, index, arg)
	if err != nil {
		return nil, idx, fmt.Errorf("read token: %w", err)
	}
	ws.Add(ch)
	if raw == nil {
		return nil, idx, nil
	}
	return fixToken(tx, raw.(*Token)), idx, nil
}

// fixToken returns a copy of t whose links name what exists now: links to
// deleted policies and roles are left out, renamed ones carry the new name.
func fixToken(tx *memdb.Txn, t *Token) *Token {
	c := *t
	c.Policies = fixPolicyLinks(tx, t.Policies)
	c.Roles = nil
	for _, l := range t.Roles {
		if raw, err := tx.First(tableRoles, "id", l.ID); err == nil && raw != nil {
			c.Roles = append(c.Roles, RoleLink{ID: l.ID, Name: raw.(*Role).Name})
		}
	}
	return &c
}

func fixPolicyLinks(tx *memdb.Txn, links []PolicyLink) []PolicyLink {
	var out []PolicyLink
	for _, l := range links {
		if raw, err := tx.First(tablePolicies, "id", l.ID); err == nil && raw != nil {
			out = append(out, PolicyLink{ID: l.ID, Name: raw.(*Policy).Name})
		}
	}
	return out
}

// Tokens lists the tokens, by AccessorID; with policyID or roleID set, only
// those that link to that policy or role.
func Tokens(tx *memdb.Txn, ws memdb.WatchSet, policyID, roleID string) ([]*Token, uint64, error) {
	idx := max(tableIndexOf(tx, ws, tableTokens), 1)
	index, args := "id", []any{}
	switch {
	case policyID != "":
		index, args = "policies", []any{policyID}
	case roleID != "":
		index, args = "roles", []any{roleID}
	}
	it, err := tx.Get(tableTokens, index, args...)
	if err != nil {
		return nil, idx, fmt.Errorf("list tokens: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*Token
	for raw := it.Next(); raw != nil; raw = it.Next() {
		t := raw.(*Token)
		if roleID != "" && policyID != "" && !slices.ContainsFunc(t.Roles, func(l RoleLink) bool { return strings.EqualFold(l.ID, roleID) }) {
			continue
		}
		out = append(out, fixToken(tx, t))
	}
	slices.SortFunc(out, func(a, b *Token) int { return strings.Compare(a.AccessorID, b.AccessorID) })
	return out, idx, nil
}

// PolicyByID returns the policy with id (nil when none).
func PolicyByID(tx *memdb.Txn, ws memdb.WatchSet, id string) (*Policy, uint64, error) {
	return policyBy(tx, ws, "id", id)
}

// PolicyByName returns the policy named name (nil when none).
func PolicyByName(tx *memdb.Txn, ws memdb.WatchSet, name string) (*Policy, uint64, error) {
	return policyBy(tx, ws, "name", name)
}

func policyBy(tx *memdb.Txn, ws memdb.WatchSet, index, arg string) (*Policy, uint64, error) {
	idx := max(tableIndexOf(tx, ws, tablePolicies), 1)
	ch, raw, err := tx.FirstWatch(tablePolicies, index, arg)
	if err != nil {
		return nil, idx, fmt.Errorf("read policy: %w", err)
	}
	ws.Add(ch)
	if raw == nil {
		return nil, idx, nil
	}
	return raw.(*Policy), idx, nil
}

// Policies lists the policies by ID.
func Policies(tx *memdb.Txn, ws memdb.WatchSet) ([]*Policy, uint64, error) {
	idx := max(tableIndexOf(tx, ws, tablePolicies), 1)
	it, err := tx.Get(tablePolicies, "id")
	if err != nil {
		return nil, idx, fmt.Errorf("list policies: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*Policy
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Policy))
	}
	return out, idx, nil
}

// RoleByID returns the role with id (nil when none), links fixed as
// TokenByAccessor's are.
func RoleByID(tx *memdb.Txn, ws memdb.WatchSet, id string) (*Role, uint64, error) {
	return roleBy(tx, ws, "id", id)
}

// RoleByName returns the role named name (nil when none).
func RoleByName(tx *memdb.Txn, ws memdb.WatchSet, name string) (*Role, uint64, error) {
	return roleBy(tx, ws, "name", name)
}

func roleBy(tx *memdb.Txn, ws memdb.WatchSet, index, arg string) (*Role, uint64, error) {
	idx := max(tableIndexOf(tx, ws, tableRoles), 1)
	ch, raw, err := tx.FirstWatch(tableRoles, index, arg)
	if err != nil {
		return nil, idx, fmt.Errorf("read role: %w", err)
	}
	ws.Add(ch)
	if raw == nil {
		return nil, idx, nil
	}
	r := *raw.(*Role)
	r.Policies = fixPolicyLinks(tx, r.Policies)
	return &r, idx, nil
}

// Roles lists the roles by ID; with policyID set, only those linking to it.
func Roles(tx *memdb.Txn, ws memdb.WatchSet, policyID string) ([]*Role, uint64, error) {
	idx := max(tableIndexOf(tx, ws, tableRoles), 1)
	index, args := "id", []any{}
	if policyID != "" {
		index, args = "policies", []any{policyID}
	}
	it, err := tx.Get(tableRoles, index, args...)
	if err != nil {
		return nil, idx, fmt.Errorf("list roles: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*Role
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := *raw.(*Role)
		r.Policies = fixPolicyLinks(tx, r.Policies)
		out = append(out, &r)
	}
	slices.SortFunc(out, func(a, b *Role) int { return strings.Compare(a.ID, b.ID) })
	return out, idx, nil
}
