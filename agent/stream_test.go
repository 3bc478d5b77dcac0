package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// running is the first server of c that runs.
func running(c *testcluster.Cluster) *testcluster.Node {
	for _, s := range c.Servers {
		if s.Running() {
			return s
		}
	}
	return nil
}

// subscribedServer is the running server that serves the client's
// subscriptions, or nil.
func subscribedServer(c *testcluster.Cluster) *testcluster.Node {
	for _, s := range c.Servers {
		if a := s.Agent(); s.Running() && a != nil {
			if a.Server().Subscriptions().Open > 0 {
				return s
			}
		}
	}
	return nil
}

// viewMatches checks that a streaming read of web's health on the client
// (variant passing, with token) has caught up with a direct read of the
// servers and equals it: same index, same entries, same ACL header.
func viewMatches(c *testcluster.Cluster, client *api.Client, token string, passing bool) error {
	srv := running(c)
	if srv == nil {
		return errors.New("no server runs")
	}
	direct, dm, err := srv.API().Health().Service("web", "", passing, &api.QueryOptions{Token: token})
	if err != nil {
		return fmt.Errorf("direct read: %w", err)
	}
	// ?index=1 blocks only until the view has its first snapshot.
	view, vm, err := client.Health().Service("web", "", passing, &api.QueryOptions{Token: token, WaitIndex: 1, WaitTime: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("streaming read: %w", err)
	}
	if vm.QueryBackend != api.QueryBackendStreaming {
		return fmt.Errorf("streaming read answered by backend %q, want %q", vm.QueryBackend, api.QueryBackendStreaming)
	}
	if vm.LastIndex != dm.LastIndex {
		return fmt.Errorf("passing=%v: view at index %d, direct read at %d", passing, vm.LastIndex, dm.LastIndex)
	}
	vb, _ := json.Marshal(view)
	db, _ := json.Marshal(direct)
	if string(vb) != string(db) {
		return fmt.Errorf("passing=%v at index %d:\n view %s\ndirect %s", passing, vm.LastIndex, vb, db)
	}
	if vm.ResultsFilteredByACLs != dm.ResultsFilteredByACLs {
		return fmt.Errorf("passing=%v at index %d: view filtered-by-ACLs %v, direct %v", passing, vm.LastIndex, vm.ResultsFilteredByACLs, dm.ResultsFilteredByACLs)
	}
	return nil
}

// TestStreamingViewEqualsDirectRead: after every change of a randomized
// sequence of registrations, check flips and deregistrations, a client's
// streaming view of a service (plain and ?passing) equals a direct read
// of the servers at the same index, across a leader change (the leader
// killed) and the restart of the server the view subscribed to.
func TestStreamingViewEqualsDirectRead(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1})
	client := c.Clients[0].API()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	statuses := []string{api.HealthPassing, api.HealthWarning, api.HealthCritical}
	registered := map[string]bool{}
	write := func(what string, do func(cat *api.Catalog) error) {
		t.Helper()
		testcluster.Eventually(t, 30*time.Second, func() error {
			srv := running(c)
			if srv == nil {
				return errors.New("no server runs")
			}
			if err := do(srv.API().Catalog()); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		})
	}
	register := func(node string) {
		tags := []string{[]string{"v1", "v2"}[rng.IntN(2)]}
		status := statuses[rng.IntN(3)]
		write("register "+node, func(cat *api.Catalog) error {
			_, err := cat.Register(&api.CatalogRegistration{
				Node: node, Address: "10.0.0." + node[1:],
				Service: &api.AgentService{ID: "web", Service: "web", Port: 80, Tags: tags},
				Check:   &api.AgentCheck{Node: node, CheckID: "web-check", Name: "web", Status: status, ServiceID: "web"},
			}, nil)
			return err
		})
		registered[node] = true
	}
	flip := func(node string) {
		status := statuses[rng.IntN(3)]
		write("flip "+node, func(cat *api.Catalog) error {
			_, err := cat.Register(&api.CatalogRegistration{
				Node: node, Address: "10.0.0." + node[1:],
				Check: &api.AgentCheck{Node: node, CheckID: "web-check", Name: "web", Status: status, ServiceID: "web"},
			}, nil)
			return err
		})
	}
	deregister := func(node string) {
		write("deregister "+node, func(cat *api.Catalog) error {
			_, err := cat.Deregister(&api.CatalogDeregistration{Node: node}, nil)
			return err
		})
		delete(registered, node)
	}
	check := func(step int) {
		t.Helper()
		for _, passing := range []bool{false, true} {
			testcluster.Eventually(t, 30*time.Second, func() error {
				if err := viewMatches(c, client, "", passing); err != nil {
					return fmt.Errorf("after change %d: %w", step, err)
				}
				return nil
			})
		}
	}
	register("n1")
	check(0)
	const steps = 36
	var killed *testcluster.Node
	for step := 1; step <= steps; step++ {
		node := fmt.Sprintf("n%d", 1+rng.IntN(6))
		switch {
		case !registered[node]:
			register(node)
		case rng.IntN(3) == 0:
			deregister(node)
		default:
			flip(node)
		}
		check(step)
		switch step {
		case steps / 3:
			killed = c.WaitLeader(30 * time.Second)
			t.Logf("step %d: killing the leader %s", step, killed.Name)
			killed.Kill()
			c.WaitLeader(30 * time.Second)
		case steps/3 + 3:
			t.Logf("step %d: restarting %s", step, killed.Name)
			killed.Restart()
			c.WaitLeader(30 * time.Second)
		case 2 * steps / 3:
			var sub *testcluster.Node
			testcluster.Eventually(t, 30*time.Second, func() error {
				if sub = subscribedServer(c); sub == nil {
					return errors.New("no server serves the client's subscriptions")
				}
				return nil
			})
			t.Logf("step %d: restarting %s, which serves the view", step, sub.Name)
			sub.Restart()
			c.WaitLeader(30 * time.Second)
		}
	}
}

