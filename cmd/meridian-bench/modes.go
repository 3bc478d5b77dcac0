package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// getMode is closed-loop GETs of one path: the shape of the shared perf-http
// script, with latency percentiles added.
func getMode() mode {
	return mode{
		name:    "get",
		summary: "closed-loop GETs of one path over -c keep-alive connections; non-2xx answers are errors",
		examples: []string{
			"-addr 127.0.0.1:8500 -path '/v1/health/service/web?passing' -c 64 -duration 10s",
			"-addr 127.0.0.1:8500 -path '/v1/health/service/big?passing' -c 64 -gzip -floor",
			"-addr 127.0.0.1:8500 -path /v1/catalog/services -c 8 -n 10000",
		},
		setup: func(fs *flag.FlagSet, c *common) func(context.Context, *output) error {
			addCommon(fs, c, 64, 10*time.Second, 0)
			path := fs.String("path", "/v1/health/service/web?passing", "request `path` with its query")
			gz := fs.Bool("gzip", false, "ask for gzip and decode the answers, as Go's default HTTP client (consul/api) does")
			raw := fs.Bool("raw", false, "with -gzip, read the compressed answers without decoding them: what the agent sends, without the reader's inflating")
			pid := fs.Int("pid", 0, "`pid` of the agent (Linux): report its CPU time per request during the load (agent_cpu_us=)")
			floor := fs.Bool("floor", false, "then run the same load against a static server in this process that answers the agent's bytes (RESULT mode=get-floor first): what copying them costs on this machine")
			return func(ctx context.Context, out *output) error {
				if !strings.HasPrefix(*path, "/") {
					return badFlag("-path %q must start with /", *path)
				}
				if *raw && !*gz {
					return badFlag("-raw needs -gzip")
				}
				r, err := c.requester("addr", c.addr, out)
				if err != nil {
					return err
				}
				defer r.client.CloseIdleConnections()
				g := getReader{gzip: *gz, decode: *gz && !*raw}
				what := fmt.Sprintf("get %s%s c=%d%s", r.base, *path, c.conns, g.label())
				res := getLoad(ctx, c, r, *path, g, *pid)
				if *floor {
					if err := getFloor(ctx, c, r, *path, g, out); err != nil {
						return err
					}
				}
				out.report("get", what+res.extra(), res.n, res.errors, res.elapsed, &res.hist, res.firstErr, res.fields()...)
				return nil
			}
		},
	}
}

// label names how g reads, for the report.
func (g getReader) label() string {
	switch {
	case g.decode:
		return " gzip"
	case g.gzip:
		return " gzip raw"
	}
	return ""
}

// idleWindow is how long get -pid watches the agent idle before the load.
const idleWindow = time.Second

// getResult is a get run's load result with what it read and what it cost
// the tool itself.
type getResult struct {
	loadResult
	bytes     int64         // body bytes of one answer as sent, the last read
	cpu       time.Duration // CPU time of this process during the run; -1: unknown
	agentCPU  float64       // CPU seconds of the -pid process during the run, less its idle rate's; -1: not read
	agentIdle float64       // the -pid process's CPU seconds per second before the load (raft, gossip)
}

// fields are the RESULT line's fields of the answer's size and the tool's
// CPU per request (-1: unknown).
func (r getResult) fields() []string {
	us := -1.0
	if r.cpu >= 0 && r.n > 0 {
		us = float64(r.cpu.Microseconds()) / float64(r.n)
	}
	f := []string{fmt.Sprintf("bytes=%d", r.bytes), fmt.Sprintf("tool_cpu_us=%.0f", us)}
	if r.agentCPU >= 0 && r.n > 0 {
		f = append(f, fmt.Sprintf("agent_cpu_us=%.0f", r.agentCPU*1e6/float64(r.n)), fmt.Sprintf("agent_idle_pct=%.1f", r.agentIdle*100))
	}
	return f
}

// extra is the human report's note of the answer's size and the tool's
// CPU per request.
func (r getResult) extra() string {
	s := fmt.Sprintf(", %d bytes each", r.bytes)
	if r.cpu >= 0 && r.n > 0 {
		s += fmt.Sprintf(", tool CPU %.1fs (%.0f µs/request)", r.cpu.Seconds(), float64(r.cpu.Microseconds())/float64(r.n))
	}
	if r.agentCPU >= 0 && r.n > 0 {
		s += fmt.Sprintf(", agent CPU %.1fs (%.0f µs/request, less its idle %.1f%% of a core)", r.agentCPU, r.agentCPU*1e6/float64(r.n), r.agentIdle*100)
	}
	return s
}

