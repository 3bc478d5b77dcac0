package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/rpc"
)

// queryRoutes registers /v1/query, the prepared queries.
func (s *Server) queryRoutes() {
	s.handle("POST /v1/query", s.queryCreate)
	s.handle("GET /v1/query", s.queryList)
	s.handle("GET /v1/query/{id}", s.queryGet)
	s.handle("PUT /v1/query/{id}", s.queryUpdate)
	s.handle("DELETE /v1/query/{id}", s.queryDelete)
	s.handle("GET /v1/query/{id}/execute", s.queryExecute)
	s.handle("GET /v1/query/{id}/explain", s.queryExplain)
}

// queryCreated is the answer to POST /v1/query.
type queryCreated struct {
	ID string
}

// queryApply sends a PreparedQuery.Apply write.
func (s *Server) queryApply(r *http.Request, op catalog.QueryOp, q catalog.PreparedQuery) (catalog.QueryApplyResult, error) {
	return writeReply[catalog.QueryApplyRequest, catalog.QueryApplyResult](s, r, rpc.MethodQueryApply,
		catalog.QueryApplyRequest{Op: op, Query: q})
}

func (s *Server) queryCreate(_ http.ResponseWriter, r *http.Request) (any, error) {
	q, err := decodeQuery(r)
	if err != nil {
		return nil, err
	}
	reply, err := s.queryApply(r, catalog.QueryOpCreate, q)
	if err != nil {
		return nil, err
	}
	return queryCreated{ID: reply.ID}, nil
}

func (s *Server) queryUpdate(_ http.ResponseWriter, r *http.Request) (any, error) {
	q, err := decodeQuery(r)
	if err != nil {
		return nil, err
	}
	q.ID = r.PathValue("id")
	if _, err := s.queryApply(r, catalog.QueryOpUpdate, q); err != nil {
		return nil, err
	}
	return nil, nil
}

func (s *Server) queryDelete(_ http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := s.queryApply(r, catalog.QueryOpDelete, catalog.PreparedQuery{ID: r.PathValue("id")}); err != nil {
		return nil, err
	}
	return nil, nil
}

func (s *Server) queryList(w http.ResponseWriter, r *http.Request) (any, error) {
	qs, err := query[struct{}, []*catalog.PreparedQuery](s, w, r, rpc.MethodQueryList, struct{}{})
	return emptyIfNil(qs), err
}

func (s *Server) queryGet(w http.ResponseWriter, r *http.Request) (any, error) {
	q, err := queryRead[catalog.QueryRequest, *catalog.PreparedQuery](s, w, r, rpc.MethodQueryGet, catalog.QueryRequest{IDOrName: r.PathValue("id")})
	if err != nil {
		return nil, err
	}
	// Consul answers a list of one, which the Go client expects.
	return []*catalog.PreparedQuery{q}, nil
}

func (s *Server) queryExecute(w http.ResponseWriter, r *http.Request) (any, error) {
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, badf("limit: %q is not a non-negative integer", v)
		}
		limit = n
	}
	args := catalog.QueryExecuteRequest{IDOrName: r.PathValue("id"), Limit: limit, Agent: s.agent.NodeName()}
	out, err := queryRead[catalog.QueryExecuteRequest, catalog.QueryExecuteResponse](s, w, r, rpc.MethodQueryExecute, args)
	if err != nil {
		return nil, err
	}
	out.Nodes = emptyIfNil(out.Nodes)
	// Shuffled, and failed over to datacenters whose changes do not move
	// the index: never served from the body cache.
	return uncached{out}, nil
}

func (s *Server) queryExplain(w http.ResponseWriter, r *http.Request) (any, error) {
	out, err := queryRead[catalog.QueryRequest, catalog.QueryExplainResponse](s, w, r, rpc.MethodQueryExplain, catalog.QueryRequest{IDOrName: r.PathValue("id")})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// queryRead runs a prepared query read whose answer is not a list: like
// query, without ?filter.
func queryRead[A, V any](s *Server, w http.ResponseWriter, r *http.Request, method string, args A) (V, error) {
	var zero V
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return zero, err
	}
	opts.Near = s.resolveNear(r, opts.Near)
	return call[A, V](s, w, r, method, opts, args)
}

// decodeQuery reads a prepared query definition in Consul's shape: keys
// CamelCase or snake_case, matched case-insensitively, except inside
// NodeMeta and ServiceMeta, which are the user's. An unknown field is
// refused, so that a misspelt option does not silently do nothing.
func decodeQuery(r *http.Request) (catalog.PreparedQuery, error) {
	var q catalog.PreparedQuery
	body, err := readBody(r, maxBodyBytes)
	if err != nil {
		return q, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return q, badf("request body: missing the query definition")
	}
	var raw any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return q, badf("request body: %s", jsonError(err))
	}
	if _, ok := raw.(map[string]any); !ok {
		return q, badf("request body: want a JSON object")
	}
	norm, err := json.Marshal(normalizeKeys(raw, queryOpaqueKeys))
	if err != nil {
		return q, badf("request body: %v", err)
	}
	dec = json.NewDecoder(bytes.NewReader(norm))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return q, badf("request body: %s", strings.TrimPrefix(jsonError(err), "json: "))
	}
	return q, nil
}

// queryOpaqueKeys name the fields of a prepared query whose keys are user
// data (see normalizeKeys).
var queryOpaqueKeys = map[string]bool{"nodemeta": true, "servicemeta": true}
