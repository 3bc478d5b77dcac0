package agent_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/agent"
	"github.com/meridian/meridian/httpapi"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/rpc"
)

// shortHTTPTimeouts are HTTP timeouts short enough for a test to watch
// them fire.
func shortHTTPTimeouts(c *httpapi.Config) {
	c.ReadHeaderTimeout = 300 * time.Millisecond
	c.BodyReadTimeout = 500 * time.Millisecond
	c.IdleTimeout = 500 * time.Millisecond
}

// closedWithin reads c until the agent closes it and returns what it sent
// and how long that took; it fails the test if c is still open after max.
func closedWithin(t *testing.T, c net.Conn, max time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(max))
	got, err := io.ReadAll(c)
	took := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s (read %q)", max, got)
	}
	return string(got), took
}

// TestHTTPSlowClientsAreClosed checks that a connection that sends nothing,
// sends its headers or its body a byte at a time, or idles after a request,
// is closed by the agent's timeouts instead of being held forever.
func TestHTTPSlowClientsAreClosed(t *testing.T) {
	a, _ := localAgent(t, nil, agent.Options{TuneHTTP: shortHTTPTimeouts})
	tests := []struct {
		name  string
		send  string        // sent at once after connecting
		trick string        // then sent a byte every 100ms
		want  string        // the answer must start with it ("" for none)
		max   time.Duration // the connection must be closed by then
	}{
		{name: "sends nothing", max: 5 * time.Second},
		{name: "slow headers", send: "GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n", trick: strings.Repeat("X-Slow: y\r\n", 100), max: 5 * time.Second},
		{name: "slow body", send: "PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", trick: strings.Repeat("v", 1000),
			want: "HTTP/1.1 408 ", max: 5 * time.Second},
		{name: "idle after a request", send: "GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n", want: "HTTP/1.1 200 ", max: 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", a.HTTPAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			defer wg.Wait()
			defer close(stop)
			wg.Go(func() { trickle(c, tc.trick, stop) })
			got, took := closedWithin(t, c, tc.max)
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("answer %q, want it to start with %q", got, tc.want)
			}
			t.Logf("closed after %s", took.Round(time.Millisecond))
		})
	}
}

// trickle writes s to c a byte every 100ms until stop or a write fails.
func trickle(c net.Conn, s string, stop <-chan struct{}) {
	for i := range len(s) {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := c.Write([]byte{s[i]}); err != nil {
			return
		}
	}
}

// TestHTTPManySlowBodiesAreClosed holds 150 connections that send their
// bodies a byte at a time and checks that the agent closes every one and
// still answers an honest client meanwhile.
func TestHTTPManySlowBodiesAreClosed(t *testing.T) {
	a, client := localAgent(t, nil, agent.Options{TuneHTTP: shortHTTPTimeouts})
	const n = 150
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	open := make(chan net.Conn, n)
	for range n {
		c, err := net.Dial("tcp", a.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { trickle(c, strings.Repeat("v", 1000), stop) })
		open <- c
	}
	close(open)
	if _, err := client.Status().Leader(); err != nil {
		t.Errorf("honest request while %d slow bodies are held: %v", n, err)
	}
	for c := range open {
		if got, _ := closedWithin(t, c, 10*time.Second); !strings.HasPrefix(got, "HTTP/1.1 408 ") {
			t.Errorf("slow body answered %q, want 408", got)
		}
	}
}

// TestHTTPMaxConnsPerClient checks limits.http_max_conns_per_client: past
// it a connection is answered 429 and closed, and a slot freed by closing a
// connection can be used again.
func TestHTTPMaxConnsPerClient(t *testing.T) {
	cfg := testcluster.AgentConfig(t, "node1")
	cfg.Limits.HTTPMaxConnsPerClient = 5
	a, _ := localAgent(t, cfg, agent.Options{})
	// localAgent's own client holds one connection of the five.
	var held []net.Conn
	for len(held) < 10 {
		c, err := net.Dial("tcp", a.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		code, err := rawGet(c, "/v1/status/leader")
		if err != nil {
			t.Fatalf("connection %d: %v", len(held), err)
		}
		if code == http.StatusTooManyRequests {
			c.Close()
			break
		}
		held = append(held, c)
	}
	if len(held) < 4 || len(held) > 5 {
		t.Fatalf("%d connections accepted before a 429, want 4 or 5 (limit 5, the test client holds one)", len(held))
	}
	extra, err := net.Dial("tcp", a.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	got, _ := closedWithin(t, extra, 5*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.1 429 ") || !strings.Contains(got, "too many concurrent connections") {
		t.Errorf("connection past the limit answered %q, want 429 too many concurrent connections", got)
	}
	held[0].Close()
	testcluster.Eventually(t, 5*time.Second, func() error {
		c, err := net.Dial("tcp", a.HTTPAddr())
		if err != nil {
			return err
		}
		defer c.Close()
		code, err := rawGet(c, "/v1/status/leader")
		if err != nil || code != 200 {
			return fmt.Errorf("after a slot was freed: %d, %v", code, err)
		}
		return nil
	})
}

// rawGet sends one keep-alive GET on c and reads the status of its answer.
func rawGet(c net.Conn, path string) (int, error) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// zeros is an endless body that allocates nothing.
type zeros struct{ left int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.left))
	clear(p[:n])
	z.left -= int64(n)
	return n, nil
}

