package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	mdns "github.com/miekg/dns"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestDNSThroughClientAgent registers instances through the HTTP API and
// resolves them over DNS from a client agent, watching health changes reach
// the answers.
func TestDNSThroughClientAgent(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1})
	client := c.Clients[0]
	cat := client.API().Catalog()
	for i := 1; i <= 3; i++ {
		_, err := cat.Register(&api.CatalogRegistration{
			Node: fmt.Sprintf("web%d", i), Address: fmt.Sprintf("10.0.0.%d", i),
			Service: &api.AgentService{ID: "web", Service: "web", Port: 80},
			Check:   &api.AgentCheck{CheckID: "web", Name: "web", Status: api.HealthPassing, ServiceID: "web"},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(name string, qtype uint16) (*mdns.Msg, error) {
		m := new(mdns.Msg)
		m.SetQuestion(name, qtype)
		r, _, err := new(mdns.Client).Exchange(m, client.Agent().DNSAddr())
		return r, err
	}
	want := func(n int) {
		t.Helper()
		testcluster.Eventually(t, 5*time.Second, func() error {
			r, err := lookup("web.service.consul.", mdns.TypeA)
			if err != nil {
				return err
			}
			if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != n {
				return fmt.Errorf("web.service.consul A: rcode %d, %d answers, want %d", r.Rcode, len(r.Answer), n)
			}
			return nil
		})
	}
	want(3)
	_, err := cat.Register(&api.CatalogRegistration{
		Node: "web2", Address: "10.0.0.2",
		Service: &api.AgentService{ID: "web", Service: "web", Port: 80},
		Check:   &api.AgentCheck{CheckID: "web", Name: "web", Status: api.HealthCritical, ServiceID: "web"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want(2)

	r, err := lookup("web.service.nope.consul.", mdns.TypeA)
	if err != nil || r.Rcode != mdns.RcodeNameError {
		t.Errorf("unknown dc: %v, %v; want NXDOMAIN", r, err)
	}
	r, err = lookup(c.Servers[0].Name+".node.consul.", mdns.TypeA)
	if err != nil || len(r.Answer) != 1 {
		t.Errorf("node lookup: %v, %v; want one A", r, err)
	}
}
