package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// perm is one permission a request needs: want on seg of res (with
// prefix, on every segment under seg: a recursive delete).
type perm struct {
	res    acl.Resource
	seg    string
	want   acl.Access
	prefix bool
}

// guard is what one request needs of its token: every check before the
// handler runs and, with filter, its answer cut down to what the token may
// read. self marks endpoints that check the token themselves (the ACL
// endpoints, on the server; /v1/agent/token, on the agent); open marks
// those that need nothing, as in Consul (status, datacenter lists).
type guard struct {
	one    perm // the first check, kept out of checks so the common
	hasOne bool // one-check guard allocates nothing
	checks []perm
	filter bool
	self   bool
	open   bool
}

// only is the guard of a single check.
func only(p perm) guard { return guard{one: p, hasOne: true} }

// guardFunc works out a request's guard; it may read the body (which it
// leaves for the handler) or ask the agent what an ID names. An error
// refuses the request.
type guardFunc func(s *Server, r *http.Request) (guard, error)

func need(res acl.Resource, want acl.Access) guardFunc {
	return func(*Server, *http.Request) (guard, error) {
		return only(perm{res: res, want: want}), nil
	}
}

func needPath(res acl.Resource, param string, want acl.Access) guardFunc {
	return func(_ *Server, r *http.Request) (guard, error) {
		return only(perm{res: res, seg: r.PathValue(param), want: want}), nil
	}
}

// needPathFiltered checks the path's segment and filters the answer too
// (a node's services, a node's checks).
func needPathFiltered(res acl.Resource, param string) guardFunc {
	return func(_ *Server, r *http.Request) (guard, error) {
		g := only(perm{res: res, seg: r.PathValue(param), want: acl.AccessRead})
		g.filter = true
		return g, nil
	}
}

// needAgent checks want on this agent's own node.
func needAgent(res acl.Resource, want acl.Access) guardFunc {
	return func(s *Server, _ *http.Request) (guard, error) {
		return only(perm{res: res, seg: s.agent.NodeName(), want: want}), nil
	}
}

func filtered(*Server, *http.Request) (guard, error) { return guard{filter: true}, nil }
func open(*Server, *http.Request) (guard, error)     { return guard{open: true}, nil }
func self(*Server, *http.Request) (guard, error)     { return guard{self: true}, nil }

