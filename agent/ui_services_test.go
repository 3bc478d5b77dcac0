package agent_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// uiSummary is an entry of /v1/internal/ui/services as the UI reads it.
type uiSummary struct {
	Name           string
	Datacenter     string
	Tags           []string
	Nodes          []string
	InstanceCount  int
	ChecksPassing  int
	ChecksWarning  int
	ChecksCritical int
}

func uiServices(c *api.Client, q *api.QueryOptions) (map[string]uiSummary, *api.QueryMeta, error) {
	var list []uiSummary
	meta, err := c.Raw().Query("/v1/internal/ui/services", &list, q)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]uiSummary{}
	for _, s := range list {
		out[s.Name] = s
	}
	return out, meta, nil
}

// registerUIFixture registers, through c: web with three instances (web1
// on ext1 with a critical service check, web2 and web3 on ext2 with none),
// and api with two instances on ext3 sharing one passing node check.
func registerUIFixture(t *testing.T, c *api.Client) {
	t.Helper()
	regs := []*api.CatalogRegistration{
		{Node: "ext1", Address: "10.0.0.1", Service: &api.AgentService{ID: "web1", Service: "web", Tags: []string{"v1"}, Port: 80},
			Check: &api.AgentCheck{CheckID: "web1-http", Name: "http", ServiceID: "web1", Status: api.HealthCritical}},
		{Node: "ext2", Address: "10.0.0.2", Service: &api.AgentService{ID: "web2", Service: "web", Tags: []string{"v2"}, Port: 80}},
		{Node: "ext2", Address: "10.0.0.2", Service: &api.AgentService{ID: "web3", Service: "web", Tags: []string{"v1"}, Port: 81}},
		{Node: "ext3", Address: "10.0.0.3", Service: &api.AgentService{ID: "api1", Service: "api", Port: 90},
			Check: &api.AgentCheck{CheckID: "ext3-alive", Name: "alive", Status: api.HealthPassing}},
		{Node: "ext3", Address: "10.0.0.3", Service: &api.AgentService{ID: "api2", Service: "api", Port: 91}},
	}
	for _, reg := range regs {
		if _, err := c.Catalog().Register(reg, nil); err != nil {
			t.Fatalf("register %s: %v", reg.Service.ID, err)
		}
	}
}

// TestUIServicesCountsEveryInstance: the summary counts each instance once
// whether or not it has checks (web: 3, though one instance has a check),
// counts a node check once per service however many of its instances the
// node runs, and a blocking read of it wakes when a check changes.
func TestUIServicesCountsEveryInstance(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	client := c.Clients[0].API()
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, err := client.Catalog().Register(&api.CatalogRegistration{Node: "probe", Address: "10.0.0.9"}, nil)
		return err
	})
	registerUIFixture(t, client)

	sums, meta, err := uiServices(client, nil)
	if err != nil {
		t.Fatalf("GET /v1/internal/ui/services: %v", err)
	}
	web := sums["web"]
	if web.InstanceCount != 3 || web.ChecksCritical != 1 || web.ChecksPassing != 0 || web.ChecksWarning != 0 {
		t.Errorf("web = %+v, want 3 instances, 1 critical check, nothing else", web)
	}
	if !slices.Equal(web.Nodes, []string{"ext1", "ext2"}) || !slices.Equal(web.Tags, []string{"v1", "v2"}) || web.Datacenter != "dc1" {
		t.Errorf("web nodes %v tags %v dc %q, want [ext1 ext2] [v1 v2] dc1", web.Nodes, web.Tags, web.Datacenter)
	}
	if a := sums["api"]; a.InstanceCount != 2 || a.ChecksPassing != 1 || a.ChecksCritical != 0 {
		t.Errorf("api = %+v, want 2 instances and its node's check counted once", a)
	}
	if meta.LastIndex == 0 {
		t.Fatalf("no X-Consul-Index on the answer")
	}

	woke := make(chan error, 1)
	go func() {
		sums, _, err := uiServices(client, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 30 * time.Second})
		if err == nil && sums["web"].ChecksCritical != 0 {
			err = fmt.Errorf("woke with web %+v, want its check passing", sums["web"])
		}
		woke <- err
	}()
	if _, err := client.Catalog().Register(&api.CatalogRegistration{Node: "ext1", Address: "10.0.0.1", SkipNodeUpdate: true,
		Service: &api.AgentService{ID: "web1", Service: "web", Tags: []string{"v1"}, Port: 80},
		Check:   &api.AgentCheck{CheckID: "web1-http", Name: "http", ServiceID: "web1", Status: api.HealthPassing}}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		if err != nil {
			t.Fatalf("blocking read: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the blocking read did not wake within 30s of the check turning passing")
	}
}

