package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// aclAgent answers every read with one item of the right type, so that a
// filtered route has something to filter, and resolves every token to
// auth.
type aclAgent struct {
	Agent
	auth     *acl.Authorizer
	resolved int
}

func (a *aclAgent) ResolveToken(context.Context, string) (*acl.Authorizer, error) {
	a.resolved++
	return a.auth, nil
}
func (a *aclAgent) NodeName() string                                            { return "n1" }
func (a *aclAgent) FailoverTargets(string) []string                             { return nil }
func (a *aclAgent) Members(bool) ([]Member, error)                              { return []Member{{Name: "n2"}}, nil }
func (a *aclAgent) FireEvent(context.Context, string, string, *UserEvent) error { return nil }
func (a *aclAgent) UserEvents() ([]*UserEvent, <-chan struct{}) {
	return []*UserEvent{{ID: "11111111-2222-3333-4444-555555555555", Name: "db"}}, nil
}
func (a *aclAgent) LocalServices() map[string]*catalog.Service {
	return map[string]*catalog.Service{"db1": {ID: "db1", Service: "db"}}
}
func (a *aclAgent) LocalChecks() map[string]*catalog.HealthCheck {
	return map[string]*catalog.HealthCheck{"c1": {Node: "n1", CheckID: "c1"}}
}

func (a *aclAgent) RPC(_ context.Context, _ string, _, reply any) error {
	meta := rpc.QueryMeta{Index: 5, KnownLeader: true}
	switch r := reply.(type) {
	case *rpc.Answer[[]*catalog.Node]:
		*r = rpc.Answer[[]*catalog.Node]{QueryMeta: meta, Value: []*catalog.Node{{Node: "n2"}}}
	case *rpc.Answer[map[string][]string]:
		*r = rpc.Answer[map[string][]string]{QueryMeta: meta, Value: map[string][]string{"db": nil}}
	case *rpc.Answer[[]*catalog.ServiceSummary]:
		*r = rpc.Answer[[]*catalog.ServiceSummary]{QueryMeta: meta, Value: []*catalog.ServiceSummary{{Name: "db", Nodes: []string{"n2"}, InstanceCount: 1}}}
	case *rpc.Answer[*catalog.NodeServices]:
		*r = rpc.Answer[*catalog.NodeServices]{QueryMeta: meta, Value: &catalog.NodeServices{Node: &catalog.Node{Node: "x"}, Services: map[string]*catalog.Service{"db1": {ID: "db1", Service: "db"}}}}
	case *rpc.Answer[[]*catalog.HealthCheck]:
		*r = rpc.Answer[[]*catalog.HealthCheck]{QueryMeta: meta, Value: []*catalog.HealthCheck{{Node: "n2", CheckID: "c", ServiceName: "db"}}}
	case *rpc.Answer[[]catalog.CoordinateEntry]:
		*r = rpc.Answer[[]catalog.CoordinateEntry]{QueryMeta: meta, Value: []catalog.CoordinateEntry{{Node: "n2"}}}
	case *rpc.Answer[[]*kvstore.DirEntry]:
		*r = rpc.Answer[[]*kvstore.DirEntry]{QueryMeta: meta, Value: []*kvstore.DirEntry{{Key: "secret/x"}}}
	case *rpc.Answer[[]string]:
		*r = rpc.Answer[[]string]{QueryMeta: meta, Value: []string{"secret/x"}}
	case *rpc.Answer[[]*kvstore.Session]:
		*r = rpc.Answer[[]*kvstore.Session]{QueryMeta: meta, Value: []*kvstore.Session{{ID: "s", Node: "n2"}}}
	case *rpc.Answer[*kvstore.Session]:
		*r = rpc.Answer[*kvstore.Session]{QueryMeta: meta, Value: &kvstore.Session{ID: "s", Node: "n2"}}
	case *rpc.Answer[[]*catalog.PreparedQuery]:
		*r = rpc.Answer[[]*catalog.PreparedQuery]{QueryMeta: meta, Value: []*catalog.PreparedQuery{{ID: "q", Name: "db"}}}
	case *rpc.Answer[*catalog.PreparedQuery]:
		*r = rpc.Answer[*catalog.PreparedQuery]{QueryMeta: meta, Value: &catalog.PreparedQuery{ID: "q", Name: "db"}}
	case *rpc.Answer[catalog.QueryExecuteResponse]:
		*r = rpc.Answer[catalog.QueryExecuteResponse]{QueryMeta: meta, Value: catalog.QueryExecuteResponse{Nodes: []*catalog.CheckServiceNode{{Node: &catalog.Node{Node: "n2"}, Service: &catalog.Service{Service: "db"}}}}}
	case *rpc.Answer[catalog.QueryExplainResponse]:
		*r = rpc.Answer[catalog.QueryExplainResponse]{QueryMeta: meta, Value: catalog.QueryExplainResponse{Query: catalog.PreparedQuery{Name: "db"}}}
	default:
		return rpc.ErrNotFound
	}
	return nil
}

