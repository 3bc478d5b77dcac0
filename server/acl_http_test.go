package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// aclAgents starts a server and a client with ACLs on and default deny,
// and returns the management token, bootstrapped through the client.
func aclAgents(t *testing.T) (*testcluster.Cluster, string) {
	t.Helper()
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Configure: func(cfg *configs.Config) {
		cfg.ACL.Enabled = true
		cfg.ACL.DefaultPolicy = configs.ACLDeny
	}})
	var boot *api.ACLToken
	testcluster.Eventually(t, 10*time.Second, func() error {
		var err error
		boot, _, err = c.Clients[0].API().ACL().Bootstrap()
		return err
	})
	return c, boot.SecretID
}

func withToken(n *testcluster.Node, t *testing.T, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = n.HTTPAddr()
	cfg.Token = token
	cl, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestACLHTTPThroughConsulAPI(t *testing.T) {
	c, mgmt := aclAgents(t)
	anon := c.Clients[0].API().ACL()
	if _, _, err := anon.Bootstrap(); err == nil || !strings.Contains(err.Error(), "ACL bootstrap no longer allowed (reset index: ") {
		t.Errorf("second Bootstrap = %v, want the reset index", err)
	}
	if _, _, err := anon.PolicyList(nil); !isDenied(err) {
		t.Errorf("anonymous PolicyList = %v, want permission denied", err)
	}
	cl := withToken(c.Clients[0], t, mgmt).ACL()

	pol, _, err := cl.PolicyCreate(&api.ACLPolicy{Name: "kv-app", Description: "app keys", Rules: `key_prefix "app/" { policy = "write" }`}, nil)
	if err != nil || pol.ID == "" || pol.CreateIndex == 0 {
		t.Fatalf("PolicyCreate = %+v, %v", pol, err)
	}
	if _, _, err := cl.PolicyCreate(&api.ACLPolicy{Name: "kv-app"}, nil); err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("PolicyCreate(reused name) = %v, want 400 naming the reuse", err)
	}
	if _, _, err := cl.PolicyCreate(&api.ACLPolicy{Name: "bad", Rules: "key \"a\" {\n policy = \"maybe\"\n}"}, nil); err == nil || !strings.Contains(err.Error(), "line 2, column 11") {
		t.Errorf("PolicyCreate(bad rules) = %v, want line and column", err)
	}
	byName, _, err := cl.PolicyReadByName("kv-app", nil)
	if err != nil || byName.ID != pol.ID || byName.Rules != pol.Rules {
		t.Errorf("PolicyReadByName = %+v, %v", byName, err)
	}
	pol.Description = "changed"
	if up, _, err := cl.PolicyUpdate(pol, nil); err != nil || up.Description != "changed" || up.CreateIndex != pol.CreateIndex {
		t.Errorf("PolicyUpdate = %+v, %v", up, err)
	}
	if list, _, err := cl.PolicyList(nil); err != nil || len(list) != 2 { // global-management and kv-app
		t.Errorf("PolicyList = %d policies, %v; want 2", len(list), err)
	}

	role, _, err := cl.RoleCreate(&api.ACLRole{Name: "web", Policies: []*api.ACLRolePolicyLink{{Name: "kv-app"}},
		ServiceIdentities: []*api.ACLServiceIdentity{{ServiceName: "web"}}}, nil)
	if err != nil || role.ID == "" || len(role.Policies) != 1 || role.Policies[0].ID != pol.ID {
		t.Fatalf("RoleCreate = %+v, %v", role, err)
	}
	if got, _, err := cl.RoleReadByName("web", nil); err != nil || got.ID != role.ID {
		t.Errorf("RoleReadByName = %+v, %v", got, err)
	}
	if roles, _, err := cl.RoleList(nil); err != nil || len(roles) != 1 {
		t.Errorf("RoleList = %d, %v", len(roles), err)
	}

	tok, _, err := cl.TokenCreate(&api.ACLToken{Description: "app", Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}},
		ExpirationTTL: time.Hour}, nil)
	if err != nil || tok.SecretID == "" || tok.ExpirationTime == nil || time.Until(*tok.ExpirationTime) < 50*time.Minute {
		t.Fatalf("TokenCreate = %+v, %v", tok, err)
	}
	if _, _, err := cl.TokenCreate(&api.ACLToken{SecretID: "hunter2"}, nil); err == nil || !strings.Contains(err.Error(), "not a UUID") {
		t.Errorf("TokenCreate(non-UUID secret) = %v", err)
	}
	self, _, err := withToken(c.Clients[0], t, tok.SecretID).ACL().TokenReadSelf(nil)
	if err != nil || self.AccessorID != tok.AccessorID {
		t.Errorf("TokenReadSelf = %+v, %v", self, err)
	}
	if _, _, err := withToken(c.Clients[0], t, tok.SecretID).ACL().TokenList(nil); !isDenied(err) {
		t.Errorf("TokenList without acl:read = %v, want permission denied", err)
	}
	tok.Description = "app v2"
	tok.Roles = []*api.ACLTokenRoleLink{{Name: "web"}}
	if up, _, err := cl.TokenUpdate(tok, nil); err != nil || up.Description != "app v2" || len(up.Roles) != 1 || up.SecretID != tok.SecretID {
		t.Errorf("TokenUpdate = %+v, %v", up, err)
	}
	if list, _, err := cl.TokenListFiltered(api.ACLTokenFilterOptions{Role: role.ID}, nil); err != nil || len(list) != 1 || list[0].AccessorID != tok.AccessorID {
		t.Errorf("TokenListFiltered(role) = %+v, %v", list, err)
	}
	clone, _, err := cl.TokenClone(tok.AccessorID, "copy", nil)
	if err != nil || clone.Description != "copy" || clone.AccessorID == tok.AccessorID {
		t.Fatalf("TokenClone = %+v, %v", clone, err)
	}
	if _, err := cl.TokenDelete(clone.AccessorID, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.TokenRead(clone.AccessorID, nil); err == nil {
		t.Error("TokenRead(deleted) succeeded")
	}
	if _, err := cl.PolicyDelete(pol.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got, _, err := cl.TokenRead(tok.AccessorID, nil); err != nil || len(got.Policies) != 0 || len(got.Roles) != 1 {
		t.Errorf("token after its policy was deleted = %+v, %v; want no policy, the role kept", got, err)
	}
	if _, err := cl.RoleDelete(role.ID, nil); err != nil {
		t.Fatal(err)
	}

	// /v1/agent/token: needs acl:write; unknown kinds are refused.
	if _, err := withToken(c.Clients[0], t, tok.SecretID).Agent().UpdateDefaultACLToken(tok.SecretID, nil); !isDenied(err) {
		t.Errorf("UpdateDefaultACLToken without acl:write = %v, want permission denied", err)
	}
	if _, err := withToken(c.Clients[0], t, mgmt).Agent().UpdateAgentACLToken(tok.SecretID, nil); err != nil {
		t.Errorf("UpdateAgentACLToken = %v", err)
	}
}

// isDenied reports whether err is Consul's 403 "Permission denied", as
// consul/api reports it.
func isDenied(err error) bool {
	return err != nil && strings.Contains(err.Error(), "403") && strings.Contains(err.Error(), "Permission denied")
}
