package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/rpc"
)

// TestACLPolicyDatacenters: a policy limited to one datacenter grants
// nothing in another, whether the other resolves the token against the
// primary (nothing replicated yet) or from its replicated copy; a role
// carries its policies' limits; a token local to the primary is unknown
// in the secondary. Once replication runs, /v1/acl/replication reports
// the primary's policy, role and token indexes, each its own.
func TestACLPolicyDatacenters(t *testing.T) {
	var cs []*testcluster.Cluster
	for i, dc := range []string{"dc1", "dc2"} {
		cs = append(cs, testcluster.New(t, testcluster.Options{Servers: 1, Clients: i, Datacenter: dc, Configure: func(cfg *configs.Config) {
			cfg.PrimaryDatacenter = "dc1"
			cfg.ACL.Enabled = true
			cfg.ACL.DefaultPolicy = configs.ACLDeny
			cfg.ACL.Tokens.InitialManagement = replicationSecret
		}}))
	}
	testcluster.Federate(t, cs...)
	dc1 := withToken(t, cs[0].Servers[0], replicationSecret)
	dc2 := withToken(t, cs[1].Servers[0], replicationSecret)

	policy := func(name string, dcs ...string) *api.ACLPolicy {
		t.Helper()
		var p *api.ACLPolicy
		testcluster.Eventually(t, 20*time.Second, func() error {
			var err error
			p, _, err = dc1.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Datacenters: dcs, Rules: `key_prefix "app/" { policy = "write" }`}, nil)
			return err
		})
		return p
	}
	token := func(tok *api.ACLToken) *api.ACLToken {
		t.Helper()
		out, _, err := dc1.ACL().TokenCreate(tok, nil)
		if err != nil {
			t.Fatalf("token create %q: %v", tok.Description, err)
		}
		return out
	}
	only1, only2, anywhere := policy("only-dc1", "dc1"), policy("only-dc2", "dc2"), policy("anywhere")
	role, _, err := dc1.ACL().RoleCreate(&api.ACLRole{Name: "dc2-role", Policies: []*api.ACLRolePolicyLink{{ID: only2.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok1 := token(&api.ACLToken{Description: "dc1 policy", Policies: []*api.ACLTokenPolicyLink{{ID: only1.ID}}})
	tok2 := token(&api.ACLToken{Description: "dc2 policy", Policies: []*api.ACLTokenPolicyLink{{ID: only2.ID}}})
	tokRole := token(&api.ACLToken{Description: "dc2 role", Roles: []*api.ACLTokenRoleLink{{ID: role.ID}}})
	tokLocal := token(&api.ACLToken{Description: "dc1 local", Local: true, Policies: []*api.ACLTokenPolicyLink{{ID: anywhere.ID}}})
	// Written after the role: their indexes differ from the role's.
	lastPolicy := policy("later")

	type want struct {
		tok      *api.ACLToken
		in1, in2 bool // may write app/x in dc1, in dc2
	}
	wants := []want{{tok1, true, false}, {tok2, false, true}, {tokRole, false, true}, {tokLocal, true, false}}
	check := func(phase string) {
		t.Helper()
		for _, w := range wants {
			for _, n := range []*testcluster.Node{cs[0].Servers[0], cs[1].Servers[0], cs[1].Clients[0]} {
				allowed := w.in1
				if n != cs[0].Servers[0] {
					allowed = w.in2
				}
				_, err := withToken(t, n, w.tok.SecretID).KV().Put(&api.KVPair{Key: "app/x", Value: []byte("1")}, nil)
				switch {
				case allowed && err != nil:
					t.Errorf("%s: %q writes app/x through %s: %v, want allowed", phase, w.tok.Description, n.ID(), err)
				case !allowed && !denied(err):
					t.Errorf("%s: %q writes app/x through %s: %v, want 403", phase, w.tok.Description, n.ID(), err)
				}
			}
		}
	}
	// dc2 has no replication token: it resolves every token against dc1.
	if st, _, err := dc2.ACL().Replication(nil); err != nil || st.ReplicatedTokenIndex != 0 {
		t.Fatalf("dc2 replication status %+v, %v: want nothing replicated yet", st, err)
	}
	check("resolved against the primary")

	testcluster.Eventually(t, 20*time.Second, func() error {
		_, err := dc2.Agent().UpdateReplicationACLToken(replicationSecret, nil)
		return err
	})
	var st *api.ACLReplicationStatus
	testcluster.Eventually(t, 30*time.Second, func() error {
		var err error
		st, _, err = dc2.ACL().Replication(nil)
		if err != nil {
			return err
		}
		if st.ReplicatedIndex < lastPolicy.ModifyIndex || st.ReplicatedTokenIndex < tokLocal.CreateIndex || st.ReplicatedRoleIndex == 0 {
			return fmt.Errorf("dc2 replication status %+v, want policies to %d, roles, tokens to %d", st, lastPolicy.ModifyIndex, tokLocal.CreateIndex)
		}
		return nil
	})
	if st.ReplicatedRoleIndex != role.ModifyIndex {
		t.Errorf("ReplicatedRoleIndex = %d, want %d (dc1's last role write; policies are at %d, tokens at %d)", st.ReplicatedRoleIndex, role.ModifyIndex, st.ReplicatedIndex, st.ReplicatedTokenIndex)
	}
	for _, w := range wants[:3] {
		if _, _, err := dc2.ACL().TokenRead(w.tok.AccessorID, &api.QueryOptions{AllowStale: true}); err != nil {
			t.Fatalf("dc2 reads its copy of %q: %v", w.tok.Description, err)
		}
	}
	if _, _, err := dc2.ACL().TokenRead(tokLocal.AccessorID, &api.QueryOptions{AllowStale: true}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("dc2 reads dc1's local token: %v, want 404", err)
	}
	check("from the replicated copy")

	// The role changes in dc1: the role index follows.
	role.Description = "moved"
	role, _, err = dc1.ACL().RoleUpdate(role, nil)
	if err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		st, _, err := dc2.ACL().Replication(nil)
		if err != nil {
			return err
		}
		if st.ReplicatedRoleIndex != role.ModifyIndex {
			return fmt.Errorf("ReplicatedRoleIndex = %d after the role's update, want %d", st.ReplicatedRoleIndex, role.ModifyIndex)
		}
		return nil
	})
}

// TestACLPrimaryMisnamed: a secondary that names as primary a datacenter
// which is not the primary itself (two naming each other; one naming a
// datacenter that replicates from a third) gets a refusal naming the
// datacenters, from replication and from token resolution alike, instead
// of requests forwarded round in a loop or a copy replicated from a copy.
func TestACLPrimaryMisnamed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		primary1 string // dc1's primary_datacenter; dc2's is dc1
		msg      string // in dc2's replication error and 403
	}{
		{"each other", "dc2", "datacenters dc2 and dc1 each name the other primary_datacenter"},
		{"a secondary", "dc3", `datacenter dc2 names dc1 its primary_datacenter, but dc1 is not the ACL primary: it names dc3; set primary_datacenter = "dc3" in dc2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cs []*testcluster.Cluster
			for i, dc := range []string{"dc1", "dc2"} {
				cs = append(cs, testcluster.New(t, testcluster.Options{Servers: 1, Clients: i, Datacenter: dc, Configure: func(cfg *configs.Config) {
					cfg.PrimaryDatacenter = "dc1"
					if cfg.Datacenter == "dc1" {
						cfg.PrimaryDatacenter = tc.primary1
					}
					cfg.ACL.Enabled = true
					cfg.ACL.DefaultPolicy = configs.ACLDeny
					// A refusal is not an outage: even "allow" denies.
					cfg.ACL.DownPolicy = configs.ACLAllow
					cfg.ACL.Tokens.Replication = replicationSecret
				}}))
			}
			testcluster.Federate(t, cs...)
			dc2 := withToken(t, cs[1].Servers[0], replicationSecret)
			testcluster.Eventually(t, 30*time.Second, func() error {
				st, _, err := dc2.ACL().Replication(nil)
				if err != nil {
					return err
				}
				if !strings.Contains(st.LastErrorMessage, tc.msg) || !st.LastSuccess.IsZero() {
					return fmt.Errorf("dc2 replication status %+v, want an error with %q and no success", st, tc.msg)
				}
				return nil
			})
			for _, n := range []*testcluster.Node{cs[1].Servers[0], cs[1].Clients[0]} {
				start := time.Now()
				_, err := withToken(t, n, replicationSecret).KV().Put(&api.KVPair{Key: "x", Value: []byte("1")}, nil)
				if !denied(err) || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("a write through %s with a token it must resolve in dc1: %v, want 403 with %q", n.ID(), err, tc.msg)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("the refusal through %s took %v: forwarded round?", n.ID(), d)
				}
			}
			// An ACL write made in dc2 goes to dc1, which does not pass it on.
			start := time.Now()
			if _, _, err := dc2.ACL().PolicyCreate(&api.ACLPolicy{Name: "p", Rules: `key "x" { policy = "read" }`}, nil); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("policy create in dc2: %v, want an error with %q", err, tc.msg)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("the refused policy create took %v: forwarded round?", d)
			}
			// Checked by the client agent alone, which resolves through dc2.
			if _, err := withToken(t, cs[1].Clients[0], replicationSecret).Agent().Self(); !denied(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("agent self on dc2's client with a token it must resolve in dc1: %v, want 403 with %q", err, tc.msg)
			}
			if tc.primary1 == "dc2" {
				// dc1 replicates from dc2 as dc2 from dc1: refused too.
				testcluster.Eventually(t, 30*time.Second, func() error {
					st, _, err := withToken(t, cs[0].Servers[0], "").ACL().Replication(nil)
					if err != nil {
						return err
					}
					if msg := "datacenters dc1 and dc2 each name the other"; !strings.Contains(st.LastErrorMessage, msg) || !st.LastSuccess.IsZero() {
						return fmt.Errorf("dc1 replication status %+v, want an error with %q and no success", st, msg)
					}
					return nil
				})
			}
		})
	}
}

// TestACLRemoteTokenResolvedOnce: a token made in the primary and used
// in a secondary that holds no copy of it costs one resolution call in the
// primary (one WAN round trip), however often it is used after.
func TestACLRemoteTokenResolvedOnce(t *testing.T) {
	var cs []*testcluster.Cluster
	for _, dc := range []string{"dc1", "dc2"} {
		cs = append(cs, testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: dc, Configure: func(cfg *configs.Config) {
			cfg.PrimaryDatacenter = "dc1"
			cfg.ACL.Enabled = true
			cfg.ACL.DefaultPolicy = configs.ACLDeny
			cfg.ACL.Tokens.InitialManagement = replicationSecret // dc1's; dc2 replicates nothing
		}}))
	}
	testcluster.Federate(t, cs...)
	dc1 := withToken(t, cs[0].Servers[0], replicationSecret)
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
	// resolves counts the resolution calls dc1's server has answered.
	resolves := func() int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+cs[0].Servers[0].HTTPAddr()+"/v1/agent/metrics?format=prometheus", nil)
		req.Header.Set("X-Consul-Token", replicationSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		n := 0
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, `consul_rpc_server_call_count{`) && strings.Contains(line, `method="`+rpc.MethodACLResolve+`"`) {
				f := strings.Fields(line)
				v, err := strconv.Atoi(f[len(f)-1])
				if err != nil {
					t.Fatalf("metric line %q: %v", line, err)
				}
				n += v
			}
		}
		return n
	}
	before := resolves()
	app2 := withToken(t, cs[1].Servers[0], tok.SecretID)
	start := time.Now()
	for i := range 5 {
		if _, err := app2.KV().Put(&api.KVPair{Key: fmt.Sprintf("app/%d", i), Value: []byte("1")}, nil); err != nil {
			t.Fatalf("write %d in dc2 with dc1's token: %v", i, err)
		}
		if i == 0 {
			t.Logf("first write in dc2 with a token of dc1 (resolved in dc1): %v", time.Since(start).Round(time.Microsecond))
		}
	}
	if got := resolves() - before; got != 1 {
		t.Errorf("dc1 answered %d ACL.Resolve calls (%s) for 5 writes in dc2 with one new token, want 1", got, rpc.MethodACLResolve)
	}
}