// routeGuards declares, for every route, what it needs. A route missing
// here needs acl:write (a management token) until it is declared; the test
// that walks the routes fails on it.
var routeGuards = map[string]guardFunc{
	"GET /v1/status/leader":                open,
	"GET /v1/status/peers":                 open,
	"GET /v1/catalog/datacenters":          open,
	"GET /v1/coordinate/datacenters":       open,
	"GET /v1/agent/self":                   needAgent(acl.ResAgent, acl.AccessRead),
	"GET /v1/agent/metrics":                needAgent(acl.ResAgent, acl.AccessRead),
	"GET /v1/agent/members":                memberGuard,
	"PUT /v1/agent/join/{addr}":            needAgent(acl.ResAgent, acl.AccessWrite),
	"PUT /v1/agent/leave":                  needAgent(acl.ResAgent, acl.AccessWrite),
	"PUT /v1/agent/reload":                 needAgent(acl.ResAgent, acl.AccessWrite),
	"PUT /v1/agent/force-leave/{node}":     need(acl.ResOperator, acl.AccessWrite),
	"PUT /v1/agent/maintenance":            needAgent(acl.ResNode, acl.AccessWrite),
	"GET /v1/agent/services":               filtered,
	"GET /v1/agent/checks":                 filtered,
	"GET /v1/agent/service/{id}":           localServiceGuard(acl.AccessRead),
	"GET /v1/agent/health/service/id/{id}": localServiceGuard(acl.AccessRead),
	"GET /v1/agent/health/service/name/{name}": func(_ *Server, r *http.Request) (guard, error) {
		return only(perm{res: acl.ResService, seg: r.PathValue("name"), want: acl.AccessRead}), nil
	},
	"PUT /v1/agent/service/register":         serviceRegisterGuard,
	"PUT /v1/agent/service/deregister/{id}":  localServiceGuard(acl.AccessWrite),
	"PUT /v1/agent/service/maintenance/{id}": localServiceGuard(acl.AccessWrite),
	"PUT /v1/agent/check/register":           checkRegisterGuard,
	"PUT /v1/agent/check/deregister/{id}":    localCheckGuard,
	"PUT /v1/agent/check/pass/{id}":          localCheckGuard,
	"PUT /v1/agent/check/warn/{id}":          localCheckGuard,
	"PUT /v1/agent/check/fail/{id}":          localCheckGuard,
	"PUT /v1/agent/check/update/{id}":        localCheckGuard,
	"PUT /v1/agent/token/{kind}":             self,

	"GET /v1/catalog/nodes":                    filtered,
	"GET /v1/catalog/node/{node}":              needPathFiltered(acl.ResNode, "node"),
	"GET /v1/catalog/node-services/{node}":     needPathFiltered(acl.ResNode, "node"),
	"GET /v1/catalog/services":                 filtered,
	"GET /v1/catalog/service/{service}":        needPathFiltered(acl.ResService, "service"),
	"GET /v1/internal/ui/services":             filtered,
	"PUT /v1/catalog/register":                 catalogRegisterGuard,
	"PUT /v1/catalog/deregister":               catalogDeregisterGuard,
	"GET /v1/health/service/{service}":         needPathFiltered(acl.ResService, "service"),
	"GET /v1/health/checks/{service}":          needPathFiltered(acl.ResService, "service"),
	"GET /v1/health/node/{node}":               needPathFiltered(acl.ResNode, "node"),
	"GET /v1/health/state/{state}":             filtered,
	"GET /v1/coordinate/nodes":                 filtered,
	"GET /v1/coordinate/node/{node}":           needPath(acl.ResNode, "node", acl.AccessRead),
	"PUT /v1/coordinate/update":                coordinateGuard,
	"GET /v1/operator/raft/configuration":      need(acl.ResOperator, acl.AccessRead),
	"DELETE /v1/operator/raft/peer":            need(acl.ResOperator, acl.AccessWrite),
	"POST /v1/operator/raft/transfer-leader":   need(acl.ResOperator, acl.AccessWrite),
	"GET /v1/operator/autopilot/configuration": need(acl.ResOperator, acl.AccessRead),
	"PUT /v1/operator/autopilot/configuration": need(acl.ResOperator, acl.AccessWrite),
	"GET /v1/operator/autopilot/health":        need(acl.ResOperator, acl.AccessRead),
	"GET /v1/operator/autopilot/state":         need(acl.ResOperator, acl.AccessRead),
	"GET /v1/operator/replication":             need(acl.ResOperator, acl.AccessRead),
	"GET /v1/operator/federation/routes":       need(acl.ResOperator, acl.AccessRead),
	"GET /v1/operator/keyring":                 need(acl.ResKeyring, acl.AccessRead),
	"POST /v1/operator/keyring":                need(acl.ResKeyring, acl.AccessWrite),
	"PUT /v1/operator/keyring":                 need(acl.ResKeyring, acl.AccessWrite),
	"DELETE /v1/operator/keyring":              need(acl.ResKeyring, acl.AccessWrite),
	"GET /v1/agent/host":                       need(acl.ResOperator, acl.AccessRead),
	"GET /v1/agent/monitor":                    needAgent(acl.ResAgent, acl.AccessRead),
	// A snapshot holds every token's secret: management only, as Consul.
	"GET /v1/snapshot":               need(acl.ResACL, acl.AccessWrite),
	"PUT /v1/snapshot":               need(acl.ResACL, acl.AccessWrite),
	"PUT /v1/event/fire/{name}":      needPath(acl.ResEvent, "name", acl.AccessWrite),
	"GET /v1/event/list":             filtered,
	"GET /v1/kv/{key...}":            kvReadGuard,
	"PUT /v1/kv/{key...}":            needPath(acl.ResKey, "key", acl.AccessWrite),
	"DELETE /v1/kv/{key...}":         kvDeleteGuard,
	"PUT /v1/txn":                    txnGuard,
	"PUT /v1/session/create":         sessionCreateGuard,
	"PUT /v1/session/destroy/{id}":   sessionGuard,
	"PUT /v1/session/renew/{id}":     sessionGuard,
	"GET /v1/session/info/{id}":      filtered,
	"GET /v1/session/node/{node}":    needPath(acl.ResSession, "node", acl.AccessRead),
	"GET /v1/session/list":           filtered,
	"POST /v1/query":                 queryWriteGuard,
	"PUT /v1/query/{id}":             queryWriteGuard,
	"DELETE /v1/query/{id}":          queryDeleteGuard,
	"GET /v1/query":                  filtered,
	"GET /v1/query/{id}":             filtered,
	"GET /v1/query/{id}/execute":     filtered,
	"GET /v1/query/{id}/explain":     filtered,
	"PUT /v1/acl/bootstrap":          self,
	"PUT /v1/acl/token":              self,
	"GET /v1/acl/token/self":         self,
	"GET /v1/acl/token/{id}":         self,
	"PUT /v1/acl/token/{id}":         self,
	"DELETE /v1/acl/token/{id}":      self,
	"PUT /v1/acl/token/{id}/clone":   self,
	"GET /v1/acl/tokens":             self,
	"PUT /v1/acl/policy":             self,
	"GET /v1/acl/policy/{id}":        self,
	"GET /v1/acl/policy/name/{name}": self,
	"PUT /v1/acl/policy/{id}":        self,
	"DELETE /v1/acl/policy/{id}":     self,
	"GET /v1/acl/policies":           self,
	"PUT /v1/acl/role":               self,
	"GET /v1/acl/role/{id}":          self,
	"GET /v1/acl/role/name/{name}":   self,
	"PUT /v1/acl/role/{id}":          self,
	"DELETE /v1/acl/role/{id}":       self,
	"GET /v1/acl/roles":              self,
	"GET /v1/acl/replication":        self, // none needed, as in Consul
}

