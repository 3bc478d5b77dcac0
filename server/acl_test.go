package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
)

// aclClient calls a server's ACL endpoints over real RPC.
type aclClient struct {
	t    *testing.T
	pool *rpc.Pool
	addr string
}

func newACLCluster(t *testing.T, servers int, cfg server.ACLConfig) (*testcluster.Cluster, *aclClient) {
	t.Helper()
	c := testcluster.New(t, testcluster.Options{Servers: servers, TuneServer: func(c *server.Config) { c.ACL = cfg }})
	pool := rpc.NewPool(rpc.PoolConfig{})
	t.Cleanup(func() { pool.Close() })
	return c, &aclClient{t: t, pool: pool, addr: c.Servers[0].ServerAddr()}
}

func (c *aclClient) call(method string, args, reply any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.pool.Call(ctx, c.addr, method, args, reply)
}

// bootstrap waits for the leader to have set ACLs up and bootstraps.
func (c *aclClient) bootstrap() *acl.Token {
	c.t.Helper()
	var tok acl.Token
	testcluster.Eventually(c.t, 10*time.Second, func() error {
		return c.call(rpc.MethodACLBootstrap, &rpc.Write[rpc.ACLBootstrapRequest]{}, &tok)
	})
	return &tok
}

func (c *aclClient) setPolicy(token string, p acl.Policy) (*acl.Policy, error) {
	var out acl.Policy
	err := c.call(rpc.MethodACLPolicySet, &rpc.Write[rpc.ACLSetRequest[acl.Policy]]{
		WriteOptions: rpc.WriteOptions{Token: token}, Args: rpc.ACLSetRequest[acl.Policy]{Object: p, Create: p.ID == ""}}, &out)
	return &out, err
}

func (c *aclClient) createToken(token string, tok acl.Token) (*acl.Token, error) {
	var out acl.Token
	err := c.call(rpc.MethodACLTokenSet, &rpc.Write[rpc.ACLSetRequest[acl.Token]]{
		WriteOptions: rpc.WriteOptions{Token: token}, Args: rpc.ACLSetRequest[acl.Token]{Object: tok, Create: true}}, &out)
	return &out, err
}

func (c *aclClient) resolve(secret string) (acl.Identity, error) {
	var out rpc.Answer[acl.Identity]
	err := c.call(rpc.MethodACLResolve, &rpc.Query[rpc.ACLIDRequest]{QueryOptions: rpc.QueryOptions{Token: secret}}, &out)
	return out.Value, err
}

func TestACLBootstrapOnce(t *testing.T) {
	c, cl := newACLCluster(t, 1, server.ACLConfig{Enabled: true})
	boot := cl.bootstrap()
	if !acl.IsUUID(boot.SecretID) || len(boot.Policies) != 1 || boot.Policies[0].ID != acl.ManagementPolicyID {
		t.Fatalf("bootstrap token = %+v, want a management token with a UUID secret", boot)
	}
	var again acl.Token
	err := cl.call(rpc.MethodACLBootstrap, &rpc.Write[rpc.ACLBootstrapRequest]{}, &again)
	if !errors.Is(err, rpc.ErrPermissionDenied) || !strings.Contains(err.Error(), "ACL bootstrap no longer allowed (reset index: ") {
		t.Fatalf("second bootstrap = %v, want permission denied with the reset index", err)
	}
	// The management token may do anything, on the server itself too.
	auth, err := c.Servers[0].Agent().Server().ResolveToken(boot.SecretID)
	if err != nil || !auth.Allowed(acl.ResACL, "", acl.AccessWrite) || !auth.Allowed(acl.ResKey, "any", acl.AccessWrite) {
		t.Fatalf("ResolveToken(bootstrap) = %v, %v", auth, err)
	}
}

