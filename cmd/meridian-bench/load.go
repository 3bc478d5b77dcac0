package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// newClient returns an HTTP/1.1 client that keeps up to conns idle
// connections to one host, so conns closed-loop workers each reuse their own
// keep-alive connection, as wrk does. It asks for no compression and ignores
// proxy settings: the target is a local agent.
func newClient(conns int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// requester sends requests to one agent, with the token set when there is one.
type requester struct {
	base   string // http://host:port
	token  string
	client *http.Client
}

// do sends a request and returns the status and the body, read up to limit
// bytes and the rest discarded, so the connection can be reused.
func (r *requester) do(ctx context.Context, method, path string, body []byte, limit int64) (int, []byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if r.token != "" {
		req.Header.Set("X-Consul-Token", r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	var got []byte
	if limit > 0 {
		got, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	}
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return resp.StatusCode, nil, nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return resp.StatusCode, got, resp.Header, nil
}

// expectOK sends a request and fails unless the status is 2xx and, when want
// is not empty, the trimmed body equals want (Consul answers writes with
// "true").
func (r *requester) expectOK(ctx context.Context, method, path string, body []byte, want string) error {
	status, got, _, err := r.do(ctx, method, path, body, 512)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("%s %s: status %d: %s", method, path, status, strings.TrimSpace(string(got)))
	}
	if want != "" && strings.TrimSpace(string(got)) != want {
		return fmt.Errorf("%s %s: body %q, want %q", method, path, truncate(got, 64), want)
	}
	return nil
}

// truncate returns b as a string of at most n bytes.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// kvPath returns the API path of a KV key, each segment escaped.
func kvPath(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/v1/kv/" + strings.Join(segs, "/")
}

// loadSpec bounds a closed-loop run.
type loadSpec struct {
	workers  int           // concurrent workers
	duration time.Duration // no request starts after this long
	limit    int64         // no more than this many requests in all; 0: no limit
}

// loadResult is what a closed-loop run measured.
type loadResult struct {
	n        int64         // requests completed, successful or not
	errors   int64         // requests that failed
	elapsed  time.Duration // from the start until the last worker stopped
	hist     histogram     // latencies of successful requests
	firstErr error         // the first failure seen, for the report
}

// callFunc sends one request. worker is the worker's number (0-based), local
// the worker's own request count and global the run's (both 0-based).
type callFunc func(ctx context.Context, worker int, local, global int64) error

// runLoad runs spec.workers closed loops of call until spec.duration has
// passed or spec.limit requests have been started, whichever comes first,
// then waits for the requests in flight. A request cut short because ctx was
// cancelled is neither counted nor an error.
func runLoad(ctx context.Context, spec loadSpec, call callFunc) loadResult {
	start := time.Now()
	deadline := start.Add(spec.duration)
	var (
		issued  atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		res     loadResult
		workers = make([]histogram, spec.workers)
	)
	for w := 0; w < spec.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &workers[w]
			var n, errs int64
			var firstErr error
			for local := int64(0); ctx.Err() == nil && time.Now().Before(deadline); local++ {
				global := issued.Add(1) - 1
				if spec.limit > 0 && global >= spec.limit {
					break
				}
				t0 := time.Now()
				err := call(ctx, w, local, global)
				lat := time.Since(t0)
				if ctx.Err() != nil {
					break
				}
				n++
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				h.record(lat)
			}
			mu.Lock()
			res.n += n
			res.errors += errs
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	for i := range workers {
		res.hist.merge(&workers[i])
	}
	return res
}
