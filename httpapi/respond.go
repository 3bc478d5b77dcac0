package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/rpc"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// params is the request's query, parsed once per request: the read path
// asks for it several times (options, filter, cache key, token...) and
// url.URL parses it again on every Query. It is kept in r.Form, which for
// the API's requests (it never parses a form body) holds exactly the
// query, as it would after ParseForm. Shared by the request's readers:
// never change it (take r.URL.Query() for a copy to change).
func params(r *http.Request) url.Values {
	if r.Form == nil {
		r.Form = r.URL.Query()
	}
	return r.Form
}

// Header values every answer shares, set straight into the header map
// under their canonical keys (Header.Set would canonicalize the key, and
// allocate a new one for X-Consul-KnownLeader, on every answer). Never
// changed: net/http only reads them, and Header.Add or Set replace the
// slice rather than write into it.
var (
	headerJSON         = []string{"application/json"}
	headerGzip         = []string{"gzip"}
	headerVary         = []string{"Accept-Encoding"}
	headerTrue         = []string{"true"}
	headerFalse        = []string{"false"}
	headerZero         = []string{"0"}
	keyIndex           = http.CanonicalHeaderKey("X-Consul-Index")
	keyKnownLeader     = http.CanonicalHeaderKey("X-Consul-KnownLeader")
	keyLastContact     = http.CanonicalHeaderKey("X-Consul-LastContact")
	keyContentType     = http.CanonicalHeaderKey("Content-Type")
	keyContentEncoding = http.CanonicalHeaderKey("Content-Encoding")
	keyContentLength   = http.CanonicalHeaderKey("Content-Length")
	keyVary            = http.CanonicalHeaderKey("Vary")
)

// uncached wraps an answer whose content can change while its index stands
// (the Raft configuration's leader flag), so the body cache must not keep it.
type uncached struct{ v any }

// setMeta writes the headers every read carries.
func setMeta(w http.ResponseWriter, m *rpc.QueryMeta) {
	h := w.Header()
	h[keyIndex] = []string{strconv.FormatUint(max(m.Index, 1), 10)}
	if m.KnownLeader {
		h[keyKnownLeader] = headerTrue
	} else {
		h[keyKnownLeader] = headerFalse
	}
	if ms := m.LastContact.Milliseconds(); ms != 0 {
		h[keyLastContact] = []string{strconv.FormatInt(ms, 10)}
	} else {
		h[keyLastContact] = headerZero
	}
	if m.ResultsFilteredByACLs {
		h.Set(headerFiltered, "true")
	}
	if m.QueryBackend != "" {
		h.Set("X-Consul-Query-Backend", m.QueryBackend)
	}
}

// scoped wraps an answer cut down for one reader (ACL rules): the body
// cache keeps its bytes for that reader only.
type scoped struct {
	v        any
	auth     *acl.Authorizer
	filtered bool
}

// respondJSON answers r with status code and v encoded as JSON.
func (s *Server) respondJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	if v == nil {
		w.WriteHeader(code)
		return
	}
	key, idx := cacheKey(r), responseIndex(w)
	var auth *acl.Authorizer
	var filtered bool
	switch u := v.(type) {
	case uncached:
		v, key = u.v, ""
	case scoped:
		v, auth, filtered = u.v, u.auth, u.filtered
		key = scopedKey(key, auth)
	}
	if key != "" && idx != 0 {
		// Shared by every request for key at idx: encoded once.
		e, err := s.cache.encode(key, idx, auth, filtered, func() ([]byte, error) {
			var b bytes.Buffer
			err := json.NewEncoder(&b).Encode(v)
			return b.Bytes(), err
		})
		if err != nil {
			s.respondError(w, r, err)
			return
		}
		e.write(w, r, code)
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	enc := json.NewEncoder(buf)
	if _, pretty := params(r)["pretty"]; pretty {
		enc.SetIndent("", "    ")
	}
	if err := enc.Encode(v); err != nil {
		s.respondError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
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
