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
func filterAnswer(auth *acl.Authorizer, v any) (any, bool, error) {
	switch v := v.(type) {
	case uncached:
		out, removed, err := filterAnswer(auth, v.v)
		return out, removed, err
	case nil:
		return nil, false, nil
	case json.RawMessage: // an unknown node's null
		if string(v) == "null" {
			return v, false, nil
		}
	case []*catalog.Node:
		return keep(v, func(n *catalog.Node) bool { return auth.Allowed(acl.ResNode, n.Node, acl.AccessRead) })
	case map[string][]string: // catalog/services
		return keepMap(v, func(name string, _ []string) bool { return auth.Allowed(acl.ResService, name, acl.AccessRead) })
	case []*catalog.ServiceSummary: // internal/ui/services
		return keep(v, func(sum *catalog.ServiceSummary) bool { return auth.Allowed(acl.ResService, sum.Name, acl.AccessRead) })
	case *catalog.NodeServices:
		if v == nil {
			return v, false, nil
		}
		svcs, removed, _ := keepMap(v.Services, func(_ string, s *catalog.Service) bool { return readService(auth, s) })
		return &catalog.NodeServices{Node: v.Node, Services: svcs}, removed, nil
	case nodeServiceList:
		svcs, removed, _ := keep(v.Services, func(s *catalog.Service) bool { return readService(auth, s) })
		return nodeServiceList{Node: v.Node, Services: svcs}, removed, nil
	case []*catalog.HealthCheck:
		return keep(v, func(c *catalog.HealthCheck) bool { return readCheck(auth, c) })
	case map[string]*catalog.HealthCheck: // agent/checks
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
		nodes, removed, _ := keep(v.Nodes, func(n *catalog.CheckServiceNode) bool { return readService(auth, n.Service) })
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
	return nil, false, &rpc.Error{Code: rpc.ErrPermissionDenied.Code, Message: fmt.Sprintf("Permission denied: an answer of type %T cannot be filtered", v)}
}

func readService(auth *acl.Authorizer, s *catalog.Service) bool {
	return s != nil && auth.Allowed(acl.ResService, s.Service, acl.AccessRead)
}

// readCheck: a service check is the service's to see, a node check the
// node's.
func readCheck(auth *acl.Authorizer, c *catalog.HealthCheck) bool {
	if c.ServiceName != "" {
		return auth.Allowed(acl.ResService, c.ServiceName, acl.AccessRead)
	}
	return auth.Allowed(acl.ResNode, c.Node, acl.AccessRead)
}

// keep returns the elements of list that ok accepts (never nil) and
// whether any were dropped.
func keep[T any](list []T, ok func(T) bool) ([]T, bool, error) {
	out := make([]T, 0, len(list))
	for _, v := range list {
		if ok(v) {
			out = append(out, v)
		}
	}
	return out, len(out) != len(list), nil
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
