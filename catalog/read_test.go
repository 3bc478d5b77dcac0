package catalog

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func serviceIDs(in []*CheckServiceNode) []string {
	out := []string{}
	for _, c := range in {
		out = append(out, c.Service.ID)
	}
	return out
}

func TestCheckServiceNodesFilters(t *testing.T) {
	t.Parallel()
	db := fixture(t)
	tests := []struct {
		name    string
		service string
		q       ServiceQuery
		want    []string
	}{
		{"all", "web", ServiceQuery{}, []string{"web1", "web2", "web3"}},
		{"name is case-insensitive", "WEB", ServiceQuery{}, []string{"web1", "web2", "web3"}},
		{"tag case-insensitive", "web", ServiceQuery{Tags: []string{"PRIMARY"}}, []string{"web1", "web3"}},
		{"all tags must match", "web", ServiceQuery{Tags: []string{"primary", "v1"}}, []string{"web1"}},
		{"unknown tag", "web", ServiceQuery{Tags: []string{"nope"}}, []string{}},
		{"node meta", "web", ServiceQuery{NodeMeta: map[string]string{"rack": "a"}}, []string{"web1", "web3"}},
		{"node meta no match", "web", ServiceQuery{NodeMeta: map[string]string{"rack": "c"}}, []string{}},
		{"passing excludes warning and critical node check", "web", ServiceQuery{Passing: true}, []string{"web1"}},
		{"passing and meta", "web", ServiceQuery{Passing: true, NodeMeta: map[string]string{"rack": "b"}}, []string{}},
		{"other service", "db", ServiceQuery{Passing: true}, []string{"db1"}},
		{"absent service", "nope", ServiceQuery{}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tx := db.Txn(false)
			_, got, err := CheckServiceNodes(tx, nil, tc.service, tc.q)
			if err != nil {
				t.Fatalf("CheckServiceNodes(%q, %+v) error: %v", tc.service, tc.q, err)
			}
			if ids := serviceIDs(got); !reflect.DeepEqual(ids, tc.want) {
				t.Errorf("CheckServiceNodes(%q, %+v) = %v, want %v", tc.service, tc.q, ids, tc.want)
			}
			_, flat, err := ServiceNodes(tx, nil, tc.service, ServiceQuery{Tags: tc.q.Tags, NodeMeta: tc.q.NodeMeta})
			if err != nil {
				t.Fatalf("ServiceNodes(%q) error: %v", tc.service, err)
			}
			if !tc.q.Passing && len(flat) != len(got) {
				t.Errorf("ServiceNodes(%q, %+v) has %d rows, want %d", tc.service, tc.q, len(flat), len(got))
			}
		})
	}
}

func TestCheckServiceNodesChecks(t *testing.T) {
	t.Parallel()
	db := fixture(t)
	_, got, err := CheckServiceNodes(db.Txn(false), nil, "web", ServiceQuery{})
	if err != nil {
		t.Fatalf("CheckServiceNodes(web) error: %v", err)
	}
	want := map[string][]string{
		"web1": {"serfHealth", "web1-http"},
		"web2": {"serfHealth", "web2-http"},
		"web3": {"serfHealth"},
	}
	for _, e := range got {
		var ids []string
		for _, c := range e.Checks {
			ids = append(ids, c.CheckID)
			if c.ServiceID != "" && (c.ServiceName != "web" || !reflect.DeepEqual(c.ServiceTags, e.Service.Tags)) {
				t.Errorf("check %q: ServiceName %q tags %v, want web %v", c.CheckID, c.ServiceName, c.ServiceTags, e.Service.Tags)
			}
		}
		if !reflect.DeepEqual(ids, want[e.Service.ID]) {
			t.Errorf("CheckServiceNodes(web)[%s].Checks = %v, want %v", e.Service.ID, ids, want[e.Service.ID])
		}
		if e.Node == nil || e.Node.Node == "" {
			t.Errorf("CheckServiceNodes(web)[%s].Node = %v, want the node", e.Service.ID, e.Node)
		}
	}
}

func TestNodeReads(t *testing.T) {
	t.Parallel()
	db := fixture(t)
	tx := db.Txn(false)
	for _, tc := range []struct {
		name     string
		lookup   string
		wantNode string
		wantSvcs int
	}{
		{"exact", "n2", "n2", 2},
		{"upper case", "N2", "n2", 2},
		{"absent", "n9", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx, n, err := GetNode(tx, nil, tc.lookup)
			if err != nil || idx < 1 {
				t.Fatalf("GetNode(%q) = %d, %v, want index >= 1 and no error", tc.lookup, idx, err)
			}
			got := ""
			if n != nil {
				got = n.Node
			}
			if got != tc.wantNode {
				t.Errorf("GetNode(%q) = %q, want %q", tc.lookup, got, tc.wantNode)
			}
			_, ns, err := GetNodeServices(tx, nil, tc.lookup)
			if err != nil {
				t.Fatalf("GetNodeServices(%q) error: %v", tc.lookup, err)
			}
			if (ns == nil) != (tc.wantNode == "") || (ns != nil && len(ns.Services) != tc.wantSvcs) {
				t.Errorf("GetNodeServices(%q) = %+v, want %d services", tc.lookup, ns, tc.wantSvcs)
			}
		})
	}

	for _, tc := range []struct {
		meta map[string]string
		want []string
	}{
		{nil, []string{"n1", "n2", "n3"}},
		{map[string]string{"rack": "a"}, []string{"n1", "n3"}},
		{map[string]string{"rack": "z"}, []string{}},
	} {
		_, nodes, err := Nodes(tx, nil, tc.meta)
		if err != nil {
			t.Fatalf("Nodes(%v) error: %v", tc.meta, err)
		}
		names := []string{}
		for _, n := range nodes {
			names = append(names, n.Node)
		}
		if !reflect.DeepEqual(names, tc.want) {
			t.Errorf("Nodes(%v) = %v, want %v", tc.meta, names, tc.want)
		}
	}
}

