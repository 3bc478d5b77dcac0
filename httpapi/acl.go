package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/rpc"
)

// aclRoutes registers /v1/acl and /v1/agent/token, as Consul has them.
func (s *Server) aclRoutes() {
	s.handle("PUT /v1/acl/bootstrap", s.aclBootstrap)
	s.handle("PUT /v1/acl/token", s.aclTokenCreate)
	s.handle("GET /v1/acl/token/self", s.aclTokenSelf)
	s.handle("GET /v1/acl/token/{id}", s.aclTokenRead)
	s.handle("PUT /v1/acl/token/{id}", s.aclTokenUpdate)
	s.handle("DELETE /v1/acl/token/{id}", s.aclTokenDelete)
	s.handle("PUT /v1/acl/token/{id}/clone", s.aclTokenClone)
	s.handle("GET /v1/acl/tokens", s.aclTokenList)
	s.handle("PUT /v1/acl/policy", s.aclPolicyCreate)
	s.handle("GET /v1/acl/policy/{id}", s.aclPolicyRead)
	s.handle("GET /v1/acl/policy/name/{name}", s.aclPolicyReadByName)
	s.handle("PUT /v1/acl/policy/{id}", s.aclPolicyUpdate)
	s.handle("DELETE /v1/acl/policy/{id}", s.aclPolicyDelete)
	s.handle("GET /v1/acl/policies", s.aclPolicyList)
	s.handle("PUT /v1/acl/role", s.aclRoleCreate)
	s.handle("GET /v1/acl/role/{id}", s.aclRoleRead)
	s.handle("GET /v1/acl/role/name/{name}", s.aclRoleReadByName)
	s.handle("PUT /v1/acl/role/{id}", s.aclRoleUpdate)
	s.handle("DELETE /v1/acl/role/{id}", s.aclRoleDelete)
	s.handle("GET /v1/acl/roles", s.aclRoleList)
	s.handle("PUT /v1/agent/token/{kind}", s.agentToken)
	s.handle("GET /v1/acl/replication", s.aclReplication)
}

// aclReplication reports how this datacenter replicates ACLs from the
// primary (Consul's answer; Enabled false in the primary). As in Consul,
// it needs no token.
func (s *Server) aclReplication(w http.ResponseWriter, r *http.Request) (any, error) {
	opts, err := parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	v, err := call[struct{}, rpc.ACLReplicationStatus](s, w, r, rpc.MethodACLReplicationStatus, opts, struct{}{})
	if err != nil {
		return nil, err
	}
	return uncached{v}, nil
}

// requestToken is the secret a request carries: X-Consul-Token, else
// Authorization: Bearer, else ?token=; "" for none (the agent's default
// token, or the anonymous one).
func requestToken(r *http.Request) string {
	if t := r.Header.Get("X-Consul-Token"); t != "" {
		return t
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		if scheme, t, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(t)
		}
	}
	return params(r).Get("token")
}

// aclStatus maps the ACL errors to Consul's statuses: 403 for a denial or
// an unknown token, 401 for ACLs switched off.
func aclStatus(err error) (int, string, bool) {
	switch {
	case errors.Is(err, rpc.ErrPermissionDenied), errors.Is(err, acl.ErrPermissionDenied):
		msg := err.Error()
		if !strings.HasPrefix(msg, "Permission denied") {
			msg = "Permission denied: " + msg
		}
		return http.StatusForbidden, msg, true
	case errors.Is(err, rpc.ErrACLNotFound):
		return http.StatusForbidden, err.Error(), true
	case errors.Is(err, rpc.ErrACLDisabled):
		return http.StatusUnauthorized, err.Error(), true
	}
	return 0, "", false
}

// aclRead runs an ACL read. Its answer depends on the token (secrets are
// redacted for some), so it never goes through the body cache.
func aclRead[V any](s *Server, w http.ResponseWriter, r *http.Request, method string, args rpc.ACLIDRequest) (any, error) {
	opts, err := parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	v, err := call[rpc.ACLIDRequest, V](s, w, r, method, opts, args)
	if err != nil {
		return nil, err
	}
	return uncached{v}, nil
}

func aclList[V any](s *Server, w http.ResponseWriter, r *http.Request, method string) (any, error) {
	opts, err := parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	v, err := call[rpc.ACLListRequest, []V](s, w, r, method, opts, rpc.ACLListRequest{Policy: q.Get("policy"), Role: q.Get("role")})
	if err != nil {
		return nil, err
	}
	return uncached{emptyIfNil(v)}, nil
}

