package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/rpc"
)

func TestParseQueryOptions(t *testing.T) {
	tests := []struct {
		query   string
		want    rpc.QueryOptions
		wantErr string
	}{
		{"", rpc.QueryOptions{}, ""},
		{"dc=DC2&stale", rpc.QueryOptions{Datacenter: "dc2", AllowStale: true}, ""},
		{"consistent&index=42&wait=1500ms", rpc.QueryOptions{RequireConsistent: true, MinIndex: 42, MaxWait: 1500 * time.Millisecond}, ""},
		{"index=7&wait=10", rpc.QueryOptions{MinIndex: 7, MaxWait: 10 * time.Second}, ""},
		{"wait=5m", rpc.QueryOptions{MaxWait: 5 * time.Minute}, ""},
		{"index=-1", rpc.QueryOptions{}, "index"},
		{"index=abc", rpc.QueryOptions{}, "index"},
		{"wait=soon", rpc.QueryOptions{}, "wait"},
		{"wait=-5s", rpc.QueryOptions{}, "wait"},
		{"stale&consistent", rpc.QueryOptions{}, "mutually exclusive"},
		{"dc=bad%20name", rpc.QueryOptions{}, "dc"},
		{"dc=" + strings.Repeat("a", 65), rpc.QueryOptions{}, "dc"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/catalog/nodes?"+tc.query, nil)
			got, err := parseQueryOptions(r)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseQueryOptions(%q) error = %v, want one naming %q", tc.query, err, tc.wantErr)
				}
				if code, _ := errorStatus(err); code != http.StatusBadRequest {
					t.Errorf("parseQueryOptions(%q) error maps to %d, want 400", tc.query, code)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseQueryOptions(%q) = %+v, %v; want %+v", tc.query, got, err, tc.want)
			}
		})
	}
}

func TestParseNodeMeta(t *testing.T) {
	q, _ := url.ParseQuery("node-meta=rack:r1&node-meta=env:prod:blue")
	got, err := parseNodeMeta(q)
	if err != nil || got["rack"] != "r1" || got["env"] != "prod:blue" {
		t.Errorf("parseNodeMeta = %v, %v", got, err)
	}
	q, _ = url.ParseQuery("node-meta=norack")
	if _, err := parseNodeMeta(q); err == nil {
		t.Errorf("parseNodeMeta(norack) succeeded, want an error")
	}
}

// stubAgent answers Health.ServiceNodes with fixed instances; the embedded
// interface makes it satisfy Agent whatever else the interface gains.
type stubAgent struct {
	Agent
	nodes []*catalog.CheckServiceNode
	index uint64
}

// FailoverTargets: the stub has no failover policy.
func (a *stubAgent) FailoverTargets(string) []string { return nil }

func (a *stubAgent) RPC(_ context.Context, method string, args, reply any) error {
	if method != rpc.MethodHealthService {
		return rpc.ErrNotFound
	}
	r := reply.(*rpc.Answer[[]*catalog.CheckServiceNode])
	r.Index, r.KnownLeader = max(a.index, 9), true
	r.Value = a.nodes
	return nil
}

func TestFilterAndHeaders(t *testing.T) {
	agent := &stubAgent{nodes: []*catalog.CheckServiceNode{
		{Node: &catalog.Node{Node: "a"}, Service: &catalog.Service{ID: "web1", Service: "web", Tags: []string{"v1"}}},
		{Node: &catalog.Node{Node: "b"}, Service: &catalog.Service{ID: "web2", Service: "web", Tags: []string{"v2"}}},
	}}
	srv := New(DefaultConfig(), agent)
	tests := []struct {
		query    string
		wantCode int
		wantIDs  []string
	}{
		{"", 200, []string{"web1", "web2"}},
		{"filter=" + url.QueryEscape(`Service.Tags contains "v2"`), 200, []string{"web2"}},
		{"filter=" + url.QueryEscape(`Node.Node == "a"`), 200, []string{"web1"}},
		{"filter=" + url.QueryEscape(`Service.Tags contains`), 400, nil},
		{"index=x", 400, nil},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/health/service/web?"+tc.query, nil))
			if rec.Code != tc.wantCode {
				t.Fatalf("GET ?%s = %d %q, want %d", tc.query, rec.Code, rec.Body.String(), tc.wantCode)
			}
			if tc.wantCode != 200 {
				if body := strings.TrimSpace(rec.Body.String()); body == "" || strings.Contains(body, "\n") {
					t.Errorf("GET ?%s error body %q, want one line", tc.query, body)
				}
				return
			}
			if got := rec.Header().Get("X-Consul-Index"); got != "9" {
				t.Errorf("X-Consul-Index = %q, want 9", got)
			}
			if got := rec.Header().Get("X-Consul-KnownLeader"); got != "true" {
				t.Errorf("X-Consul-KnownLeader = %q, want true", got)
			}
			var out []struct{ Service struct{ ID string } }
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, o := range out {
				ids = append(ids, o.Service.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.wantIDs, ",") {
				t.Errorf("GET ?%s IDs = %v, want %v", tc.query, ids, tc.wantIDs)
			}
		})
	}
}

