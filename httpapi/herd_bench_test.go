package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/meridian/meridian/catalog"
)

// BenchmarkBlockingHealthAnswer is what httpapi spends on each watcher
// that a change wakes: the answer of a blocking health read, already
// encoded for its index by another watcher (the server's part, and the
// connection's, left out).
func BenchmarkBlockingHealthAnswer(b *testing.B) {
	a := &stubAgent{nodes: []*catalog.CheckServiceNode{{
		Node:    &catalog.Node{Node: "herd-node", Address: "127.0.0.1"},
		Service: &catalog.Service{ID: "herd", Service: "herd", Address: "127.0.0.1", Port: 8080},
		Checks:  []*catalog.HealthCheck{{Node: "herd-node", CheckID: "herd-check", Name: "herd check", Status: "passing", ServiceID: "herd", ServiceName: "herd"}},
	}}}
	srv := New(DefaultConfig(), a)
	req := httptest.NewRequest("GET", "/v1/health/service/herd?index=4&wait=300000ms", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
