package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// registerApplies is how many catalog registrations the server at addr has
// applied through Raft (consul_catalog_register_count).
func registerApplies(t *testing.T, addr string) int {
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
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "consul_catalog_register_count "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("consul_catalog_register_count %q: %v", v, err)
			}
			return n
		}
	}
	return 0
}

// TestRegisterUnchangedCostsNoRaftWrite: registering what the catalog
// already holds (as an agent's full sync or a tool re-registering does)
// answers true without a Raft entry; a registration that changes anything,
// even a check's output, is applied and seen, through a server and through
// a client agent.
func TestRegisterUnchangedCostsNoRaftWrite(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	srv := c.Servers[0].HTTPAddr()
	reg := func(output string) *api.CatalogRegistration {
		return &api.CatalogRegistration{
			Node: "ext1", Address: "10.0.0.1", NodeMeta: map[string]string{"rack": "r1"},
			Service: &api.AgentService{ID: "web", Service: "web", Port: 80, Tags: []string{"v1"}, Meta: map[string]string{"version": "1"}},
			Checks: api.HealthChecks{
				{Node: "ext1", CheckID: "web-check", Name: "web", Status: api.HealthPassing, ServiceID: "web", Output: output},
				{Node: "ext1", CheckID: "disk", Name: "disk", Status: api.HealthWarning, Output: "80%"},
			},
		}
	}
	for _, n := range []*testcluster.Node{c.Servers[0], c.Clients[0]} {
		if _, err := n.API().Catalog().Register(reg("ok"), nil); err != nil {
			t.Fatal(err)
		}
	}
	// The agents' own nodes are in the catalog with serfHealth passing, so
	// the leader's reconcile of the members and the client's first sync
	// are done and apply nothing while the registrations below run.
	testcluster.Eventually(t, 20*time.Second, func() error {
		for _, n := range []*testcluster.Node{c.Servers[0], c.Clients[0]} {
			checks, _, err := c.Servers[0].API().Health().Node(n.Name, nil)
			if err != nil {
				return err
			}
			if len(checks) == 0 || checks.AggregatedStatus() != api.HealthPassing {
				return fmt.Errorf("node %s: checks %v, want serfHealth passing", n.Name, checks)
			}
		}
		return nil
	})
	before := registerApplies(t, srv)
	const again = 40
	for i := range again {
		n := []*testcluster.Node{c.Servers[0], c.Clients[0]}[i%2]
		if _, err := n.API().Catalog().Register(reg("ok"), nil); err != nil {
			t.Fatalf("register unchanged, %d: %v", i, err)
		}
	}
	// The leader's own reconcile of its members may apply one meanwhile.
	if got := registerApplies(t, srv) - before; got > 1 {
		t.Errorf("%d unchanged registrations applied %d Raft entries, want none", again, got)
	}
	for i, n := range []*testcluster.Node{c.Servers[0], c.Clients[0]} {
		out := fmt.Sprintf("changed %d", i)
		if _, err := n.API().Catalog().Register(reg(out), nil); err != nil {
			t.Fatal(err)
		}
		checks, _, err := c.Servers[0].API().Health().Node("ext1", nil)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, ch := range checks {
			if ch.CheckID == "web-check" {
				got = ch.Output
			}
		}
		if got != out {
			t.Errorf("after a registration with output %q, the check's output is %q", out, got)
		}
	}
	if got := registerApplies(t, srv) - before; got < 2 {
		t.Errorf("two changing registrations applied %d Raft entries in all, want at least 2", got)
	}
}
