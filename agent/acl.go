package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
)

// aclTokensFile, in the data dir, keeps the tokens set through
// /v1/agent/token when acl.enable_token_persistence is on.
const aclTokensFile = "acl-tokens.json"

// agentTokens are the agent's own tokens: from the config, replaced at run
// time through /v1/agent/token. Secrets: never logged.
type agentTokens struct {
	mu          sync.RWMutex
	Default     string `json:"default,omitempty"`
	Agent       string `json:"agent,omitempty"`
	Recovery    string `json:"agent_recovery,omitempty"`
	Replication string `json:"replication,omitempty"`
}

// clientACL caches, on an agent that is not a server, what tokens may do,
// for token_ttl, so that a request costs a map lookup, not an RPC.
type clientACL struct {
	mu      sync.Mutex
	entries map[string]clientEntry
}

type clientEntry struct {
	auth    *acl.Authorizer
	fetched time.Time
	expires *time.Time
}

// maxClientACLEntries bounds the client cache; past it, one entry goes for
// each new one.
const maxClientACLEntries = 4096

// serverACLConfig is the server's part of the acl block, with
// primary_datacenter and the replication token as it is now.
func (a *Agent) serverACLConfig() server.ACLConfig {
	c := &a.cfg
	return server.ACLConfig{
		Enabled:           c.ACL.Enabled,
		DefaultAllow:      c.ACL.DefaultAllow(),
		InitialManagement: c.ACL.Tokens.InitialManagement,
		PrimaryDatacenter: c.PrimaryDatacenter,
		ReplicationToken: func() string {
			a.tokens.mu.RLock()
			defer a.tokens.mu.RUnlock()
			return a.tokens.Replication
		},
		DownPolicy: c.ACL.DownPolicy,
		TokenTTL:   c.ACL.TokenTTL,
	}
}

// initACLTokens loads the configured tokens, then the persisted ones over
// them when persistence is on.
func (a *Agent) initACLTokens() error {
	t := &a.tokens
	t.Default, t.Agent = a.cfg.ACL.Tokens.Default, a.cfg.ACL.Tokens.Agent
	t.Recovery, t.Replication = a.cfg.ACL.Tokens.AgentRecovery, a.cfg.ACL.Tokens.Replication
	a.clientACL.entries = map[string]clientEntry{}
	if !a.cfg.ACL.EnableTokenPersistence || a.cfg.DataDir == "" || a.cfg.Dev {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(a.cfg.DataDir, aclTokensFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read persisted acl tokens: %w", err)
	}
	var saved agentTokens
	if err := json.Unmarshal(b, &saved); err != nil {
		return fmt.Errorf("persisted acl tokens %s: %w", filepath.Join(a.cfg.DataDir, aclTokensFile), err)
	}
	for _, p := range []struct {
		dst *string
		v   string
	}{{&t.Default, saved.Default}, {&t.Agent, saved.Agent}, {&t.Recovery, saved.Recovery}, {&t.Replication, saved.Replication}} {
		if p.v != "" {
			*p.dst = p.v
		}
	}
	return nil
}

// agentToken is the token the agent's own calls carry: tokens.agent, else
// tokens.default.
func (a *Agent) agentToken() string {
	a.tokens.mu.RLock()
	defer a.tokens.mu.RUnlock()
	if a.tokens.Agent != "" {
		return a.tokens.Agent
	}
	return a.tokens.Default
}

// requestToken is secret or, for a request that carries none, the
// agent's default token.
func (a *Agent) requestToken(secret string) string {
	if secret != "" {
		return secret
	}
	a.tokens.mu.RLock()
	defer a.tokens.mu.RUnlock()
	return a.tokens.Default
}

// ACLEnabled reports whether requests are checked.
func (a *Agent) ACLEnabled() bool { return a.cfg.ACL.Enabled }

// ResolveToken returns what the token with SecretID secret may do; ""
// means the agent's default token, or the anonymous one. Errors deny.
func (a *Agent) ResolveToken(ctx context.Context, secret string) (*acl.Authorizer, error) {
	a.tokens.mu.RLock()
	def, recovery := a.tokens.Default, a.tokens.Recovery
	a.tokens.mu.RUnlock()
	if secret == "" {
		secret = def
	}
	if recovery != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(recovery)) == 1 {
		// The recovery token works on this agent alone, servers or not.
		return acl.NewAuthorizer("agent-recovery", false, acl.Rules{
			{Resource: acl.ResAgent, Segment: a.cfg.NodeName, Access: acl.AccessWrite},
			{Resource: acl.ResNode, Prefix: true, Access: acl.AccessRead},
		}), nil
	}
	if a.server != nil {
		return a.server.ResolveToken(secret)
	}
	return a.resolveRemote(ctx, secret)
}

