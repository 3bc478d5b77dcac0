package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fillMode registers a large catalog: -nodes nodes with -services services
// each, every service with -checks checks. The first -big nodes carry one
// instance of the service named by -big-service; the other services are
// spread over -names names per slot, so that most services have a few
// dozen instances, as in a real datacenter.
func fillMode() mode {
	return mode{
		name:    "fill",
		summary: "registers -nodes nodes with -services services of -checks checks each (the first -big nodes hold service -big-service); -deregister removes them",
		examples: []string{
			"-addr 127.0.0.1:8500 -nodes 10000 -services 5 -checks 2 -big 1000 -c 64",
			"-addr 127.0.0.1:8500 -nodes 10000 -deregister",
		},
		setup: func(fs *flag.FlagSet, c *common) func(context.Context, *output) error {
			addCommon(fs, c, 64, 30*time.Minute, 0)
			nodes := fs.Int("nodes", 1000, "nodes to register (fill-node-0..N-1, addresses 10.x.y.z)")
			services := fs.Int("services", 5, "services per node")
			checks := fs.Int("checks", 2, "checks per service")
			big := fs.Int("big", 1000, "how many of the first nodes hold an instance of -big-service")
			bigName := fs.String("big-service", "big", "`name` of the service on the first -big nodes")
			names := fs.Int("names", 200, "distinct service names per service slot")
			dereg := fs.Bool("deregister", false, "deregister the nodes instead")
			return func(ctx context.Context, out *output) error {
				switch {
				case *nodes < 1 || *nodes > 1000000:
					return badFlag("-nodes must be 1-1000000, got %d", *nodes)
				case *services < 1 || *services > 100:
					return badFlag("-services must be 1-100, got %d", *services)
				case *checks < 0 || *checks > 20:
					return badFlag("-checks must be 0-20, got %d", *checks)
				case *big < 0 || *names < 1:
					return badFlag("-big must not be negative and -names must be positive")
				}
				r, err := c.requester("addr", c.addr, out)
				if err != nil {
					return err
				}
				defer r.client.CloseIdleConnections()
				spec := c.spec()
				spec.limit = int64(*nodes) * int64(*services)
				if *dereg {
					spec.limit = int64(*nodes)
				}
				res := runLoad(ctx, spec, func(ctx context.Context, _ int, _, global int64) error {
					if *dereg {
						body, _ := json.Marshal(map[string]string{"Node": fillNode(int(global))})
						return r.expectOK(ctx, "PUT", "/v1/catalog/deregister", body, "true")
					}
					n, slot := int(global) / *services, int(global)%*services
					return r.expectOK(ctx, "PUT", "/v1/catalog/register", fillRegistration(n, slot, *checks, *big, *bigName, *names), "true")
				})
				if res.n < spec.limit && res.firstErr == nil && ctx.Err() == nil {
					res.firstErr = fmt.Errorf("-duration %v ran out after %d of %d registrations", c.duration, res.n, spec.limit)
					res.errors += spec.limit - res.n
				}
				what := fmt.Sprintf("fill %s nodes=%d services=%d checks=%d big=%d", r.base, *nodes, *services, *checks, *big)
				if *dereg {
					what = fmt.Sprintf("fill -deregister %s nodes=%d", r.base, *nodes)
				}
				out.report("fill", what, res.n, res.errors, res.elapsed, &res.hist, res.firstErr)
				return nil
			}
		},
	}
}

func fillNode(n int) string { return "fill-node-" + strconv.Itoa(n) }

// fillRegistration is the registration of service slot of node n with its
// checks.
func fillRegistration(n, slot, checks, big int, bigName string, names int) []byte {
	name := fmt.Sprintf("svc-%d-%d", slot, n%names)
	if slot == 0 && n < big {
		name = bigName
	}
	id := name + "-" + strconv.Itoa(slot)
	type check struct {
		CheckID, Name, Status, ServiceID, Output string
	}
	reg := struct {
		Node     string
		Address  string
		NodeMeta map[string]string
		Service  catalogService
		Checks   []check
	}{
		Node:     fillNode(n),
		Address:  fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255),
		NodeMeta: map[string]string{"rack": "rack-" + strconv.Itoa(n%20), "os": "linux"},
		Service: catalogService{
			ID: id, Service: name, Port: 8000 + slot,
			Meta: map[string]string{"version": "1." + strconv.Itoa(n%5)},
		},
	}
	for k := range checks {
		reg.Checks = append(reg.Checks, check{
			CheckID: id + "-check-" + strconv.Itoa(k), Name: name + " check " + strconv.Itoa(k),
			Status: "passing", ServiceID: id, Output: "HTTP GET http://localhost:" + strconv.Itoa(8000+slot) + "/health: 200 OK",
		})
	}
	b, _ := json.Marshal(reg)
	return b
}

