package httpapi

import (
	"fmt"
	"testing"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
)

func healthAnswer(instances, nodes int) []*catalog.CheckServiceNode {
	out := make([]*catalog.CheckServiceNode, instances)
	for i := range out {
		node := &catalog.Node{Node: fmt.Sprintf("node-%02d", i*nodes/instances)}
		out[i] = &catalog.CheckServiceNode{Node: node, Service: &catalog.Service{ID: fmt.Sprint("web-", i), Service: "web"}}
	}
	return out
}

func authorizer(t testing.TB, rules string) *acl.Authorizer {
	t.Helper()
	r, err := acl.ParseRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	return acl.NewAuthorizer("t", false, r)
}

// TestFilterHealthAnswer: instances need node:read on their node as well
// as service:read; an answer nothing is cut from comes back as it was (the
// same slice: the body cache may serve it), one cut down is new.
func TestFilterHealthAnswer(t *testing.T) {
	answer := healthAnswer(6, 3) // node-00, node-00, node-01, node-01, node-02, node-02
	for _, tc := range []struct {
		name, rules string
		want        int
	}{
		{"service and every node", `service "web" { policy = "read" }
node_prefix "" { policy = "read" }`, 6},
		{"service only", `service "web" { policy = "read" }`, 0},
		{"one node", `service "web" { policy = "read" }
node "node-01" { policy = "read" }`, 2},
		{"node denied", `service "web" { policy = "read" }
node_prefix "" { policy = "read" }
node "node-02" { policy = "deny" }`, 4},
		{"nodes only", `node_prefix "" { policy = "read" }`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, removed, err := filterAnswer(authorizer(t, tc.rules), answer)
			if err != nil {
				t.Fatal(err)
			}
			got := out.([]*catalog.CheckServiceNode)
			if len(got) != tc.want || removed != (tc.want != len(answer)) {
				t.Errorf("filterAnswer = %d instances, removed %v; want %d", len(got), removed, tc.want)
			}
			if !removed && &got[0] != &answer[0] {
				t.Error("an answer nothing was cut from was copied")
			}
			for _, n := range got {
				if tc.want == 2 && n.Node.Node != "node-01" {
					t.Errorf("instance on %s shown", n.Node.Node)
				}
			}
		})
	}
}

// BenchmarkFilterHealthAnswer is the hot path's cost of the node check: a
// health answer of 20 instances, every one readable.
func BenchmarkFilterHealthAnswer(b *testing.B) {
	auth := authorizer(b, `service "web" { policy = "read" }
node_prefix "" { policy = "read" }`)
	for _, nodes := range []int{1, 20} {
		var answer any = healthAnswer(20, nodes) // as the handler returns it
		b.Run(fmt.Sprintf("20 instances on %d nodes", nodes), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, removed, _ := filterAnswer(auth, answer); removed {
					b.Fatal("removed")
				}
			}
		})
	}
}