// bootstrapBody is what PUT /v1/acl/bootstrap may carry.
type bootstrapBody struct {
	BootstrapSecret string
}

func (s *Server) aclBootstrap(_ http.ResponseWriter, r *http.Request) (any, error) {
	var body bootstrapBody
	if r.ContentLength != 0 {
		if err := decodeBody(r, &body); err != nil {
			return nil, err
		}
	}
	return writeReply[rpc.ACLBootstrapRequest, acl.Token](s, r, rpc.MethodACLBootstrap, rpc.ACLBootstrapRequest{Secret: body.BootstrapSecret})
}

// duration is a JSON duration as Consul reads one: nanoseconds, or a Go
// duration string ("1h").
type duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *duration) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*d = duration(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return badf("ExpirationTTL: want a duration such as \"1h\" or nanoseconds")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return badf("ExpirationTTL: %q is not a duration such as \"1h\"", s)
	}
	*d = duration(v)
	return nil
}

// tokenBody is a token as a request body.
type tokenBody struct {
	acl.Token
	ExpirationTTL duration
}

func decodeToken(r *http.Request) (acl.Token, error) {
	var b tokenBody
	if err := decodeBody(r, &b); err != nil {
		return acl.Token{}, err
	}
	tok := b.Token
	tok.ExpirationTTL = time.Duration(b.ExpirationTTL)
	return tok, nil
}

func (s *Server) aclTokenCreate(_ http.ResponseWriter, r *http.Request) (any, error) {
	tok, err := decodeToken(r)
	if err != nil {
		return nil, err
	}
	return writeReply[rpc.ACLSetRequest[acl.Token], acl.Token](s, r, rpc.MethodACLTokenSet, rpc.ACLSetRequest[acl.Token]{Object: tok, Create: true})
}

func (s *Server) aclTokenUpdate(_ http.ResponseWriter, r *http.Request) (any, error) {
	tok, err := decodeToken(r)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if tok.AccessorID != "" && !strings.EqualFold(tok.AccessorID, id) {
		return nil, badf("AccessorID %q in the body is not the token %q of the path", tok.AccessorID, id)
	}
	tok.AccessorID = id
	return writeReply[rpc.ACLSetRequest[acl.Token], acl.Token](s, r, rpc.MethodACLTokenSet, rpc.ACLSetRequest[acl.Token]{Object: tok})
}

func (s *Server) aclTokenSelf(w http.ResponseWriter, r *http.Request) (any, error) {
	return aclRead[*acl.Token](s, w, r, rpc.MethodACLTokenRead, rpc.ACLIDRequest{Self: true})
}

func (s *Server) aclTokenRead(w http.ResponseWriter, r *http.Request) (any, error) {
	return aclRead[*acl.Token](s, w, r, rpc.MethodACLTokenRead, rpc.ACLIDRequest{ID: r.PathValue("id")})
}

func (s *Server) aclTokenDelete(_ http.ResponseWriter, r *http.Request) (any, error) {
	return write(s, r, rpc.MethodACLTokenDelete, rpc.ACLIDRequest{ID: r.PathValue("id")})
}

func (s *Server) aclTokenClone(_ http.ResponseWriter, r *http.Request) (any, error) {
	var body struct{ Description string }
	if r.ContentLength != 0 {
		if err := decodeBody(r, &body); err != nil {
			return nil, err
		}
	}
	return writeReply[rpc.ACLIDRequest, acl.Token](s, r, rpc.MethodACLTokenClone, rpc.ACLIDRequest{ID: r.PathValue("id"), Description: body.Description})
}

func (s *Server) aclTokenList(w http.ResponseWriter, r *http.Request) (any, error) {
	return aclList[*acl.Token](s, w, r, rpc.MethodACLTokenList)
}

func (s *Server) aclPolicyCreate(_ http.ResponseWriter, r *http.Request) (any, error) {
	var p acl.Policy
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	return writeReply[rpc.ACLSetRequest[acl.Policy], acl.Policy](s, r, rpc.MethodACLPolicySet, rpc.ACLSetRequest[acl.Policy]{Object: p, Create: true})
}

