package httpapi

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHTTP2WithoutTLS checks that the HTTP port answers HTTP/2 with prior
// knowledge (h2c) and HTTP/1.1 on the same listener.
func TestHTTP2WithoutTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(DefaultConfig(), &stubAgent{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve = %v, want nil after Shutdown", err)
		}
	})
	url := "http://" + ln.Addr().String() + "/v1/health/service/web"
	for _, tc := range []struct {
		name      string
		protocols func(*http.Protocols)
		wantMajor int
	}{
		{"h2c", func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }, 2},
		{"http1", func(p *http.Protocols) { p.SetHTTP1(true) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p http.Protocols
			tc.protocols(&p)
			tr := &http.Transport{Protocols: &p}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(url)
			if err != nil {
				t.Fatalf("GET %s over %s: %v", url, tc.name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != tc.wantMajor || !strings.HasPrefix(string(body), "[") {
				t.Errorf("GET over %s = %d, HTTP/%d, %q; want 200, HTTP/%d, a JSON list", tc.name, resp.StatusCode, resp.ProtoMajor, body, tc.wantMajor)
			}
			if got := resp.Header.Get("X-Consul-Index"); got == "" {
				t.Errorf("GET over %s: no X-Consul-Index", tc.name)
			}
		})
	}
}
