package httpapi

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/ui"
)

// bodyCache keeps the encoded JSON of recent reads with the index they were
// read at. A read's index moves whenever its answer changes (package catalog
// guarantees it per query), so an answer read again at the same index has
// the same bytes, and encoding it again is work thrown away: the hot path of
// a repeated health query is then the state store lookup and a copy. The
// blocking queries a change wakes all ask for the same answer at once; the
// first encodes it and the others wait for its bytes (encode), so a wake
// encodes once per (read, index) however many watch it.
//
// A large answer is also kept gzip-compressed, made once by the first
// reader that accepts gzip (as Go's HTTP clients, consul/api among them,
// all do): a health answer of 1,000 instances is about 1 MB of JSON and
// 40 KB compressed, and serving it is a copy through the kernel whose cost
// grows with its bytes, so compressing once per index and sending the
// compressed bytes cuts what every reader costs the agent 25 times.
//
// An answer cut down by a token's ACL rules is cached for that token's
// authorizer only: the entry keeps the authorizer and is served only to a
// request resolved to the same one (the resolver hands out one authorizer
// per token and ACL state, so a change of the token's rights misses).
type bodyCache struct {
	mu      sync.Mutex
	entries map[string]*cachedBody
	max     int
}

type cachedBody struct {
	index uint64
	auth  *acl.Authorizer // the reader it was filtered for; nil: nobody's
	// filtered is whether the ACL rules removed part of the answer
	// (X-Consul-Results-Filtered-By-ACLs).
	filtered bool
	ready    chan struct{} // closed once body (or err) is set
	body     []byte
	err      error

	length []string // len(body), as a Content-Length header value

	gzOnce   sync.Once
	gz       []byte   // body gzip-compressed, once gzipped has been called
	gzLength []string // len(gz), as a Content-Length header value
}

// minGzipBytes is the smallest body served compressed, Consul's (the
// default minimum size of the gzip handler it wraps every endpoint in):
// below it the answer fits a packet or so either way and compressing gains
// nothing.
const minGzipBytes = 1400

var gzipPool = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return zw
}}

// gzipped returns the body gzip-compressed, compressing it on the first
// call; callers at the same time wait for that one compression.
func (e *cachedBody) gzipped() []byte {
	e.gzOnce.Do(func() {
		var b bytes.Buffer
		b.Grow(len(e.body) / 8)
		zw := gzipPool.Get().(*gzip.Writer)
		zw.Reset(&b)
		_, _ = zw.Write(e.body) // a bytes.Buffer does not fail
		_ = zw.Close()
		gzipPool.Put(zw)
		e.gz = b.Bytes()
		e.gzLength = []string{strconv.Itoa(len(e.gz))}
	})
	return e.gz
}

func newBodyCache(max int) *bodyCache {
	return &bodyCache{entries: make(map[string]*cachedBody), max: max}
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
	q := params(r)
	if _, pretty := q["pretty"]; pretty {
		return ""
	}
	// q.Encode() without index and wait, q being shared: sorted keys,
	// each value escaped.
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "index" && k != "wait" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(r.URL.Path)
	b.WriteByte('?')
	for i, k := range keys {
		ek := url.QueryEscape(k)
		for j, v := range q[k] {
			if i > 0 || j > 0 {
				b.WriteByte('&')
			}
			b.WriteString(ek)
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
		}
	}
	return b.String()
}

// scopedKey is key for the reader auth: entries of different tokens do not
// replace each other.
func scopedKey(key string, auth *acl.Authorizer) string {
	if auth == nil || key == "" {
		return key
	}
	return key + "\x00" + auth.AccessorID()
}

// encode returns the entry of key at index for auth: the cached one, the
// one another request is encoding now (waiting for it), or the one enc
// returns, which is then cached. The entry returned is shared: read-only.
func (c *bodyCache) encode(key string, index uint64, auth *acl.Authorizer, filtered bool, enc func() ([]byte, error)) (*cachedBody, error) {
	c.mu.Lock()
	e := c.entries[key]
	if e != nil && e.index == index && e.auth == auth {
		c.mu.Unlock()
		<-e.ready // an encoding in this process: it does not block
		if e.err == nil {
			return e, nil
		}
		body, err := enc()
		return &cachedBody{index: index, auth: auth, filtered: filtered, body: body, length: []string{strconv.Itoa(len(body))}}, err
	}
	e = &cachedBody{index: index, auth: auth, filtered: filtered, ready: make(chan struct{})}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = e
	c.mu.Unlock()
	e.body, e.err = enc()
	e.length = []string{strconv.Itoa(len(e.body))}
	close(e.ready)
	if e.err != nil {
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
		return nil, e.err
	}
	return e, nil
}

// write sends the entry as the answer to r with status code: compressed
// when it is large and r accepts gzip, with its length either way, so a
// reader costs the agent one write of bytes already made. (Vary:
// Accept-Encoding is on every answer, set by handle, as Consul's.)
func (e *cachedBody) write(w http.ResponseWriter, r *http.Request, code int) {
	h := w.Header()
	h[keyContentType] = headerJSON
	body, length := e.body, e.length
	if len(body) >= minGzipBytes && ui.AcceptsGzip(r.Header.Get("Accept-Encoding")) {
		h[keyContentEncoding] = headerGzip
		body, length = e.gzipped(), e.gzLength
	}
	h[keyContentLength] = length
	w.WriteHeader(code)
	_, _ = w.Write(body)
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
