package catalog

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	memdb "github.com/hashicorp/go-memdb"
)

// compatDB registers, from the JSON the official client sends, one node with
// one service and a check carrying a definition, plus an untagged service.
func compatDB(t *testing.T) *memdb.MemDB {
	t.Helper()
	reg := &api.CatalogRegistration{
		ID: "0b2f0ad4-6c55-4d2a-8a0e-7f1b5b3f9c11", Node: "alpha", Address: "10.1.1.1", Datacenter: "dc1",
		TaggedAddresses: map[string]string{"lan": "10.1.1.1", "wan": "1.2.3.4"},
		NodeMeta:        map[string]string{"rack": "r1"},
		Service: &api.AgentService{
			ID: "web-1", Service: "web", Tags: []string{"v2", "primary"}, Port: 8080, Address: "10.1.1.2",
			Meta:            map[string]string{"version": "2"},
			TaggedAddresses: map[string]api.ServiceAddress{"lan": {Address: "10.1.1.2", Port: 8080}},
			Weights:         api.AgentWeights{Passing: 10, Warning: 2},
		},
		Check: &api.AgentCheck{
			CheckID: "web-http", Name: "web http", Status: api.HealthPassing, ServiceID: "web-1", Output: "200 OK",
			Type:       "http",
			Definition: api.HealthCheckDefinition{HTTP: "http://10.1.1.2:8080/health", IntervalDuration: 10 * time.Second, TimeoutDuration: 2 * time.Second},
		},
	}
	plain := &api.CatalogRegistration{Node: "alpha", Address: "10.1.1.1", SkipNodeUpdate: true,
		Service: &api.AgentService{Service: "plain", Port: 9}}
	db := newDB(t)
	for i, r := range []*api.CatalogRegistration{reg, plain} {
		body, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", r, err)
		}
		var req RegisterRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("json.Unmarshal(%s) into RegisterRequest: %v", body, err)
		}
		register(t, db, uint64(5+i), &req)
	}
	return db
}

func roundTrip(t *testing.T, in, out any) []byte {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("json.Marshal(%T): %v", in, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("json.Unmarshal(%s) into %T: %v", b, out, err)
	}
	return b
}

func TestJSONMatchesConsulClient(t *testing.T) {
	t.Parallel()
	db := compatDB(t)
	tx := db.Txn(false)
	wantNode := api.Node{
		ID: "0b2f0ad4-6c55-4d2a-8a0e-7f1b5b3f9c11", Node: "alpha", Address: "10.1.1.1", Datacenter: "dc1",
		TaggedAddresses: map[string]string{"lan": "10.1.1.1", "wan": "1.2.3.4"},
		Meta:            map[string]string{"rack": "r1"}, CreateIndex: 5, ModifyIndex: 5,
	}
	wantService := api.AgentService{
		ID: "web-1", Service: "web", Tags: []string{"v2", "primary"}, Port: 8080, Address: "10.1.1.2",
		Meta:            map[string]string{"version": "2"},
		TaggedAddresses: map[string]api.ServiceAddress{"lan": {Address: "10.1.1.2", Port: 8080}},
		Weights:         api.AgentWeights{Passing: 10, Warning: 2}, CreateIndex: 5, ModifyIndex: 5,
	}

	t.Run("health service", func(t *testing.T) {
		_, in, err := CheckServiceNodes(tx, nil, "web", ServiceQuery{})
		if err != nil {
			t.Fatalf("CheckServiceNodes(web): %v", err)
		}
		var got []*api.ServiceEntry
		roundTrip(t, in, &got)
		if len(got) != 1 {
			t.Fatalf("CheckServiceNodes(web) decoded to %d entries, want 1", len(got))
		}
		if !reflect.DeepEqual(*got[0].Node, wantNode) {
			t.Errorf("ServiceEntry.Node = %+v, want %+v", *got[0].Node, wantNode)
		}
		if !reflect.DeepEqual(*got[0].Service, wantService) {
			t.Errorf("ServiceEntry.Service = %+v, want %+v", *got[0].Service, wantService)
		}
		if len(got[0].Checks) != 1 {
			t.Fatalf("ServiceEntry.Checks = %v, want 1 check", got[0].Checks)
		}
		c := got[0].Checks[0]
		if c.Node != "alpha" || c.CheckID != "web-http" || c.Name != "web http" || c.Status != "passing" ||
			c.ServiceID != "web-1" || c.ServiceName != "web" || !reflect.DeepEqual(c.ServiceTags, []string{"v2", "primary"}) ||
			c.Output != "200 OK" || c.Type != "http" || c.CreateIndex != 5 || c.ModifyIndex != 5 {
			t.Errorf("ServiceEntry.Checks[0] = %+v, want the registered check", c)
		}
		if c.Definition.HTTP != "http://10.1.1.2:8080/health" || c.Definition.IntervalDuration != 10*time.Second ||
			c.Definition.TimeoutDuration != 2*time.Second {
			t.Errorf("ServiceEntry.Checks[0].Definition = %+v, want HTTP, 10s, 2s", c.Definition)
		}
	})

	t.Run("catalog service", func(t *testing.T) {
		_, in, err := ServiceNodes(tx, nil, "web", ServiceQuery{})
		if err != nil {
			t.Fatalf("ServiceNodes(web): %v", err)
		}
		var got []*api.CatalogService
		roundTrip(t, in, &got)
		want := api.CatalogService{
			ID: wantNode.ID, Node: "alpha", Address: "10.1.1.1", Datacenter: "dc1",
			TaggedAddresses: wantNode.TaggedAddresses, NodeMeta: wantNode.Meta,
			ServiceID: "web-1", ServiceName: "web", ServiceAddress: "10.1.1.2",
			ServiceTaggedAddresses: wantService.TaggedAddresses, ServiceTags: wantService.Tags,
			ServiceMeta: wantService.Meta, ServicePort: 8080, ServiceWeights: api.Weights{Passing: 10, Warning: 2},
			CreateIndex: 5, ModifyIndex: 5,
		}
		if len(got) != 1 || !reflect.DeepEqual(*got[0], want) {
			t.Errorf("ServiceNodes(web) decoded = %+v, want [%+v]", got, want)
		}
	})

	t.Run("catalog node", func(t *testing.T) {
		_, in, err := GetNodeServices(tx, nil, "ALPHA")
		if err != nil {
			t.Fatalf("GetNodeServices(ALPHA): %v", err)
		}
		var got api.CatalogNode
		roundTrip(t, in, &got)
		if !reflect.DeepEqual(*got.Node, wantNode) {
			t.Errorf("CatalogNode.Node = %+v, want %+v", *got.Node, wantNode)
		}
		if s := got.Services["web-1"]; s == nil || !reflect.DeepEqual(*s, wantService) {
			t.Errorf("CatalogNode.Services[web-1] = %+v, want %+v", s, wantService)
		}
		wantPlain := api.AgentService{ID: "plain", Service: "plain", Tags: []string{}, Port: 9,
			Weights: api.AgentWeights{Passing: 1, Warning: 1}, CreateIndex: 6, ModifyIndex: 6}
		if s := got.Services["plain"]; s == nil || !reflect.DeepEqual(*s, wantPlain) {
			t.Errorf("CatalogNode.Services[plain] = %+v, want %+v", s, wantPlain)
		}
	})

	t.Run("nodes", func(t *testing.T) {
		_, in, err := Nodes(tx, nil, nil)
		if err != nil {
			t.Fatalf("Nodes(): %v", err)
		}
		var got []*api.Node
		roundTrip(t, in, &got)
		if len(got) != 1 || !reflect.DeepEqual(*got[0], wantNode) {
			t.Errorf("Nodes() decoded = %+v, want [%+v]", got, wantNode)
		}
	})
}