// TestUIServicesFilteredByACL: with default deny, a token that reads only
// web services sees only web in the summary, with all its instances
// counted, and the answer says it was filtered.
func TestUIServicesFilteredByACL(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true, Configure: func(cfg *configs.Config) {
		cfg.ACL.Enabled = true
		cfg.ACL.DefaultPolicy = configs.ACLDeny
	}})
	node := c.Clients[0]
	var boot *api.ACLToken
	testcluster.Eventually(t, 10*time.Second, func() error {
		var err error
		boot, _, err = node.API().ACL().Bootstrap()
		return err
	})
	withToken := func(secret string) *api.Client {
		cfg := api.DefaultConfig()
		cfg.Address, cfg.Token = node.HTTPAddr(), secret
		cl, err := api.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	mgmt := withToken(boot.SecretID)
	registerUIFixture(t, mgmt)
	pol, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: "ui-web", Rules: `service_prefix "web" { policy = "read" }
node_prefix "" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}

	all, _, err := uiServices(mgmt, nil)
	if err != nil {
		t.Fatalf("management token: %v", err)
	}
	if _, ok := all["api"]; !ok || all["web"].InstanceCount != 3 {
		t.Errorf("management token sees %v, want api and web with 3 instances", all)
	}
	var list []uiSummary
	meta, err := withToken(tok.SecretID).Raw().Query("/v1/internal/ui/services", &list, nil)
	if err != nil {
		t.Fatalf("web-only token: %v", err)
	}
	if len(list) != 1 || list[0].Name != "web" || list[0].InstanceCount != 3 {
		t.Errorf("web-only token sees %+v, want web alone with 3 instances", list)
	}
	if !meta.ResultsFilteredByACLs {
		t.Errorf("the answer to the web-only token does not say it was filtered by ACLs")
	}

	// With node:read on ext2 alone, web is summed over ext2's instances
	// only (ext1's web1 and its critical check are not the token's to
	// count), asked of the client (the server sums) and of the server (its
	// HTTP API does).
	pol, _, err = mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: "ui-web-ext2", Rules: `service_prefix "web" { policy = "read" }
node "ext2" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err = mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testcluster.Node{c.Clients[0], c.Servers[0]} {
		cfg := api.DefaultConfig()
		cfg.Address, cfg.Token = n.HTTPAddr(), tok.SecretID
		cl, err := api.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		list = nil
		meta, err := cl.Raw().Query("/v1/internal/ui/services", &list, nil)
		if err != nil {
			t.Fatalf("web+ext2 token on %s: %v", n.Agent().NodeName(), err)
		}
		want := uiSummary{Name: "web", Datacenter: "dc1", Tags: []string{"v1", "v2"}, Nodes: []string{"ext2"}, InstanceCount: 2}
		if len(list) != 1 || fmt.Sprint(list[0]) != fmt.Sprint(want) || !meta.ResultsFilteredByACLs {
			t.Errorf("web+ext2 token on %s sees %+v (filtered %v), want %+v, filtered", n.Agent().NodeName(), list, meta.ResultsFilteredByACLs, want)
		}
	}
}