// syncMode simulates the anti-entropy of many client agents: each agent
// owns a node with -services services (with one check each), registered
// once at the start; then every agent runs -rounds full syncs as an agent
// does (read its node's services and checks from the catalog, register
// what differs) or, with -blind, registers every service again without
// looking. It reports the syncs, the registrations sent, and the Raft
// entries the servers applied meanwhile (from -metrics-addr).
func syncMode() mode {
	return mode{
		name:    "sync",
		summary: "-agents simulated agents each fully sync -services unchanged services -rounds times; reports registrations sent and Raft entries applied",
		examples: []string{
			"-addr 127.0.0.1:8500 -agents 200 -services 50 -rounds 3 -c 32",
			"-addr 127.0.0.1:8500 -agents 200 -services 50 -blind",
		},
		setup: func(fs *flag.FlagSet, c *common) func(context.Context, *output) error {
			addCommon(fs, c, 32, 10*time.Minute, 0)
			agents := fs.Int("agents", 200, "simulated agents (nodes sync-agent-0..N-1)")
			services := fs.Int("services", 50, "services per agent")
			rounds := fs.Int("rounds", 3, "full syncs per agent")
			blind := fs.Bool("blind", false, "register every service on each sync without reading the catalog first")
			metricsAddr := fs.String("metrics-addr", "", "`address` of the agent whose consul_raft_fsm_applyBatchNum_sum counts the Raft entries (default -addr)")
			return func(ctx context.Context, out *output) error {
				switch {
				case *agents < 1 || *services < 1 || *rounds < 1:
					return badFlag("-agents, -services and -rounds must be positive")
				}
				r, err := c.requester("addr", c.addr, out)
				if err != nil {
					return err
				}
				defer r.client.CloseIdleConnections()
				m := r
				if *metricsAddr != "" {
					if m, err = c.requester("metrics-addr", *metricsAddr, out); err != nil {
						return err
					}
				}
				// Register every agent's services once.
				spec := c.spec()
				spec.limit = int64(*agents) * int64(*services)
				res := runLoad(ctx, spec, func(ctx context.Context, _ int, _, global int64) error {
					return r.expectOK(ctx, "PUT", "/v1/catalog/register", syncRegistration(int(global) / *services, int(global)%*services), "true")
				})
				if res.errors > 0 {
					return fmt.Errorf("register the agents' services: %d errors, first: %w", res.errors, res.firstErr)
				}
				before, err := raftApplied(ctx, m)
				if err != nil {
					return err
				}
				var sent int64
				spec = c.spec()
				spec.limit = int64(*agents) * int64(*rounds)
				sentBy := make([]int64, spec.workers)
				res = runLoad(ctx, spec, func(ctx context.Context, worker int, _, global int64) error {
					n, err := syncAgent(ctx, r, int(global)%*agents, *services, *blind)
					sentBy[worker] += int64(n)
					return err
				})
				for _, n := range sentBy {
					sent += n
				}
				after, err := raftApplied(ctx, m)
				if err != nil {
					return err
				}
				kind := "diff"
				if *blind {
					kind = "blind"
				}
				fmt.Fprintf(out.stdout, "sync %s: %d agents x %d services, %d full syncs in %.2fs: %d registrations sent, %.0f Raft entries applied (%.1f/s)\n",
					kind, *agents, *services, res.n, res.elapsed.Seconds(), sent, after-before, (after-before)/res.elapsed.Seconds())
				what := fmt.Sprintf("sync %s %s agents=%d services=%d", kind, r.base, *agents, *services)
				out.report("sync", what, res.n, res.errors, res.elapsed, &res.hist, res.firstErr)
				return nil
			}
		},
	}
}

func syncNode(a int) string { return "sync-agent-" + strconv.Itoa(a) }

func syncRegistration(a, s int) []byte {
	id := "svc-" + strconv.Itoa(s)
	b, _ := json.Marshal(map[string]any{
		"Node": syncNode(a), "Address": fmt.Sprintf("10.200.%d.%d", a>>8&255, a&255),
		"Service": catalogService{ID: id, Service: id, Port: 9000 + s, Meta: map[string]string{"agent": strconv.Itoa(a)}},
		"Check":   map[string]string{"CheckID": id + "-check", "Name": id + " check", "Status": "passing", "ServiceID": id, "Output": "ok"},
	})
	return b
}

// syncAgent runs one full sync of agent a and returns the registrations it
// sent.
func syncAgent(ctx context.Context, r *requester, a, services int, blind bool) (int, error) {
	changed := make([]bool, services)
	if blind {
		for i := range changed {
			changed[i] = true
		}
	} else {
		var node struct {
			Services map[string]struct {
				ID, Service string
				Port        int
				Meta        map[string]string
			}
		}
		if err := getJSON(ctx, r, "/v1/catalog/node/"+url.PathEscape(syncNode(a)), &node); err != nil {
			return 0, err
		}
		var checks []struct{ CheckID, Status, Output string }
		if err := getJSON(ctx, r, "/v1/health/node/"+url.PathEscape(syncNode(a)), &checks); err != nil {
			return 0, err
		}
		for i := range changed {
			id := "svc-" + strconv.Itoa(i)
			s, ok := node.Services[id]
			changed[i] = !ok || s.Service != id || s.Port != 9000+i || s.Meta["agent"] != strconv.Itoa(a)
			if !slices.ContainsFunc(checks, func(c struct{ CheckID, Status, Output string }) bool {
				return c.CheckID == id+"-check" && c.Status == "passing" && c.Output == "ok"
			}) {
				changed[i] = true
			}
		}
	}
	sent := 0
	for i, ch := range changed {
		if !ch {
			continue
		}
		sent++
		if err := r.expectOK(ctx, "PUT", "/v1/catalog/register", syncRegistration(a, i), "true"); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

func getJSON(ctx context.Context, r *requester, path string, v any) error {
	status, body, _, err := r.do(ctx, "GET", path, nil, 64<<20)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %s", path, status, truncate(body, 128))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// raftApplied reads consul_raft_fsm_applyBatchNum_sum, the Raft entries the
// agent's server applied, from its Prometheus metrics.
func raftApplied(ctx context.Context, r *requester) (float64, error) {
	status, body, _, err := r.do(ctx, "GET", "/v1/agent/metrics?format=prometheus", nil, 16<<20)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("GET /v1/agent/metrics: status %d", status)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "consul_raft_fsm_applyBatchNum_sum "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no consul_raft_fsm_applyBatchNum_sum in %s's metrics (is it a server?)", r.base)
}
