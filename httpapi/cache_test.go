package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
)

// tokenAgent is stubAgent with ACLs: each token resolves to its own
// authorizer, as the agent's resolver hands out one per token.
type tokenAgent struct {
	stubAgent
	auths map[string]*acl.Authorizer
}

func (a *tokenAgent) ResolveToken(_ context.Context, secret string) (*acl.Authorizer, error) {
	if auth, ok := a.auths[secret]; ok {
		return auth, nil
	}
	return acl.NewAuthorizer(acl.AnonymousAccessorID, false), nil
}

// decoded is the JSON body of rec, gunzipped when it says it is
// compressed.
func decoded(t *testing.T, rec *httptest.ResponseRecorder) []byte {
	t.Helper()
	if rec.Header().Get("Content-Encoding") != "gzip" {
		return rec.Body.Bytes()
	}
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("gzip answer: %v", err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip answer: %v", err)
	}
	return body
}

// TestBodyCacheNeverSharedBetweenTokens: answers cut down by a token's
// rules are cached for that token only, compressed or not, at one index:
// each reader gets exactly the instances its rules let it read, whoever
// read the same query before it, and a token that may read everything
// gets the whole answer, unmarked.
func TestBodyCacheNeverSharedBetweenTokens(t *testing.T) {
	rules := map[string]string{
		"low":  `service "web" { policy = "read" } node_prefix "node-0" { policy = "read" }`,
		"high": `service "web" { policy = "read" } node_prefix "node-4" { policy = "read" }`,
		"all":  `service "web" { policy = "read" } node_prefix "" { policy = "read" }`,
		"svc":  `service "web" { policy = "read" }`, // no node: nothing
	}
	agent := &tokenAgent{stubAgent: stubAgent{nodes: healthAnswer(50, 50)}, auths: map[string]*acl.Authorizer{}}
	for token, text := range rules {
		r, err := acl.ParseRules(text)
		if err != nil {
			t.Fatal(err)
		}
		agent.auths[token] = acl.NewAuthorizer("accessor-"+token, false, r)
	}
	cfg := DefaultConfig()
	cfg.ACL = true
	srv := New(cfg, agent)
	want := map[string][]string{}
	for _, n := range agent.nodes {
		want["all"] = append(want["all"], n.Node.Node)
		switch {
		case strings.HasPrefix(n.Node.Node, "node-0"):
			want["low"] = append(want["low"], n.Node.Node)
		case strings.HasPrefix(n.Node.Node, "node-4"):
			want["high"] = append(want["high"], n.Node.Node)
		}
	}
	// Each token reads in turn, plain and compressed, twice over, all
	// at the one index the stub answers.
	for round := range 2 {
		for _, token := range []string{"low", "high", "all", "svc", "low", "all", "high"} {
			for _, accept := range []string{"", "gzip"} {
				req := httptest.NewRequest("GET", "/v1/health/service/web?passing", nil)
				req.Header.Set("X-Consul-Token", token)
				if accept != "" {
					req.Header.Set("Accept-Encoding", accept)
				}
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != 200 {
					t.Fatalf("round %d, token %s: status %d %q", round, token, rec.Code, rec.Body.String())
				}
				var got []*catalog.CheckServiceNode
				if err := json.Unmarshal(decoded(t, rec), &got); err != nil {
					t.Fatalf("round %d, token %s, Accept-Encoding %q: %v", round, token, accept, err)
				}
				var nodes []string
				for _, n := range got {
					nodes = append(nodes, n.Node.Node)
				}
				if !slices.Equal(nodes, want[token]) {
					t.Errorf("round %d, token %s, Accept-Encoding %q: nodes %v, want %v", round, token, accept, nodes, want[token])
				}
				if filtered := rec.Header().Get(headerFiltered) == "true"; filtered != (token != "all") {
					t.Errorf("round %d, token %s: %s %q", round, token, headerFiltered, rec.Header().Get(headerFiltered))
				}
			}
		}
	}
}