// getLoad runs the closed-loop GETs of path through r, read as g says,
// each worker reusing its buffers. Each worker's connection is opened by
// one untimed GET first, so the figures are of kept-alive connections, as
// Consul's clients keep them: 64 connects racing the first answers would
// otherwise be the p99 of a short run. With pid > 0 it reads that
// process's CPU time around the timed load (/proc, 10 ms ticks), less what
// it spends idle (read over idleWindow before the load): an agent's Raft
// and gossip are not its answers' cost.
func getLoad(ctx context.Context, c *common, r *requester, path string, g getReader, pid int) getResult {
	idle := 0.0
	if pid > 0 {
		t0, c0 := time.Now(), readProc(pid).cpu
		select {
		case <-time.After(idleWindow):
		case <-ctx.Done():
		}
		idle = (readProc(pid).cpu - c0) / time.Since(t0).Seconds()
	}
	workers := make([]getWorker, c.conns)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = g.get(ctx, r, &workers[i], path) // the run counts failures
		}()
	}
	wg.Wait()
	var agent0 procStat
	if pid > 0 {
		agent0 = readProc(pid)
	}
	cpu0 := selfCPU()
	res := runLoad(ctx, c.spec(), func(ctx context.Context, worker int, _, _ int64) error {
		return g.get(ctx, r, &workers[worker], path)
	})
	out := getResult{loadResult: res, cpu: -1, agentCPU: -1, agentIdle: idle}
	if pid > 0 {
		out.agentCPU = readProc(pid).cpu - agent0.cpu - idle*res.elapsed.Seconds()
	}
	if cpu1 := selfCPU(); cpu0 >= 0 && cpu1 >= 0 {
		out.cpu = cpu1 - cpu0
	}
	for _, w := range workers {
		out.bytes = max(out.bytes, w.bytes)
	}
	return out
}