// headerFiltered marks an answer that ACLs cut down.
const headerFiltered = "X-Consul-Results-Filtered-By-ACLs"

// undeclared is the guard of a route routeGuards does not know.
var undeclared = need(acl.ResACL, acl.AccessWrite)

// guardFor returns the guard of a registered pattern; the POST twin of a
// PUT route shares its guard.
func guardFor(pattern string) (guardFunc, bool) {
	if g, ok := routeGuards[pattern]; ok {
		return g, true
	}
	if rest, ok := strings.CutPrefix(pattern, "POST "); ok {
		if g, ok := routeGuards["PUT "+rest]; ok {
			return g, true
		}
	}
	return undeclared, false
}

// guarded wraps a route's handler with its guard when ACLs are on: the
// token is resolved, every check made, the handler run, a blocking read's
// token checked again once it wakes, and a filtered answer cut down. Every
// failure on the way denies.
func (s *Server) guarded(pattern string, h handlerFunc) handlerFunc {
	if !s.cfg.ACL {
		return h
	}
	g, _ := guardFor(pattern)
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		gd, err := g(s, r)
		if err != nil {
			return nil, err
		}
		if gd.open || gd.self {
			return h(w, r)
		}
		auth, err := s.authorize(r, gd)
		if err != nil {
			return nil, err
		}
		v, err := h(w, r)
		if err != nil {
			return nil, err
		}
		if r.URL.RawQuery != "" && params(r).Has("index") {
			// A blocking read may have waited minutes: the token may have
			// lost its rights, or its life, meanwhile.
			if auth, err = s.authorize(r, gd); err != nil {
				return nil, err
			}
		}
		if !gd.filter {
			return v, nil
		}
		out, removed, err := filterAnswer(auth, v)
		if removed {
			w.Header().Set(headerFiltered, "true")
		}
		if err != nil {
			return nil, err
		}
		if _, isRaw := out.(rawValue); isRaw {
			return out, nil
		}
		if !removed && w.Header().Get(headerFiltered) == "" {
			// Nothing was cut, here or by the server that answered: the
			// answer is every reader's, and the shared body cache keeps it.
			return v, nil
		}
		if _, unc := v.(uncached); unc {
			return uncached{out}, nil // filterAnswer unwrapped it
		}
		// The answer depends on the reader: cached for its authorizer only.
		return scoped{v: out, auth: auth, filtered: true}, nil
	}
}

