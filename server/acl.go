package server

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/rpc"
)

// ACLConfig configures access control on a server (Consul's acl block).
type ACLConfig struct {
	// Enabled turns ACLs on: the leader creates the built-in policy and
	// anonymous token, the ACL endpoints answer, and ResolveToken
	// resolves. Off, the ACL endpoints answer rpc.ErrACLDisabled.
	Enabled bool
	// DefaultAllow is default_policy "allow": what no rule speaks to is
	// allowed (acl excepted). False is "deny".
	DefaultAllow bool
	// InitialManagement, when set, is the SecretID of a management token
	// the leader creates if no token has it (acl.tokens.initial_management).
	InitialManagement string
	// PrimaryDatacenter is the authority for policies, roles and global
	// tokens (primary_datacenter); empty or this datacenter: this one is.
	PrimaryDatacenter string
	// ReplicationToken returns acl.tokens.replication as it is now (it can
	// be set at run time), the token a secondary replicates with.
	ReplicationToken func() string
	// DownPolicy is what a secondary does with a token it holds no copy
	// of while the primary is unreachable: "extend-cache" and
	// "async-cache" keep a token resolved earlier (and deny others),
	// "allow" allows everything, "deny" denies. Empty is "extend-cache".
	DownPolicy string
	// TokenTTL is how long a token resolved against the primary is kept
	// before it is asked for again; 0 means 30 s.
	TokenTTL time.Duration
	// CacheEntries bounds how many compiled authorizers are kept; 0 means
	// 4096.
	CacheEntries int
}

// aclState is the server's side of ACLs: the resolver cache and the ACL
// index it is checked against.
type aclState struct {
	resolver *acl.Resolver

	repl   aclReplication
	remote remoteTokens // a secondary's tokens resolved against the primary

	cur atomic.Pointer[aclIndexSnap]
	mu  sync.Mutex // serialises refreshes of cur
}

// aclIndexSnap is the ACL index as last read, with the channels that say
// it is out of date.
type aclIndexSnap struct {
	index   uint64
	changed <-chan struct{} // closes when the ACL index moves
	abandon <-chan struct{} // closes when a restore replaces the state
}

func (c *aclIndexSnap) current() bool {
	return c != nil && !closed(c.changed) && !closed(c.abandon)
}

func newACLState(cfg ACLConfig) *aclState {
	n := cfg.CacheEntries
	if n <= 0 {
		n = 4096
	}
	return &aclState{resolver: acl.NewResolver(n)}
}

// closed reports whether ch has closed, without blocking.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// aclIndex returns the ACL state's current index: two channel polls while
// it stands still, a state store read when it moved. An index read before
// the state it describes is never newer than that state, so an authorizer
// is never cached as current when it was built from older rules.
func (s *Server) aclIndex() uint64 {
	a := s.acl
	if c := a.cur.Load(); c.current() {
		return c.index
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.cur.Load()
	if old.current() {
		return old.index
	}
	if old != nil && closed(old.abandon) {
		// A restore: indexes may have gone down; start afresh.
		a.resolver.Purge()
	}
	tx, abandon := s.state.read()
	c := &aclIndexSnap{abandon: abandon}
	c.index, c.changed = acl.IndexWatch(tx)
	tx.Abort()
	a.cur.Store(c)
	return c.index
}

// ResolveToken returns what the token with SecretID secret may do here
// ("" is the anonymous token), from the cache while the ACL state stands
// still. Any error means deny: rpc.ErrACLNotFound for a secret no token
// has (or an expired token's), rpc.ErrACLDisabled when ACLs are off.
func (s *Server) ResolveToken(secret string) (*acl.Authorizer, error) {
	if !s.cfg.ACL.Enabled {
		return nil, rpc.ErrACLDisabled
	}
	if secret == "" {
		secret = acl.AnonymousSecretID
	}
	auth, err := s.acl.resolver.Resolve(secret, s.aclIndex(), time.Now, s.loadToken)
	if errors.Is(err, acl.ErrTokenNotFound) && s.aclSecondary() {
		// Not replicated here (yet), or local to the primary.
		return s.resolveInPrimary(secret)
	}
	if err != nil {
		return nil, aclError(err)
	}
	return auth, nil
}

// loadToken compiles the token with SecretID secret from the state store.
func (s *Server) loadToken(secret string) (*acl.Authorizer, *time.Time, error) {
	return acl.LoadFrom(func() *memdb.Txn { tx, _ := s.state.read(); return tx }, s.cfg.Datacenter, s.cfg.ACL.DefaultAllow)(secret)
}

// authorizeACL resolves secret and checks it may read or write ACLs.
func (s *Server) authorizeACL(secret string, want acl.Access) (*acl.Authorizer, error) {
	auth, err := s.ResolveToken(secret)
	if err != nil {
		return nil, err
	}
	if err := auth.Check(acl.ResACL, "", want); err != nil {
		return nil, aclError(err)
	}
	return auth, nil
}

// aclError gives the acl package's errors the rpc codes that keep their
// meaning across hops and in the HTTP API (403, 400, 404), with their
// text.
func aclError(err error) error {
	var done *acl.BootstrapDoneError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, acl.ErrPermissionDenied):
		return &rpc.Error{Code: rpc.ErrPermissionDenied.Code, Message: err.Error()}
	case errors.As(err, &done):
		return &rpc.Error{Code: rpc.ErrPermissionDenied.Code, Message: "Permission denied: " + err.Error()}
	case errors.Is(err, acl.ErrTokenNotFound), errors.Is(err, acl.ErrTokenExpired):
		return &rpc.Error{Code: rpc.ErrACLNotFound.Code, Message: err.Error()}
	case errors.Is(err, acl.ErrInvalid):
		return &rpc.Error{Code: rpc.CodeBadRequest, Message: err.Error()}
	case errors.Is(err, acl.ErrNotFound):
		return &rpc.Error{Code: rpc.ErrNotFound.Code, Message: err.Error()}
	}
	return err
}
