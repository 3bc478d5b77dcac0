package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"

	"github.com/hashicorp/go-bexpr"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/rpc"
)

// maxBodyBytes bounds request bodies other than KV values.
const maxBodyBytes int64 = 1 << 20

// query runs a read endpoint: it parses the common options, calls method
// with args, and sets the read headers.
func query[A, V any](s *Server, w http.ResponseWriter, r *http.Request, method string, args A) (V, error) {
	var zero V
	opts, filter, err := s.readOptions(r)
	if err != nil {
		return zero, err
	}
	v, err := call[A, V](s, w, r, method, opts, args)
	if err != nil || filter == nil {
		return v, err
	}
	return applyFilter(filter, v)
}

// call runs method with opts and args and sets the read headers.
func call[A, V any](s *Server, w http.ResponseWriter, r *http.Request, method string, opts rpc.QueryOptions, args A) (V, error) {
	q := rpc.Query[A]{QueryOptions: opts, Args: args}
	var reply rpc.Answer[V]
	if err := s.agent.RPC(r.Context(), method, &q, &reply); err != nil {
		var zero V
		return zero, err
	}
	setMeta(w, &reply.QueryMeta)
	return reply.Value, nil
}

// readOptions parses what every read takes: the query options, with
// ?near=_agent|_ip resolved, and ?filter.
func (s *Server) readOptions(r *http.Request) (rpc.QueryOptions, *bexpr.Filter, error) {
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return opts, nil, err
	}
	opts.Near = s.resolveNear(r, opts.Near)
	filter, err := parseFilter(params(r))
	return opts, filter, err
}

// write runs a write endpoint with args decoded by the caller.
func write[A any](s *Server, r *http.Request, method string, args A) (bool, error) {
	_, err := writeReply[A, rpc.WriteResult](s, r, method, args)
	return err == nil, err
}

// writeReply sends method a write of args to the datacenter of ?dc and
// returns its reply.
func writeReply[A, R any](s *Server, r *http.Request, method string, args A) (R, error) {
	var reply R
	dc, err := parseDC(r.URL.Query())
	if err != nil {
		return reply, err
	}
	req := rpc.Write[A]{WriteOptions: rpc.WriteOptions{Datacenter: dc, Token: requestToken(r)}, Args: args}
	err = s.agent.RPC(r.Context(), method, &req, &reply)
	return reply, err
}

// decodeBody decodes a JSON request body into v, naming what was wrong.
func decodeBody(r *http.Request, v any) error {
	body, err := readBody(r, maxBodyBytes)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badf("request body: %s", jsonError(err))
	}
	return nil
}

// jsonError turns encoding/json's errors into one line naming the field.
func jsonError(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q: expected %s, got %s", e.Field, e.Type, e.Value)
	case *json.SyntaxError:
		return fmt.Sprintf("malformed JSON at byte %d: %v", e.Offset, e)
	}
	return err.Error()
}

func emptyIfNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func (s *Server) catalogDatacenters(_ http.ResponseWriter, r *http.Request) (any, error) {
	var dcs []string
	if err := s.agent.RPC(r.Context(), rpc.MethodCatalogDCs, &struct{}{}, &dcs); err != nil {
		return nil, err
	}
	return emptyIfNil(dcs), nil
}

func (s *Server) catalogNodes(w http.ResponseWriter, r *http.Request) (any, error) {
	meta, err := parseNodeMeta(r.URL.Query())
	if err != nil {
		return nil, err
	}
	nodes, err := query[catalog.NodesRequest, []*catalog.Node](s, w, r, rpc.MethodCatalogNodes, catalog.NodesRequest{NodeMeta: meta})
	return nearAnswer(r, emptyIfNil(nodes)), err
}

func (s *Server) catalogNode(w http.ResponseWriter, r *http.Request) (any, error) {
	ns, err := query[catalog.NodeRequest, *catalog.NodeServices](s, w, r, rpc.MethodCatalogNode, catalog.NodeRequest{Node: r.PathValue("node")})
	if err != nil {
		return nil, err
	}
	if ns == nil {
		// Consul answers an unknown node with 200 and null, and the Go
		// client turns that into a nil *CatalogNode.
		return json.RawMessage("null"), nil
	}
	return ns, nil
}

// nodeServiceList is /v1/catalog/node-services/:node: the node and its
// services as a list (Consul's CatalogNodeServiceList).
type nodeServiceList struct {
	Node     *catalog.Node
	Services []*catalog.Service
}

func (s *Server) catalogNodeServiceList(w http.ResponseWriter, r *http.Request) (any, error) {
	ns, err := query[catalog.NodeRequest, *catalog.NodeServices](s, w, r, rpc.MethodCatalogNode, catalog.NodeRequest{Node: r.PathValue("node")})
	if err != nil {
		return nil, err
	}
	if ns == nil {
		return nil, &notFound{msg: fmt.Sprintf("node %q not found", r.PathValue("node"))}
	}
	out := nodeServiceList{Node: ns.Node, Services: make([]*catalog.Service, 0, len(ns.Services))}
	for _, svc := range ns.Services {
		out.Services = append(out.Services, svc)
	}
	sort.Slice(out.Services, func(i, j int) bool { return out.Services[i].ID < out.Services[j].ID })
	return out, nil
}

func (s *Server) catalogServices(w http.ResponseWriter, r *http.Request) (any, error) {
	meta, err := parseNodeMeta(r.URL.Query())
	if err != nil {
		return nil, err
	}
	svcs, err := query[catalog.NodesRequest, map[string][]string](s, w, r, rpc.MethodCatalogSvcs, catalog.NodesRequest{NodeMeta: meta})
	if svcs == nil {
		svcs = map[string][]string{}
	}
	return svcs, err
}