func TestACLAnonymousDeniedByDefault(t *testing.T) {
	c, cl := newACLCluster(t, 1, server.ACLConfig{Enabled: true})
	cl.bootstrap()
	var list rpc.Answer[[]*acl.Policy]
	err := cl.call(rpc.MethodACLPolicyList, &rpc.Query[rpc.ACLListRequest]{}, &list)
	if !errors.Is(err, rpc.ErrPermissionDenied) || !strings.Contains(err.Error(), "lacks permission 'acl:read'") {
		t.Fatalf("anonymous policy list = %v, want a denial naming acl:read", err)
	}
	auth, err := c.Servers[0].Agent().Server().ResolveToken("")
	if err != nil {
		t.Fatalf("ResolveToken(anonymous) = %v", err)
	}
	if auth.Allowed(acl.ResKey, "x", acl.AccessRead) || auth.AccessorID() != acl.AnonymousAccessorID {
		t.Errorf("anonymous token %s may read keys under default deny", auth.AccessorID())
	}
	if _, err := c.Servers[0].Agent().Server().ResolveToken("6bd2c1f5-3a5b-4a3c-9e0e-2f2b7e1a0c11"); !errors.Is(err, rpc.ErrACLNotFound) {
		t.Errorf("ResolveToken(unknown secret) = %v, want ErrACLNotFound", err)
	}
}