// openRoutes need no token, as in Consul; selfRoutes are checked by the
// endpoint behind them (the server's ACL endpoints, the agent's token
// setter), which the cluster tests cover.
var (
	openRoutes = []string{"GET /v1/status/leader", "GET /v1/status/peers", "GET /v1/catalog/datacenters", "GET /v1/coordinate/datacenters"}
	selfRoute  = regexp.MustCompile(`^(PUT|POST|GET|DELETE) /v1/(acl/|agent/token/)`)
	pathParam  = regexp.MustCompile(`\{[a-z]+(\.\.\.)?\}`)
)

func routeRequest(pattern, query string) *http.Request {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "{state}", "any")
	path = pathParam.ReplaceAllString(path, "x")
	body := strings.NewReader(`{"Name": "db", "Node": "n2", "Service": {"Service": "db"}}`)
	if path == "/v1/txn" {
		body = strings.NewReader(`[{"KV": {"Verb": "get", "Key": "secret/x"}}]`)
	}
	r := httptest.NewRequest(method, path+query, body)
	r.Header.Set("Content-Type", "application/json")
	return r
}

// TestEveryRouteDeniesAnonymous walks every registered route with the
// anonymous token under default deny: each is refused with 403 naming the
// missing permission, or answers with everything filtered out (and the
// header saying so); only Consul's open routes and the self-checked ACL
// routes pass, and no route is left undeclared.
func TestEveryRouteDeniesAnonymous(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ACL = true
	agent := &aclAgent{auth: acl.NewAuthorizer(acl.AnonymousAccessorID, false)}
	srv := New(cfg, agent)
	if len(srv.patterns) < 80 {
		t.Fatalf("only %d routes registered", len(srv.patterns))
	}
	cases := slices.Clone(srv.patterns)
	cases = append(cases, "GET /v1/kv/{key...}?recurse", "GET /v1/kv/{key...}?keys")
	for _, c := range cases {
		pattern, query, _ := strings.Cut(c, "?")
		if query != "" {
			query = "?" + query
		}
		t.Run(c, func(t *testing.T) {
			if _, declared := guardFor(pattern); !declared {
				t.Fatalf("route %s declares no guard in routeGuards", pattern)
			}
			if slices.Contains(openRoutes, pattern) || selfRoute.MatchString(pattern) {
				return
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, routeRequest(pattern, query))
			switch rec.Code {
			case http.StatusForbidden:
				if !strings.Contains(rec.Body.String(), "Permission denied") || !strings.Contains(rec.Body.String(), "lacks permission '") {
					t.Errorf("403 body %q does not name the missing permission", rec.Body.String())
				}
			case http.StatusOK, http.StatusNotFound:
				if rec.Header().Get("X-Consul-Results-Filtered-By-ACLs") != "true" {
					t.Fatalf("%s answered %d %q to the anonymous token without filtering", c, rec.Code, rec.Body.String())
				}
				var v any
				if rec.Code == http.StatusOK {
					if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
						t.Fatalf("answer %q: %v", rec.Body.String(), err)
					}
					if strings.Contains(rec.Body.String(), `"db"`) || strings.Contains(rec.Body.String(), "n2") || strings.Contains(rec.Body.String(), "secret/") {
						t.Errorf("%s leaked %s", c, rec.Body.String())
					}
				}
			default:
				t.Errorf("%s = %d %q, want 403 or a filtered answer", c, rec.Code, rec.Body.String())
			}
		})
	}
}

