package server_test

import (
	"fmt"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestHealthAnswerCacheFollowsChanges reads a service's health repeatedly
// (so the server answers from its cache) and checks that every change is
// seen at once: a check turning critical, a new instance, a tag filter.
func TestHealthAnswerCacheFollowsChanges(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	client := c.Servers[0].API()
	register := func(node, status string, tags ...string) {
		t.Helper()
		_, err := client.Catalog().Register(&api.CatalogRegistration{
			Node: node, Address: "10.0.0.1",
			Service: &api.AgentService{ID: "web", Service: "web", Port: 80, Tags: tags},
			Check:   &api.AgentCheck{Node: node, CheckID: "web-check", Name: "web", Status: status, ServiceID: "web"},
		}, nil)
		if err != nil {
			t.Fatalf("register %s: %v", node, err)
		}
	}
	passing := func(tag string) []string {
		t.Helper()
		var out []string
		for range 3 { // the second and third reads come from the cache
			entries, _, err := client.Health().Service("web", tag, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			out = out[:0]
			for _, e := range entries {
				out = append(out, e.Node.Node)
			}
		}
		return out
	}
	register("n1", api.HealthPassing, "v1")
	if got := fmt.Sprint(passing("")); got != "[n1]" {
		t.Fatalf("passing = %s, want [n1]", got)
	}
	register("n2", api.HealthPassing, "v2")
	if got := fmt.Sprint(passing("")); got != "[n1 n2]" {
		t.Errorf("after adding n2, passing = %s, want [n1 n2]", got)
	}
	if got := fmt.Sprint(passing("v2")); got != "[n2]" {
		t.Errorf("tag v2 = %s, want [n2]", got)
	}
	register("n1", api.HealthCritical, "v1")
	if got := fmt.Sprint(passing("")); got != "[n2]" {
		t.Errorf("after n1 turned critical, passing = %s, want [n2]", got)
	}
}