// FuzzQueryParams feeds arbitrary query strings to every read endpoint's
// parameter parsing: each answers (any status) and never panics.
func FuzzQueryParams(f *testing.F) {
	for _, seed := range []string{"", "index=1&wait=5s", "dc=dc2&stale", "node-meta=a:b&tag=x&passing",
		"filter=Service.Tags%20contains%20%22a%22", "wait=99999999999999999999", "%zz", "index=18446744073709551616"} {
		f.Add(seed)
	}
	srv := New(DefaultConfig(), &stubAgent{})
	f.Fuzz(func(t *testing.T, query string) {
		for _, path := range []string{"/v1/health/service/web", "/v1/catalog/nodes", "/v1/catalog/services", "/v1/health/state/any"} {
			req := httptest.NewRequest("GET", path, nil)
			req.URL.RawQuery = query
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code == 0 {
				t.Fatalf("GET %s?%s answered nothing", path, query)
			}
		}
	})
}

// TestBodyCacheFollowsIndex checks that an answer is re-encoded exactly when
// its index moves: at the same index the cached bytes are served.
func TestBodyCacheFollowsIndex(t *testing.T) {
	agent := &stubAgent{nodes: []*catalog.CheckServiceNode{
		{Node: &catalog.Node{Node: "a"}, Service: &catalog.Service{ID: "web1", Service: "web"}},
	}}
	srv := New(DefaultConfig(), agent)
	get := func(query string) string {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/health/service/web?"+query, nil))
		return rec.Body.String()
	}
	first := get("index=1")
	agent.nodes[0].Service.ID = "changed-behind-the-index"
	if got := get("index=1&wait=1s"); got != first {
		t.Errorf("same index, new body %q; want the cached %q", got, first)
	}
	if got := get("pretty"); !strings.Contains(got, "changed-behind-the-index") {
		t.Errorf("?pretty is not cached, yet got %q", got)
	}
	agent.index = 10
	if got := get(""); !strings.Contains(got, "changed-behind-the-index") {
		t.Errorf("index moved, body %q still the cached one", got)
	}
}

func TestAgentMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Metrics, cfg.Gatherer = reg, reg
	cfg.MetricsJSON = func() (any, error) {
		return map[string]any{"Samples": []map[string]string{{"Name": "consul.api.http"}}}, nil
	}
	srv := New(cfg, &stubAgent{})
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}
	get("/v1/health/service/web")
	get("/v1/health/service/web?index=bad")
	get("/v1/kv/a?index=bad")
	prom := get("/v1/agent/metrics?format=prometheus")
	for _, want := range []string{
		`consul_api_http_count{method="GET",path="v1.health.service._"} 2`,
		`consul_api_http_count{method="GET",path="v1.kv._"} 1`,
		`consul_api_http{method="GET",path="v1.kv._",quantile="0.99"}`,
	} {
		if !strings.Contains(prom.Body.String(), want) {
			t.Errorf("prometheus metrics lack %q:\n%s", want, prom.Body.String())
		}
	}
	var summary struct{ Samples []struct{ Name string } }
	if err := json.Unmarshal(get("/v1/agent/metrics").Body.Bytes(), &summary); err != nil || len(summary.Samples) == 0 {
		t.Errorf("JSON metrics = %+v, %v; want samples", summary, err)
	}
	rec := httptest.NewRecorder()
	New(DefaultConfig(), &stubAgent{}).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/agent/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("metrics without a gatherer = %d, want 404", rec.Code)
	}
}

// BenchmarkRequestMetric is the cost per request of consul_api_http: the
// observer of one endpoint, its series made on the first call.
func BenchmarkRequestMetric(b *testing.B) {
	observe := newHTTPMetrics(prometheus.NewRegistry(), "consul").observer("GET /v1/health/service/{service}")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			observe(http.MethodGet, time.Now())
		}
	})
}

// TestTxnRegisterStormRefused: a transaction registering 50,000 nodes is
// refused whole, before anything is applied, with one line that says the
// limit: by its size when the body is past maxTxnBody, by its operation
// count otherwise.
func TestTxnRegisterStormRefused(t *testing.T) {
	srv := New(DefaultConfig(), &stubAgent{})
	for _, tc := range []struct {
		name, pad, want string
	}{
		{"large body", strings.Repeat("x", 64), "too large, max size: 4194304 bytes"},
		{"many operations", "", "too many operations (50000 > 64)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteByte('[')
			for i := range 50000 {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"Node":{"Verb":"set","Node":{"Node":"n%d%s","Address":"10.0.0.1"}}}`, i, tc.pad)
			}
			b.WriteByte(']')
			if tc.pad == "" && b.Len() > maxTxnBody {
				t.Fatalf("body of %d bytes, want it under %d to reach the operation count", b.Len(), maxTxnBody)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest("PUT", "/v1/txn", strings.NewReader(b.String())))
			msg := strings.TrimSpace(rec.Body.String())
			if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("PUT /v1/txn of 50,000 nodes (%d bytes) = %d %q, want 413 with one line saying %q", b.Len(), rec.Code, msg, tc.want)
			}
		})
	}
}