// TestHTTPBodiesCappedBeforeRead sends 100 MB bodies to every write
// endpoint, declared (Content-Length) and streamed (chunked): each answers
// 413 naming the cap, and the agent allocates far less than the body.
func TestHTTPBodiesCappedBeforeRead(t *testing.T) {
	a, _ := localAgent(t, nil, agent.Options{})
	const size = 100 << 20
	endpoints := []string{
		"/v1/kv/big", "/v1/txn", "/v1/catalog/register", "/v1/catalog/deregister",
		"/v1/agent/service/register", "/v1/agent/check/register", "/v1/session/create",
		"/v1/coordinate/update", "/v1/query/q1", "/v1/agent/check/update/c1",
	}
	for _, path := range endpoints {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s chunked=%v", path, chunked), func(t *testing.T) {
				req, err := http.NewRequest(http.MethodPut, "http://"+a.HTTPAddr()+path, &zeros{left: size})
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				if !chunked {
					req.ContentLength = size
				}
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("PUT %s: %v", path, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				runtime.ReadMemStats(&after)
				if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "too large") {
					t.Errorf("PUT %s of %d bytes = %d %q, want 413 too large", path, size, resp.StatusCode, body)
				}
				if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
					t.Errorf("PUT %s of %d bytes allocated %d bytes in the process, want far less than the body", path, size, grew)
				}
			})
		}
	}
}

// TestHTTPWaitAndIndex checks that ?wait= is cut to max_query_time and that
// a malformed index or wait answers 400 with one line naming it.
func TestHTTPWaitAndIndex(t *testing.T) {
	cfg := testcluster.AgentConfig(t, "node1")
	cfg.MaxQueryTime, cfg.DefaultQueryTime = time.Second, time.Second
	a, client := localAgent(t, cfg, agent.Options{})
	if _, err := client.KV().Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
		t.Fatalf("KV put: %v", err)
	}
	_, meta, err := client.KV().Get("k", nil)
	if err != nil {
		t.Fatalf("KV get: %v", err)
	}
	for _, wait := range []string{"1h", "3600"} {
		start := time.Now()
		_, _, err = client.KV().Get("k", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Hour})
		if err != nil {
			t.Fatalf("blocking get: %v", err)
		}
		resp, err := http.Get("http://" + a.HTTPAddr() + "/v1/kv/k?index=" + strconv.FormatUint(meta.LastIndex, 10) + "&wait=" + wait)
		if err != nil {
			t.Fatalf("blocking get wait=%s: %v", wait, err)
		}
		resp.Body.Close()
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("two blocking gets with wait=%s took %s, want each cut to max_query_time (1s)", wait, took)
		}
	}

	tests := []struct{ query, want string }{
		{"index=abc", "index"},
		{"index=-1", "index"},
		{"index=99999999999999999999999", "index"},
		{"index=1&wait=soon", "wait"},
		{"index=1&wait=-5s", "wait"},
		{"index=1&wait=5parsecs", "wait"},
	}
	for _, tc := range tests {
		resp, err := http.Get("http://" + a.HTTPAddr() + "/v1/kv/k?" + tc.query)
		if err != nil {
			t.Fatalf("GET ?%s: %v", tc.query, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		msg := strings.TrimSpace(string(body))
		if resp.StatusCode != 400 || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("GET ?%s = %d %q, want 400 with one line naming %s", tc.query, resp.StatusCode, msg, tc.want)
		}
	}
}

