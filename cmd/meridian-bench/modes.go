package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
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
			"-addr 127.0.0.1:8500 -path /v1/catalog/services -c 8 -n 10000",
		},
		setup: func(fs *flag.FlagSet, c *common) func(context.Context, *output) error {
			addCommon(fs, c, 64, 10*time.Second, 0)
			path := fs.String("path", "/v1/health/service/web?passing", "request `path` with its query")
			return func(ctx context.Context, out *output) error {
				if !strings.HasPrefix(*path, "/") {
					return badFlag("-path %q must start with /", *path)
				}
				r, err := c.requester("addr", c.addr, out)
				if err != nil {
					return err
				}
				defer r.client.CloseIdleConnections()
				res := runLoad(ctx, c.spec(), func(ctx context.Context, _ int, _, _ int64) error {
					status, _, _, err := r.do(ctx, "GET", *path, nil, 0)
					if err != nil {
						return err
					}
					if status < 200 || status > 299 {
						return fmt.Errorf("GET %s: status %d", *path, status)
					}
					return nil
				})
				out.report("get", fmt.Sprintf("get %s%s c=%d", r.base, *path, c.conns), res.n, res.errors, res.elapsed, &res.hist, res.firstErr)
				return nil
			}
		},
	}
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
