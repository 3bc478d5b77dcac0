package agent_test

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/serf/serf"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestAgentWritesAreInTheCatalogWhenAnswered: as with Consul's agent, a
// service registered, a TTL updated, maintenance enabled or a service
// deregistered through a client agent is in the catalog by the time the
// call answers: a read right after it sees it, with no retry.
func TestAgentWritesAreInTheCatalogWhenAnswered(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1})
	c.WaitLeader(10 * time.Second)
	client := c.Clients[0].API()
	agent := client.Agent()
	// Wait for the client's first full sync, so the steps below race no
	// sync of its own.
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, _, err := client.Catalog().Node(c.Clients[0].Name, nil)
		return err
	})
	for i := range 5 {
		if err := agent.ServiceRegister(&api.AgentServiceRegistration{ID: "web", Name: "web", Port: 8000 + i,
			Check: &api.AgentServiceCheck{CheckID: "web-ttl", TTL: "1m", Status: api.HealthCritical}}); err != nil {
			t.Fatal(err)
		}
		svcs, _, err := client.Catalog().Service("web", "", nil)
		if err != nil || len(svcs) != 1 || svcs[0].ServicePort != 8000+i {
			t.Fatalf("round %d: catalog web right after the register = %+v, %v; want port %d", i, svcs, err, 8000+i)
		}
		if err := agent.UpdateTTL("web-ttl", "ok", api.HealthPassing); err != nil {
			t.Fatal(err)
		}
		if entries, _, err := client.Health().Service("web", "", true, nil); err != nil || len(entries) != 1 {
			t.Fatalf("round %d: passing web right after the TTL pass = %d entries, %v; want 1", i, len(entries), err)
		}
		if err := agent.EnableServiceMaintenance("web", "deploy"); err != nil {
			t.Fatal(err)
		}
		if entries, _, err := client.Health().Service("web", "", true, nil); err != nil || len(entries) != 0 {
			t.Fatalf("round %d: passing web right after maintenance = %d entries, %v; want none", i, len(entries), err)
		}
		if err := agent.DisableServiceMaintenance("web"); err != nil {
			t.Fatal(err)
		}
		if err := agent.ServiceDeregister("web"); err != nil {
			t.Fatal(err)
		}
		if svcs, _, err := client.Catalog().Service("web", "", nil); err != nil || len(svcs) != 0 {
			t.Fatalf("round %d: catalog web right after the deregister = %+v, %v; want none", i, svcs, err)
		}
	}
}

// TestAgentLeaveAnswersOnceLeft: PUT /v1/agent/leave on a client answers
// once the leave has been gossiped: the server sees the client left when
// the call returns.
func TestAgentLeaveAnswersOnceLeft(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1})
	c.WaitLeader(10 * time.Second)
	leaving := c.Clients[0]
	if err := leaving.API().Agent().Leave(); err != nil {
		t.Fatal(err)
	}
	members, err := c.Servers[0].API().Agent().Members(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.Name == leaving.Name && m.Status != int(serf.StatusLeft) {
			t.Errorf("the server sees %s with status %d right after its leave answered, want %d (left)", m.Name, m.Status, serf.StatusLeft)
		}
	}
}