// guardedRaw guards a handler outside handle (Go's profiler): with ACLs
// on it needs operator:read, as Consul's /debug/pprof does.
func (s *Server) guardedRaw(h http.HandlerFunc) http.HandlerFunc {
	if !s.cfg.ACL {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.authorize(r, only(perm{res: acl.ResOperator, want: acl.AccessRead})); err != nil {
			s.respondError(w, r, err)
			return
		}
		h(w, r)
	}
}

// authorize resolves the request's token and makes every check of g.
func (s *Server) authorize(r *http.Request, g guard) (*acl.Authorizer, error) {
	auth, err := s.agent.ResolveToken(r.Context(), requestToken(r))
	if err != nil {
		return nil, err
	}
	if auth == nil {
		return nil, &rpc.Error{Code: rpc.ErrPermissionDenied.Code, Message: "Permission denied: the token could not be resolved"}
	}
	if g.hasOne {
		if err := check(auth, g.one); err != nil {
			return nil, err
		}
	}
	for _, p := range g.checks {
		if err := check(auth, p); err != nil {
			return nil, err
		}
	}
	return auth, nil
}

func check(auth *acl.Authorizer, p perm) error {
	if p.prefix {
		if !auth.AllowedWritePrefix(p.res, p.seg) {
			return &acl.PermissionDeniedError{AccessorID: auth.AccessorID(), Resource: p.res, Segment: p.seg, Access: acl.AccessWrite}
		}
		return nil
	}
	return auth.Check(p.res, p.seg, p.want)
}

// peekBody reads the request body for a guard and leaves it in place for
// the handler.
func peekBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, badf("read request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	if int64(len(b)) > limit {
		return nil, &tooLarge{msg: "request body too large"}
	}
	return b, nil
}

// peekJSON decodes the request body into v for a guard; an empty body
// leaves v as it is.
func peekJSON(r *http.Request, v any) error {
	b, err := peekBody(r, maxBodyBytes)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badf("request body: %s", jsonError(err))
	}
	return nil
}

func memberGuard(s *Server, _ *http.Request) (guard, error) {
	return guard{checks: []perm{{res: acl.ResAgent, seg: s.agent.NodeName(), want: acl.AccessRead}}, filter: true}, nil
}

func localServiceGuard(want acl.Access) guardFunc {
	return func(s *Server, r *http.Request) (guard, error) {
		id := r.PathValue("id")
		name := id
		if svc, ok := s.agent.LocalServices()[id]; ok {
			name = svc.Service
		}
		return guard{checks: []perm{{res: acl.ResService, seg: name, want: want}}}, nil
	}
}

func serviceRegisterGuard(_ *Server, r *http.Request) (guard, error) {
	var body struct{ Name string }
	if err := peekJSON(r, &body); err != nil {
		return guard{}, err
	}
	return guard{checks: []perm{{res: acl.ResService, seg: body.Name, want: acl.AccessWrite}}}, nil
}

// checkPerm is what changing a check needs: service:write on its service,
// node:write on this node for a node check.
func checkPerm(s *Server, serviceID string) perm {
	if serviceID == "" {
		return perm{res: acl.ResNode, seg: s.agent.NodeName(), want: acl.AccessWrite}
	}
	name := serviceID
	if svc, ok := s.agent.LocalServices()[serviceID]; ok {
		name = svc.Service
	}
	return perm{res: acl.ResService, seg: name, want: acl.AccessWrite}
}

func checkRegisterGuard(s *Server, r *http.Request) (guard, error) {
	var body struct{ ServiceID string }
	if err := peekJSON(r, &body); err != nil {
		return guard{}, err
	}
	return guard{checks: []perm{checkPerm(s, body.ServiceID)}}, nil
}

