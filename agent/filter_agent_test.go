package agent_test

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestAgentEndpointsFilter: ?filter= works on /v1/agent/services, /checks
// and /members as Consul's, through consul/api's *WithFilter calls, and a
// bad expression is a 400.
func TestAgentEndpointsFilter(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	n := c.WaitLeader(10 * time.Second)
	agent := n.API().Agent()
	for _, reg := range []*api.AgentServiceRegistration{
		{ID: "web-1", Name: "web", Tags: []string{"v2"}, Check: &api.AgentServiceCheck{CheckID: "web-1-ttl", TTL: "1m", Status: api.HealthPassing}},
		{ID: "db-1", Name: "db", Check: &api.AgentServiceCheck{CheckID: "db-1-ttl", TTL: "1m", Status: api.HealthCritical}},
	} {
		if err := agent.ServiceRegister(reg); err != nil {
			t.Fatal(err)
		}
	}
	svcs, err := agent.ServicesWithFilter(`"v2" in Tags`)
	if _, ok := svcs["web-1"]; err != nil || len(svcs) != 1 || !ok {
		t.Errorf("services with v2 = %v, %v; want web-1 only", svcs, err)
	}
	checks, err := agent.ChecksWithFilter(`Status == "critical"`)
	if _, ok := checks["db-1-ttl"]; err != nil || len(checks) != 1 || !ok {
		t.Errorf("critical checks = %v, %v; want db-1-ttl only", checks, err)
	}
	members, err := agent.MembersOpts(api.MembersOpts{Filter: `Name == "` + n.Name + `"`})
	if err != nil || len(members) != 1 {
		t.Errorf("members named %s = %v, %v; want one", n.Name, members, err)
	}
	if members, err := agent.MembersOpts(api.MembersOpts{Filter: `Name == "nobody"`}); err != nil || len(members) != 0 {
		t.Errorf("members named nobody = %v, %v; want none", members, err)
	}
	if _, err := agent.ServicesWithFilter(`Tags ===`); err == nil {
		t.Error("a bad filter succeeded, want a 400")
	}
}
