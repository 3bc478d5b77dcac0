package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestACLInstancesNeedNodeRead: as in Consul, a service instance (and its
// checks) is seen only by a token that may read both the service and the
// instance's node; whatever was cut is marked with
// X-Consul-Results-Filtered-By-ACLs. Asked of the server agent (the HTTP
// API filters) and of the client agent (the server filters its reply as
// well), with a full token first and last, so that a body cached for one
// token is never served to another.
func TestACLInstancesNeedNodeRead(t *testing.T) {
	c, secret := aclAgents(t)
	mgmt := withToken(c.Clients[0], t, secret)
	for _, reg := range []struct{ node, addr, svc string }{
		{"ext1", "10.0.0.1", "web"}, {"ext2", "10.0.0.2", "web"}, {"ext1", "10.0.0.1", "db"},
	} {
		if _, err := mgmt.Catalog().Register(&api.CatalogRegistration{
			Node: reg.node, Address: reg.addr,
			Service: &api.AgentService{ID: reg.svc, Service: reg.svc, Port: 80},
			Checks: api.HealthChecks{
				{Node: reg.node, CheckID: reg.svc + "-up", Name: reg.svc + " up", ServiceID: reg.svc, Status: api.HealthPassing},
				{Node: reg.node, CheckID: "alive", Name: "alive", Status: api.HealthPassing},
			},
		}, nil); err != nil {
			t.Fatalf("register %s on %s: %v", reg.svc, reg.node, err)
		}
	}
	if _, _, err := mgmt.PreparedQuery().Create(&api.PreparedQueryDefinition{Name: "web", Service: api.ServiceQuery{Service: "web"}}, nil); err != nil {
		t.Fatalf("create prepared query: %v", err)
	}
	full := tokenWith(t, mgmt, "all-read", `service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
query_prefix "" { policy = "read" }`)
	svcOnly := tokenWith(t, mgmt, "web-only", `service_prefix "web" { policy = "read" }
query_prefix "" { policy = "read" }`)
	oneNode := tokenWith(t, mgmt, "web-ext1", `service_prefix "web" { policy = "read" }
node "ext1" { policy = "read" }
query_prefix "" { policy = "read" }`)

	for _, agent := range []struct {
		name string
		node *testcluster.Node
	}{{"server agent", c.Servers[0]}, {"client agent", c.Clients[0]}} {
		t.Run(agent.name, func(t *testing.T) {
			testcluster.Eventually(t, 10*time.Second, func() error {
				got := readAs(t, agent.node, full)
				if want := (view{nodes: []string{"ext1", "ext2"}, checks: []string{"ext1/web-up", "ext2/web-up"}, state: []string{"ext1/alive", "ext1/db-up", "ext1/web-up", "ext2/alive", "ext2/web-up"}, ui: []string{"ext1", "ext2"}}); !got.same(want) {
					return fmt.Errorf("full token sees %+v, want %+v", got, want)
				}
				return nil
			})
			for _, tc := range []struct {
				name  string
				token string
				want  view
			}{
				{"service read, no node read", svcOnly, view{filtered: true}},
				{"node read on ext1 only", oneNode, view{nodes: []string{"ext1"}, checks: []string{"ext1/web-up"}, state: []string{"ext1/alive", "ext1/web-up"}, ui: []string{"ext1"}, filtered: true}},
				{"full token again", full, view{nodes: []string{"ext1", "ext2"}, checks: []string{"ext1/web-up", "ext2/web-up"}, state: []string{"ext1/alive", "ext1/db-up", "ext1/web-up", "ext2/alive", "ext2/web-up"}, ui: []string{"ext1", "ext2"}}},
			} {
				if got := readAs(t, agent.node, tc.token); !got.same(tc.want) {
					t.Errorf("%s: sees %+v, want %+v", tc.name, got, tc.want)
				}
			}

			// A node's own endpoints need node:read on it, and show only the
			// services (and service checks) the token may read.
			cl := withToken(agent.node, t, svcOnly)
			if _, _, err := cl.Catalog().Node("ext1", nil); !isDenied(err) {
				t.Errorf("catalog node ext1 without node:read = %v, want 403", err)
			}
			if _, _, err := cl.Health().Node("ext1", nil); !isDenied(err) {
				t.Errorf("health node ext1 without node:read = %v, want 403", err)
			}
			cl = withToken(agent.node, t, oneNode)
			n, meta, err := cl.Catalog().Node("ext1", nil)
			if err != nil || n == nil || len(n.Services) != 1 || n.Services["web"] == nil || !meta.ResultsFilteredByACLs {
				t.Errorf("catalog node ext1 for web+ext1 = %+v, %+v, %v; want web only, filtered", n, meta, err)
			}
			checks, meta, err := cl.Health().Node("ext1", nil)
			if got := checkNames(checks); err != nil || !slices.Equal(got, []string{"ext1/alive", "ext1/web-up"}) || !meta.ResultsFilteredByACLs {
				t.Errorf("health node ext1 for web+ext1 = %v, filtered %v, %v; want alive and web-up, filtered", got, meta.ResultsFilteredByACLs, err)
			}
			if _, _, err := cl.Catalog().Node("ext2", nil); !isDenied(err) {
				t.Errorf("catalog node ext2 for web+ext1 = %v, want 403", err)
			}
		})
	}
}

// view is what one token reads of the web service and its nodes.
type view struct {
	nodes    []string // health/service/web, catalog/service/web and prepared query web agree on these
	checks   []string // health/checks/web, node/check
	state    []string // health/state/any, node/check
	ui       []string // internal/ui/services: web's nodes
	filtered bool     // every read that lost something said so
}

func (v view) same(w view) bool {
	return slices.Equal(v.nodes, w.nodes) && slices.Equal(v.checks, w.checks) && slices.Equal(v.state, w.state) &&
		slices.Equal(v.ui, w.ui) && v.filtered == w.filtered
}

// readAs reads the web service every way there is with token, failing the
// test when two of them disagree on its nodes or on the filtered mark.
func readAs(t *testing.T, n *testcluster.Node, token string) view {
	t.Helper()
	cl := withToken(n, t, token)
	var v view
	marks := map[string]bool{}
	entries, meta, err := cl.Health().Service("web", "", false, nil)
	if err != nil {
		t.Fatalf("health service web: %v", err)
	}
	for _, e := range entries {
		v.nodes = append(v.nodes, e.Node.Node)
	}
	sort.Strings(v.nodes)
	marks["health/service"] = meta.ResultsFilteredByACLs

	svcs, meta, err := cl.Catalog().Service("web", "", nil)
	if err != nil {
		t.Fatalf("catalog service web: %v", err)
	}
	var catalogNodes []string
	for _, s := range svcs {
		catalogNodes = append(catalogNodes, s.Node)
	}
	sort.Strings(catalogNodes)
	if !slices.Equal(catalogNodes, v.nodes) {
		t.Errorf("catalog service web = %v, health service web = %v", catalogNodes, v.nodes)
	}
	marks["catalog/service"] = meta.ResultsFilteredByACLs

	res, _, err := cl.PreparedQuery().Execute("web", nil)
	if err != nil {
		t.Fatalf("execute prepared query web: %v", err)
	}
	var queryNodes []string
	for _, e := range res.Nodes {
		queryNodes = append(queryNodes, e.Node.Node)
	}
	sort.Strings(queryNodes)
	if !slices.Equal(queryNodes, v.nodes) {
		t.Errorf("prepared query web = %v, health service web = %v", queryNodes, v.nodes)
	}

	checks, meta, err := cl.Health().Checks("web", nil)
	if err != nil {
		t.Fatalf("health checks web: %v", err)
	}
	v.checks = checkNames(checks)
	marks["health/checks"] = meta.ResultsFilteredByACLs

	checks, meta, err = cl.Health().State("any", nil)
	if err != nil {
		t.Fatalf("health state any: %v", err)
	}
	for _, c := range checkNames(checks) {
		if c[:3] == "ext" { // the agents' own serfHealth checks are not ours
			v.state = append(v.state, c)
		}
	}
	marks["health/state"] = meta.ResultsFilteredByACLs

	req, _ := http.NewRequest("GET", "http://"+n.HTTPAddr()+"/v1/internal/ui/services", nil)
	req.Header.Set("X-Consul-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("ui services: %v", err)
	}
	defer resp.Body.Close()
	var sums []struct {
		Name  string
		Nodes []string
	}
	if err := json.NewDecoder(resp.Body).Decode(&sums); err != nil {
		t.Fatalf("ui services (status %d): %v", resp.StatusCode, err)
	}
	for _, s := range sums {
		if s.Name == "web" {
			v.ui = slices.Sorted(slices.Values(s.Nodes))
		}
	}

	// Health state loses the agents' own nodes for every token here but
	// the full one, and health checks, catalog and health service agree.
	v.filtered = marks["health/service"]
	for what, m := range marks {
		if what != "health/state" && m != v.filtered {
			t.Errorf("%s filtered = %v, health/service filtered = %v", what, m, v.filtered)
		}
	}
	if v.filtered && !marks["health/state"] {
		t.Error("health/state lost checks and did not say so")
	}
	return v
}

func checkNames(checks api.HealthChecks) []string {
	var out []string
	for _, c := range checks {
		out = append(out, c.Node+"/"+c.CheckID)
	}
	sort.Strings(out)
	return out
}
