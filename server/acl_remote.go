package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/rpc"
)

// remoteTokens caches, on a secondary, what tokens it holds no copy of
// may do, as the primary answered: one WAN round trip per token and
// token_ttl, while the local ACL state stands still.
type remoteTokens struct {
	mu      sync.Mutex
	entries map[string]remoteEntry
	busy    map[string]bool // async-cache refreshes under way
}

type remoteEntry struct {
	auth     *acl.Authorizer
	fetched  time.Time
	aclIndex uint64 // the local ACL index when fetched
	expires  *time.Time
}

// maxRemoteTokens bounds the cache; past it, one entry goes for each new
// one.
const maxRemoteTokens = 4096

// remoteResolveTimeout bounds one resolution against the primary.
const remoteResolveTimeout = 5 * time.Second

// resolveInPrimary resolves, on a secondary, a token it holds no copy of
// against the primary. With the primary unreachable, acl.down_policy
// decides: "allow" allows everything, "extend-cache" and "async-cache"
// keep a token resolved earlier, and anything else is denied.
func (s *Server) resolveInPrimary(secret string) (*acl.Authorizer, error) {
	ttl := s.cfg.ACL.TokenTTL
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	now, idx := time.Now(), s.aclIndex()
	c := &s.acl.remote
	c.mu.Lock()
	e, cached := c.entries[secret]
	c.mu.Unlock()
	if cached && e.expires != nil && !now.Before(*e.expires) {
		return nil, rpc.ErrACLNotFound
	}
	if cached && e.aclIndex == idx && now.Sub(e.fetched) < ttl {
		return e.auth, nil
	}
	if cached && s.cfg.ACL.DownPolicy == "async-cache" {
		// Answer from the cache at once; refresh behind.
		c.mu.Lock()
		if !c.busy[secret] {
			if c.busy == nil {
				c.busy = map[string]bool{}
			}
			c.busy[secret] = true
			go func() {
				_, _ = s.fetchFromPrimary(secret, e, true, idx)
				c.mu.Lock()
				delete(c.busy, secret)
				c.mu.Unlock()
			}()
		}
		c.mu.Unlock()
		return e.auth, nil
	}
	return s.fetchFromPrimary(secret, e, cached, idx)
}

// fetchFromPrimary asks the primary what the token may do and caches the
// answer; old is the cached entry, if had.
func (s *Server) fetchFromPrimary(secret string, old remoteEntry, had bool, idx uint64) (*acl.Authorizer, error) {
	primary := s.cfg.ACL.PrimaryDatacenter
	ctx, cancel := context.WithTimeout(context.Background(), remoteResolveTimeout)
	defer cancel()
	var reply rpc.Answer[acl.Identity]
	err := s.forwardDC(ctx, primary, rpc.MethodACLResolve, &aclIDQuery{QueryOptions: rpc.QueryOptions{Datacenter: primary, Token: secret, AllowStale: true, ACLSecondary: s.cfg.Datacenter}}, &reply)
	c := &s.acl.remote
	if err != nil {
		err = s.deniedNotPrimary(err)
		if errors.Is(err, rpc.ErrACLNotFound) || errors.Is(err, rpc.ErrACLDisabled) || errors.Is(err, rpc.ErrPermissionDenied) {
			c.mu.Lock()
			delete(c.entries, secret)
			c.mu.Unlock()
			return nil, err
		}
		switch s.cfg.ACL.DownPolicy {
		case "allow":
			return acl.NewAuthorizer("down-policy-allow", true), nil
		case "", "extend-cache", "async-cache":
			if had {
				return old.auth, nil
			}
		}
		return nil, &rpc.Error{Code: rpc.ErrPermissionDenied.Code, Message: fmt.Sprintf(
			"Permission denied: the token is not known in this datacenter and the primary datacenter %s cannot be reached to resolve it (acl.down_policy %q): %v",
			primary, s.cfg.ACL.DownPolicy, err)}
	}
	id := reply.Value
	auth := acl.NewAuthorizer(id.AccessorID, s.cfg.ACL.DefaultAllow, id.Rules...)
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]remoteEntry{}
	}
	if _, ok := c.entries[secret]; !ok && len(c.entries) >= maxRemoteTokens {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[secret] = remoteEntry{auth: auth, fetched: time.Now(), aclIndex: idx, expires: id.ExpirationTime}
	c.mu.Unlock()
	return auth, nil
}

// deniedNotPrimary turns the primary's refusal to resolve a token
// (rpc.ErrACLNotPrimary: a misconfiguration, not an outage) into a denial
// that says why, so that no down_policy (nor a client agent's) applies to
// it; other errors pass as they are.
func (s *Server) deniedNotPrimary(err error) error {
	if !errors.Is(err, rpc.ErrACLNotPrimary) {
		return err
	}
	s.logger.Warn("cannot resolve a token against the primary datacenter", "primary", s.cfg.ACL.PrimaryDatacenter, "error", err)
	return &rpc.Error{Code: rpc.ErrPermissionDenied.Code, Message: "Permission denied: the token cannot be resolved: " + err.Error()}
}
