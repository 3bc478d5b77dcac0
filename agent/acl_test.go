package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	mdns "github.com/miekg/dns"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// TestDNSAnswersWithTheDefaultToken: with ACLs on and default deny, DNS
// answers only what the agent's default token may read; the token is set
// at run time through /v1/agent/token/default and kept across a restart
// (enable_token_persistence).
func TestDNSAnswersWithTheDefaultToken(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Configure: func(cfg *configs.Config) {
		cfg.ACL.Enabled = true
		cfg.ACL.DefaultPolicy = configs.ACLDeny
		cfg.ACL.EnableTokenPersistence = true
	}})
	client := c.Clients[0]
	var boot *api.ACLToken
	testcluster.Eventually(t, 10*time.Second, func() error {
		var err error
		boot, _, err = client.API().ACL().Bootstrap()
		return err
	})
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token = client.HTTPAddr(), boot.SecretID
	mgmt, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, svc := range []string{"web", "db"} {
		if _, err := mgmt.Catalog().Register(&api.CatalogRegistration{Node: "ext" + svc, Address: fmt.Sprintf("10.0.0.%d", i+1),
			Service: &api.AgentService{ID: svc, Service: svc, Port: 80}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	pol, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: "dns-web", Rules: `service_prefix "web" { policy = "read" }
node_prefix "extweb" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(name string) (*mdns.Msg, error) {
		m := new(mdns.Msg)
		m.SetQuestion(name, mdns.TypeA)
		r, _, err := new(mdns.Client).Exchange(m, client.Agent().DNSAddr())
		return r, err
	}
	if r, err := lookup("web.service.consul."); err != nil || len(r.Answer) != 0 {
		t.Fatalf("web.service.consul with the anonymous token: %v, %v; want no answer", r, err)
	}
	if _, err := mgmt.Agent().UpdateDefaultACLToken(tok.SecretID, nil); err != nil {
		t.Fatal(err)
	}
	want := func(name string, n int) {
		t.Helper()
		testcluster.Eventually(t, 10*time.Second, func() error {
			r, err := lookup(name)
			if err != nil {
				return err
			}
			if len(r.Answer) != n {
				return fmt.Errorf("%s: %d answers (rcode %d), want %d", name, len(r.Answer), r.Rcode, n)
			}
			return nil
		})
	}
	// The db view was never made: it is built with the default token now.
	want("db.service.consul.", 0)
	want("extweb.node.consul.", 1)
	want("extdb.node.consul.", 0)
	want("web.service.dc1.consul.", 1)

	client.Restart()
	testcluster.Eventually(t, 10*time.Second, func() error {
		// Reading web needs the web token: only the persisted default has it.
		_, _, err := client.API().Health().Service("web", "", false, nil)
		return err
	})
}
