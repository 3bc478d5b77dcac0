package httpapi

import (
	"net/http"
	"strconv"
	"sync"
)

// bodyCache keeps the encoded JSON of recent reads with the index they were
// read at. A read's index moves whenever its answer changes (package catalog
// guarantees it per query), so an answer read again at the same index has
// the same bytes, and encoding it again is work thrown away: the hot path of
// a repeated health query is then the state store lookup and a copy.
type bodyCache struct {
	mu      sync.RWMutex
	entries map[string]cachedBody
	max     int
}

type cachedBody struct {
	index uint64
	body  []byte
}

func newBodyCache(max int) *bodyCache {
	return &bodyCache{entries: make(map[string]cachedBody), max: max}
}

// cacheKey names a read by its path and parameters, less the blocking ones
// (index, wait), which do not change the answer for a given index. Reads
// that are not cacheable (not GET, pretty-printed) get "".
func cacheKey(r *http.Request) string {
	if r.Method != http.MethodGet {
		return ""
	}
	if r.URL.RawQuery == "" {
		return r.URL.Path
	}
	q := r.URL.Query()
	if _, pretty := q["pretty"]; pretty {
		return ""
	}
	q.Del("index")
	q.Del("wait")
	return r.URL.Path + "?" + q.Encode()
}

// get returns the body cached for key at index.
func (c *bodyCache) get(key string, index uint64) ([]byte, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || e.index != index {
		return nil, false
	}
	return e.body, true
}

// put stores a copy of body for key at index, dropping an arbitrary entry
// when full.
func (c *bodyCache) put(key string, index uint64, body []byte) {
	b := make([]byte, len(body))
	copy(b, body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = cachedBody{index: index, body: b}
}

// responseIndex is the X-Consul-Index a handler set, or 0.
func responseIndex(w http.ResponseWriter) uint64 {
	v := w.Header().Get("X-Consul-Index")
	if v == "" {
		return 0
	}
	idx, _ := strconv.ParseUint(v, 10, 64)
	return idx
}