// resolveRemote resolves on a server, through the client cache; with the
// servers unreachable, down_policy decides.
func (a *Agent) resolveRemote(ctx context.Context, secret string) (*acl.Authorizer, error) {
	now := time.Now()
	c := &a.clientACL
	c.mu.Lock()
	e, cached := c.entries[secret]
	c.mu.Unlock()
	if cached && e.expires != nil && !now.Before(*e.expires) {
		return nil, rpc.ErrACLNotFound
	}
	if cached && now.Sub(e.fetched) < a.cfg.ACL.TokenTTL {
		return e.auth, nil
	}
	var reply rpc.Answer[acl.Identity]
	err := a.RPC(ctx, rpc.MethodACLResolve, &rpc.Query[rpc.ACLIDRequest]{QueryOptions: rpc.QueryOptions{Token: secret, AllowStale: true}}, &reply)
	if err != nil {
		if errors.Is(err, rpc.ErrACLNotFound) || errors.Is(err, rpc.ErrACLDisabled) || errors.Is(err, rpc.ErrPermissionDenied) {
			c.mu.Lock()
			delete(c.entries, secret)
			c.mu.Unlock()
			return nil, err
		}
		switch a.cfg.ACL.DownPolicy {
		case configs.ACLAllow:
			return acl.NewAuthorizer("down-policy-allow", true), nil
		case configs.ACLExtendCache, configs.ACLAsyncCache:
			if cached {
				return e.auth, nil
			}
		}
		// Denied as Consul's down_policy denies, with the reason.
		return nil, &rpc.Error{Code: rpc.ErrPermissionDenied.Code, Message: fmt.Sprintf(
			"Permission denied: the servers cannot be reached to resolve the token (acl.down_policy %q): %v", a.cfg.ACL.DownPolicy, err)}
	}
	id := reply.Value
	auth := acl.NewAuthorizer(id.AccessorID, a.cfg.ACL.DefaultAllow(), id.Rules...)
	c.mu.Lock()
	if _, had := c.entries[secret]; !had && len(c.entries) >= maxClientACLEntries {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[secret] = clientEntry{auth: auth, fetched: now, expires: id.ExpirationTime}
	c.mu.Unlock()
	return auth, nil
}

// SetAgentToken replaces one of the agent's tokens (kind: default, agent,
// agent_recovery, replication, or Consul's older names), for a caller
// whose token has acl:write; persisted when acl.enable_token_persistence
// is on.
func (a *Agent) SetAgentToken(ctx context.Context, caller, kind, secret string) error {
	if !a.cfg.ACL.Enabled {
		return rpc.ErrACLDisabled
	}
	auth, err := a.ResolveToken(ctx, caller)
	if err != nil {
		return err
	}
	if err := auth.Check(acl.ResACL, "", acl.AccessWrite); err != nil {
		return &rpc.Error{Code: rpc.ErrPermissionDenied.Code, Message: err.Error()}
	}
	if kind == "default" || kind == "acl_token" {
		// DNS views were fetched with the old default token (a server
		// filters what a client's token may not read): fetch them again.
		defer a.flushDNS()
	}
	t := &a.tokens
	t.mu.Lock()
	defer t.mu.Unlock()
	switch kind {
	case "default", "acl_token":
		t.Default = secret
	case "agent", "acl_agent_token":
		t.Agent = secret
	case "agent_recovery", "agent_master", "acl_agent_master_token":
		t.Recovery = secret
	case "replication", "acl_replication_token":
		t.Replication = secret
	default:
		return fmt.Errorf("%w: token kind %q is not one of default, agent, agent_recovery, replication", rpc.ErrNotFound, kind)
	}
	if !a.cfg.ACL.EnableTokenPersistence || a.cfg.DataDir == "" || a.cfg.Dev {
		return nil
	}
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("persist acl tokens: %w", err)
	}
	path := filepath.Join(a.cfg.DataDir, aclTokensFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("persist acl tokens: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("persist acl tokens: %w", err)
	}
	return nil
}

// flushDNS drops the DNS server's views, when it runs.
func (a *Agent) flushDNS() {
	if a.dns != nil {
		a.dns.Flush()
	}
}

// dnsAllowed reports whether DNS may answer seg of res: with ACLs on, what
// the agent's default token (or the anonymous one) may read. Any error
// denies.
func (a *Agent) dnsAllowed(ctx context.Context, res acl.Resource, seg string) bool {
	if !a.cfg.ACL.Enabled {
		return true
	}
	auth, err := a.ResolveToken(ctx, "")
	return err == nil && auth.Allowed(res, seg, acl.AccessRead)
}