func TestACLTokenPolicyRoleLifecycle(t *testing.T) {
	c, cl := newACLCluster(t, 1, server.ACLConfig{Enabled: true})
	mgmt := cl.bootstrap().SecretID

	pol, err := cl.setPolicy(mgmt, acl.Policy{Name: "kv-app", Rules: `key_prefix "app/" { policy = "write" }`})
	if err != nil || !acl.IsUUID(pol.ID) || pol.CreateIndex == 0 {
		t.Fatalf("create policy = %+v, %v", pol, err)
	}
	if _, err := cl.setPolicy(mgmt, acl.Policy{Name: "kv-app"}); !errors.Is(err, rpc.ErrBadRequest) || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("reused policy name = %v, want a bad request saying it is in use", err)
	}
	if _, err := cl.setPolicy(mgmt, acl.Policy{Name: "bad", Rules: "key \"a\" {\n  policy = \"rw\"\n}"}); !errors.Is(err, rpc.ErrBadRequest) || !strings.Contains(err.Error(), "line 2, column 12") {
		t.Errorf("malformed rules = %v, want a bad request with line and column", err)
	}
	if _, err := cl.setPolicy(mgmt, acl.Policy{Name: "bad", Rules: `database "x" { policy = "read" }`}); !errors.Is(err, rpc.ErrBadRequest) || !strings.Contains(err.Error(), `unknown resource "database"`) {
		t.Errorf("unknown resource = %v", err)
	}
	var role acl.Role
	err = cl.call(rpc.MethodACLRoleSet, &rpc.Write[rpc.ACLSetRequest[acl.Role]]{WriteOptions: rpc.WriteOptions{Token: mgmt},
		Args: rpc.ACLSetRequest[acl.Role]{Create: true, Object: acl.Role{Name: "web", ServiceIdentities: []*acl.ServiceIdentity{{ServiceName: "web"}}}}}, &role)
	if err != nil || !acl.IsUUID(role.ID) {
		t.Fatalf("create role = %+v, %v", role, err)
	}

	if _, err := cl.createToken(mgmt, acl.Token{SecretID: "not-a-uuid"}); !errors.Is(err, rpc.ErrBadRequest) || !strings.Contains(err.Error(), "not a UUID") {
		t.Errorf("token with a non-UUID secret = %v, want a bad request", err)
	}
	if _, err := cl.createToken(mgmt, acl.Token{Policies: []acl.PolicyLink{{Name: "nope"}}}); !errors.Is(err, rpc.ErrBadRequest) {
		t.Errorf("token linking a missing policy = %v, want a bad request", err)
	}
	tok, err := cl.createToken(mgmt, acl.Token{Description: "app", Policies: []acl.PolicyLink{{Name: "kv-app"}}, Roles: []acl.RoleLink{{Name: "web"}}})
	if err != nil || tok.Policies[0].ID != pol.ID || tok.Roles[0].ID != role.ID {
		t.Fatalf("create token = %+v, %v", tok, err)
	}
	if _, err := cl.createToken(tok.SecretID, acl.Token{}); !errors.Is(err, rpc.ErrPermissionDenied) {
		t.Errorf("token without acl:write creating a token = %v, want permission denied", err)
	}

	id, err := cl.resolve(tok.SecretID)
	if err != nil || id.AccessorID != tok.AccessorID {
		t.Fatalf("resolve = %+v, %v", id, err)
	}
	auth := acl.NewAuthorizer(id.AccessorID, false, id.Rules...)
	for _, ck := range []struct {
		res  acl.Resource
		seg  string
		want acl.Access
		ok   bool
	}{
		{acl.ResKey, "app/x", acl.AccessWrite, true},
		{acl.ResKey, "other/x", acl.AccessWrite, false},
		{acl.ResService, "web", acl.AccessWrite, true},
		{acl.ResService, "db", acl.AccessWrite, false},
		{acl.ResService, "db", acl.AccessRead, true},
	} {
		if got := auth.Allowed(ck.res, ck.seg, ck.want); got != ck.ok {
			t.Errorf("resolved token Allowed(%s, %q, %s) = %v, want %v", ck.res, ck.seg, ck.want, got, ck.ok)
		}
	}

	var list rpc.Answer[[]*acl.Token]
	if err := cl.call(rpc.MethodACLTokenList, &rpc.Query[rpc.ACLListRequest]{QueryOptions: rpc.QueryOptions{Token: mgmt}, Args: rpc.ACLListRequest{Policy: pol.ID}}, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Value) != 1 || list.Value[0].AccessorID != tok.AccessorID {
		t.Errorf("tokens of policy kv-app = %+v, want the one token", list.Value)
	}

	// Delete the policy: the token loses its key rights and keeps the role's.
	var wr rpc.WriteResult
	if err := cl.call(rpc.MethodACLPolicyDelete, &rpc.Write[rpc.ACLIDRequest]{WriteOptions: rpc.WriteOptions{Token: mgmt}, Args: rpc.ACLIDRequest{ID: pol.ID}}, &wr); err != nil {
		t.Fatal(err)
	}
	srv := c.Servers[0].Agent().Server()
	a, err := srv.ResolveToken(tok.SecretID)
	if err != nil || a.Allowed(acl.ResKey, "app/x", acl.AccessWrite) || !a.Allowed(acl.ResService, "web", acl.AccessWrite) {
		t.Errorf("after policy delete: key write %v, web write %v (%v); want false, true", a.Allowed(acl.ResKey, "app/x", acl.AccessWrite), a.Allowed(acl.ResService, "web", acl.AccessWrite), err)
	}

	// Clone, then delete the original: the clone still works.
	var clone acl.Token
	if err := cl.call(rpc.MethodACLTokenClone, &rpc.Write[rpc.ACLIDRequest]{WriteOptions: rpc.WriteOptions{Token: mgmt}, Args: rpc.ACLIDRequest{ID: tok.AccessorID, Description: "copy"}}, &clone); err != nil {
		t.Fatal(err)
	}
	if clone.AccessorID == tok.AccessorID || clone.SecretID == tok.SecretID || clone.Description != "copy" || len(clone.Roles) != 1 {
		t.Errorf("clone = %+v", clone)
	}
	if err := cl.call(rpc.MethodACLTokenDelete, &rpc.Write[rpc.ACLIDRequest]{WriteOptions: rpc.WriteOptions{Token: mgmt}, Args: rpc.ACLIDRequest{ID: tok.AccessorID}}, &wr); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.ResolveToken(tok.SecretID); !errors.Is(err, rpc.ErrACLNotFound) {
		t.Errorf("ResolveToken(deleted) = %v, want ErrACLNotFound", err)
	}
	if _, err := srv.ResolveToken(clone.SecretID); err != nil {
		t.Errorf("ResolveToken(clone) = %v", err)
	}

	// A reader without acl:write sees secrets hidden.
	ro, err := cl.setPolicy(mgmt, acl.Policy{Name: "acl-read", Rules: `acl = "read"`})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := cl.createToken(mgmt, acl.Token{Policies: []acl.PolicyLink{{ID: ro.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	var read rpc.Answer[*acl.Token]
	if err := cl.call(rpc.MethodACLTokenRead, &rpc.Query[rpc.ACLIDRequest]{QueryOptions: rpc.QueryOptions{Token: reader.SecretID}, Args: rpc.ACLIDRequest{ID: clone.AccessorID}}, &read); err != nil {
		t.Fatal(err)
	}
	if read.Value.SecretID != "<hidden>" {
		t.Errorf("acl:read token read a secret: %q", read.Value.SecretID)
	}
	if err := cl.call(rpc.MethodACLTokenRead, &rpc.Query[rpc.ACLIDRequest]{QueryOptions: rpc.QueryOptions{Token: clone.SecretID}, Args: rpc.ACLIDRequest{Self: true}}, &read); err != nil || read.Value.AccessorID != clone.AccessorID {
		t.Errorf("token self = %+v, %v", read.Value, err)
	}
}

func TestACLTokenExpires(t *testing.T) {
	c, cl := newACLCluster(t, 1, server.ACLConfig{Enabled: true})
	mgmt := cl.bootstrap().SecretID
	tok, err := cl.createToken(mgmt, acl.Token{ExpirationTTL: 2 * time.Second})
	if err != nil || tok.ExpirationTime == nil {
		t.Fatalf("create expiring token = %+v, %v", tok, err)
	}
	srv := c.Servers[0].Agent().Server()
	if _, err := srv.ResolveToken(tok.SecretID); err != nil && time.Now().Before(*tok.ExpirationTime) {
		t.Fatalf("ResolveToken before expiry = %v", err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if _, err := srv.ResolveToken(tok.SecretID); !errors.Is(err, rpc.ErrACLNotFound) {
			return errors.New("token still resolves")
		}
		return nil
	})
	if time.Now().Before(*tok.ExpirationTime) {
		t.Errorf("token stopped before its expiry %s", tok.ExpirationTime)
	}
	if _, err := cl.resolve(tok.SecretID); !errors.Is(err, rpc.ErrACLNotFound) {
		t.Errorf("ACL.ResolveToken after expiry = %v, want ErrACLNotFound", err)
	}
	if _, err := cl.createToken(mgmt, acl.Token{ExpirationTTL: -time.Second}); !errors.Is(err, rpc.ErrBadRequest) {
		t.Errorf("negative TTL = %v, want a bad request", err)
	}
}

func TestACLInitialManagementAndDisabled(t *testing.T) {
	const secret = "9a8c1f2e-1b3d-4c5e-8f70-0a1b2c3d4e5f"
	c, _ := newACLCluster(t, 1, server.ACLConfig{Enabled: true, InitialManagement: secret})
	srv := c.Servers[0].Agent().Server()
	testcluster.Eventually(t, 10*time.Second, func() error {
		auth, err := srv.ResolveToken(secret)
		if err != nil {
			return err
		}
		if !auth.Allowed(acl.ResACL, "", acl.AccessWrite) {
			return errors.New("initial management token cannot manage ACLs")
		}
		return nil
	})

	off, cl := newACLCluster(t, 1, server.ACLConfig{})
	var tok acl.Token
	if err := cl.call(rpc.MethodACLBootstrap, &rpc.Write[rpc.ACLBootstrapRequest]{}, &tok); !errors.Is(err, rpc.ErrACLDisabled) {
		t.Errorf("bootstrap with ACLs off = %v, want ErrACLDisabled", err)
	}
	if _, err := off.Servers[0].Agent().Server().ResolveToken(""); !errors.Is(err, rpc.ErrACLDisabled) {
		t.Errorf("ResolveToken with ACLs off = %v, want ErrACLDisabled", err)
	}
}

// TestACLBootstrapThroughFollower bootstraps by asking a follower, which
// forwards to the leader, and then through another follower is refused.
func TestACLBootstrapThroughFollower(t *testing.T) {
	c, cl := newACLCluster(t, 3, server.ACLConfig{Enabled: true})
	leader := c.WaitLeader(10 * time.Second)
	followers := c.Followers(leader)
	cl.addr = followers[0].ServerAddr()
	boot := cl.bootstrap()
	cl.addr = followers[1].ServerAddr()
	var again acl.Token
	if err := cl.call(rpc.MethodACLBootstrap, &rpc.Write[rpc.ACLBootstrapRequest]{}, &again); !errors.Is(err, rpc.ErrPermissionDenied) {
		t.Fatalf("second bootstrap via a follower = %v, want permission denied", err)
	}
	// Every server resolves the token from its own replicated state.
	for _, n := range c.Servers {
		testcluster.Eventually(t, 10*time.Second, func() error {
			_, err := n.Agent().Server().ResolveToken(boot.SecretID)
			return err
		})
	}
}

// TestACLWritesCheckedAtTheServer sends writes straight to the server port:
// the server holds them to the token they carry, as the HTTP API does.
func TestACLWritesCheckedAtTheServer(t *testing.T) {
	_, cl := newACLCluster(t, 1, server.ACLConfig{Enabled: true})
	mgmt := cl.bootstrap().SecretID
	reg := catalog.RegisterRequest{Node: "ext", Address: "10.0.0.9", Service: &catalog.Service{ID: "web", Service: "web"}}
	var wr rpc.WriteResult
	err := cl.call(rpc.MethodCatalogReg, &rpc.Write[catalog.RegisterRequest]{Args: reg}, &wr)
	if !errors.Is(err, rpc.ErrPermissionDenied) || !strings.Contains(err.Error(), "service:write") {
		t.Fatalf("anonymous register over RPC = %v, want a denial naming service:write", err)
	}
	if err := cl.call(rpc.MethodCatalogReg, &rpc.Write[catalog.RegisterRequest]{WriteOptions: rpc.WriteOptions{Token: mgmt}, Args: reg}, &wr); err != nil {
		t.Fatalf("management register over RPC: %v", err)
	}
	pol, err := cl.setPolicy(mgmt, acl.Policy{Name: "app", Rules: `key_prefix "app/" { policy = "write" }`})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cl.createToken(mgmt, acl.Token{Policies: []acl.PolicyLink{{ID: pol.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  kvstore.KVRequest
		ok   bool
	}{
		{"set inside", kvstore.KVRequest{Op: kvstore.VerbSet, Key: "app/x"}, true},
		{"set outside", kvstore.KVRequest{Op: kvstore.VerbSet, Key: "other/x"}, false},
		{"delete tree of everything", kvstore.KVRequest{Op: kvstore.VerbDeleteTree, Key: ""}, false},
		{"delete tree inside", kvstore.KVRequest{Op: kvstore.VerbDeleteTree, Key: "app/"}, true},
	} {
		err := cl.call(rpc.MethodKVApply, &rpc.Write[kvstore.KVRequest]{WriteOptions: rpc.WriteOptions{Token: tok.SecretID}, Args: tc.req}, &wr)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, rpc.ErrPermissionDenied)) {
			t.Errorf("%s: KV.Apply = %v, want allowed %v", tc.name, err, tc.ok)
		}
	}
	var dr rpc.WriteResult
	if err := cl.call(rpc.MethodCatalogDereg, &rpc.Write[catalog.DeregisterRequest]{WriteOptions: rpc.WriteOptions{Token: tok.SecretID}, Args: catalog.DeregisterRequest{Node: "ext", ServiceID: "web"}}, &dr); !errors.Is(err, rpc.ErrPermissionDenied) {
		t.Errorf("deregister without service:write = %v, want a denial", err)
	}
}

// TestAntiEntropyWithTheAgentToken: with default deny, an agent's own
// sync of its services reaches the catalog with its agent token.
func TestAntiEntropyWithTheAgentToken(t *testing.T) {
	const agentSecret = "3f0c1a52-8a61-4b2c-9d3e-5e6f7a8b9c0d"
	const mgmt = "9a8c1f2e-1b3d-4c5e-8f70-0a1b2c3d4e5f"
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Configure: func(cfg *configs.Config) {
		cfg.ACL.Enabled = true
		cfg.ACL.DefaultPolicy = configs.ACLDeny
		cfg.ACL.Tokens.InitialManagement = mgmt
		cfg.ACL.Tokens.Agent = agentSecret
	}})
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token = c.Clients[0].HTTPAddr(), mgmt
	m, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pol *api.ACLPolicy
	testcluster.Eventually(t, 10*time.Second, func() error {
		var err error
		pol, _, err = m.ACL().PolicyCreate(&api.ACLPolicy{Name: "agents", Rules: `node_prefix "" { policy = "write" }
service_prefix "" { policy = "write" }`}, nil)
		return err
	})
	if _, _, err := m.ACL().TokenCreate(&api.ACLToken{SecretID: agentSecret, Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "api1", Name: "api", Port: 8080}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		nodes, _, err := m.Catalog().Service("api", "", nil)
		if err != nil {
			return err
		}
		if len(nodes) != 1 || nodes[0].Node != "client1" {
			return fmt.Errorf("catalog has %d api instances, want client1's", len(nodes))
		}
		return nil
	})
}

// TestACLBootstrapReset bootstraps again after an operator writes the reset
// index, as Consul's acl-bootstrap-reset file, into the server's data dir;
// the file works once.
func TestACLBootstrapReset(t *testing.T) {
	var dataDir string
	c := testcluster.New(t, testcluster.Options{Servers: 1,
		Configure:  func(cfg *configs.Config) { dataDir = cfg.DataDir },
		TuneServer: func(c *server.Config) { c.ACL = server.ACLConfig{Enabled: true} }})
	pool := rpc.NewPool(rpc.PoolConfig{})
	t.Cleanup(func() { pool.Close() })
	cl := &aclClient{t: t, pool: pool, addr: c.Servers[0].ServerAddr()}
	first := cl.bootstrap()
	var again acl.Token
	err := cl.call(rpc.MethodACLBootstrap, &rpc.Write[rpc.ACLBootstrapRequest]{}, &again)
	var rerr *rpc.Error
	if !errors.As(err, &rerr) || !strings.Contains(rerr.Message, "reset index: ") {
		t.Fatalf("second bootstrap = %v, want the reset index", err)
	}
	index := strings.TrimSuffix(rerr.Message[strings.Index(rerr.Message, "reset index: ")+len("reset index: "):], ")")
	resetFile := filepath.Join(dataDir, "acl-bootstrap-reset")
	if err := os.WriteFile(resetFile, []byte("not-a-number\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cl.call(rpc.MethodACLBootstrap, &rpc.Write[rpc.ACLBootstrapRequest]{}, &again); !errors.Is(err, rpc.ErrBadRequest) {
		t.Errorf("bootstrap with a malformed reset file = %v, want a bad request", err)
	}
	if err := os.WriteFile(resetFile, []byte(index+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cl.call(rpc.MethodACLBootstrap, &rpc.Write[rpc.ACLBootstrapRequest]{}, &again); err != nil {
		t.Fatalf("bootstrap with the reset index %s: %v", index, err)
	}
	if again.SecretID == first.SecretID {
		t.Error("the reset bootstrap gave the old token")
	}
	if _, err := os.Stat(resetFile); !os.IsNotExist(err) {
		t.Errorf("reset file still there after use: %v", err)
	}
	if err := cl.call(rpc.MethodACLBootstrap, &rpc.Write[rpc.ACLBootstrapRequest]{}, &again); !errors.Is(err, rpc.ErrPermissionDenied) {
		t.Errorf("bootstrap after the reset was used = %v, want permission denied", err)
	}
}
