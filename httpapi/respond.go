package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/meridian/meridian/rpc"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// uncached wraps an answer whose content can change while its index stands
// (the Raft configuration's leader flag), so the body cache must not keep it.
type uncached struct{ v any }

// setMeta writes the headers every read carries.
func setMeta(w http.ResponseWriter, m *rpc.QueryMeta) {
	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(max(m.Index, 1), 10))
	if m.KnownLeader {
		h.Set("X-Consul-KnownLeader", "true")
	} else {
		h.Set("X-Consul-KnownLeader", "false")
	}
	h.Set("X-Consul-LastContact", strconv.FormatInt(m.LastContact.Milliseconds(), 10))
	if m.ResultsFilteredByACLs {
		h.Set("X-Consul-Results-Filtered-By-ACLs", "true")
	}
}

func (s *Server) respondJSON(w http.ResponseWriter, r *http.Request, v any) {
	if v == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	key, idx := cacheKey(r), responseIndex(w)
	if u, ok := v.(uncached); ok {
		v, key = u.v, ""
	}
	if key != "" && idx != 0 {
		if body, ok := s.cache.get(key, idx); ok {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
			return
		}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	enc := json.NewEncoder(buf)
	if _, pretty := r.URL.Query()["pretty"]; pretty {
		enc.SetIndent("", "    ")
	}
	if err := enc.Encode(v); err != nil {
		s.respondError(w, r, err)
		return
	}
	if key != "" && idx != 0 {
		s.cache.put(key, idx, buf.Bytes())
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) respondError(w http.ResponseWriter, r *http.Request, err error) int {
	code, msg := errorStatus(err)
	if code >= 500 {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", code, "error", err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
	return code
}