// TestAnswerEncodingHeaders: as Consul's, every answer says Vary:
// Accept-Encoding, small or large, compressed or not, error or not; a
// large one is compressed exactly for the readers that accept gzip, with
// Content-Encoding and the compressed length, and decodes to the plain
// answer's bytes.
func TestAnswerEncodingHeaders(t *testing.T) {
	agent := &stubAgent{nodes: healthAnswer(40, 40)}
	srv := New(DefaultConfig(), agent)
	plain := httptest.NewRecorder()
	srv.ServeHTTP(plain, httptest.NewRequest("GET", "/v1/health/service/web", nil))
	if plain.Body.Len() < minGzipBytes {
		t.Fatalf("plain answer of %d bytes: the test needs one of at least %d", plain.Body.Len(), minGzipBytes)
	}
	for _, tc := range []struct {
		name, path, accept string
		code               int
		gzip               bool
	}{
		{"large, no gzip", "/v1/health/service/web", "", 200, false},
		{"large, gzip", "/v1/health/service/web", "gzip", 200, true},
		{"large, gzip among others", "/v1/health/service/web?index=1", "br;q=1.0, gzip;q=0.8, *;q=0.1", 200, true},
		{"large, gzip refused", "/v1/health/service/web", "gzip;q=0, identity", 200, false},
		{"small", "/v1/health/service/db?tag=none", "gzip", 200, false},
		{"bad request", "/v1/health/service/web?index=bad", "gzip", 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "small" {
				agent.nodes = healthAnswer(1, 1)
				t.Cleanup(func() { agent.nodes = healthAnswer(40, 40) })
			}
			req := httptest.NewRequest("GET", tc.path, nil)
			if tc.accept != "" {
				req.Header.Set("Accept-Encoding", tc.accept)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			h := rec.Header()
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d", rec.Code, tc.code)
			}
			if got := h.Values("Vary"); !slices.Equal(got, []string{"Accept-Encoding"}) {
				t.Errorf("Vary %q, want [Accept-Encoding]", got)
			}
			if got := h.Get("Content-Encoding") == "gzip"; got != tc.gzip {
				t.Fatalf("Content-Encoding %q, want gzip %v", h.Get("Content-Encoding"), tc.gzip)
			}
			if tc.code != 200 {
				return
			}
			if got, want := h.Get("Content-Length"), fmt.Sprint(rec.Body.Len()); got != want {
				t.Errorf("Content-Length %s, want %s (the bytes sent)", got, want)
			}
			if tc.name == "small" && !strings.Contains(rec.Body.String(), "web-0") {
				t.Errorf("small answer %q, want it plain", rec.Body.String())
			}
			if tc.name != "small" && !bytes.Equal(decoded(t, rec), plain.Body.Bytes()) {
				t.Errorf("answer decodes to %d bytes that differ from the plain answer's %d", len(decoded(t, rec)), plain.Body.Len())
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps headers and drops the
// body, so a benchmark measures the handler, not a recorder copying 1 MB.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// BenchmarkCachedHealthRead is the agent's own work for a health read
// whose answer is cached (the state read and the encoding done once per
// index), without the connection: a small service (the perf-http read)
// and a 1,000-instance one, plain and for a reader that accepts gzip.
//
//	go test ./httpapi -run '^$' -bench CachedHealthRead -benchmem
func BenchmarkCachedHealthRead(b *testing.B) {
	for _, size := range []int{3, 1000} {
		for _, accept := range []string{"", "gzip"} {
			b.Run(fmt.Sprintf("instances=%d/accept=%s", size, accept), func(b *testing.B) {
				srv := New(DefaultConfig(), &stubAgent{nodes: healthAnswer(size, size)})
				req := httptest.NewRequest("GET", "/v1/health/service/web?passing", nil)
				if accept != "" {
					req.Header.Set("Accept-Encoding", accept)
				}
				w := &discardWriter{h: http.Header{}}
				srv.ServeHTTP(w, req) // encode (and compress) once
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					w.h, w.n = http.Header{}, 0
					srv.ServeHTTP(w, req)
				}
				if w.code != 0 && w.code != 200 || w.n == 0 {
					b.Fatalf("status %d, %d bytes", w.code, w.n)
				}
				b.SetBytes(int64(w.n))
			})
		}
	}
}

// TestCacheKey: the key of a read is its path and query less index and
// wait, in url.Values.Encode's form, read from the request's shared
// parsed query without changing it.
func TestCacheKey(t *testing.T) {
	for _, raw := range []string{
		"passing",
		"tag=b&tag=a&passing",
		"index=5&wait=1s&dc=dc2",
		"wait=1s&index=7",
		"filter=Service.Tags%20contains%20%22v2%22&near=_agent",
		"node-meta=rack:r1&node-meta=os:linux&stale",
		"x%20y=%26&z=",
	} {
		r := httptest.NewRequest("GET", "/v1/health/service/web?"+raw, nil)
		want := r.URL.Query()
		want.Del("index")
		want.Del("wait")
		before := fmt.Sprint(params(r))
		if got := cacheKey(r); got != "/v1/health/service/web?"+want.Encode() {
			t.Errorf("cacheKey(?%s) = %q, want %q", raw, got, "/v1/health/service/web?"+want.Encode())
		}
		if after := fmt.Sprint(params(r)); after != before {
			t.Errorf("cacheKey(?%s) changed the request's query: %s, was %s", raw, after, before)
		}
	}
	if got := cacheKey(httptest.NewRequest("GET", "/v1/health/service/web?pretty&passing", nil)); got != "" {
		t.Errorf("cacheKey(?pretty) = %q, want none", got)
	}
	if got := cacheKey(httptest.NewRequest("PUT", "/v1/health/service/web?passing", nil)); got != "" {
		t.Errorf("cacheKey(PUT) = %q, want none", got)
	}
}
