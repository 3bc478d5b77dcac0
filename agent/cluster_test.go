package agent_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/leaktest"
	"github.com/meridian/meridian/internal/testcluster"
)

// TestMain fails the run if a goroutine the tests started outlives them.
func TestMain(m *testing.M) { leaktest.Main(m) }

func TestThreeServersElectOneLeader(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1})
	leader := c.WaitLeader(5 * time.Second)

	client := c.Clients[0].API()
	got, err := client.Status().Leader()
	if err != nil {
		t.Fatalf("Status().Leader() through the client agent: %v", err)
	}
	if got != leader.ServerAddr() {
		t.Errorf("Status().Leader() = %q, want %q", got, leader.ServerAddr())
	}
	peers, err := client.Status().Peers()
	if err != nil {
		t.Fatalf("Status().Peers(): %v", err)
	}
	if len(peers) != 3 {
		t.Errorf("Status().Peers() = %v, want 3 peers", peers)
	}

	// Every agent becomes a node with a passing serfHealth check.
	testcluster.Eventually(t, 5*time.Second, func() error {
		nodes, meta, err := client.Catalog().Nodes(nil)
		if err != nil {
			return err
		}
		if meta.LastIndex == 0 || !meta.KnownLeader {
			return fmt.Errorf("query meta = %+v, want an index and a known leader", meta)
		}
		if len(nodes) != 4 {
			return fmt.Errorf("Catalog().Nodes() has %d nodes, want 4", len(nodes))
		}
		checks, _, err := client.Health().State(api.HealthPassing, nil)
		if err != nil {
			return err
		}
		if len(checks) != 4 {
			return fmt.Errorf("%d passing checks, want 4 serfHealth", len(checks))
		}
		return nil
	})
}

func TestAgentSelfAndMembersThroughConsulAPI(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	for _, n := range []*testcluster.Node{c.Servers[0], c.Clients[0]} {
		self, err := n.API().Agent().Self()
		if err != nil {
			t.Fatalf("%s: Agent().Self(): %v", n.Name, err)
		}
		if got := self["Config"]["NodeName"]; got != n.Name {
			t.Errorf("%s: Self Config.NodeName = %v, want %q", n.Name, got, n.Name)
		}
		if got := self["Config"]["Datacenter"]; got != "dc1" {
			t.Errorf("%s: Self Config.Datacenter = %v, want dc1", n.Name, got)
		}
		if got := self["Member"]["Addr"]; got != "127.0.0.1" {
			t.Errorf("%s: Self Member.Addr = %v, want 127.0.0.1", n.Name, got)
		}
		members, err := n.API().Agent().Members(false)
		if err != nil {
			t.Fatalf("%s: Agent().Members(): %v", n.Name, err)
		}
		if len(members) != 2 {
			t.Errorf("%s: %d members, want 2", n.Name, len(members))
		}
		for _, m := range members {
			if m.Status != 1 {
				t.Errorf("%s: member %s status %d, want 1 (alive)", n.Name, m.Name, m.Status)
			}
		}
		node, _, err := n.API().Catalog().Node(c.Servers[0].Name, nil)
		if err != nil || node == nil || node.Node.Address != "127.0.0.1" {
			t.Errorf("%s: Catalog().Node(server1) = %+v, %v", n.Name, node, err)
		}
		list, _, err := n.API().Catalog().NodeServiceList(c.Servers[0].Name, nil)
		if err != nil || list == nil || list.Node.Node != c.Servers[0].Name || list.Services == nil {
			t.Errorf("%s: Catalog().NodeServiceList(server1) = %+v, %v", n.Name, list, err)
		}
		missing, _, err := n.API().Catalog().Node("nope", nil)
		if err != nil || missing != nil {
			t.Errorf("%s: Catalog().Node(nope) = %+v, %v; want nil, nil", n.Name, missing, err)
		}
		dcs, err := n.API().Catalog().Datacenters()
		if err != nil || len(dcs) != 1 || dcs[0] != "dc1" {
			t.Errorf("%s: Catalog().Datacenters() = %v, %v", n.Name, dcs, err)
		}
	}
	_, _, err := c.Clients[0].API().Catalog().Nodes(&api.QueryOptions{Datacenter: "nope"})
	if err == nil {
		t.Errorf("Catalog().Nodes(dc=nope) succeeded, want No path to datacenter")
	}
}

