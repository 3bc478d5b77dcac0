package agent_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// replicationSecret is dc1's initial management token, which dc2 also
// replicates with.
const replicationSecret = "6f0e4d2c-5b1a-4c3d-9e8f-7a6b5c4d3e2f"

// TestACLReplicationToSecondary: a secondary datacenter replicates the
// primary's policies and global tokens, so that a token made in dc1 works
// in dc2 and, deleted in dc1, stops working there; a local token of dc2
// stays in dc2; policy writes made in dc2 land in dc1; with dc1 cut off,
// dc2 still serves the tokens it holds and denies one it never saw
// (down_policy extend-cache).
func TestACLReplicationToSecondary(t *testing.T) {
	b := testcluster.NewBridge()
	var cs []*testcluster.Cluster
	for _, dc := range []string{"dc1", "dc2"} {
		cs = append(cs, testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: dc, Bridge: b, Configure: func(cfg *configs.Config) {
			cfg.PrimaryDatacenter = "dc1"
			cfg.ACL.Enabled = true
			cfg.ACL.DefaultPolicy = configs.ACLDeny
			if cfg.Datacenter == "dc1" {
				cfg.ACL.Tokens.InitialManagement = replicationSecret
			} else {
				cfg.ACL.Tokens.Replication = replicationSecret
			}
		}}))
	}
	testcluster.Federate(t, cs...)
	dc1, dc2 := withToken(t, cs[0].Servers[0], replicationSecret), withToken(t, cs[1].Servers[0], replicationSecret)

	var pol *api.ACLPolicy
	testcluster.Eventually(t, 20*time.Second, func() error {
		var err error
		pol, _, err = dc1.ACL().PolicyCreate(&api.ACLPolicy{Name: "app", Rules: `key_prefix "app/" { policy = "write" }`}, nil)
		return err
	})
	tok, _, err := dc1.ACL().TokenCreate(&api.ACLToken{Description: "app", Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testcluster.Eventually(t, 20*time.Second, func() error {
		got, _, err := dc2.ACL().TokenRead(tok.AccessorID, nil)
		if err != nil {
			return err
		}
		if len(got.Policies) != 1 || got.Policies[0].Name != "app" {
			return fmt.Errorf("dc2's copy links %+v, want the app policy", got.Policies)
		}
		return nil
	})
	t.Logf("policy and token made in dc1 replicated to dc2 in %v", time.Since(start).Round(time.Millisecond))
	app2 := withToken(t, cs[1].Servers[0], tok.SecretID)
	if _, err := app2.KV().Put(&api.KVPair{Key: "app/x", Value: []byte("1")}, nil); err != nil {
		t.Fatalf("write app/x in dc2 with dc1's token: %v", err)
	}
	if _, err := app2.KV().Put(&api.KVPair{Key: "other/x", Value: []byte("1")}, nil); !denied(err) {
		t.Fatalf("write other/x in dc2 with dc1's app token: %v, want 403", err)
	}

	st, _, err := dc2.ACL().Replication(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || !st.Running || st.SourceDatacenter != "dc1" || st.ReplicationType != "tokens" || st.ReplicatedTokenIndex == 0 || st.ReplicatedIndex == 0 || st.LastSuccess.IsZero() {
		t.Errorf("dc2 replication status %+v, want running from dc1 with indexes", st)
	}
	if st, _, err := dc1.ACL().Replication(nil); err != nil || st.Enabled {
		t.Errorf("dc1 (the primary) replication status %+v, %v: want not enabled", st, err)
	}

	// A local token stays in dc2.
	local, _, err := dc2.ACL().TokenCreate(&api.ACLToken{Description: "dc2 only", Local: true, Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withToken(t, cs[1].Servers[0], local.SecretID).KV().Put(&api.KVPair{Key: "app/local", Value: []byte("1")}, nil); err != nil {
		t.Fatalf("dc2's local token in dc2: %v", err)
	}
	if _, _, err := dc1.ACL().TokenRead(local.AccessorID, nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("dc1 reads dc2's local token: %v, want 404", err)
	}
	if _, err := withToken(t, cs[0].Servers[0], local.SecretID).KV().Put(&api.KVPair{Key: "app/local", Value: []byte("1")}, nil); !denied(err) {
		t.Errorf("dc2's local token in dc1: %v, want 403", err)
	}

	// A policy written in dc2 is the primary's.
	p2, _, err := dc2.ACL().PolicyCreate(&api.ACLPolicy{Name: "made-in-dc2", Rules: `key "z" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatalf("policy create in dc2: %v", err)
	}
	if _, _, err := dc1.ACL().PolicyRead(p2.ID, nil); err != nil {
		t.Errorf("dc1 reads the policy made through dc2: %v", err)
	}

	// Deleted in the primary, the token stops working in the secondary.
	if _, err := dc1.ACL().TokenDelete(tok.AccessorID, nil); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	testcluster.Eventually(t, 20*time.Second, func() error {
		if _, err := app2.KV().Put(&api.KVPair{Key: "app/x", Value: []byte("2")}, nil); !denied(err) {
			return fmt.Errorf("write with the deleted token: %v, want 403", err)
		}
		return nil
	})
	t.Logf("token deleted in dc1 refused in dc2 after %v", time.Since(start).Round(time.Millisecond))

	// The primary cut off: dc2's own copies still work, a token dc2
	// never saw is denied.
	b.Partition(testcluster.IDs(cs[0].Servers...), testcluster.IDs(cs[1].Servers...))
	fresh, _, err := dc1.ACL().TokenCreate(&api.ACLToken{Description: "after the cut", Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withToken(t, cs[1].Servers[0], local.SecretID).KV().Put(&api.KVPair{Key: "app/local", Value: []byte("2")}, nil); err != nil {
		t.Errorf("dc2's local token with dc1 cut off: %v", err)
	}
	if _, err := withToken(t, cs[1].Servers[0], fresh.SecretID).KV().Put(&api.KVPair{Key: "app/fresh", Value: []byte("1")}, nil); !denied(err) {
		t.Errorf("a token dc2 never saw, dc1 cut off: %v, want 403", err)
	}
	b.Heal()
	testcluster.Eventually(t, 30*time.Second, func() error {
		_, err := withToken(t, cs[1].Servers[0], fresh.SecretID).KV().Put(&api.KVPair{Key: "app/fresh", Value: []byte("1")}, nil)
		return err
	})
}

// withToken is an API client of n that sends secret.
func withToken(t *testing.T, n *testcluster.Node, secret string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token = n.HTTPAddr(), secret
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// denied reports whether err is a 403.
func denied(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code == 403
	}
	return err != nil && strings.Contains(err.Error(), "403")
}

// TestACLReplicationWithoutToken: a secondary without
// acl.tokens.replication says so in /v1/acl/replication; meanwhile its
// servers and client agents resolve the primary's tokens against the
// primary; it replicates once the token is set at run time.
func TestACLReplicationWithoutToken(t *testing.T) {
	var cs []*testcluster.Cluster
	for i, dc := range []string{"dc1", "dc2"} {
		cs = append(cs, testcluster.New(t, testcluster.Options{Servers: 1, Clients: i, Datacenter: dc, Configure: func(cfg *configs.Config) {
			cfg.PrimaryDatacenter = "dc1"
			cfg.ACL.Enabled = true
			cfg.ACL.DefaultPolicy = configs.ACLDeny
			cfg.ACL.Tokens.InitialManagement = replicationSecret
			cfg.ACL.Tokens.AgentRecovery = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9" // lets the test set dc2's tokens
		}}))
	}
	testcluster.Federate(t, cs...)
	dc2 := withToken(t, cs[1].Servers[0], replicationSecret)
	testcluster.Eventually(t, 20*time.Second, func() error {
		st, _, err := dc2.ACL().Replication(nil)
		if err != nil {
			return err
		}
		if !strings.Contains(st.LastErrorMessage, "acl.tokens.replication is not set") || st.LastError.IsZero() {
			return fmt.Errorf("dc2 replication status %+v, want the missing token named", st)
		}
		return nil
	})
	// Nothing replicated: dc2's client agent resolves dc1's token through
	// dc2's server, which asks dc1.
	if _, err := withToken(t, cs[1].Clients[0], replicationSecret).KV().Put(&api.KVPair{Key: "x", Value: []byte("1")}, nil); err != nil {
		t.Fatalf("dc1's management token through dc2's client, nothing replicated: %v", err)
	}
	// The initial management token is dc1's alone: dc2 made none.
	recovery := withToken(t, cs[1].Servers[0], "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9")
	if _, err := recovery.Agent().UpdateReplicationACLToken(replicationSecret, nil); !denied(err) {
		t.Fatalf("set dc2's replication token with the recovery token: %v, want 403 (it needs acl:write)", err)
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		// Resolved against dc1, dc1's management token may set it.
		_, err := dc2.Agent().UpdateReplicationACLToken(replicationSecret, nil)
		return err
	})
	testcluster.Eventually(t, 20*time.Second, func() error {
		if _, _, err := dc2.ACL().TokenReadSelf(nil); err != nil {
			return err
		}
		st, _, err := dc2.ACL().Replication(nil)
		if err != nil {
			return err
		}
		if st.ReplicatedTokenIndex == 0 || st.LastSuccess.IsZero() {
			return fmt.Errorf("dc2 replication status %+v, want tokens replicated", st)
		}
		return nil
	})
}
