package agent_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	mdns "github.com/miekg/dns"

	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/server"
)

// registerWeb registers a "web" instance with a TTL check that starts
// passing; its check ID is "service:<id>".
func registerWeb(t *testing.T, n *testcluster.Node, id, addr string, tags ...string) {
	t.Helper()
	reg := &api.AgentServiceRegistration{
		ID: id, Name: "web", Address: addr, Port: 80, Tags: tags,
		Check: &api.AgentServiceCheck{TTL: "10m", Status: api.HealthPassing},
	}
	if err := n.API().Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register %s on %s: %v", id, n.Name, err)
	}
}

func setWebTTL(t *testing.T, n *testcluster.Node, id, status string) {
	t.Helper()
	if err := n.API().Agent().UpdateTTL("service:"+id, "", status); err != nil {
		t.Fatalf("UpdateTTL(%s, %s) on %s: %v", id, status, n.Name, err)
	}
}

// rawHTTP sends a request to n's HTTP API and answers the status and body.
func rawHTTP(t *testing.T, n *testcluster.Node, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.HTTPAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// addrs lists the service addresses of an execute answer, sorted.
func addrs(r *api.PreparedQueryExecuteResponse) []string {
	var out []string
	for _, n := range r.Nodes {
		out = append(out, n.Service.Address)
	}
	slices.Sort(out)
	return out
}

// executes waits until executing name through n answers want from dc
// after failovers failovers.
func executes(t *testing.T, n *testcluster.Node, name string, opts *api.QueryOptions, dc string, failovers int, want ...string) {
	t.Helper()
	testcluster.Eventually(t, 15*time.Second, func() error {
		r, _, err := n.API().PreparedQuery().Execute(name, opts)
		if err != nil {
			return err
		}
		if got := addrs(r); r.Datacenter != dc || r.Failovers != failovers || !slices.Equal(got, want) {
			return fmt.Errorf("Execute(%s) = %v from %s after %d failovers, want %v from %s after %d", name, got, r.Datacenter, r.Failovers, want, dc, failovers)
		}
		return nil
	})
}

// dnsAnswers waits until NAME.query.consul through n answers want (nil:
// NXDOMAIN).
func dnsAnswers(t *testing.T, n *testcluster.Node, name string, want ...string) {
	t.Helper()
	testcluster.Eventually(t, 15*time.Second, func() error {
		r, err := dnsA(t, n, name)
		if err != nil {
			return err
		}
		var got []string
		for _, rr := range r.Answer {
			if a, ok := rr.(*mdns.A); ok {
				got = append(got, a.A.String())
			}
		}
		slices.Sort(got)
		if len(want) == 0 && r.Rcode != mdns.RcodeNameError {
			return fmt.Errorf("%s = %s %v, want NXDOMAIN", name, mdns.RcodeToString[r.Rcode], got)
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s = %v, want %v", name, got, want)
		}
		return nil
	})
}

func TestPreparedQueries(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1})
	client := c.Clients[0]
	pq := client.API().PreparedQuery()
	registerWeb(t, client, "web1", "10.0.0.1", "v1")
	registerWeb(t, client, "web2", "10.0.0.2", "v2")
	setWebTTL(t, client, "web2", api.HealthCritical)

	t.Run("crud", func(t *testing.T) {
		def := &api.PreparedQueryDefinition{Name: "crud", Service: api.ServiceQuery{Service: "web", Tags: []string{"v1"}}, DNS: api.QueryDNSOptions{TTL: "15s"}}
		id, _, err := pq.Create(def, nil)
		if err != nil || len(id) != 36 {
			t.Fatalf("Create = %q, %v; want a UUID", id, err)
		}
		got, meta, err := pq.Get(id, nil)
		if err != nil || len(got) != 1 || got[0].ID != id || got[0].Name != "crud" || !slices.Equal(got[0].Service.Tags, []string{"v1"}) || got[0].DNS.TTL != "15s" || meta.LastIndex == 0 {
			t.Fatalf("Get(%s) = %+v, %+v, %v; want the definition", id, got, meta, err)
		}
		def.ID = id
		def.Service.Tags = []string{"v2"}
		def.Service.OnlyPassing = true
		if _, err := pq.Update(def, nil); err != nil {
			t.Fatalf("Update = %v", err)
		}
		got, _, err = pq.Get(id, nil)
		if err != nil || len(got) != 1 || !slices.Equal(got[0].Service.Tags, []string{"v2"}) || !got[0].Service.OnlyPassing {
			t.Errorf("Get after Update = %+v, %v; want tags [v2], only passing", got, err)
		}
		list, _, err := pq.List(nil)
		if err != nil || !slices.ContainsFunc(list, func(q *api.PreparedQueryDefinition) bool { return q.ID == id }) {
			t.Errorf("List = %+v, %v; want it to hold %s", list, err, id)
		}
		if _, err := pq.Delete(id, nil); err != nil {
			t.Fatalf("Delete = %v", err)
		}
		var se api.StatusError
		if _, _, err := pq.Get(id, nil); !errors.As(err, &se) || se.Code != 404 {
			t.Errorf("Get after Delete = %v, want 404", err)
		}
		if _, err := pq.Delete(id, nil); !errors.As(err, &se) || se.Code != 404 {
			t.Errorf("Delete of a deleted query = %v, want 404", err)
		}
		def.ID = "66666666-6666-4666-8666-666666666666"
		if _, err := pq.Update(def, nil); !errors.As(err, &se) || se.Code != 404 {
			t.Errorf("Update of an unknown query = %v, want 404", err)
		}
	})

	t.Run("execute", func(t *testing.T) {
		id, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "all-web", Service: api.ServiceQuery{Service: "web"}, DNS: api.QueryDNSOptions{TTL: "7s"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		executes(t, client, "all-web", nil, "dc1", 0, "10.0.0.1")
		r, _, err := pq.Execute(id, nil)
		if err != nil || r.Service != "web" || r.DNS.TTL != "7s" || len(r.Nodes) != 1 || r.Nodes[0].Node.Node != "client1" || len(r.Nodes[0].Checks) == 0 {
			t.Errorf("Execute(by ID) = %+v, %v; want web1 on client1 with its checks, TTL 7s", r, err)
		}
		if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "ignoring", Service: api.ServiceQuery{Service: "web", IgnoreCheckIDs: []string{"service:web2"}}}, nil); err != nil {
			t.Fatal(err)
		}
		executes(t, client, "ignoring", nil, "dc1", 0, "10.0.0.1", "10.0.0.2")
		code, body := rawHTTP(t, client, "GET", "/v1/query/ignoring/execute?limit=1", "")
		var limited api.PreparedQueryExecuteResponse
		if err := json.Unmarshal([]byte(body), &limited); code != 200 || err != nil || len(limited.Nodes) != 1 {
			t.Errorf("execute?limit=1 = %d %s, %v; want one node", code, body, err)
		}
		if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "not-v1", Service: api.ServiceQuery{Service: "web", Tags: []string{"!V1"}, IgnoreCheckIDs: []string{"service:web2"}}}, nil); err != nil {
			t.Fatal(err)
		}
		executes(t, client, "not-v1", nil, "dc1", 0, "10.0.0.2")
		dnsAnswers(t, client, "all-web.query.consul.", "10.0.0.1")
		r2, err := dnsA(t, client, "all-web.query.consul.")
		if err != nil || len(r2.Answer) != 1 || r2.Answer[0].Header().Ttl != 7 {
			t.Errorf("all-web.query.consul = %v, %v; want one A with the query's TTL 7", r2, err)
		}
		var se api.StatusError
		if _, _, err := pq.Execute("no-such-query", nil); !errors.As(err, &se) || se.Code != 404 {
			t.Errorf("Execute(unknown) = %v, want 404", err)
		}
		dnsAnswers(t, client, "no-such-query.query.consul.")
	})

	t.Run("templates", func(t *testing.T) {
		tmpl := api.QueryTemplate{Type: "name_prefix_match"}
		if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "geo-", Template: tmpl, Service: api.ServiceQuery{Service: "${name.suffix}"}}, nil); err != nil {
			t.Fatal(err)
		}
		tmpl.Regexp = `^tag-([a-z]+)-(v[0-9])$`
		if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "tag-", Template: tmpl, Service: api.ServiceQuery{Service: "${match(1)}", Tags: []string{"${match(2)}"}, IgnoreCheckIDs: []string{"service:web2"}}}, nil); err != nil {
			t.Fatal(err)
		}
		executes(t, client, "geo-web", nil, "dc1", 0, "10.0.0.1")
		executes(t, client, "tag-web-v1", nil, "dc1", 0, "10.0.0.1")
		executes(t, client, "tag-web-v2", nil, "dc1", 0, "10.0.0.2")
		r, _, err := pq.Execute("geo-nothing", nil)
		if err != nil || r.Service != "nothing" || len(r.Nodes) != 0 {
			t.Errorf("Execute(geo-nothing) = %+v, %v; want no instance of service nothing", r, err)
		}
		code, body := rawHTTP(t, client, "GET", "/v1/query/tag-web-v2/explain", "")
		var ex struct {
			Query api.PreparedQueryDefinition
		}
		if err := json.Unmarshal([]byte(body), &ex); code != 200 || err != nil || ex.Query.Service.Service != "web" || !slices.Equal(ex.Query.Service.Tags, []string{"v2"}) || ex.Query.Name != "tag-" {
			t.Errorf("explain tag-web-v2 = %d %s, want the template rendered: service web, tags [v2]", code, body)
		}
		dnsAnswers(t, client, "geo-web.query.consul.", "10.0.0.1")
		dnsAnswers(t, client, "tag-web-v2.query.dc1.consul.", "10.0.0.2")
	})

	t.Run("near", func(t *testing.T) {
		// Nodes outside any agent, so that only these coordinates count:
		// "far" is 30ms from "origin" on the first axis, "mid" 20ms, "near"
		// 10ms.
		catalog := client.API().Catalog()
		for i, name := range []string{"origin", "near", "mid", "far"} {
			reg := &api.CatalogRegistration{Node: name, Address: fmt.Sprintf("10.1.0.%d", i+1)}
			if name != "origin" {
				reg.Service = &api.AgentService{ID: "api", Service: "api", Port: 80}
			}
			if _, err := catalog.Register(reg, nil); err != nil {
				t.Fatal(err)
			}
		}
		for i, name := range []string{"origin", "near", "mid", "far"} {
			body := fmt.Sprintf(`{"Node":%q,"Coord":{"Vec":[%v,0,0,0,0,0,0,0],"Error":0.1,"Adjustment":0,"Height":0}}`, name, float64(i)*0.010)
			if code, out := rawHTTP(t, client, "PUT", "/v1/coordinate/update", body); code != 200 {
				t.Fatalf("coordinate update of %s = %d %s", name, code, out)
			}
		}
		testcluster.Eventually(t, 10*time.Second, func() error {
			entries, _, err := client.API().Coordinate().Nodes(nil)
			if err != nil {
				return err
			}
			have := 0
			for _, e := range entries {
				if slices.Contains([]string{"origin", "near", "mid", "far"}, e.Node) {
					have++
				}
			}
			if have != 4 {
				return fmt.Errorf("%d of the 4 coordinates written so far", have)
			}
			return nil
		})
		if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "api-near", Service: api.ServiceQuery{Service: "api", Near: "origin"}}, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "api", Service: api.ServiceQuery{Service: "api"}}, nil); err != nil {
			t.Fatal(err)
		}
		// The answer is shuffled before the sort: once the coordinates
		// are in, every execution must come out in order.
		order := func(name string, opts *api.QueryOptions, want ...string) {
			t.Helper()
			check := func() error {
				r, _, err := pq.Execute(name, opts)
				if err != nil {
					return err
				}
				var got []string
				for _, n := range r.Nodes {
					got = append(got, n.Node.Node)
				}
				if !slices.Equal(got, want) {
					return fmt.Errorf("Execute(%s) = %v, want %v", name, got, want)
				}
				return nil
			}
			for range 10 {
				if err := check(); err != nil {
					t.Fatal(err)
				}
			}
		}
		order("api-near", nil, "near", "mid", "far")
		order("api", &api.QueryOptions{Near: "origin"}, "near", "mid", "far")
		order("api-near", &api.QueryOptions{Near: "far"}, "far", "mid", "near")
	})

	t.Run("snake_case", func(t *testing.T) {
		code, body := rawHTTP(t, client, "POST", "/v1/query", `{"name":"snake","service":{"service":"web","only_passing":true,"node_meta":{"a_b":"c"}}}`)
		if code != 200 {
			t.Fatalf("create with snake_case keys = %d %s", code, body)
		}
		got, _, err := pq.Get("snake", nil) // Get takes IDs only
		var se api.StatusError
		if !errors.As(err, &se) || se.Code != 404 {
			t.Errorf("Get(by name) = %+v, %v; want 404 (Get takes an ID)", got, err)
		}
		var created struct{ ID string }
		_ = json.Unmarshal([]byte(body), &created)
		got, _, err = pq.Get(created.ID, nil)
		if err != nil || len(got) != 1 || !got[0].Service.OnlyPassing || got[0].Service.NodeMeta["a_b"] != "c" {
			t.Errorf("Get(%s) = %+v, %v; want OnlyPassing and NodeMeta a_b=c", created.ID, got, err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name, body, want string
		}{
			{"unknown field", `{"Name":"x","Service":{"Service":"web"},"Bogus":1}`, "Bogus"},
			{"unknown nested field", `{"Name":"x","Service":{"Service":"web","Failover":{"Nearest":1}}}`, "Nearest"},
			{"regexp", `{"Name":"re-","Template":{"Type":"name_prefix_match","Regexp":"(["},"Service":{"Service":"web"}}`, "regexp"},
			{"nearest", `{"Name":"x","Service":{"Service":"web","Failover":{"NearestN":-1}}}`, "NearestN"},
			{"unknown dc", `{"Name":"x","Service":{"Service":"web","Failover":{"Datacenters":["dc9"]}}}`, "dc9"},
			{"no service", `{"Name":"x"}`, "service name is required"},
			{"ttl", `{"Name":"x","Service":{"Service":"web"},"DNS":{"TTL":"soon"}}`, "TTL"},
			{"name taken", `{"Name":"all-web","Service":{"Service":"web"}}`, "taken"},
			{"unknown session", `{"Name":"x","Session":"77777777-7777-4777-8777-777777777777","Service":{"Service":"web"}}`, "session"},
			{"template variable", `{"Name":"v-","Template":{"Type":"name_prefix_match"},"Service":{"Service":"${nope}"}}`, "unknown variable"},
			{"not json", `{"Name":`, "request body"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				code, body := rawHTTP(t, client, "POST", "/v1/query", tc.body)
				if code != 400 || !strings.Contains(body, tc.want) || strings.Count(strings.TrimSpace(body), "\n") != 0 {
					t.Errorf("POST /v1/query %s = %d %q, want 400 with one line naming %q", tc.body, code, body, tc.want)
				}
			})
		}
		if code, body := rawHTTP(t, client, "GET", "/v1/query/all-web/execute?limit=-1", ""); code != 400 {
			t.Errorf("execute?limit=-1 = %d %s, want 400", code, body)
		}
	})
}