// getFloor reads path once from the agent as the load read it (compressed
// when g asks for gzip) and runs the same load against a static server on a
// loopback port of this process that answers those bytes with their
// headers. The tool's CPU it reports is the static server's and the
// load's together.
func getFloor(ctx context.Context, c *common, agent *requester, path string, g getReader, out *output) error {
	req, err := http.NewRequestWithContext(ctx, "GET", agent.base+path, nil)
	if err != nil {
		return err
	}
	if g.gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	if agent.token != "" {
		req.Header.Set("X-Consul-Token", agent.token)
	}
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: c.timeout}
	defer raw.CloseIdleConnections()
	resp, err := raw.Do(req)
	if err != nil {
		return fmt.Errorf("floor: GET %s: %w", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("floor: GET %s: read body: %w", path, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	ctype, cenc := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Encoding")
	length := strconv.Itoa(len(body))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", ctype)
		if cenc != "" {
			h.Set("Content-Encoding", cenc)
		}
		h.Set("Content-Length", length)
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	static := &requester{base: "http://" + ln.Addr().String(), client: newClient(c.conns, c.timeout)}
	defer static.client.CloseIdleConnections()
	res := getLoad(ctx, c, static, path, g, 0)
	encoding := "identity"
	if cenc != "" {
		encoding = cenc
	}
	out.report("get-floor", fmt.Sprintf("floor: a static server of the same %d bytes (%s), c=%d%s%s", len(body), encoding, c.conns, g.label(), res.extra()), res.n, res.errors, res.elapsed, &res.hist, res.firstErr, res.fields()...)
	return nil
}

// kvPutMode is closed-loop PUTs of fresh values to unique keys: the shape of
// the shared perf-kv script.
func kvPutMode() mode {
	return mode{
		name:    "kv-put",
		summary: "closed-loop PUTs of random -size byte values to unique keys <prefix><worker>-<n>; an answer other than true is an error",
		examples: []string{
			"-addr 127.0.0.1:8500 -c 32 -duration 10s -size 100 -prefix bench/",
		},
		setup: func(fs *flag.FlagSet, c *common) func(context.Context, *output) error {
			addCommon(fs, c, 32, 10*time.Second, 0)
			size := fs.Int("size", 100, "value size in `bytes`")
			prefix := fs.String("prefix", "bench/", "key prefix")
			return func(ctx context.Context, out *output) error {
				if *size < 0 || *size > 512*1024 {
					return badFlag("-size must be between 0 and 524288, got %d", *size)
				}
				r, err := c.requester("addr", c.addr, out)
				if err != nil {
					return err
				}
				defer r.client.CloseIdleConnections()
				// Each worker has its own generator and buffer: no shared state on the hot path.
				rngs := make([]*rand.Rand, c.conns)
				bufs := make([][]byte, c.conns)
				for i := range rngs {
					rngs[i] = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
					bufs[i] = make([]byte, *size)
				}
				res := runLoad(ctx, c.spec(), func(ctx context.Context, w int, local, _ int64) error {
					fillRandom(rngs[w], bufs[w])
					return r.expectOK(ctx, "PUT", kvPath(fmt.Sprintf("%s%d-%d", *prefix, w, local)), bufs[w], "true")
				})
				what := fmt.Sprintf("kv-put %s/v1/kv/%s<worker>-<n> c=%d size=%d", r.base, *prefix, c.conns, *size)
				out.report("kv-put", what, res.n, res.errors, res.elapsed, &res.hist, res.firstErr)
				return nil
			}
		},
	}
}

// kvGetMode is closed-loop GETs of one key, created first.
func kvGetMode() mode {
	return mode{
		name:    "kv-get",
		summary: "closed-loop GETs of one KV key, written first with a -size byte value; -stale reads from any server",
		examples: []string{
			"-addr 127.0.0.1:8500 -c 16 -key bench/k -duration 10s",
			"-addr 127.0.0.1:8500 -c 16 -key bench/k -stale",
		},
		setup: func(fs *flag.FlagSet, c *common) func(context.Context, *output) error {
			addCommon(fs, c, 16, 10*time.Second, 0)
			key := fs.String("key", "bench/k", "the `key` to read")
			stale := fs.Bool("stale", false, "add ?stale: let any server answer")
			size := fs.Int("size", 100, "size in `bytes` of the value written first")
			return func(ctx context.Context, out *output) error {
				if *key == "" {
					return badFlag("-key must not be empty")
				}
				if *size < 0 || *size > 512*1024 {
					return badFlag("-size must be between 0 and 524288, got %d", *size)
				}
				r, err := c.requester("addr", c.addr, out)
				if err != nil {
					return err
				}
				defer r.client.CloseIdleConnections()
				value := make([]byte, *size)
				fillRandom(rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), value)
				if err := r.expectOK(ctx, "PUT", kvPath(*key), value, "true"); err != nil {
					return fmt.Errorf("create key: %w", err)
				}
				path := kvPath(*key)
				if *stale {
					path += "?stale"
				}
				res := runLoad(ctx, c.spec(), func(ctx context.Context, _ int, _, _ int64) error {
					status, _, _, err := r.do(ctx, "GET", path, nil, 0)
					if err != nil {
						return err
					}
					if status < 200 || status > 299 {
						return fmt.Errorf("GET %s: status %d", path, status)
					}
					return nil
				})
				out.report("kv-get", fmt.Sprintf("kv-get %s%s c=%d", r.base, path, c.conns), res.n, res.errors, res.elapsed, &res.hist, res.firstErr)
				return nil
			}
		},
	}
}

// registerMode registers (or deregisters) bench-node-1..N, each with one
// instance of a service and a service check, so get mode and the shared wrk
// scripts have data to read.
func registerMode() mode {
	return mode{
		name:    "register",
		summary: "registers -instances instances of -service on nodes bench-node-1..N (127.0.0.1) with a service check; -deregister removes those nodes",
		examples: []string{
			"-addr 127.0.0.1:8500 -service web -instances 20",
			"-addr 127.0.0.1:8500 -service web -instances 20 -passing=false",
			"-addr 127.0.0.1:8500 -instances 20 -deregister",
		},
		setup: func(fs *flag.FlagSet, c *common) func(context.Context, *output) error {
			addCommon(fs, c, 4, 60*time.Second, 0)
			service := fs.String("service", "web", "service `name`")
			instances := fs.Int("instances", 20, "how many instances (nodes bench-node-1..N)")
			passing := fs.Bool("passing", true, "register the service checks as passing (false: critical)")
			port := fs.Int("port", 8080, "service `port`")
			dereg := fs.Bool("deregister", false, "deregister nodes bench-node-1..N instead")
			return func(ctx context.Context, out *output) error {
				switch {
				case *instances < 1:
					return badFlag("-instances must be at least 1, got %d", *instances)
				case *service == "" && !*dereg:
					return badFlag("-service must not be empty")
				case *port < 0 || *port > 65535:
					return badFlag("-port must be between 0 and 65535, got %d", *port)
				}
				r, err := c.requester("addr", c.addr, out)
				if err != nil {
					return err
				}
				defer r.client.CloseIdleConnections()
				status := "passing"
				if !*passing {
					status = "critical"
				}
				spec := c.spec()
				spec.limit = int64(*instances)
				if c.n > 0 && c.n < spec.limit {
					spec.limit = c.n
				}
				res := runLoad(ctx, spec, func(ctx context.Context, _ int, _, global int64) error {
					node := fmt.Sprintf("bench-node-%d", global+1)
					if *dereg {
						body, _ := json.Marshal(map[string]string{"Node": node})
						return r.expectOK(ctx, "PUT", "/v1/catalog/deregister", body, "true")
					}
					return r.expectOK(ctx, "PUT", "/v1/catalog/register", registration(node, *service, *port, status), "true")
				})
				verb := "register"
				if *dereg {
					verb = "deregister"
				}
				if res.n < spec.limit && res.firstErr == nil && ctx.Err() == nil {
					res.firstErr = fmt.Errorf("-duration %v ran out after %d of %d nodes", c.duration, res.n, spec.limit)
					res.errors += spec.limit - res.n
				}
				what := fmt.Sprintf("%s %s service=%s nodes=bench-node-1..%d", verb, r.base, *service, spec.limit)
				out.report(verb, what, res.n, res.errors, res.elapsed, &res.hist, res.firstErr)
				return nil
			}
		},
	}
}

// catalogService is the service part of a catalog registration.
type catalogService struct {
	ID      string            `json:"ID"`
	Service string            `json:"Service"`
	Address string            `json:"Address,omitempty"`
	Port    int               `json:"Port"`
	Meta    map[string]string `json:"Meta,omitempty"`
}

// catalogCheck is the check part of a catalog registration.
type catalogCheck struct {
	Node      string `json:"Node"`
	CheckID   string `json:"CheckID"`
	Name      string `json:"Name"`
	Status    string `json:"Status"`
	ServiceID string `json:"ServiceID"`
}

// catalogRegistration is the body of PUT /v1/catalog/register.
type catalogRegistration struct {
	Node    string          `json:"Node"`
	Address string          `json:"Address"`
	Service *catalogService `json:"Service,omitempty"`
	Check   *catalogCheck   `json:"Check,omitempty"`
}

// registration returns the body registering one instance of service on node,
// at 127.0.0.1, with a service check in the given status.
func registration(node, service string, port int, status string) []byte {
	body, _ := json.Marshal(catalogRegistration{
		Node:    node,
		Address: "127.0.0.1",
		Service: &catalogService{ID: service, Service: service, Address: "127.0.0.1", Port: port},
		Check: &catalogCheck{
			Node: node, CheckID: "service:" + service, Name: service + " check",
			Status: status, ServiceID: service,
		},
	})
	return body
}

// requester builds a requester for the address in the named flag, with a
// client sized for c.conns connections.
func (c *common) requester(flagName, addr string, out *output) (*requester, error) {
	base, err := baseURL(flagName, addr, out.stderr)
	if err != nil {
		return nil, err
	}
	return &requester{base: base, token: c.token, client: newClient(c.conns, c.timeout)}, nil
}

// spec returns the load bounds the common flags ask for.
func (c *common) spec() loadSpec {
	return loadSpec{workers: c.conns, duration: c.duration, limit: c.n}
}

// fillRandom fills b with random letters and digits, so values are printable.
func fillRandom(rng *rand.Rand, b []byte) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
}
