package server

import (
	"fmt"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/federation"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// callGuard is what a call that reaches the server port needs of the
// token in its envelope: checks made before the endpoint runs and, with
// filter, its answer cut down to what the token may read. Writes and the
// ACL endpoints check themselves (self: authorizeWrite, authorizeACL);
// open calls need nothing, as in Consul.
type callGuard struct {
	open, self bool
	checks     func(s *Server, args any) []aclPerm
	filter     bool
}

var (
	openCall = callGuard{open: true}
	selfCall = callGuard{self: true}
	filtered = callGuard{filter: true}
)

func needs(res acl.Resource, want acl.Access) callGuard {
	return callGuard{checks: func(*Server, any) []aclPerm { return []aclPerm{{res: res, want: want}} }}
}

// needsArg checks want on the segment seg reads from the call's args,
// and filters the answer when filter is set.
func needsArg[A any](res acl.Resource, want acl.Access, filter bool, seg func(*A) string) callGuard {
	return callGuard{filter: filter, checks: func(_ *Server, args any) []aclPerm {
		a, ok := args.(*A)
		if !ok {
			return []aclPerm{{res: acl.ResACL, want: acl.AccessWrite}} // unreachable: deny
		}
		return []aclPerm{{res: res, seg: seg(a), want: want}}
	}}
}

// callGuards declares, for every endpoint, what a call over the network
// needs; registering a method missing here panics, so that no server
// starts with an endpoint nobody declared.
// Calls in-process come from this agent's HTTP API and DNS, which check
// and filter with the same rules before and after.
var callGuards = map[string]callGuard{
	rpc.MethodStatusLeader:         openCall,
	rpc.MethodEventFire:            selfCall, // checks event:write itself (server/event.go)
	rpc.MethodStatusPeers:          openCall,
	rpc.MethodCatalogDCs:           openCall,
	rpc.MethodCoordinateDCs:        openCall,
	rpc.MethodRaftCommitIndex:      openCall, // an index, for a snapshot between servers
	rpc.MethodACLReplicationStatus: openCall,
	rpc.MethodRaftConfig:           needs(acl.ResOperator, acl.AccessRead),
	rpc.MethodRaftRemovePeer:       needs(acl.ResOperator, acl.AccessWrite),
	rpc.MethodRaftTransferLeader:   needs(acl.ResOperator, acl.AccessWrite),
	rpc.MethodAutopilotGetConfig:   needs(acl.ResOperator, acl.AccessRead),
	rpc.MethodAutopilotHealth:      needs(acl.ResOperator, acl.AccessRead),
	rpc.MethodAutopilotSetConfig:   selfCall, // authorizeWrite: operator:write
	rpc.MethodRaftStats:            openCall, // indexes and a term, which the leader asks each server for
	rpc.MethodKeyringOperation:     selfCall,
	rpc.MethodCatalogReg:           selfCall,
	rpc.MethodCatalogDereg:         selfCall,
	rpc.MethodCoordinateUpdate:     selfCall,
	rpc.MethodKVApply:              selfCall,
	rpc.MethodSessionApply:         selfCall,
	rpc.MethodSessionRenew:         selfCall,
	rpc.MethodTxnApply:             selfCall,
	rpc.MethodQueryApply:           selfCall,
	rpc.MethodCatalogNodes:         filtered,
	rpc.MethodCatalogSvcs:          filtered,
	rpc.MethodUIServices:           filtered,
	rpc.MethodHealthState:          filtered,
	rpc.MethodCoordinateLAN:        filtered,
	rpc.MethodKVList:               filtered,
	rpc.MethodKVKeys:               filtered,
	rpc.MethodKVChanges:            filtered,
	rpc.MethodKVReplicationStatus:  needs(acl.ResOperator, acl.AccessRead),
	rpc.MethodSessionGet:           filtered,
	rpc.MethodSessionList:          filtered,
	rpc.MethodQueryGet:             filtered,
	rpc.MethodQueryList:            filtered,
	rpc.MethodQueryExecute:         filtered,
	rpc.MethodQueryExecuteRemote:   filtered,
	rpc.MethodCatalogNode:          needsArg(acl.ResNode, acl.AccessRead, true, func(q *nodeQuery) string { return q.Args.Node }),
	rpc.MethodHealthNode:           needsArg(acl.ResNode, acl.AccessRead, true, func(q *nodeQuery) string { return q.Args.Node }),
	rpc.MethodCatalogSvc:           needsArg(acl.ResService, acl.AccessRead, true, func(q *serviceQuery) string { return q.Args.Service }),
	rpc.MethodHealthService:        needsArg(acl.ResService, acl.AccessRead, true, func(q *serviceQuery) string { return q.Args.Service }),
	rpc.MethodSubscribeHealth:      needsArg(acl.ResService, acl.AccessRead, true, func(q *serviceQuery) string { return q.Args.Service }),
	rpc.MethodHealthChecks:         needsArg(acl.ResService, acl.AccessRead, true, func(q *checksQuery) string { return q.Args.Name }),
	rpc.MethodKVGet:                needsArg(acl.ResKey, acl.AccessRead, false, func(q *keyQuery) string { return q.Args.Key }),
	rpc.MethodSessionNodeSessions:  needsArg(acl.ResSession, acl.AccessRead, false, func(q *sessionQuery) string { return q.Args.Node }),
	rpc.MethodQueryExplain:         {filter: true},
	rpc.MethodACLBootstrap:         selfCall,
	rpc.MethodACLTokenSet:          selfCall,
	rpc.MethodACLTokenRead:         selfCall,
	rpc.MethodACLTokenDelete:       selfCall,
	rpc.MethodACLTokenClone:        selfCall,
	rpc.MethodACLTokenList:         selfCall,
	rpc.MethodACLPolicySet:         selfCall,
	rpc.MethodACLPolicyRead:        selfCall,
	rpc.MethodACLPolicyDelete:      selfCall,
	rpc.MethodACLPolicyList:        selfCall,
	rpc.MethodACLRoleSet:           selfCall,
	rpc.MethodACLRoleRead:          selfCall,
	rpc.MethodACLRoleDelete:        selfCall,
	rpc.MethodACLRoleList:          selfCall,
	rpc.MethodACLResolve:           selfCall, // answers the envelope's own token
	// The route exchange tells datacenter names, paths and round trips,
	// as Catalog.ListDatacenters and Coordinate.ListDatacenters do.
	federation.MethodRoutes: openCall,
	// A relayed request is checked at its destination, as the call it
	// carries, with the token it carries.
	federation.MethodRelay:     openCall,
	rpc.MethodFederationRoutes: needs(acl.ResOperator, acl.AccessRead),
}

// tokenCarrier is an envelope with a token (rpc.QueryOptions,
// rpc.WriteOptions).
type tokenCarrier interface{ ACLToken() string }

// authorizeCall makes the checks of method's guard with the token args
// carry, for a call that came over the network. It returns the
// authorizer its answer is filtered with (nil: no filter). Every error
// denies.
func (s *Server) authorizeCall(method string, args any) (*acl.Authorizer, error) {
	if !s.cfg.ACL.Enabled {
		return nil, nil
	}
	g := callGuards[method] // register made sure it is there
	if g.open || g.self {
		return nil, nil
	}
	token := ""
	if tc, ok := args.(tokenCarrier); ok {
		token = tc.ACLToken()
	}
	auth, err := s.ResolveToken(token)
	if err != nil {
		return nil, err
	}
	if g.checks != nil {
		for _, p := range g.checks(s, args) {
			if err := auth.Check(p.res, p.seg, p.want); err != nil {
				return nil, aclError(err)
			}
		}
	}
	if !g.filter {
		return nil, nil
	}
	return auth, nil
}

// filterReply cuts an answer down to what auth may read, in place (with
// new slices and maps: answers may share their elements with caches),
// and marks it filtered. An answer of a type it does not know is refused.
func filterReply(auth *acl.Authorizer, reply any) error {
	node := func(n string) bool { return auth.Allowed(acl.ResNode, n, acl.AccessRead) }
	service := func(n string) bool { return auth.Allowed(acl.ResService, n, acl.AccessRead) }
	// A service's instance or check is seen only by a token that may read
	// both the service and its node, as in Consul.
	check := func(c *catalog.HealthCheck) bool {
		return node(c.Node) && (c.ServiceName == "" || service(c.ServiceName))
	}
	instance := func(n *catalog.CheckServiceNode) bool {
		return n.Node != nil && n.Service != nil && node(n.Node.Node) && service(n.Service.Service)
	}
	var removed bool
	switch r := reply.(type) {
	case *rpc.Answer[[]*catalog.CheckServiceNode]:
		r.Value, removed = keepIf(r.Value, instance)
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *rpc.Answer[[]*catalog.ServiceNode]:
		r.Value, removed = keepIf(r.Value, func(n *catalog.ServiceNode) bool { return node(n.Node) && service(n.ServiceName) })
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *rpc.Answer[[]*catalog.Node]:
		r.Value, removed = keepIf(r.Value, func(n *catalog.Node) bool { return node(n.Node) })
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *rpc.Answer[map[string][]string]:
		out := make(map[string][]string, len(r.Value))
		for name, tags := range r.Value {
			if service(name) {
				out[name] = tags
			}
		}
		removed = len(out) != len(r.Value)
		r.Value = out
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *rpc.Answer[[]*catalog.ServiceSummary]:
		// Each service summed over the nodes the token may read; one with
		// none is dropped, as Consul drops instances before it sums them.
		out := make([]*catalog.ServiceSummary, 0, len(r.Value))
		for _, sum := range r.Value {
			if !service(sum.Name) {
				removed = true
				continue
			}
			kept, cut := sum.Restrict(node)
			removed = removed || cut
			if kept != nil {
				out = append(out, kept)
			}
		}
		r.Value = out
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *rpc.Answer[*catalog.NodeServices]:
		if r.Value == nil {
			return nil
		}
		svcs := make(map[string]*catalog.Service, len(r.Value.Services))
		for id, svc := range r.Value.Services {
			if svc != nil && service(svc.Service) {
				svcs[id] = svc
			}
		}
		removed = len(svcs) != len(r.Value.Services)
		r.Value = &catalog.NodeServices{Node: r.Value.Node, Services: svcs}
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *rpc.Answer[[]*catalog.HealthCheck]:
		r.Value, removed = keepIf(r.Value, check)
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *rpc.Answer[[]catalog.CoordinateEntry]:
		r.Value, removed = keepIf(r.Value, func(c catalog.CoordinateEntry) bool { return node(c.Node) })
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *rpc.Answer[[]*kvstore.DirEntry]:
		r.Value, removed = keepIf(r.Value, func(e *kvstore.DirEntry) bool { return auth.Allowed(acl.ResKey, e.Key, acl.AccessRead) })
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *rpc.Answer[kvstore.Changes]:
		key := func(k string) bool { return auth.Allowed(acl.ResKey, k, acl.AccessRead) }
		var gone bool
		r.Value.Entries, removed = keepIf(r.Value.Entries, func(e *kvstore.DirEntry) bool { return key(e.Key) })
		r.Value.Deleted, gone = keepIf(r.Value.Deleted, func(d kvstore.Deletion) bool { return key(d.Key) })
		removed = removed || gone
		r.Value.Keys, gone = keepIf(r.Value.Keys, key)
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed || gone
	case *rpc.Answer[[]string]:
		r.Value, removed = keepIf(r.Value, func(k string) bool { return auth.Allowed(acl.ResKey, k, acl.AccessRead) })
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *rpc.Answer[*kvstore.Session]:
		if r.Value != nil && !auth.Allowed(acl.ResSession, r.Value.Node, acl.AccessRead) {
			r.Value, r.ResultsFilteredByACLs = nil, true
		}
	case *rpc.Answer[[]*kvstore.Session]:
		r.Value, removed = keepIf(r.Value, func(sess *kvstore.Session) bool { return auth.Allowed(acl.ResSession, sess.Node, acl.AccessRead) })
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *rpc.Answer[*catalog.PreparedQuery]:
		if r.Value != nil && !auth.Allowed(acl.ResQuery, r.Value.Name, acl.AccessRead) {
			r.Value, r.ResultsFilteredByACLs = nil, true
		}
	case *rpc.Answer[[]*catalog.PreparedQuery]:
		r.Value, removed = keepIf(r.Value, func(q *catalog.PreparedQuery) bool { return auth.Allowed(acl.ResQuery, q.Name, acl.AccessRead) })
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *queryExecAnswer:
		r.Value.Nodes, removed = keepIf(r.Value.Nodes, instance)
		r.ResultsFilteredByACLs = r.ResultsFilteredByACLs || removed
	case *queryExplainReply:
		if err := auth.Check(acl.ResQuery, r.Value.Query.Name, acl.AccessRead); err != nil {
			*r = queryExplainReply{}
			return aclError(err)
		}
	default:
		return &rpc.Error{Code: rpc.ErrPermissionDenied.Code, Message: fmt.Sprintf("Permission denied: an answer of type %T cannot be filtered", reply)}
	}
	return nil
}

// keepIf returns the elements of list ok accepts, in a new slice (nil
// stays nil), and whether any were dropped.
func keepIf[T any](list []T, ok func(T) bool) ([]T, bool) {
	if list == nil {
		return nil, false
	}
	out := make([]T, 0, len(list))
	for _, v := range list {
		if ok(v) {
			out = append(out, v)
		}
	}
	return out, len(out) != len(list)
}