func (s *Server) aclPolicyUpdate(_ http.ResponseWriter, r *http.Request) (any, error) {
	var p acl.Policy
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if p.ID != "" && !strings.EqualFold(p.ID, id) {
		return nil, badf("ID %q in the body is not the policy %q of the path", p.ID, id)
	}
	p.ID = id
	return writeReply[rpc.ACLSetRequest[acl.Policy], acl.Policy](s, r, rpc.MethodACLPolicySet, rpc.ACLSetRequest[acl.Policy]{Object: p})
}

func (s *Server) aclPolicyRead(w http.ResponseWriter, r *http.Request) (any, error) {
	return aclRead[*acl.Policy](s, w, r, rpc.MethodACLPolicyRead, rpc.ACLIDRequest{ID: r.PathValue("id")})
}

func (s *Server) aclPolicyReadByName(w http.ResponseWriter, r *http.Request) (any, error) {
	return aclRead[*acl.Policy](s, w, r, rpc.MethodACLPolicyRead, rpc.ACLIDRequest{Name: r.PathValue("name")})
}

func (s *Server) aclPolicyDelete(_ http.ResponseWriter, r *http.Request) (any, error) {
	return write(s, r, rpc.MethodACLPolicyDelete, rpc.ACLIDRequest{ID: r.PathValue("id")})
}

func (s *Server) aclPolicyList(w http.ResponseWriter, r *http.Request) (any, error) {
	return aclList[*acl.Policy](s, w, r, rpc.MethodACLPolicyList)
}

func (s *Server) aclRoleCreate(_ http.ResponseWriter, r *http.Request) (any, error) {
	var role acl.Role
	if err := decodeBody(r, &role); err != nil {
		return nil, err
	}
	return writeReply[rpc.ACLSetRequest[acl.Role], acl.Role](s, r, rpc.MethodACLRoleSet, rpc.ACLSetRequest[acl.Role]{Object: role, Create: true})
}

func (s *Server) aclRoleUpdate(_ http.ResponseWriter, r *http.Request) (any, error) {
	var role acl.Role
	if err := decodeBody(r, &role); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if role.ID != "" && !strings.EqualFold(role.ID, id) {
		return nil, badf("ID %q in the body is not the role %q of the path", role.ID, id)
	}
	role.ID = id
	return writeReply[rpc.ACLSetRequest[acl.Role], acl.Role](s, r, rpc.MethodACLRoleSet, rpc.ACLSetRequest[acl.Role]{Object: role})
}

func (s *Server) aclRoleRead(w http.ResponseWriter, r *http.Request) (any, error) {
	return aclRead[*acl.Role](s, w, r, rpc.MethodACLRoleRead, rpc.ACLIDRequest{ID: r.PathValue("id")})
}

func (s *Server) aclRoleReadByName(w http.ResponseWriter, r *http.Request) (any, error) {
	return aclRead[*acl.Role](s, w, r, rpc.MethodACLRoleRead, rpc.ACLIDRequest{Name: r.PathValue("name")})
}

func (s *Server) aclRoleDelete(_ http.ResponseWriter, r *http.Request) (any, error) {
	return write(s, r, rpc.MethodACLRoleDelete, rpc.ACLIDRequest{ID: r.PathValue("id")})
}

func (s *Server) aclRoleList(w http.ResponseWriter, r *http.Request) (any, error) {
	return aclList[*acl.Role](s, w, r, rpc.MethodACLRoleList)
}

// agentToken sets one of the agent's tokens (PUT /v1/agent/token/:kind,
// body {"Token": "..."}); it needs acl:write.
func (s *Server) agentToken(_ http.ResponseWriter, r *http.Request) (any, error) {
	var body struct{ Token string }
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	kind := r.PathValue("kind")
	if err := s.agent.SetAgentToken(r.Context(), requestToken(r), kind, body.Token); err != nil {
		return nil, err
	}
	return nil, nil
}

// ACLAgent is what the HTTP API needs of the agent for access control.
type ACLAgent interface {
	// ResolveToken returns what the token with SecretID secret may do;
	// "" is the agent's default token (or the anonymous one). An error
	// denies.
	ResolveToken(ctx context.Context, secret string) (*acl.Authorizer, error)
	// SetAgentToken replaces the agent's token of kind with secret, for a
	// caller whose token (callerSecret) may write ACLs.
	SetAgentToken(ctx context.Context, callerSecret, kind, secret string) error
}
