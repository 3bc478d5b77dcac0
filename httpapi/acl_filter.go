package httpapi

import (
	"encoding/json"
	"fmt"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// filterAnswer cuts an answer down to what auth may read and reports
// whether anything was removed. An answer of a type it does not know is
// refused: a route declared filtered whose answer cannot be filtered must
// not leak.
func filterAnswer(auth *acl.Authorizer, answer any) (any, bool, error) {
	switch v := answer.(type) {
	case uncached:
		out, removed, err := filterAnswer(auth, v.v)
		return out, removed, err
	case nil:
		return nil, false, nil
	case json.RawMessage: // an unknown node's null
		if string(v) == "null" {
			return v, false, nil
		}
	case []*catalog.CheckServiceNode: // health/service
		rd := reader{auth: auth}
		out, removed, err := keep(v, func(n *catalog.CheckServiceNode) bool {
			return n.Node != nil && n.Service != nil && rd.node(n.Node.Node) && rd.service(n.Service.Service)
		})
		return unlessKept(answer, out, removed, err)
	case []*catalog.ServiceNode: // catalog/service
		rd := reader{auth: auth}
		out, removed, err := keep(v, func(n *catalog.ServiceNode) bool {
			return rd.node(n.Node) && rd.service(n.ServiceName)
		})
		return unlessKept(answer, out, removed, err)
	case []*catalog.Node:
		return keep(v, func(n *catalog.Node) bool { return auth.Allowed(acl.ResNode, n.Node, acl.AccessRead) })
	case map[string][]string: // catalog/services
		return keepMap(v, func(name string, _ []string) bool { return auth.Allowed(acl.ResService, name, acl.AccessRead) })
	case []*catalog.ServiceSummary: // internal/ui/services
		return filterSummaries(auth, v)
	case *catalog.NodeServices:
		if v == nil {
			return v, false, nil
		}
		svcs, removed, _ := keepMap(v.Services, func(_ string, s *catalog.Service) bool { return readService(auth, s) })
		return &catalog.NodeServices{Node: v.Node, Services: svcs}, removed, nil
	case nodeServiceList:
		svcs, removed, _ := keep(v.Services, func(s *catalog.Service) bool { return readService(auth, s) })
		return nodeServiceList{Node: v.Node, Services: svcs}, removed, nil
	case []*catalog.HealthCheck: // health/checks, health/node, health/state
		rd := reader{auth: auth}
		out, removed, err := keep(v, func(c *catalog.HealthCheck) bool {
			return rd.node(c.Node) && (c.ServiceName == "" || rd.service(c.ServiceName))
		})
		return unlessKept(answer, out, removed, err)
	case map[string]*catalog.HealthCheck: // agent/checks: this agent's own node
		return keepMap(v, func(_ string, c *catalog.HealthCheck) bool { return readCheck(auth, c) })
	case map[string]*catalog.Service: // agent/services
		return keepMap(v, func(_ string, s *catalog.Service) bool { return readService(auth, s) })
	case []catalog.CoordinateEntry:
		return keep(v, func(c catalog.CoordinateEntry) bool { return auth.Allowed(acl.ResNode, c.Node, acl.AccessRead) })
	case []*kvstore.DirEntry:
		out, removed, _ := keep(v, func(e *kvstore.DirEntry) bool { return auth.Allowed(acl.ResKey, e.Key, acl.AccessRead) })
		if len(out) == 0 {
			return nil, removed, errKVNotFound // as Consul: nothing readable is a miss
		}
		return out, removed, nil
	case []string: // kv ?keys
		out, removed, _ := keep(v, func(k string) bool { return auth.Allowed(acl.ResKey, k, acl.AccessRead) })
		if len(out) == 0 {
			return nil, removed, errKVNotFound
		}
		return out, removed, nil
	case []*kvstore.Session:
		return keep(v, func(s *kvstore.Session) bool { return auth.Allowed(acl.ResSession, s.Node, acl.AccessRead) })
	case []*catalog.PreparedQuery:
		return keep(v, func(q *catalog.PreparedQuery) bool { return auth.Allowed(acl.ResQuery, q.Name, acl.AccessRead) })
	case catalog.QueryExecuteResponse:
		rd := reader{auth: auth}
		nodes, removed, _ := keep(v.Nodes, func(n *catalog.CheckServiceNode) bool {
			return n.Node != nil && rd.node(n.Node.Node) && readService(auth, n.Service)
		})
		v.Nodes = nodes
		return v, removed, nil
	case catalog.QueryExplainResponse:
		if !auth.Allowed(acl.ResQuery, v.Query.Name, acl.AccessRead) {
			return nil, true, auth.Check(acl.ResQuery, v.Query.Name, acl.AccessRead)
		}
		return v, false, nil
	case []*UserEvent:
		return keep(v, func(e *UserEvent) bool { return auth.Allowed(acl.ResEvent, e.Name, acl.AccessRead) })
	case []Member:
		return keep(v, func(m Member) bool { return auth.Allowed(acl.ResNode, m.Name, acl.AccessRead) })
	}
	return nil, false, &rpc.Error{Code: rpc.ErrPermissionDenied.Code, Message: fmt.Sprintf("Permission denied: an answer of type %T cannot be filtered", answer)}
}

func readService(auth *acl.Authorizer, s *catalog.Service) bool {
	return s != nil && auth.Allowed(acl.ResService, s.Service, acl.AccessRead)
}

// reader checks node:read and service:read, remembering the last node and
// service it was asked about: the instances of an answer are of one
// service and come grouped by node (the state store's order), so an answer
// of N instances on K nodes costs K+1 checks, not 2N (each tens of ns).
type reader struct {
	auth            *acl.Authorizer
	nodes, services memo
}

// memo is the last answer of one kind of check.
type memo struct {
	seg       string
	ok, asked bool
}

func (m *memo) allowed(auth *acl.Authorizer, res acl.Resource, seg string) bool {
	if !m.asked || seg != m.seg {
		m.seg, m.ok, m.asked = seg, auth.Allowed(res, seg, acl.AccessRead), true
	}
	return m.ok
}

func (r *reader) node(name string) bool { return r.nodes.allowed(r.auth, acl.ResNode, name) }

func (r *reader) service(name string) bool {
	return r.services.allowed(r.auth, acl.ResService, name)
}

// unlessKept returns v itself when nothing was cut from it (which costs no
// allocation, and keeps the answer the body cache may serve), else out.
func unlessKept[T any](v any, out T, removed bool, err error) (any, bool, error) {
	if !removed && err == nil {
		return v, false, nil
	}
	return out, removed, err
}

// filterSummaries keeps the services auth may read, each summed over the
// nodes it may read (catalog.ServiceSummary.Restrict); a service none of
// whose nodes is readable is dropped, as Consul drops the instances before
// it summarizes them.
func filterSummaries(auth *acl.Authorizer, v []*catalog.ServiceSummary) ([]*catalog.ServiceSummary, bool, error) {
	out := make([]*catalog.ServiceSummary, 0, len(v))
	removed := false
	node := func(n string) bool { return auth.Allowed(acl.ResNode, n, acl.AccessRead) }
	for _, sum := range v {
		if !auth.Allowed(acl.ResService, sum.Name, acl.AccessRead) {
			removed = true
			continue
		}
		kept, cut := sum.Restrict(node)
		removed = removed || cut
		if kept != nil {
			out = append(out, kept)
		}
	}
	return out, removed, nil
}

// readCheck: on the agent's own endpoints, a service check is the
// service's to see, a node check the node's.
func readCheck(auth *acl.Authorizer, c *catalog.HealthCheck) bool {
	if c.ServiceName != "" {
		return auth.Allowed(acl.ResService, c.ServiceName, acl.AccessRead)
	}
	return auth.Allowed(acl.ResNode, c.Node, acl.AccessRead)
}

// keep returns the elements of list that ok accepts (never nil) and
// whether any were dropped. When ok accepts all, list itself comes back
// and nothing is allocated: the answer is then the one every token with
// the rights sees, and may be served from the body cache.
func keep[T any](list []T, ok func(T) bool) ([]T, bool, error) {
	for i, v := range list {
		if ok(v) {
			continue
		}
		out := make([]T, i, len(list)-1)
		copy(out, list[:i])
		for _, v := range list[i+1:] {
			if ok(v) {
				out = append(out, v)
			}
		}
		return out, true, nil
	}
	if list == nil {
		list = []T{}
	}
	return list, false, nil
}

func keepMap[K comparable, V any](m map[K]V, ok func(K, V) bool) (map[K]V, bool, error) {
	out := make(map[K]V, len(m))
	for k, v := range m {
		if ok(k, v) {
			out[k] = v
		}
	}
	return out, len(out) != len(m), nil
}
