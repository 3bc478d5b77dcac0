package configs

import (
	"slices"
	"time"
)

// The values of ACL.DefaultPolicy and ACL.DownPolicy.
const (
	ACLAllow       = "allow"
	ACLDeny        = "deny"
	ACLExtendCache = "extend-cache"
	ACLAsyncCache  = "async-cache"
)

// ACL is Consul's acl block: access control on every request.
type ACL struct {
	// Enabled turns ACLs on. Off by default, in dev mode too unless set.
	Enabled bool `config:"enabled"`
	// DefaultPolicy is what a request no rule of its token speaks to gets:
	// "allow" (default, as Consul) or "deny" (what production wants).
	DefaultPolicy string `config:"default_policy"`
	// DownPolicy is what a token that an agent that is not a server cannot
	// resolve, its servers unreachable, gets: "allow", "deny",
	// "extend-cache" (default: the cached rules, however old) or
	// "async-cache" (the same here).
	DownPolicy string `config:"down_policy"`
	// EnableTokenPersistence keeps tokens set with /v1/agent/token in the
	// data dir across restarts.
	EnableTokenPersistence bool `config:"enable_token_persistence"`
	// TokenTTL is how long an agent that is not a server keeps a resolved
	// token (its rules compiled, policies included) before asking a server
	// again. Default 30s. PolicyTTL is read and checked as Consul's, but
	// policies are cached with their token, for TokenTTL.
	TokenTTL  time.Duration `config:"token_ttl"`
	PolicyTTL time.Duration `config:"policy_ttl"`
	// Tokens are the agent's own tokens.
	Tokens ACLTokens `config:"tokens"`
}

// ACLTokens are the secrets an agent uses (each a token's SecretID, a UUID).
// They are secrets: never logged, never echoed in errors.
type ACLTokens struct {
	// InitialManagement is made a management token by the servers' leader
	// once ACLs are on (Consul's initial_management, formerly master).
	InitialManagement string `config:"initial_management"`
	// Agent is what the agent itself uses: anti-entropy and its other
	// calls to the servers. Empty: Default.
	Agent string `config:"agent"`
	// AgentRecovery works on this agent's /v1/agent endpoints alone, even
	// with the servers down.
	AgentRecovery string `config:"agent_recovery"`
	// Default is used for requests that carry no token (HTTP and DNS);
	// empty: the anonymous token.
	Default string `config:"default"`
	// Replication is what a server of a secondary datacenter replicates
	// ACLs from the primary with.
	Replication string `config:"replication"`
}

func defaultACL() ACL {
	return ACL{DefaultPolicy: ACLAllow, DownPolicy: ACLExtendCache, TokenTTL: 30 * time.Second, PolicyTTL: 30 * time.Second}
}

// DefaultAllow reports whether the default policy is allow.
func (a ACL) DefaultAllow() bool { return a.DefaultPolicy == ACLAllow }

func (v *validation) acl() {
	a := v.c.ACL
	if !slices.Contains([]string{ACLAllow, ACLDeny}, a.DefaultPolicy) {
		v.failf("acl.default_policy", "must be %q or %q, got %q", ACLAllow, ACLDeny, a.DefaultPolicy)
	}
	if !slices.Contains([]string{ACLAllow, ACLDeny, ACLExtendCache, ACLAsyncCache}, a.DownPolicy) {
		v.failf("acl.down_policy", "must be %q, %q, %q or %q, got %q", ACLAllow, ACLDeny, ACLExtendCache, ACLAsyncCache, a.DownPolicy)
	}
	v.positive("acl.token_ttl", a.TokenTTL)
	v.positive("acl.policy_ttl", a.PolicyTTL)
	for key, secret := range map[string]string{
		"acl.tokens.initial_management": a.Tokens.InitialManagement,
		"acl.tokens.agent":              a.Tokens.Agent,
		"acl.tokens.agent_recovery":     a.Tokens.AgentRecovery,
		"acl.tokens.default":            a.Tokens.Default,
		"acl.tokens.replication":        a.Tokens.Replication,
	} {
		// Never echo the value: it is a secret.
		if secret != "" && !isUUID(secret) {
			v.failf(key, "must be a UUID (a token's SecretID, as `meridian acl token create` prints)")
		}
	}
	if v.c.PrimaryDatacenter != "" && !isDatacenterName(v.c.PrimaryDatacenter) {
		v.failf("primary_datacenter", "must be lowercase letters, digits, '-' and '_', got %q", v.c.PrimaryDatacenter)
	}
}
