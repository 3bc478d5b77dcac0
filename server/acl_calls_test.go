package server_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
)

// TestServerPortChecksReads: reads sent straight to the server port are
// held to the token in their envelope, as the HTTP API holds them: a
// token limited to key_prefix "app/" reads app/ keys, is refused other
// keys and the Raft configuration, sees only app/ keys in a list (marked
// filtered), and the anonymous token sees no node.
func TestServerPortChecksReads(t *testing.T) {
	_, cl := newACLCluster(t, 1, server.ACLConfig{Enabled: true})
	boot := cl.bootstrap()
	pol, err := cl.setPolicy(boot.SecretID, acl.Policy{Name: "app", Rules: `key_prefix "app/" { policy = "write" }`})
	if err != nil {
		t.Fatal(err)
	}
	weak, err := cl.createToken(boot.SecretID, acl.Token{Policies: []acl.PolicyLink{{ID: pol.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"app/a", "secret/b"} {
		var wr rpc.WriteResult
		if err := cl.call(rpc.MethodKVApply, &rpc.Write[kvstore.KVRequest]{WriteOptions: rpc.WriteOptions{Token: boot.SecretID},
			Args: kvstore.KVRequest{Op: kvstore.VerbSet, Key: k, Value: []byte("v")}}, &wr); err != nil {
			t.Fatalf("write %s with the management token: %v", k, err)
		}
	}
	get := func(token, key string) error {
		var reply rpc.Answer[*kvstore.DirEntry]
		return cl.call(rpc.MethodKVGet, &rpc.Query[kvstore.KeyRequest]{QueryOptions: rpc.QueryOptions{Token: token}, Args: kvstore.KeyRequest{Key: key}}, &reply)
	}
	if err := get(weak.SecretID, "app/a"); err != nil {
		t.Errorf("KV get app/a with the app token: %v", err)
	}
	if err := get(weak.SecretID, "secret/b"); !errors.Is(err, rpc.ErrPermissionDenied) {
		t.Errorf("KV get secret/b with the app token = %v, want permission denied", err)
	}
	var raft rpc.Answer[rpc.RaftConfiguration]
	if err := cl.call(rpc.MethodRaftConfig, &rpc.Query[struct{}]{QueryOptions: rpc.QueryOptions{Token: weak.SecretID}}, &raft); !errors.Is(err, rpc.ErrPermissionDenied) {
		t.Errorf("raft configuration with the app token = %v, want permission denied", err)
	}
	var list rpc.Answer[[]*kvstore.DirEntry]
	if err := cl.call(rpc.MethodKVList, &rpc.Query[kvstore.KeyRequest]{QueryOptions: rpc.QueryOptions{Token: weak.SecretID}, Args: kvstore.KeyRequest{Key: ""}}, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Value) != 1 || list.Value[0].Key != "app/a" || !list.ResultsFilteredByACLs {
		t.Errorf("KV list with the app token = %d entries (filtered %v), want app/a alone, filtered", len(list.Value), list.ResultsFilteredByACLs)
	}
	var nodes rpc.Answer[[]*catalog.Node]
	if err := cl.call(rpc.MethodCatalogNodes, &rpc.Query[catalog.NodesRequest]{}, &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Value) != 0 || !nodes.ResultsFilteredByACLs {
		t.Errorf("catalog nodes with the anonymous token = %d nodes (filtered %v), want none, filtered", len(nodes.Value), nodes.ResultsFilteredByACLs)
	}
	if err := cl.call(rpc.MethodCatalogNodes, &rpc.Query[catalog.NodesRequest]{QueryOptions: rpc.QueryOptions{Token: boot.SecretID}}, &nodes); err != nil || len(nodes.Value) == 0 {
		t.Errorf("catalog nodes with the management token = %d nodes, %v; want the server's", len(nodes.Value), err)
	}
}

// TestServerPortInstancesNeedNodeRead: an instance sent over the server
// port is the token's to see only with service:read on its service and
// node:read on its node, in health and catalog answers alike.
func TestServerPortInstancesNeedNodeRead(t *testing.T) {
	_, cl := newACLCluster(t, 1, server.ACLConfig{Enabled: true})
	boot := cl.bootstrap()
	for _, node := range []string{"ext1", "ext2"} {
		reg := catalog.RegisterRequest{Node: node, Address: "10.0.0.1", Service: &catalog.Service{ID: "web", Service: "web"}}
		var wr rpc.WriteResult
		if err := cl.call(rpc.MethodCatalogReg, &rpc.Write[catalog.RegisterRequest]{WriteOptions: rpc.WriteOptions{Token: boot.SecretID}, Args: reg}, &wr); err != nil {
			t.Fatalf("register web on %s: %v", node, err)
		}
	}
	for _, tc := range []struct {
		name, rules string
		want        int
		filtered    bool
	}{
		{"service read only", `service "web" { policy = "read" }`, 0, true},
		{"node read on ext1", `service "web" { policy = "read" }
node "ext1" { policy = "read" }`, 1, true},
		{"node read on all", `service "web" { policy = "read" }
node_prefix "" { policy = "read" }`, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol, err := cl.setPolicy(boot.SecretID, acl.Policy{Name: fmt.Sprintf("p-%d", tc.want), Rules: tc.rules})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := cl.createToken(boot.SecretID, acl.Token{Policies: []acl.PolicyLink{{ID: pol.ID}}})
			if err != nil {
				t.Fatal(err)
			}
			q := &rpc.Query[catalog.ServiceRequest]{QueryOptions: rpc.QueryOptions{Token: tok.SecretID}, Args: catalog.ServiceRequest{Service: "web"}}
			var health rpc.Answer[[]*catalog.CheckServiceNode]
			if err := cl.call(rpc.MethodHealthService, q, &health); err != nil {
				t.Fatal(err)
			}
			if len(health.Value) != tc.want || health.ResultsFilteredByACLs != tc.filtered {
				t.Errorf("health service web = %d instances (filtered %v), want %d (filtered %v)", len(health.Value), health.ResultsFilteredByACLs, tc.want, tc.filtered)
			}
			for _, n := range health.Value {
				if tc.want == 1 && n.Node.Node != "ext1" {
					t.Errorf("health service web showed node %s", n.Node.Node)
				}
			}
			var svc rpc.Answer[[]*catalog.ServiceNode]
			if err := cl.call(rpc.MethodCatalogSvc, q, &svc); err != nil {
				t.Fatal(err)
			}
			if len(svc.Value) != tc.want || svc.ResultsFilteredByACLs != tc.filtered {
				t.Errorf("catalog service web = %d instances (filtered %v), want %d (filtered %v)", len(svc.Value), svc.ResultsFilteredByACLs, tc.want, tc.filtered)
			}
		})
	}
}
