package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// rawAnswer is one HTTP answer, byte for byte.
type rawAnswer struct {
	status   int
	index    uint64
	filtered bool
	body     []byte
}

// herdGet sends GET path to addr with token (when set) on client.
func herdGet(ctx context.Context, client *http.Client, addr, path, token string) (rawAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return rawAnswer{}, err
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return rawAnswer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return rawAnswer{}, err
	}
	idx, _ := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	return rawAnswer{status: resp.StatusCode, index: idx, filtered: resp.Header.Get("X-Consul-Results-Filtered-By-ACLs") == "true", body: body}, nil
}

// herdAsk is herdGet asked again, after a pause, while the agent answers
// 5xx, until ctx ends, as a watcher asks: on a loaded machine a follower
// that has not heard from its leader for a heartbeat timeout answers 503
// for a moment.
func herdAsk(ctx context.Context, client *http.Client, addr, path, token string) (rawAnswer, error) {
	for {
		a, err := herdGet(ctx, client, addr, path, token)
		if err != nil || a.status < 500 {
			return a, err
		}
		select {
		case <-ctx.Done():
			return a, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watch is one blocking query of a herd.
type watch struct {
	addr, path, token string
}

// herdRound parks every watch at its variant's current index, runs change,
// and checks that every watcher's answer is the answer a lone query gets
// right after: same status, same index (past the one it parked at), same
// bytes, same ACL header.
func herdRound(t *testing.T, client *http.Client, watches []watch, perWatch int, change func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sep := func(p string) string {
		if strings.Contains(p, "?") {
			return "&"
		}
		return "?"
	}
	start := make([]uint64, len(watches))
	for i, w := range watches {
		a, err := herdAsk(ctx, client, w.addr, w.path, w.token)
		if err != nil || a.status != http.StatusOK {
			t.Fatalf("GET %s on %s: %v, status %d: %s", w.path, w.addr, err, a.status, a.body)
		}
		start[i] = a.index
	}
	got := make([][]rawAnswer, len(watches))
	errs := make(chan error, len(watches)*perWatch)
	var wg sync.WaitGroup
	for i, w := range watches {
		got[i] = make([]rawAnswer, perWatch)
		for j := range perWatch {
			wg.Go(func() {
				p := w.path + sep(w.path) + "index=" + strconv.FormatUint(start[i], 10) + "&wait=30s"
				a, err := herdAsk(ctx, client, w.addr, p, w.token)
				if err != nil {
					errs <- fmt.Errorf("GET %s on %s: %w", p, w.addr, err)
				}
				got[i][j] = a
			})
		}
	}
	change()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, w := range watches {
		lone, err := herdAsk(ctx, client, w.addr, w.path, w.token)
		if err != nil {
			t.Fatal(err)
		}
		for j, a := range got[i] {
			switch {
			case a.status != lone.status:
				t.Errorf("watcher %d of %s on %s: status %d, a lone query %d", j, w.path, w.addr, a.status, lone.status)
			case a.index <= start[i]:
				t.Errorf("watcher %d of %s on %s: index %d, not past %d", j, w.path, w.addr, a.index, start[i])
			case a.index != lone.index:
				t.Errorf("watcher %d of %s on %s: index %d, a lone query %d", j, w.path, w.addr, a.index, lone.index)
			case !bytes.Equal(a.body, lone.body):
				t.Errorf("watcher %d of %s on %s:\n got %s\nlone %s", j, w.path, w.addr, a.body, lone.body)
			case a.filtered != lone.filtered:
				t.Errorf("watcher %d of %s on %s: filtered-by-ACLs %v, a lone query %v", j, w.path, w.addr, a.filtered, lone.filtered)
			}
		}
	}
}

// TestSharedWakeAnswersAsALoneQuery: many blocking queries of one
// service's health, in several variants (?passing, ?tag, ?filter, ?near),
// on a server and on a client agent, share their evaluation and encoding
// per (query, index); each must still get exactly what a lone query of its
// own variant gets at that index, after every kind of change.
func TestSharedWakeAnswersAsALoneQuery(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	mgmt := c.Servers[0].API()
	register := func(node, status string, tags ...string) {
		t.Helper()
		if _, err := mgmt.Catalog().Register(&api.CatalogRegistration{
			Node: node, Address: "10.0.0.1",
			Service: &api.AgentService{ID: "web", Service: "web", Port: 80, Tags: tags},
			Check:   &api.AgentCheck{Node: node, CheckID: "web-check", Name: "web", Status: status, ServiceID: "web"},
		}, nil); err != nil {
			t.Fatalf("register %s: %v", node, err)
		}
	}
	register("n1", api.HealthPassing, "v1")
	register("n2", api.HealthPassing, "v2")
	register("n3", api.HealthCritical, "v1", "v2")
	var watches []watch
	for _, addr := range []string{c.Servers[0].HTTPAddr(), c.Clients[0].HTTPAddr()} {
		for _, q := range []string{"", "?passing", "?tag=v1", "?filter=" + url.QueryEscape(`"v2" in Service.Tags`), "?near=n2", "?stale"} {
			watches = append(watches, watch{addr: addr, path: "/v1/health/service/web" + q})
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	defer client.CloseIdleConnections()
	changes := []struct {
		name string
		do   func()
	}{
		{"n1 turns critical", func() { register("n1", api.HealthCritical, "v1") }},
		{"n2 changes tags", func() { register("n2", api.HealthPassing, "v1", "v2") }},
		{"n3 recovers", func() { register("n3", api.HealthPassing, "v1", "v2") }},
		{"n1 leaves", func() {
			if _, err := mgmt.Catalog().Deregister(&api.CatalogDeregistration{Node: "n1"}, nil); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) { herdRound(t, client, watches, 8, ch.do) })
	}
}

// TestSharedWakeFiltersPerToken: blocking queries of an ACL-filtered read
// (health/state/any) with two tokens of different rights wake together on
// one change; each gets its own token's answer, as a lone query with that
// token does, never the other's.
func TestSharedWakeFiltersPerToken(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Configure: func(cfg *configs.Config) {
		cfg.ACL.Enabled = true
		cfg.ACL.DefaultPolicy = configs.ACLDeny
	}})
	mgmt := bootstrapManagement(t, c.Servers[0])
	register := func(svc, status string) {
		t.Helper()
		if _, err := mgmt.Catalog().Register(&api.CatalogRegistration{
			Node: "ext-" + svc, Address: "10.0.0.1",
			Service: &api.AgentService{ID: svc, Service: svc, Port: 80},
			Check:   &api.AgentCheck{Node: "ext-" + svc, CheckID: svc + "-check", Name: svc, Status: status, ServiceID: svc},
		}, nil); err != nil {
			t.Fatalf("register %s: %v", svc, err)
		}
	}
	register("web", api.HealthPassing)
	register("db", api.HealthPassing)
	token := func(rules string) string { return policyToken(t, mgmt, rules) }
	webOnly := token(`service "web" { policy = "read" }
node_prefix "" { policy = "read" }`)
	everything := token(`service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }`)
	var watches []watch
	for _, addr := range []string{c.Servers[0].HTTPAddr(), c.Clients[0].HTTPAddr()} {
		for _, tok := range []string{webOnly, everything} {
			watches = append(watches, watch{addr: addr, path: "/v1/health/state/any", token: tok})
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	defer client.CloseIdleConnections()
	for i, status := range []string{api.HealthCritical, api.HealthPassing} {
		t.Run(fmt.Sprintf("flip %d", i), func(t *testing.T) {
			herdRound(t, client, watches, 8, func() { register("web", status) })
			// And the two tokens' answers differ as their rights do.
			for _, w := range watches {
				a, err := herdGet(context.Background(), client, w.addr, w.path, w.token)
				if err != nil {
					t.Fatal(err)
				}
				hasDB := bytes.Contains(a.body, []byte(`"db-check"`))
				if hasDB != (w.token == everything) || !bytes.Contains(a.body, []byte(`"web-check"`)) {
					t.Errorf("GET %s on %s with the %s token: %s", w.path, w.addr, map[bool]string{true: "all-services", false: "web-only"}[w.token == everything], a.body)
				}
				if a.filtered != (w.token == webOnly) {
					t.Errorf("GET %s on %s: X-Consul-Results-Filtered-By-ACLs %v for the web-only token %v", w.path, w.addr, a.filtered, w.token == webOnly)
				}
			}
		})
	}
}

// healthCalls is how many Health.ServiceNodes RPCs from the network the
// server at addr has answered (consul_rpc_server_call_count).
func healthCalls(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/agent/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "consul_rpc_server_call_count{") && strings.Contains(line, `method="Health.ServiceNodes"`) {
			f := strings.Fields(line)
			v, _ := strconv.Atoi(f[len(f)-1])
			n += v
		}
	}
	return n
}

// TestRelayedWatchersShareOneCall: watchers of one service on a client
// agent and on a follower (which relay blocking reads to a server and to
// the leader) get the same answers as lone queries, and a change costs the
// servers about one relayed call per relaying agent, not one per watcher.
func TestRelayedWatchersShareOneCall(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1})
	leader := c.WaitLeader(30 * time.Second)
	follower := c.Followers(leader)[0]
	mgmt := leader.API()
	register := func(status string) {
		t.Helper()
		if _, err := mgmt.Catalog().Register(&api.CatalogRegistration{
			Node: "n1", Address: "10.0.0.1",
			Service: &api.AgentService{ID: "web", Service: "web", Port: 80},
			Check:   &api.AgentCheck{Node: "n1", CheckID: "web-check", Name: "web", Status: status, ServiceID: "web"},
		}, nil); err != nil {
			t.Fatal(err)
		}
	}
	register(api.HealthPassing)
	watches := []watch{
		{addr: follower.HTTPAddr(), path: "/v1/health/service/web"},
		{addr: c.Clients[0].HTTPAddr(), path: "/v1/health/service/web"},
		{addr: c.Clients[0].HTTPAddr(), path: "/v1/health/service/web?passing"},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	defer client.CloseIdleConnections()
	const perWatch = 40
	calls := func() int {
		n := 0
		for _, s := range c.Servers {
			n += healthCalls(t, s.HTTPAddr())
		}
		return n
	}
	for i, status := range []string{api.HealthCritical, api.HealthPassing, api.HealthCritical} {
		before := calls()
		herdRound(t, client, watches, perWatch, func() { register(status) })
		// The metric counts the follower's in-process calls too: one per
		// watcher there. Beyond those, each relayed read blocks once and
		// may be asked once more by the watchers that arrive after the
		// change, and herdRound's lone reads add a dozen; a relayed call
		// per watcher would add 120.
		if got := calls() - before - perWatch; got > 30 {
			t.Errorf("change %d: %d relayed health calls for %d watchers, want a few per relayed read", i, got, len(watches)*perWatch)
		}
	}
}