// TestStreamingViewFiltersByToken: a view is its token's: a token that
// may read some of a service's nodes sees through the view exactly what a
// direct read with it sees (marked filtered), one that may read them all
// sees all, one that may not read the service is refused (403), as a
// direct read is, and each stays so after a change.
func TestStreamingViewFiltersByToken(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Configure: func(cfg *configs.Config) {
		cfg.ACL.Enabled = true
		cfg.ACL.DefaultPolicy = configs.ACLDeny
	}})
	mgmt := bootstrapManagement(t, c.Servers[0])
	register := func(node, status string) {
		t.Helper()
		if _, err := mgmt.Catalog().Register(&api.CatalogRegistration{
			Node: node, Address: "10.0.0.1",
			Service: &api.AgentService{ID: "web", Service: "web", Port: 80},
			Check:   &api.AgentCheck{Node: node, CheckID: "web-check", Name: "web", Status: status, ServiceID: "web"},
		}, nil); err != nil {
			t.Fatalf("register %s: %v", node, err)
		}
	}
	register("n1", api.HealthPassing)
	register("n2", api.HealthPassing)
	token := func(rules string) string { return policyToken(t, mgmt, rules) }
	all := token(`service "web" { policy = "read" }
node_prefix "" { policy = "read" }`)
	n1Only := token(`service "web" { policy = "read" }
node "n1" { policy = "read" }`)
	noService := token(`node_prefix "" { policy = "read" }`)
	client := c.Clients[0].API()
	for i, status := range []string{"", api.HealthCritical, api.HealthPassing} {
		if status != "" {
			register("n2", status)
		}
		for _, tok := range []string{all, n1Only} {
			testcluster.Eventually(t, 30*time.Second, func() error {
				if err := viewMatches(c, client, tok, false); err != nil {
					return fmt.Errorf("round %d, token n1Only=%v: %w", i, tok == n1Only, err)
				}
				return nil
			})
		}
		view, vm, err := client.Health().Service("web", "", false, &api.QueryOptions{Token: n1Only, WaitIndex: 1})
		if err != nil || len(view) != 1 || view[0].Node.Node != "n1" || !vm.ResultsFilteredByACLs {
			t.Errorf("round %d: view with the n1 token = %d entries (filtered %v), %v; want n1 alone, filtered", i, len(view), vm != nil && vm.ResultsFilteredByACLs, err)
		}
		_, _, err = client.Health().Service("web", "", false, &api.QueryOptions{Token: noService, WaitIndex: 1, WaitTime: 5 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("round %d: blocking read with a token that may not read web = %v, want 403", i, err)
		}
	}
}