// TestHTTPWritesRefuseCrossSiteRequests checks that a write cannot arrive
// as a request a web page may send to the agent without a CORS preflight
// (a POST with a form or text/plain body, or none): POST is accepted only
// where Consul accepts it, and only with a JSON body; PUT and DELETE, which
// a browser always preflights, keep accepting what curl -d sends.
func TestHTTPWritesRefuseCrossSiteRequests(t *testing.T) {
	a, client := localAgent(t, nil, agent.Options{})
	base := "http://" + a.HTTPAddr()
	query := `{"Name":"q","Service":{"Service":"web"}}`
	tests := []struct {
		name, method, path, contentType, body string
		want                                  int
	}{
		{"text/plain POST to kv", "POST", "/v1/kv/evil", "text/plain", "x", http.StatusMethodNotAllowed},
		{"form POST to kv", "POST", "/v1/kv/evil", "application/x-www-form-urlencoded", "x", http.StatusMethodNotAllowed},
		{"text/plain POST to txn", "POST", "/v1/txn", "text/plain", `[{"KV":{"Verb":"set","Key":"evil","Value":"eA=="}}]`, http.StatusMethodNotAllowed},
		{"bodyless POST to leave", "POST", "/v1/agent/leave", "", "", http.StatusMethodNotAllowed},
		{"text/plain POST to service register", "POST", "/v1/agent/service/register", "text/plain", `{"Name":"evil"}`, http.StatusMethodNotAllowed},
		{"text/plain POST to query create", "POST", "/v1/query", "text/plain", query, http.StatusUnsupportedMediaType},
		{"multipart POST to query create", "POST", "/v1/query", "multipart/form-data; boundary=x", query, http.StatusUnsupportedMediaType},
		{"untyped POST from a web page to query create", "POST", "/v1/query", "", query, http.StatusUnsupportedMediaType},
		{"form POST from a web page to query create", "POST", "/v1/query", "application/x-www-form-urlencoded", query, http.StatusUnsupportedMediaType},
		{"JSON POST to query create", "POST", "/v1/query", "application/json; charset=utf-8", query, http.StatusOK},
		{"curl -d POST to query create", "POST", "/v1/query", "application/x-www-form-urlencoded", `{"Name":"q2","Service":{"Service":"web"}}`, http.StatusOK},
		{"untyped POST of an old client to query create", "POST", "/v1/query", "", `{"Name":"q3","Service":{"Service":"web"}}`, http.StatusOK},
		{"curl -d PUT to kv", "PUT", "/v1/kv/fine", "application/x-www-form-urlencoded", "x", http.StatusOK},
		{"untyped DELETE of kv", "DELETE", "/v1/kv/fine", "", "", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if strings.Contains(tc.name, "web page") {
				req.Header.Set("Origin", "http://evil.example")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s (%s) = %d %q, want %d", tc.method, tc.path, tc.contentType, resp.StatusCode, body, tc.want)
			}
		})
	}
	if p, _, err := client.KV().Get("evil", nil); err != nil || p != nil {
		t.Errorf("a refused request wrote kv evil: %+v, %v", p, err)
	}
	if svcs, err := client.Agent().Services(); err != nil || svcs["evil"] != nil {
		t.Errorf("a refused request registered service evil: %v", err)
	}
}

// TestHTTPSMaxConnsPerClient checks that the HTTPS listener shares the
// per-client cap: past it a TLS connection is closed before any request is
// served, and those within it keep working.
func TestHTTPSMaxConnsPerClient(t *testing.T) {
	pki := testcluster.NewPKI(t)
	cfg := testcluster.AgentConfig(t, "server1")
	cfg.Server, cfg.Bootstrap = true, true
	pki.MTLS(cfg)
	cfg.Ports.HTTP, cfg.Ports.HTTPS = -1, 0
	cfg.Limits.HTTPMaxConnsPerClient = 3
	a, err := testcluster.StartAgent(t, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	cliCert, cliKey := pki.Cert(rpc.CertCLI, "dc1")
	tlsConf := &tls.Config{RootCAs: roots(t, pki.CAFile()), Certificates: []tls.Certificate{keyPair(t, cliCert, cliKey)}}
	get := func(c net.Conn) (int, error) { return rawGet(c, "/v1/status/leader") }
	var held []net.Conn
	for len(held) < 3 {
		c, err := tls.Dial("tcp", a.HTTPSAddr(), tlsConf)
		if err != nil {
			t.Fatalf("TLS connection %d within the limit: %v", len(held), err)
		}
		t.Cleanup(func() { c.Close() })
		if code, err := get(c); err != nil || code != 200 {
			t.Fatalf("TLS connection %d within the limit: %d, %v", len(held), code, err)
		}
		held = append(held, c)
	}
	c, err := tls.Dial("tcp", a.HTTPSAddr(), tlsConf)
	if err == nil {
		defer c.Close()
		if code, err := get(c); err == nil {
			t.Errorf("a fourth TLS connection with a limit of 3 answered %d, want it closed", code)
		}
	}
	for i, c := range held {
		if code, err := get(c); err != nil || code != 200 {
			t.Errorf("held TLS connection %d after the refusal: %d, %v", i, code, err)
		}
	}
}