// uiServices is /v1/internal/ui/services: every service with its
// instance count, nodes, tags and check counts, as Consul's web UI reads
// them. ?filter applies to the summaries' fields (Name, Tags,
// InstanceCount, ChecksCritical...).
func (s *Server) uiServices(w http.ResponseWriter, r *http.Request) (any, error) {
	sums, err := query[struct{}, []*catalog.ServiceSummary](s, w, r, rpc.MethodUIServices, struct{}{})
	return emptyIfNil(sums), err
}

// serviceRequest reads the parameters of the service endpoints.
func serviceRequest(r *http.Request) (catalog.ServiceRequest, error) {
	q := params(r)
	meta, err := parseNodeMeta(q)
	if err != nil {
		return catalog.ServiceRequest{}, err
	}
	passing, err := parseBool(q, "passing")
	if err != nil {
		return catalog.ServiceRequest{}, err
	}
	return catalog.ServiceRequest{
		Service:      r.PathValue("service"),
		ServiceQuery: catalog.ServiceQuery{Tags: slices.Clone(q["tag"]), NodeMeta: meta, Passing: passing}, // q is shared
	}, nil
}

func (s *Server) catalogService(w http.ResponseWriter, r *http.Request) (any, error) {
	req, err := serviceRequest(r)
	if err != nil {
		return nil, err
	}
	nodes, err := query[catalog.ServiceRequest, []*catalog.ServiceNode](s, w, r, rpc.MethodCatalogSvc, req)
	return nearAnswer(r, emptyIfNil(nodes)), err
}

func (s *Server) catalogRegister(_ http.ResponseWriter, r *http.Request) (any, error) {
	var req catalog.RegisterRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return write(s, r, rpc.MethodCatalogReg, req)
}

func (s *Server) catalogDeregister(_ http.ResponseWriter, r *http.Request) (any, error) {
	var req catalog.DeregisterRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return write(s, r, rpc.MethodCatalogDereg, req)
}

func (s *Server) healthService(w http.ResponseWriter, r *http.Request) (any, error) {
	req, err := serviceRequest(r)
	if err != nil {
		return nil, err
	}
	nodes, err := query[catalog.ServiceRequest, []*catalog.CheckServiceNode](s, w, r, rpc.MethodHealthService, req)
	if err == nil && len(nodes) == 0 && req.Passing && !params(r).Has("dc") {
		if v, ok := s.failover(w, r, req); ok {
			return v, nil
		}
	}
	return nearAnswer(r, emptyIfNil(nodes)), err
}

// Headers of an answer served by another datacenter under the agent's
// failover policy.
const (
	headerFailoverDC = "X-Meridian-Failover-Datacenter"
	headerFailovers  = "X-Meridian-Failovers"
)

// failover answers a ?passing health read whose local answer is empty from
// the first datacenter of the service's failover policy that has healthy
// instances. The answer keeps the local index, so that a blocking query
// wakes when the local datacenter changes (and recovers); it is never
// cached, since the index does not describe it.
func (s *Server) failover(w http.ResponseWriter, r *http.Request, req catalog.ServiceRequest) (any, bool) {
	targets := s.agent.FailoverTargets(req.Service)
	if len(targets) == 0 {
		return nil, false
	}
	opts, filter, err := s.readOptions(r)
	if err != nil {
		return nil, false
	}
	opts.MinIndex, opts.MaxWait = 0, 0
	for i, dc := range targets {
		opts.Datacenter = dc
		q := rpc.Query[catalog.ServiceRequest]{QueryOptions: opts, Args: req}
		var reply rpc.Answer[[]*catalog.CheckServiceNode]
		if err := s.agent.RPC(r.Context(), rpc.MethodHealthService, &q, &reply); err != nil {
			s.log.Debug("failover datacenter did not answer", "service", req.Service, "dc", dc, "error", err)
			continue
		}
		nodes := reply.Value
		if filter != nil {
			if nodes, err = applyFilter(filter, nodes); err != nil {
				continue
			}
		}
		if len(nodes) > 0 {
			w.Header().Set(headerFailoverDC, dc)
			w.Header().Set(headerFailovers, strconv.Itoa(i+1))
			return uncached{nodes}, true
		}
	}
	return nil, false
}

func (s *Server) healthChecks(w http.ResponseWriter, r *http.Request) (any, error) {
	meta, err := parseNodeMeta(r.URL.Query())
	if err != nil {
		return nil, err
	}
	checks, err := query[catalog.ChecksRequest, []*catalog.HealthCheck](s, w, r, rpc.MethodHealthChecks, catalog.ChecksRequest{Name: r.PathValue("service"), NodeMeta: meta})
	return nearAnswer(r, emptyIfNil(checks)), err
}

func (s *Server) healthNode(w http.ResponseWriter, r *http.Request) (any, error) {
	checks, err := query[catalog.NodeRequest, []*catalog.HealthCheck](s, w, r, rpc.MethodHealthNode, catalog.NodeRequest{Node: r.PathValue("node")})
	return emptyIfNil(checks), err
}

func (s *Server) healthState(w http.ResponseWriter, r *http.Request) (any, error) {
	state := r.PathValue("state")
	switch state {
	case "any", catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical:
	default:
		return nil, badf("state: %q is not one of any, passing, warning, critical", state)
	}
	meta, err := parseNodeMeta(r.URL.Query())
	if err != nil {
		return nil, err
	}
	checks, err := query[catalog.ChecksRequest, []*catalog.HealthCheck](s, w, r, rpc.MethodHealthState, catalog.ChecksRequest{Name: state, NodeMeta: meta})
	return emptyIfNil(checks), err
}