// TestJSONShapes checks the raw text where Consul writes [] rather than null.
func TestJSONShapes(t *testing.T) {
	t.Parallel()
	db := compatDB(t)
	tx := db.Txn(false)
	tests := []struct {
		name     string
		run      func() (any, error)
		contains []string
	}{
		{"untagged service", func() (any, error) {
			_, v, err := CheckServiceNodes(tx, nil, "plain", ServiceQuery{})
			return v, err
		}, []string{`"Tags":[]`, `"Checks":[]`, `"Weights":{"Passing":1,"Warning":1}`}},
		{"empty health answer", func() (any, error) {
			_, v, err := CheckServiceNodes(tx, nil, "nope", ServiceQuery{})
			return v, err
		}, []string{`[]`}},
		{"empty catalog answer", func() (any, error) {
			_, v, err := ServiceNodes(tx, nil, "nope", ServiceQuery{})
			return v, err
		}, []string{`[]`}},
		{"untagged catalog service", func() (any, error) {
			_, v, err := ServiceNodes(tx, nil, "plain", ServiceQuery{})
			return v, err
		}, []string{`"ServiceTags":[]`, `"ServiceKind":""`}},
		{"services", func() (any, error) {
			_, v, err := Services(tx, nil, nil)
			return v, err
		}, []string{`"plain":[]`, `"web":["primary","v2"]`}},
		{"check definition", func() (any, error) {
			_, v, err := ServiceChecks(tx, nil, "web", nil)
			return v, err
		}, []string{`"Definition":{"HTTP":"http://10.1.1.2:8080/health","Interval":"10s","Timeout":"2s"}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.run()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			for _, want := range tc.contains {
				if !bytes.Contains(b, []byte(want)) {
					t.Errorf("json.Marshal(%s) = %s, want it to contain %s", tc.name, b, want)
				}
			}
			// Consul writes an absent service meta as null, as we do; no
			// other field may be null.
			rest := strings.NewReplacer(`"Meta":null`, "", `"ServiceMeta":null`, "").Replace(string(b))
			if strings.Contains(rest, "null") {
				t.Errorf("json.Marshal(%s) = %s, want no null but Meta", tc.name, b)
			}
		})
	}
}
