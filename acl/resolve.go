package acl

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Errors of token resolution.
var (
	// ErrTokenNotFound is a secret no token has. Consul answers it as
	// "ACL not found"; it never falls back to the anonymous token.
	ErrTokenNotFound = errors.New("ACL not found")
	// ErrTokenExpired is a token past its ExpirationTime.
	ErrTokenExpired = errors.New("ACL token expired")
)

// Identity is what a token may do, in a form that travels: an agent that
// is not a server asks a server for it and compiles it with NewAuthorizer.
type Identity struct {
	AccessorID     string
	Rules          []Rules
	ExpirationTime *time.Time
}

// Compile builds the authorizer for tok as the state in tx has it, for
// datacenter dc (see TokenRules). defaultAllow is the default policy.
func Compile(tx *memdb.Txn, tok *Token, dc string, defaultAllow bool) (*Authorizer, error) {
	rules, err := TokenRules(tx, tok, dc)
	if err != nil {
		return nil, err
	}
	return NewAuthorizer(tok.AccessorID, defaultAllow, rules...), nil
}

// TokenRules gathers every rule tok holds in datacenter dc: the rules of
// its policies and of its roles' policies (those limited to other
// datacenters, and links to deleted ones, grant nothing), and of its and
// its roles' service and node identities.
func TokenRules(tx *memdb.Txn, tok *Token, dc string) ([]Rules, error) {
	var all []Rules
	seen := map[string]bool{}
	addPolicies := func(links []PolicyLink) error {
		for _, l := range links {
			id := strings.ToLower(l.ID)
			if seen[id] {
				continue
			}
			seen[id] = true
			raw, err := tx.First(tablePolicies, "id", l.ID)
			if err != nil {
				return fmt.Errorf("read policy %s: %w", l.ID, err)
			}
			if raw == nil {
				continue
			}
			p := raw.(*Policy)
			if len(p.Datacenters) > 0 && !slices.Contains(p.Datacenters, dc) {
				continue
			}
			rules, err := ParseRules(p.Rules)
			if err != nil {
				return fmt.Errorf("policy %q: %w", p.Name, err)
			}
			all = append(all, rules)
		}
		return nil
	}
	addIdentities := func(svcs []*ServiceIdentity, nodes []*NodeIdentity) {
		for _, s := range svcs {
			if len(s.Datacenters) == 0 || slices.Contains(s.Datacenters, dc) {
				all = append(all, ServiceIdentityRules(s.ServiceName))
			}
		}
		for _, n := range nodes {
			if n.Datacenter == dc {
				all = append(all, NodeIdentityRules(n.NodeName))
			}
		}
	}
	if err := addPolicies(tok.Policies); err != nil {
		return nil, fmt.Errorf("compile token %s: %w", tok.AccessorID, err)
	}
	addIdentities(tok.ServiceIdentities, tok.NodeIdentities)
	for _, l := range tok.Roles {
		raw, err := tx.First(tableRoles, "id", l.ID)
		if err != nil {
			return nil, fmt.Errorf("compile token %s: read role %s: %w", tok.AccessorID, l.ID, err)
		}
		if raw == nil {
			continue
		}
		r := raw.(*Role)
		if err := addPolicies(r.Policies); err != nil {
			return nil, fmt.Errorf("compile token %s: role %q: %w", tok.AccessorID, r.Name, err)
		}
		addIdentities(r.ServiceIdentities, r.NodeIdentities)
	}
	return all, nil
}

// Resolver caches authorizers by secret, each tagged with the ACL index
// (Index) it was compiled at, so a check on the hot path is a map lookup
// while the ACL state stands still, and the first request after any ACL
// write recompiles. Only tokens that exist are cached. Safe for concurrent
// use; the zero value is not: use NewResolver.
type Resolver struct {
	max int

	mu      sync.RWMutex
	entries map[string]resolved
}

type resolved struct {
	auth    *Authorizer
	index   uint64
	expires time.Time // zero: never
}

// NewResolver returns a resolver that keeps at most maxEntries authorizers
// (at least 1); when full it drops one at random for each new one.
func NewResolver(maxEntries int) *Resolver {
	return &Resolver{max: max(maxEntries, 1), entries: map[string]resolved{}}
}

// Loader compiles the authorizer of the token whose SecretID is secret and
// says when that token expires (nil: never); ErrTokenNotFound when there is
// no such token.
type Loader func(secret string) (auth *Authorizer, expires *time.Time, err error)

// Resolve returns the authorizer for secret: the cached one if it was
// compiled at index (the ACL state's current Index), else what load
// returns, which it caches. A token past its expiry at now() answers
// ErrTokenExpired; now is called only for tokens that expire (reading the
// clock costs more than the rest of a cached resolve). Every error means
// deny.
func (r *Resolver) Resolve(secret string, index uint64, now func() time.Time, load Loader) (*Authorizer, error) {
	r.mu.RLock()
	e, ok := r.entries[secret]
	r.mu.RUnlock()
	if !ok || e.index != index {
		auth, exp, err := load(secret)
		if err != nil {
			if errors.Is(err, ErrTokenNotFound) {
				r.forget(secret)
			}
			return nil, err
		}
		e = resolved{auth: auth, index: index}
		if exp != nil {
			e.expires = *exp
		}
		r.mu.Lock()
		if _, had := r.entries[secret]; !had && len(r.entries) >= r.max {
			for k := range r.entries {
				delete(r.entries, k)
				break
			}
		}
		r.entries[secret] = e
		r.mu.Unlock()
	}
	if !e.expires.IsZero() && !now().Before(e.expires) {
		return nil, ErrTokenExpired
	}
	return e.auth, nil
}

func (r *Resolver) forget(secret string) {
	r.mu.Lock()
	delete(r.entries, secret)
	r.mu.Unlock()
}

// Purge empties the cache (after a snapshot restore, whose indexes may be
// lower than the cached ones).
func (r *Resolver) Purge() {
	r.mu.Lock()
	clear(r.entries)
	r.mu.Unlock()
}

// LoadFrom returns the Loader that reads tokens from tx (a fresh read
// transaction per call, from txn) and compiles them for dc.
func LoadFrom(txn func() *memdb.Txn, dc string, defaultAllow bool) Loader {
	return func(secret string) (*Authorizer, *time.Time, error) {
		tx := txn()
		defer tx.Abort()
		tok, _, err := TokenBySecret(tx, nil, secret)
		if err != nil {
			return nil, nil, err
		}
		if tok == nil {
			return nil, nil, ErrTokenNotFound
		}
		auth, err := Compile(tx, tok, dc, defaultAllow)
		if err != nil {
			return nil, nil, err
		}
		return auth, tok.ExpirationTime, nil
	}
}
