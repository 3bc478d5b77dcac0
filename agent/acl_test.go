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

// TestDNSDefaultTokenNeedsNodeRead: as Consul's DNS, a service lookup
// answers an instance only when the default token may read its node as
// well as its service: service:read alone answers no record, node:read on
// one node answers that node's instances only, for NAME.service and
// NAME.query lookups alike, on a server agent and on a client agent (whose
// views the server filters by the token they were fetched with: setting a
// new default token fetches them again).
func TestDNSDefaultTokenNeedsNodeRead(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Configure: func(cfg *configs.Config) {
		cfg.ACL.Enabled = true
		cfg.ACL.DefaultPolicy = configs.ACLDeny
	}})
	var boot *api.ACLToken
	testcluster.Eventually(t, 10*time.Second, func() error {
		var err error
		boot, _, err = c.Clients[0].API().ACL().Bootstrap()
		return err
	})
	mgmtFor := func(n *testcluster.Node) *api.Client {
		cfg := api.DefaultConfig()
		cfg.Address, cfg.Token = n.HTTPAddr(), boot.SecretID
		cl, err := api.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	mgmt := mgmtFor(c.Clients[0])
	for i, node := range []string{"ext1", "ext2"} {
		if _, err := mgmt.Catalog().Register(&api.CatalogRegistration{Node: node, Address: fmt.Sprintf("10.0.0.%d", i+1),
			Service: &api.AgentService{ID: "web", Service: "web", Port: 80}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := mgmt.PreparedQuery().Create(&api.PreparedQueryDefinition{Name: "webq", Service: api.ServiceQuery{Service: "web"}}, nil); err != nil {
		t.Fatal(err)
	}
	token := func(name, rules string) string {
		pol, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok.SecretID
	}
	svcOnly := token("dns-svc", `service_prefix "" { policy = "read" }
query_prefix "" { policy = "read" }`)
	oneNode := token("dns-ext1", `service_prefix "" { policy = "read" }
query_prefix "" { policy = "read" }
node "ext1" { policy = "read" }`)

	for _, agent := range []*testcluster.Node{c.Servers[0], c.Clients[0]} {
		lookup := func(name string) ([]string, error) {
			m := new(mdns.Msg)
			m.SetQuestion(name, mdns.TypeA)
			r, _, err := new(mdns.Client).Exchange(m, agent.Agent().DNSAddr())
			if err != nil {
				return nil, err
			}
			var out []string
			for _, rr := range r.Answer {
				if a, ok := rr.(*mdns.A); ok {
					out = append(out, a.A.String())
				}
			}
			return out, nil
		}
		want := func(name string, addrs ...string) {
			t.Helper()
			testcluster.Eventually(t, 10*time.Second, func() error {
				got, err := lookup(name)
				if err != nil {
					return err
				}
				if fmt.Sprint(got) != fmt.Sprint(addrs) {
					return fmt.Errorf("%s on %s = %v, want %v", name, agent.Agent().NodeName(), got, addrs)
				}
				return nil
			})
		}
		set := func(secret string) {
			t.Helper()
			if _, err := mgmtFor(agent).Agent().UpdateDefaultACLToken(secret, nil); err != nil {
				t.Fatal(err)
			}
		}
		set(svcOnly)
		want("web.service.consul.")
		want("webq.query.consul.")
		want("ext1.node.consul.")
		set(oneNode)
		want("web.service.consul.", "10.0.0.1")
		want("webq.query.consul.", "10.0.0.1")
		want("ext1.node.consul.", "10.0.0.1")
		want("ext2.node.consul.")
	}
}

// policyToken creates, through mgmt, a policy of rules and a token of it,
// and returns the token's secret.
func policyToken(t *testing.T, mgmt *api.Client, rules string) string {
	t.Helper()
	pol, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: fmt.Sprintf("p%d", time.Now().UnixNano()), Rules: rules}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok.SecretID
}

// bootstrapManagement bootstraps the ACL system through n, retrying until
// its leader is ready, and returns a client of n with the management token.
func bootstrapManagement(t *testing.T, n *testcluster.Node) *api.Client {
	t.Helper()
	var boot *api.ACLToken
	testcluster.Eventually(t, 10*time.Second, func() error {
		var err error
		boot, _, err = n.API().ACL().Bootstrap()
		return err
	})
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token = n.HTTPAddr(), boot.SecretID
	mgmt, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mgmt
}