// TestPreparedQueryFailover runs three federated datacenters where dc1
// measures dc3 at 10ms and dc2 at 50ms, each with one "web" instance at
// 10.0.<n>.1, and fails them one by one.
func TestPreparedQueryFailover(t *testing.T) {
	rtt := func(name string) (time.Duration, bool) {
		switch {
		case strings.HasSuffix(name, ".dc2"):
			return 50 * time.Millisecond, true
		case strings.HasSuffix(name, ".dc3"):
			return 10 * time.Millisecond, true
		}
		return time.Millisecond, true
	}
	var cs []*testcluster.Cluster
	for i, dc := range []string{"dc1", "dc2", "dc3"} {
		c := testcluster.New(t, testcluster.Options{
			Servers: 1, Clients: 1, Datacenter: dc,
			TuneServer: func(c *server.Config) { c.Federation.RTT = rtt },
		})
		registerWeb(t, c.Clients[0], "web1", fmt.Sprintf("10.0.%d.1", i+1))
		cs = append(cs, c)
	}
	testcluster.Federate(t, cs...)
	dc1, dc2, dc3 := cs[0].Clients[0], cs[1].Clients[0], cs[2].Clients[0]
	pq := dc1.API().PreparedQuery()

	// The order comes from the RTTs dc1 has measured, each link's own
	// once it is up: right after Federate, under -race, CI saw dc2 before
	// dc3 once.
	testcluster.Eventually(t, 10*time.Second, func() error {
		if dcs, err := dc1.API().Catalog().Datacenters(); err != nil || !slices.Equal(dcs, []string{"dc1", "dc3", "dc2"}) {
			return fmt.Errorf("Datacenters() in dc1 = %v, %v; want [dc1 dc3 dc2] (by the injected RTTs)", dcs, err)
		}
		return nil
	})
	nearest := &api.PreparedQueryDefinition{Name: "nearest", Service: api.ServiceQuery{Service: "web", Failover: api.QueryFailoverOptions{NearestN: 1, Datacenters: []string{"dc2"}}}}
	if _, _, err := pq.Create(nearest, nil); err != nil {
		t.Fatal(err)
	}
	listed := &api.PreparedQueryDefinition{Name: "listed", Service: api.ServiceQuery{Service: "web", Failover: api.QueryFailoverOptions{Datacenters: []string{"dc3", "dc2"}}}}
	if _, _, err := pq.Create(listed, nil); err != nil {
		t.Fatal(err)
	}
	// A query written into dc2 from dc1, and run there through ?dc=.
	if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "there", Service: api.ServiceQuery{Service: "web"}}, &api.WriteOptions{Datacenter: "dc2"}); err != nil {
		t.Fatalf("Create in dc2 from dc1: %v", err)
	}

	// Healthy at home: answered locally, whatever the failover says.
	executes(t, dc1, "nearest", nil, "dc1", 0, "10.0.1.1")
	executes(t, dc1, "there", &api.QueryOptions{Datacenter: "dc2"}, "dc2", 0, "10.0.2.1")
	var se api.StatusError
	if _, _, err := pq.Execute("there", nil); !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("Execute(there) in dc1 = %v, want 404: queries belong to their datacenter", err)
	}

	// dc1 down: the nearest other DC answers.
	setWebTTL(t, dc1, "web1", api.HealthCritical)
	executes(t, dc1, "nearest", nil, "dc3", 1, "10.0.3.1")
	dnsAnswers(t, dc1, "nearest.query.consul.", "10.0.3.1")

	// dc3 down too: the listed dc2, after two tries.
	setWebTTL(t, dc3, "web1", api.HealthCritical)
	executes(t, dc1, "nearest", nil, "dc2", 2, "10.0.2.1")
	dnsAnswers(t, dc1, "nearest.query.consul.", "10.0.2.1")

	// Everything down: no instance, every DC tried.
	setWebTTL(t, dc2, "web1", api.HealthCritical)
	executes(t, dc1, "nearest", nil, "dc2", 2)
	dnsAnswers(t, dc1, "nearest.query.consul.")

	// Back at home: local again.
	setWebTTL(t, dc1, "web1", api.HealthPassing)
	executes(t, dc1, "nearest", nil, "dc1", 0, "10.0.1.1")

	// dc1 down, dc2 back, and dc3 gone: the list is walked in its order,
	// the unreachable dc3 counting as a try.
	setWebTTL(t, dc1, "web1", api.HealthCritical)
	setWebTTL(t, dc2, "web1", api.HealthPassing)
	executes(t, dc1, "listed", nil, "dc2", 2, "10.0.2.1")
	for _, n := range append(cs[2].Servers, cs[2].Clients...) {
		n.Kill()
	}
	executes(t, dc1, "listed", nil, "dc2", 2, "10.0.2.1")
	dnsAnswers(t, dc1, "listed.query.consul.", "10.0.2.1")
}