func TestProfilerNeedsOperatorRead(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ACL, cfg.EnableDebug = true, true
	srv := New(cfg, &aclAgent{auth: acl.NewAuthorizer(acl.AnonymousAccessorID, false)})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "operator:read") {
		t.Errorf("anonymous /debug/pprof/ = %d %q, want 403 naming operator:read", rec.Code, rec.Body.String())
	}
}

// TestManagementPassesEveryGuard is the other side: a token with every
// right is refused by no route.
func TestManagementPassesEveryGuard(t *testing.T) {
	rules, err := acl.ParseRules(acl.ManagementRules)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ACL = true
	srv := New(cfg, &aclAgent{auth: acl.NewAuthorizer("mgmt", false, rules)})
	for _, pattern := range append(srv.patterns, "GET /v1/kv/{key...}?recurse") {
		pattern, query, _ := strings.Cut(pattern, "?")
		if query != "" {
			query = "?" + query
		}
		g, _ := guardFor(pattern)
		r := routeRequest(pattern, query)
		gd, err := g(srv, r)
		if err != nil {
			t.Errorf("%s: guard = %v", pattern, err)
			continue
		}
		if _, err := srv.authorize(r, gd); err != nil {
			t.Errorf("%s refuses a management token: %v", pattern, err)
		}
	}
}

// TestBlockingReadRechecksAfterWaking: a token that loses its rights while
// a blocking read waits gets 403, not the answer.
func TestBlockingReadRechecksAfterWaking(t *testing.T) {
	read, err := acl.ParseRules(`service_prefix "" { policy = "read" }`)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ACL = true
	agent := &revokingAgent{aclAgent: aclAgent{auth: acl.NewAuthorizer("t", false, read)}}
	srv := New(cfg, agent)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/health/checks/db?index=3", nil))
	if rec.Code != http.StatusForbidden {
		t.Fatalf("blocking read after revocation = %d %q, want 403", rec.Code, rec.Body.String())
	}
}

// revokingAgent revokes the token while the read "blocks".
type revokingAgent struct{ aclAgent }

func (a *revokingAgent) RPC(ctx context.Context, method string, args, reply any) error {
	a.auth = acl.NewAuthorizer("t", false)
	return a.aclAgent.RPC(ctx, method, args, reply)
}

func (a *revokingAgent) ResolveToken(context.Context, string) (*acl.Authorizer, error) {
	return a.auth, nil
}

func TestRequestToken(t *testing.T) {
	tests := []struct {
		header, value, query, want string
	}{
		{"X-Consul-Token", "a", "", "a"},
		{"Authorization", "Bearer b", "", "b"},
		{"Authorization", "bearer  c ", "", "c"},
		{"Authorization", "Basic d", "", ""},
		{"", "", "token=e", "e"},
		{"X-Consul-Token", "f", "token=g", "f"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/v1/kv/x?"+tc.query, nil)
		if tc.header != "" {
			r.Header.Set(tc.header, tc.value)
		}
		if got := requestToken(r); got != tc.want {
			t.Errorf("requestToken(%s: %q, ?%s) = %q, want %q", tc.header, tc.value, tc.query, got, tc.want)
		}
	}
}

// BenchmarkGuardedRead is the ACL cost in the handler path: a cached
// health read with ACLs off, then on (guard, token resolution by the
// agent, one check).
func BenchmarkGuardedRead(b *testing.B) {
	rules, err := acl.ParseRules(`service_prefix "" { policy = "read" }`)
	if err != nil {
		b.Fatal(err)
	}
	for _, on := range []bool{false, true} {
		name := "acl-off"
		if on {
			name = "acl-on"
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.ACL = on
			srv := New(cfg, &aclAgent{auth: acl.NewAuthorizer("t", false, rules)})
			req := httptest.NewRequest("GET", "/v1/health/checks/web", nil)
			req.Header.Set("X-Consul-Token", "8f246b77-f3e1-ff88-5b48-8ec93abf3e05")
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}