func localCheckGuard(s *Server, r *http.Request) (guard, error) {
	serviceID := ""
	if c, ok := s.agent.LocalChecks()[r.PathValue("id")]; ok {
		serviceID = c.ServiceID
	}
	return guard{checks: []perm{checkPerm(s, serviceID)}}, nil
}

// catalogRegisterGuard: service:write for the service registered,
// node:write for the node when no service is; service:write for a service
// check, node:write for a node check.
func catalogRegisterGuard(_ *Server, r *http.Request) (guard, error) {
	var body struct {
		Node    string
		Service *struct{ Service, ID string }
		Check   *struct{ ServiceID string }
		Checks  []struct{ ServiceID string }
	}
	if err := peekJSON(r, &body); err != nil {
		return guard{}, err
	}
	var g guard
	svcName := map[string]string{}
	if body.Service != nil {
		g.checks = append(g.checks, perm{res: acl.ResService, seg: body.Service.Service, want: acl.AccessWrite})
		svcName[body.Service.ID] = body.Service.Service
		svcName[body.Service.Service] = body.Service.Service
	} else {
		g.checks = append(g.checks, perm{res: acl.ResNode, seg: body.Node, want: acl.AccessWrite})
	}
	checks := body.Checks
	if body.Check != nil {
		checks = append(checks, *body.Check)
	}
	for _, c := range checks {
		if c.ServiceID == "" {
			g.checks = append(g.checks, perm{res: acl.ResNode, seg: body.Node, want: acl.AccessWrite})
			continue
		}
		name, ok := svcName[c.ServiceID]
		if !ok {
			name = c.ServiceID
		}
		g.checks = append(g.checks, perm{res: acl.ResService, seg: name, want: acl.AccessWrite})
	}
	return g, nil
}

// catalogDeregisterGuard: service:write to remove a service (named from the
// catalog), node:write to remove a node or a node's check.
func catalogDeregisterGuard(s *Server, r *http.Request) (guard, error) {
	var body struct{ Node, ServiceID string }
	if err := peekJSON(r, &body); err != nil {
		return guard{}, err
	}
	if body.ServiceID == "" {
		return guard{checks: []perm{{res: acl.ResNode, seg: body.Node, want: acl.AccessWrite}}}, nil
	}
	name := body.ServiceID
	q := rpc.Query[catalog.NodeRequest]{QueryOptions: rpc.QueryOptions{AllowStale: true, Token: requestToken(r)}, Args: catalog.NodeRequest{Node: body.Node}}
	var reply rpc.Answer[*catalog.NodeServices]
	if err := s.agent.RPC(r.Context(), rpc.MethodCatalogNode, &q, &reply); err != nil {
		return guard{}, err
	}
	if reply.Value != nil {
		if svc, ok := reply.Value.Services[body.ServiceID]; ok {
			name = svc.Service
		}
	}
	return guard{checks: []perm{{res: acl.ResService, seg: name, want: acl.AccessWrite}}}, nil
}

func coordinateGuard(_ *Server, r *http.Request) (guard, error) {
	var body struct{ Node string }
	if err := peekJSON(r, &body); err != nil {
		return guard{}, err
	}
	return guard{checks: []perm{{res: acl.ResNode, seg: body.Node, want: acl.AccessWrite}}}, nil
}

// kvReadGuard: key:read on one key; a recursive read or key listing is
// filtered to the keys the token may read.
func kvReadGuard(_ *Server, r *http.Request) (guard, error) {
	q := r.URL.Query()
	if q.Has("recurse") || q.Has("keys") {
		return guard{filter: true}, nil
	}
	return guard{checks: []perm{{res: acl.ResKey, seg: r.PathValue("key"), want: acl.AccessRead}}}, nil
}

func kvDeleteGuard(_ *Server, r *http.Request) (guard, error) {
	key := r.PathValue("key")
	if r.URL.Query().Has("recurse") {
		return guard{checks: []perm{{res: acl.ResKey, seg: key, want: acl.AccessWrite, prefix: true}}}, nil
	}
	return guard{checks: []perm{{res: acl.ResKey, seg: key, want: acl.AccessWrite}}}, nil
}