// TestStreamingWatchersShareOneSubscription: however many watchers block
// on one service on a client agent, the server serves one subscription
// and sends one snapshot per change (as many for 200 watchers as for 10);
// every watcher gets what a lone query gets at the new index; the view
// and its subscription close once the watchers have left.
func TestStreamingWatchersShareOneSubscription(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true, StreamViewIdle: 500 * time.Millisecond})
	srv := c.Servers[0].Agent().Server()
	mgmt := c.Servers[0].API()
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
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 300}}
	defer httpc.CloseIdleConnections()
	addr := c.Clients[0].HTTPAddr()
	events := make(map[int]uint64)
	for i, n := range []int{10, 200, 10} {
		lone, err := herdGet(context.Background(), httpc, addr, "/v1/health/service/web", "")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		got := make([]rawAnswer, n)
		errs := make([]error, n)
		backend := make([]string, n)
		var wg sync.WaitGroup
		for j := range n {
			wg.Go(func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/health/service/web?index="+strconv.FormatUint(lone.index, 10)+"&wait=30s", nil)
				resp, err := httpc.Do(req)
				if err != nil {
					errs[j] = err
					return
				}
				defer resp.Body.Close()
				backend[j] = resp.Header.Get("X-Consul-Query-Backend")
				got[j].index, _ = strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
				got[j].status = resp.StatusCode
				got[j].body, errs[j] = io.ReadAll(resp.Body)
			})
		}
		testcluster.Eventually(t, 30*time.Second, func() error {
			if open := srv.Subscriptions().Open; open != 1 {
				return fmt.Errorf("%d subscriptions open on the server, want 1", open)
			}
			return nil
		})
		before := srv.Subscriptions().Snapshots
		status := []string{api.HealthCritical, api.HealthPassing}[i%2]
		register(status)
		wg.Wait()
		cancel()
		after := srv.Subscriptions().Snapshots
		events[n] = max(events[n], after-before)
		after1, err := herdGet(context.Background(), httpc, addr, "/v1/health/service/web", "")
		if err != nil {
			t.Fatal(err)
		}
		for j := range n {
			switch {
			case errs[j] != nil:
				t.Fatalf("watcher %d of %d: %v", j, n, errs[j])
			case got[j].status != http.StatusOK || got[j].index <= lone.index:
				t.Fatalf("watcher %d of %d: status %d, index %d, want 200 past %d", j, n, got[j].status, got[j].index, lone.index)
			case backend[j] != "streaming":
				t.Fatalf("watcher %d of %d: X-Consul-Query-Backend %q, want streaming", j, n, backend[j])
			case got[j].index == after1.index && string(got[j].body) != string(after1.body):
				t.Fatalf("watcher %d of %d at index %d:\n got %s\nlone %s", j, n, got[j].index, got[j].body, after1.body)
			}
		}
		if after-before > 2 {
			t.Errorf("%d watchers: the server sent %d snapshots for one change, want one (or two)", n, after-before)
		}
		// The watchers have left: the view and its subscription close.
		testcluster.Eventually(t, 30*time.Second, func() error {
			if open := srv.Subscriptions().Open; open != 0 {
				return fmt.Errorf("%d subscriptions open with no watcher left, want 0", open)
			}
			return nil
		})
	}
	// Another write that moves the service's index during a round (the
	// agents' own syncs) costs that round one event more, whatever the
	// number of watchers: 200 watchers may see one more than 10, not a
	// number growing with them (CI saw 2 against 1).
	if events[200] > events[10]+1 {
		t.Errorf("one change cost %d snapshots for 200 watchers, %d for 10: want at most one more", events[200], events[10])
	}
}

// TestStreamingOff: with use_streaming_backend false, a client relays
// blocking health reads as before: no subscription, no streaming header.
func TestStreamingOff(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true, Configure: func(cfg *configs.Config) {
		cfg.UseStreamingBackend = false
	}})
	if _, err := c.Servers[0].API().Catalog().Register(&api.CatalogRegistration{
		Node: "n1", Address: "10.0.0.1", Service: &api.AgentService{ID: "web", Service: "web", Port: 80},
	}, nil); err != nil {
		t.Fatal(err)
	}
	entries, meta, err := c.Clients[0].API().Health().Service("web", "", false, &api.QueryOptions{WaitIndex: 1, WaitTime: 5 * time.Second})
	if err != nil || len(entries) != 1 {
		t.Fatalf("blocking read on the client = %d entries, %v; want web", len(entries), err)
	}
	if meta.QueryBackend != "" {
		t.Errorf("X-Consul-Query-Backend = %q with streaming off, want none", meta.QueryBackend)
	}
	if open := c.Servers[0].Agent().Server().Subscriptions().Open; open != 0 {
		t.Errorf("%d subscriptions with streaming off, want 0", open)
	}
}