func TestServices(t *testing.T) {
	t.Parallel()
	db := fixture(t)
	tx := db.Txn(false)
	for _, tc := range []struct {
		meta map[string]string
		want map[string][]string
	}{
		{nil, map[string][]string{"web": {"Primary", "primary", "secondary", "v1"}, "db": {}}},
		{map[string]string{"rack": "b"}, map[string][]string{"web": {"secondary"}, "db": {}}},
		{map[string]string{"rack": "q"}, map[string][]string{}},
	} {
		_, got, err := Services(tx, nil, tc.meta)
		if err != nil {
			t.Fatalf("Services(%v) error: %v", tc.meta, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Services(%v) = %v, want %v", tc.meta, got, tc.want)
		}
	}
}

func TestCheckQueries(t *testing.T) {
	t.Parallel()
	db := fixture(t)
	tx := db.Txn(false)
	ids := func(cs []*HealthCheck) []string {
		out := []string{}
		for _, c := range cs {
			out = append(out, c.Node+"/"+c.CheckID)
		}
		return out
	}
	tests := []struct {
		name string
		run  func() (uint64, []*HealthCheck, error)
		want []string
	}{
		{"node n2", func() (uint64, []*HealthCheck, error) { return NodeChecks(tx, nil, "N2") },
			[]string{"n2/db1-tcp", "n2/serfHealth", "n2/web2-http"}},
		{"service web", func() (uint64, []*HealthCheck, error) { return ServiceChecks(tx, nil, "web", nil) },
			[]string{"n1/web1-http", "n2/web2-http"}},
		{"service web rack a", func() (uint64, []*HealthCheck, error) {
			return ServiceChecks(tx, nil, "web", map[string]string{"rack": "a"})
		}, []string{"n1/web1-http"}},
		{"state any", func() (uint64, []*HealthCheck, error) { return ChecksInState(tx, nil, HealthAny, nil) },
			[]string{"n1/serfHealth", "n1/web1-http", "n2/db1-tcp", "n2/serfHealth", "n2/web2-http", "n3/serfHealth"}},
		{"state critical", func() (uint64, []*HealthCheck, error) { return ChecksInState(tx, nil, HealthCritical, nil) },
			[]string{"n3/serfHealth"}},
		{"state passing rack b", func() (uint64, []*HealthCheck, error) {
			return ChecksInState(tx, nil, HealthPassing, map[string]string{"rack": "b"})
		}, []string{"n2/db1-tcp", "n2/serfHealth"}},
		{"state warning", func() (uint64, []*HealthCheck, error) { return ChecksInState(tx, nil, HealthWarning, nil) },
			[]string{"n2/web2-http"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idx, got, err := tc.run()
			if err != nil || idx < 1 {
				t.Fatalf("%s = %d, %v, want index >= 1, no error", tc.name, idx, err)
			}
			if !reflect.DeepEqual(ids(got), tc.want) {
				t.Errorf("%s = %v, want %v", tc.name, ids(got), tc.want)
			}
		})
	}
	if _, _, err := ChecksInState(tx, nil, "bogus", nil); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("ChecksInState(%q) error = %v, want %v", "bogus", err, ErrInvalidRequest)
	}
}

func TestEmptyDBIndexIsOne(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	tx := db.Txn(false)
	idx, nodes, err := Nodes(tx, nil, nil)
	if err != nil || idx != 1 || nodes == nil || len(nodes) != 0 {
		t.Errorf("Nodes(empty) = %d, %v, %v, want 1, [], nil", idx, nodes, err)
	}
	idx, got, err := CheckServiceNodes(tx, nil, "web", ServiceQuery{})
	if err != nil || idx != 1 || got == nil || len(got) != 0 {
		t.Errorf("CheckServiceNodes(empty) = %d, %v, %v, want 1, [], nil", idx, got, err)
	}
}

// TestReadsSeeTheirTransaction reads a service while another goroutine
// registers instances of it one transaction at a time: each read sees
// exactly the instances committed before its transaction began, however
// the B-tree of the service's nodes and the node rows change meanwhile
// (run with -race too).
func TestReadsSeeTheirTransaction(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	const n = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			node := fmt.Sprintf("node-%03d", (i*7)%n) // not in name order
			r := svc(node, "10.0.0.1", "web", "web", 80)
			r.Check = chk(node, "web-check", "web", HealthPassing)
			tx := db.Txn(true)
			if err := Register(tx, uint64(i+1), r); err != nil {
				tx.Abort()
				t.Errorf("Register(%s): %v", node, err)
				return
			}
			tx.Commit()
		}
	}()
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		tx := db.Txn(false)
		_, nodes, err := Nodes(tx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, out, err := CheckServiceNodes(tx, nil, "web", ServiceQuery{Passing: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(nodes) {
			t.Fatalf("a read transaction sees %d nodes but %d passing instances of web, want as many", len(nodes), len(out))
		}
		for i := 1; i < len(out); i++ {
			if out[i-1].Node.Node >= out[i].Node.Node {
				t.Fatalf("instances out of node order: %q before %q", out[i-1].Node.Node, out[i].Node.Node)
			}
		}
		tx.Abort()
	}
	_, out, _ := CheckServiceNodes(db.Txn(false), nil, "web", ServiceQuery{})
	if len(out) != n {
		t.Errorf("CheckServiceNodes(web) = %d instances after all registrations, want %d", len(out), n)
	}
}