// TestLeaderKilledWritesSurvive kills the leader while clients write through
// a client agent; a new leader is elected, and every write that was
// acknowledged is still there afterwards.
func TestLeaderKilledWritesSurvive(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1})
	leader := c.WaitLeader(5 * time.Second)
	client := c.Clients[0].API()

	writers := testcluster.StartWriters(t, 4, func(w, i int) (string, error) {
		name := fmt.Sprintf("ext-%d-%d", w, i)
		_, err := client.Catalog().Register(&api.CatalogRegistration{Node: name, Address: "10.0.0.1"}, nil)
		return name, err
	})
	writers.WaitAcked(t, 20, 10*time.Second)
	killed := time.Now()
	leader.Kill()
	newLeader := c.WaitLeader(5 * time.Second)
	t.Logf("new leader %s after %v", newLeader.Name, time.Since(killed))
	if newLeader == leader {
		t.Fatalf("killed leader %s still leads", leader.Name)
	}
	writers.WaitAcked(t, writers.Count()+20, 10*time.Second) // writes go on under the new leader
	acked := writers.Stop()

	leader.Restart()
	c.WaitLeader(5 * time.Second)
	nodes, _, err := client.Catalog().Nodes(&api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatalf("consistent Catalog().Nodes(): %v", err)
	}
	have := map[string]bool{}
	for _, n := range nodes {
		have[n.Node] = true
	}
	for _, name := range acked {
		if !have[name] {
			t.Errorf("acknowledged write of node %s is lost", name)
		}
	}
	t.Logf("%d acknowledged writes, all present", len(acked))
}

// TestFollowerFailsAndCatchesUp kills a follower, sees it marked failed,
// writes while it is down, restarts it on its data dir and sees its Raft log
// catch up.
func TestFollowerFailsAndCatchesUp(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1})
	leader := c.WaitLeader(5 * time.Second)
	follower := c.Followers(leader)[0]
	follower.Kill()
	client := c.Clients[0].API()
	testcluster.Eventually(t, 10*time.Second, func() error {
		checks, _, err := client.Health().Node(follower.Name, nil)
		if err != nil {
			return err
		}
		for _, ch := range checks {
			if ch.CheckID == "serfHealth" && ch.Status == api.HealthCritical {
				return nil
			}
		}
		return fmt.Errorf("serfHealth of %s is not critical yet: %+v", follower.Name, checks)
	})
	// The client's own gossip view learns it too (perhaps after the
	// leader's, which marked the check).
	testcluster.Eventually(t, 5*time.Second, func() error {
		members, err := client.Agent().Members(false)
		if err != nil {
			return err
		}
		for _, m := range members {
			if m.Name == follower.Name && m.Status != 4 {
				return fmt.Errorf("member %s status %d, want 4 (failed)", m.Name, m.Status)
			}
		}
		return nil
	})

	// Writes go on with two of three servers.
	for i := range 10 {
		if _, err := client.Catalog().Register(&api.CatalogRegistration{Node: fmt.Sprintf("while-down-%d", i), Address: "10.0.0.2"}, nil); err != nil {
			t.Fatalf("register while a follower is down: %v", err)
		}
	}

	follower.Restart()
	testcluster.Eventually(t, 10*time.Second, func() error {
		nodes, _, err := follower.API().Catalog().Nodes(&api.QueryOptions{AllowStale: true})
		if err != nil {
			return err
		}
		n := 0
		for _, node := range nodes {
			if len(node.Node) > 11 && node.Node[:11] == "while-down-" {
				n++
			}
		}
		if n != 10 {
			return fmt.Errorf("restarted follower has %d of 10 writes in its own state", n)
		}
		return nil
	})
	testcluster.Eventually(t, 10*time.Second, func() error {
		checks, _, err := client.Health().Node(follower.Name, nil)
		if err != nil {
			return err
		}
		for _, ch := range checks {
			if ch.CheckID == "serfHealth" && ch.Status == api.HealthPassing {
				return nil
			}
		}
		return errors.New("serfHealth of the restarted follower is not passing yet")
	})
}

