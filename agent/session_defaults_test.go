package agent_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestSessionWithServiceChecksKeepsSerfHealth: a session that names only
// ServiceChecks keeps the default NodeChecks [serfHealth], as Consul's;
// one that names NodeChecks has just those.
func TestSessionWithServiceChecksKeepsSerfHealth(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	n := c.WaitLeader(10 * time.Second)
	client := n.API()
	if err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web", Name: "web",
		Check: &api.AgentServiceCheck{CheckID: "web-ttl", TTL: "1m", Status: api.HealthPassing}}); err != nil {
		t.Fatal(err)
	}
	id, _, err := client.Session().Create(&api.SessionEntry{ServiceChecks: []api.ServiceCheck{{ID: "web-ttl"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := client.Session().Info(id, nil)
	if err != nil || s == nil {
		t.Fatalf("Info = %v, %v", s, err)
	}
	if !slices.Equal(s.NodeChecks, []string{"serfHealth"}) || len(s.ServiceChecks) != 1 || s.ServiceChecks[0].ID != "web-ttl" {
		t.Errorf("session with ServiceChecks only: NodeChecks %v, ServiceChecks %v; want [serfHealth] and web-ttl", s.NodeChecks, s.ServiceChecks)
	}
	// consul/api leaves an empty list out; a raw body can name none.
	resp, err := http.DefaultClient.Do(mustRequest(t, "PUT", "http://"+n.HTTPAddr()+"/v1/session/create", `{"NodeChecks": []}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, _, err = client.Session().Info(created.ID, nil); err != nil || s == nil || len(s.NodeChecks) != 0 {
		t.Errorf("session with empty NodeChecks: %+v, %v; want no node checks", s, err)
	}
}

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// TestRegisterSkipNodeUpdateWithoutAddress: /v1/catalog/register with
// SkipNodeUpdate needs no Address, as Consul's: a missing node is created
// (with none), an existing one keeps its own; without SkipNodeUpdate an
// Address is required.
func TestRegisterSkipNodeUpdateWithoutAddress(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	cat := c.WaitLeader(10 * time.Second).API().Catalog()
	if _, err := cat.Register(&api.CatalogRegistration{Node: "ext", Address: "10.0.0.9"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Register(&api.CatalogRegistration{Node: "ext", SkipNodeUpdate: true,
		Service: &api.AgentService{ID: "web", Service: "web", Port: 80}}, nil); err != nil {
		t.Fatalf("SkipNodeUpdate on an existing node without an address: %v", err)
	}
	if n, _, err := cat.Node("ext", nil); err != nil || n == nil || n.Node.Address != "10.0.0.9" || n.Services["web"] == nil {
		t.Errorf("ext = %+v, %v; want its address kept and web on it", n, err)
	}
	if _, err := cat.Register(&api.CatalogRegistration{Node: "new", SkipNodeUpdate: true}, nil); err != nil {
		t.Errorf("SkipNodeUpdate on a missing node without an address: %v, want it accepted", err)
	}
	if _, err := cat.Register(&api.CatalogRegistration{Node: "bare"}, nil); err == nil || !strings.Contains(err.Error(), "address") {
		t.Errorf("register without an address or SkipNodeUpdate = %v, want an error naming the address", err)
	}
}
