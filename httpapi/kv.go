package httpapi

import (
	"net/http"
	"strconv"

	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// tooLarge answers 413 with its text, which says "too large" (Vault and
// other clients match it).
type tooLarge struct{ msg string }

func (e *tooLarge) Error() string { return e.msg }

// rawValue is a KV value answered as it is (?raw), not as JSON.
type rawValue []byte

// kvRoutes registers /v1/kv, /v1/session and /v1/txn.
func (s *Server) kvRoutes() {
	s.handle("GET /v1/kv/{key...}", s.kvGet)
	s.handle("PUT /v1/kv/{key...}", s.kvPut)
	s.handle("DELETE /v1/kv/{key...}", s.kvDelete)
	s.handle("PUT /v1/session/create", s.sessionCreate)
	s.handle("PUT /v1/session/destroy/{id}", s.sessionDestroy)
	s.handle("PUT /v1/session/renew/{id}", s.sessionRenew)
	s.handle("GET /v1/session/info/{id}", s.sessionInfo)
	s.handle("GET /v1/session/node/{node}", s.sessionNode)
	s.handle("GET /v1/session/list", s.sessionList)
	s.handle("PUT /v1/txn", s.txn)
}

// statusBody is a JSON answer with a status other than 200.
type statusBody struct {
	code int
	body any
}

// kvQuery runs a KV or session read and sets the read headers, also on a
// miss (the caller answers 404 then).
func kvQuery[A, V any](s *Server, w http.ResponseWriter, r *http.Request, method string, args A) (V, error) {
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		var zero V
		return zero, err
	}
	return call[A, V](s, w, r, method, opts, args)
}

// kvNotFound is a KV miss: 404 with an empty body; the read headers are
// already set.
var errKVNotFound = &notFound{msg: ""}

func (s *Server) kvGet(w http.ResponseWriter, r *http.Request) (any, error) {
	key := r.PathValue("key")
	q := r.URL.Query()
	keys, err := parseBool(q, "keys")
	if err != nil {
		return nil, err
	}
	recurse, err := parseBool(q, "recurse")
	if err != nil {
		return nil, err
	}
	raw, err := parseBool(q, "raw")
	if err != nil {
		return nil, err
	}
	switch {
	case keys:
		list, err := kvQuery[kvstore.KeyRequest, []string](s, w, r, rpc.MethodKVKeys, kvstore.KeyRequest{Key: key, Separator: q.Get("separator")})
		if err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, errKVNotFound
		}
		return list, nil
	case recurse:
		list, err := kvQuery[kvstore.KeyRequest, []*kvstore.DirEntry](s, w, r, rpc.MethodKVList, kvstore.KeyRequest{Key: key})
		if err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, errKVNotFound
		}
		return list, nil
	}
	e, err := kvQuery[kvstore.KeyRequest, *kvstore.DirEntry](s, w, r, rpc.MethodKVGet, kvstore.KeyRequest{Key: key})
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, errKVNotFound
	}
	if raw {
		return rawValue(e.Value), nil
	}
	return []*kvstore.DirEntry{e}, nil
}

// parseUintParam reads an unsigned integer parameter; ok is false when it
// is absent.
func parseUintParam(r *http.Request, name string) (v uint64, ok bool, err error) {
	q := r.URL.Query()
	if _, present := q[name]; !present {
		return 0, false, nil
	}
	s := q.Get(name)
	v, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, badf("%s: %q is not a non-negative integer", name, s)
	}
	return v, true, nil
}

// kvApply sends a KV write and answers its outcome, true or false.
func (s *Server) kvApply(r *http.Request, req kvstore.KVRequest) (any, error) {
	reply, err := writeReply[kvstore.KVRequest, rpc.WriteResult](s, r, rpc.MethodKVApply, req)
	if err != nil {
		return nil, err
	}
	return reply.OK, nil
}

func (s *Server) kvPut(_ http.ResponseWriter, r *http.Request) (any, error) {
	key := r.PathValue("key")
	if key == "" {
		return nil, badf("key: missing key name")
	}
	q := r.URL.Query()
	req := kvstore.KVRequest{Op: kvstore.VerbSet, Key: key}
	flags, _, err := parseUintParam(r, "flags")
	if err != nil {
		return nil, err
	}
	req.Flags = flags
	cas, hasCAS, err := parseUintParam(r, "cas")
	if err != nil {
		return nil, err
	}
	_, acquire := q["acquire"]
	_, release := q["release"]
	switch {
	case acquire && release:
		return nil, badf("acquire and release are mutually exclusive")
	case acquire:
		req.Op, req.Session = kvstore.VerbLock, q.Get("acquire")
		if req.Session == "" {
			return nil, badf("acquire: missing session ID")
		}
	case release:
		req.Op, req.Session = kvstore.VerbUnlock, q.Get("release")
		if req.Session == "" {
			return nil, badf("release: missing session ID")
		}
	case hasCAS:
		req.Op, req.Index = kvstore.VerbCAS, cas
	}
	if hasCAS && (acquire || release) {
		return nil, badf("cas: cannot be combined with acquire or release")
	}
	body, err := readBody(r, kvstore.MaxValueSize)
	if err != nil {
		return nil, err
	}
	req.Value = body
	return s.kvApply(r, req)
}

func (s *Server) kvDelete(_ http.ResponseWriter, r *http.Request) (any, error) {
	key := r.PathValue("key")
	recurse, err := parseBool(r.URL.Query(), "recurse")
	if err != nil {
		return nil, err
	}
	cas, hasCAS, err := parseUintParam(r, "cas")
	if err != nil {
		return nil, err
	}
	req := kvstore.KVRequest{Op: kvstore.VerbDelete, Key: key}
	switch {
	case recurse && hasCAS:
		return nil, badf("cas: cannot be combined with recurse")
	case recurse:
		req.Op = kvstore.VerbDeleteTree
	case key == "":
		return nil, badf("key: missing key name")
	case hasCAS:
		req.Op, req.Index = kvstore.VerbDeleteCAS, cas
	}
	return s.kvApply(r, req)
}