// TestGracefulLeave sees a leaving server marked left, removed from Raft
// and from the catalog.
func TestGracefulLeave(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1})
	leader := c.WaitLeader(5 * time.Second)
	leaving := c.Followers(leader)[0]
	leaving.Leave()
	client := c.Clients[0].API()
	testcluster.Eventually(t, 10*time.Second, func() error {
		members, err := client.Agent().Members(false)
		if err != nil {
			return err
		}
		for _, m := range members {
			if m.Name == leaving.Name && m.Status != 3 {
				return fmt.Errorf("member %s status %d, want 3 (left)", m.Name, m.Status)
			}
		}
		peers, err := client.Status().Peers()
		if err != nil {
			return err
		}
		if len(peers) != 2 {
			return fmt.Errorf("raft peers %v, want 2", peers)
		}
		node, _, err := client.Catalog().Node(leaving.Name, nil)
		if err != nil {
			return err
		}
		if node != nil {
			return fmt.Errorf("node %s still in the catalog", leaving.Name)
		}
		return nil
	})
}

// TestClientRetriesAnotherServer keeps a client agent answering while the
// server it was talking to is down.
func TestClientRetriesAnotherServer(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1})
	c.WaitLeader(5 * time.Second)
	client := c.Clients[0].API()
	for _, victim := range c.Servers {
		victim.Kill()
		c.WaitLeader(5 * time.Second)
		for i := range 5 {
			if _, _, err := client.Catalog().Nodes(&api.QueryOptions{AllowStale: true}); err != nil {
				t.Fatalf("read %d with %s down: %v", i, victim.Name, err)
			}
		}
		victim.Restart()
		c.WaitLeader(5 * time.Second)
	}
}

// TestDevAgentFromFlags starts the README's dev agent from its flags (on
// free ports) and sees it lead and answer.
func TestDevAgentFromFlags(t *testing.T) {
	cfg, err := configs.Load([]string{"-dev", "-node", "dev1", "-http-port", "0", "-dns-port", "0",
		"-server-port", "0", "-serf-lan-port", "0", "-serf-wan-port", "0"}, nil, io.Discard)
	if err != nil {
		t.Fatalf("Load(-dev): %v", err)
	}
	a, err := testcluster.StartAgent(t, cfg)
	if err != nil {
		t.Fatalf("start dev agent: %v", err)
	}
	c, err := api.NewClient(&api.Config{Address: a.HTTPAddr()})
	if err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 5*time.Second, func() error {
		leader, err := c.Status().Leader()
		if err != nil || leader == "" {
			return fmt.Errorf("Status().Leader() = %q, %v", leader, err)
		}
		nodes, _, err := c.Catalog().Nodes(nil)
		if err != nil || len(nodes) != 1 || nodes[0].Node != "dev1" {
			return fmt.Errorf("Catalog().Nodes() = %v, %v; want dev1", nodes, err)
		}
		return nil
	})
}

// TestMetricsForPrometheus scrapes /v1/agent/metrics?format=prometheus and
// finds the server's, the HTTP API's and Raft's metrics.
func TestMetricsForPrometheus(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	client := c.Servers[0].API()
	if _, _, err := client.Catalog().Nodes(nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 5*time.Second, func() error {
		resp, err := http.Get("http://" + c.Servers[0].HTTPAddr() + "/v1/agent/metrics?format=prometheus")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, want := range []string{
			"consul_state_nodes 1",
			`consul_rpc_server_call_count{errored="false",method="Catalog.ListNodes"}`,
			"consul_rpc_request ",
			"consul_catalog_register_count",
			`consul_api_http_count{method="GET",path="v1.catalog.nodes"}`,
			`consul_catalog_checks{status="passing"} 1`,
			"go_goroutines",
			"consul_dns_queries ",
			"consul_raft_apply ",
			"consul_raft_commitTime",
		} {
			if !strings.Contains(string(body), want) {
				return fmt.Errorf("metrics lack %q", want)
			}
		}
		return nil
	})
}