// txnGuard checks every operation of a transaction as the single
// endpoints would: key:read or key:write (on everything under the prefix
// for delete-tree), node:read or node:write on a node, service:read or
// service:write on a service, and for a check what its node (node check)
// or service needs. What the body does not name (a node given by ID, a
// service by ID) the server checks against its catalog.
func txnGuard(_ *Server, r *http.Request) (guard, error) {
	b, err := peekBody(r, maxTxnBody)
	if err != nil {
		return guard{}, err
	}
	ops, err := decodeTxn(b)
	if err != nil {
		return guard{}, err
	}
	var g guard
	add := func(res acl.Resource, seg string, readOnly bool) {
		if seg == "" {
			return
		}
		want := acl.AccessWrite
		if readOnly {
			want = acl.AccessRead
		}
		g.checks = append(g.checks, perm{res: res, seg: seg, want: want})
	}
	for _, op := range ops {
		switch {
		case op.KV != nil:
			p := perm{res: acl.ResKey, seg: op.KV.Key, want: acl.AccessWrite}
			switch {
			case op.KV.ReadOnly():
				p.want = acl.AccessRead
			case op.KV.Verb == kvstore.VerbDeleteTree:
				p.prefix = true
			}
			g.checks = append(g.checks, p)
		case op.Node != nil:
			add(acl.ResNode, op.Node.Node.Node, op.Node.ReadOnly())
		case op.Service != nil:
			add(acl.ResService, op.Service.Service.Service, op.Service.ReadOnly())
		case op.Check.Check.ServiceID == "":
			add(acl.ResNode, op.Check.Check.Node, op.Check.ReadOnly())
		default:
			add(acl.ResService, op.Check.Check.ServiceName, op.Check.ReadOnly())
		}
	}
	return g, nil
}

func sessionCreateGuard(s *Server, r *http.Request) (guard, error) {
	var body struct{ Node string }
	if err := peekJSON(r, &body); err != nil {
		return guard{}, err
	}
	if body.Node == "" {
		body.Node = s.agent.NodeName()
	}
	return guard{checks: []perm{{res: acl.ResSession, seg: body.Node, want: acl.AccessWrite}}}, nil
}

// sessionGuard: session:write on the node of the session named by the
// path (a session that does not exist needs write on the empty name).
func sessionGuard(s *Server, r *http.Request) (guard, error) {
	q := rpc.Query[kvstore.SessionQuery]{QueryOptions: rpc.QueryOptions{Token: requestToken(r)}, Args: kvstore.SessionQuery{ID: r.PathValue("id")}}
	var reply rpc.Answer[*kvstore.Session]
	if err := s.agent.RPC(r.Context(), rpc.MethodSessionGet, &q, &reply); err != nil {
		return guard{}, err
	}
	node := ""
	if reply.Value != nil {
		node = reply.Value.Node
	}
	return guard{checks: []perm{{res: acl.ResSession, seg: node, want: acl.AccessWrite}}}, nil
}

func queryWriteGuard(_ *Server, r *http.Request) (guard, error) {
	var body struct{ Name string }
	if err := peekJSON(r, &body); err != nil {
		return guard{}, err
	}
	return guard{checks: []perm{{res: acl.ResQuery, seg: body.Name, want: acl.AccessWrite}}}, nil
}

// queryDeleteGuard: query:write on the name of the query being deleted.
func queryDeleteGuard(s *Server, r *http.Request) (guard, error) {
	q := rpc.Query[catalog.QueryRequest]{QueryOptions: rpc.QueryOptions{Token: requestToken(r)}, Args: catalog.QueryRequest{IDOrName: r.PathValue("id")}}
	var reply rpc.Answer[*catalog.PreparedQuery]
	if err := s.agent.RPC(r.Context(), rpc.MethodQueryGet, &q, &reply); err != nil {
		return guard{}, err
	}
	name := ""
	if reply.Value != nil {
		name = reply.Value.Name
	}
	return guard{checks: []perm{{res: acl.ResQuery, seg: name, want: acl.AccessWrite}}}, nil
}
