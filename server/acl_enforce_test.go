package server_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// tokenWith creates a policy with rules and a token holding it.
func tokenWith(t *testing.T, mgmt *api.Client, name, rules string) string {
	t.Helper()
	pol, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules}, nil)
	if err != nil {
		t.Fatalf("PolicyCreate(%s): %v", name, err)
	}
	tok, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatalf("TokenCreate(%s): %v", name, err)
	}
	return tok.SecretID
}

func TestACLEnforcedThroughConsulAPI(t *testing.T) {
	c, secret := aclAgents(t)
	node := c.Clients[0]
	mgmt := withToken(node, t, secret)

	// Anonymous, default deny.
	anon := node.API()
	if _, _, err := anon.KV().Get("app/x", nil); !isDenied(err) {
		t.Errorf("anonymous KV get = %v, want 403", err)
	}
	if _, err := anon.KV().Put(&api.KVPair{Key: "app/x"}, nil); !isDenied(err) || !strings.Contains(err.Error(), "key:write") {
		t.Errorf("anonymous KV put = %v, want 403 naming key:write", err)
	}

	// key_prefix "app/" write.
	for _, k := range []string{"app/a", "app/b", "other/x"} {
		if _, err := mgmt.KV().Put(&api.KVPair{Key: k, Value: []byte(k)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	appSecret := tokenWith(t, mgmt, "kv-app", `key_prefix "app/" { policy = "write" }`)
	app := withToken(node, t, appSecret)
	if _, err := app.KV().Put(&api.KVPair{Key: "app/x", Value: []byte("1")}, nil); err != nil {
		t.Errorf("app token writing app/x: %v", err)
	}
	if _, err := app.KV().Put(&api.KVPair{Key: "other/x", Value: []byte("1")}, nil); !isDenied(err) {
		t.Errorf("app token writing other/x = %v, want 403", err)
	}
	if _, err := app.KV().DeleteTree("", nil); !isDenied(err) {
		t.Errorf("app token deleting every key = %v, want 403", err)
	}
	pairs, _, err := app.KV().List("", nil)
	if err != nil {
		t.Fatalf("app token List(\"\"): %v", err)
	}
	for _, p := range pairs {
		if !strings.HasPrefix(p.Key, "app/") {
			t.Errorf("recursive read showed %q to the app token", p.Key)
		}
	}
	if len(pairs) != 3 {
		t.Errorf("recursive read = %d pairs, want app/a, app/b, app/x", len(pairs))
	}
	req, _ := http.NewRequest("GET", "http://"+node.HTTPAddr()+"/v1/kv/?recurse", nil)
	req.Header.Set("Authorization", "Bearer "+appSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Consul-Results-Filtered-By-ACLs") != "true" {
		t.Errorf("GET /v1/kv/?recurse = %d, filtered header %q; want 200 and true", resp.StatusCode, resp.Header.Get("X-Consul-Results-Filtered-By-ACLs"))
	}

	// service_prefix "web" read sees web, not db; registering needs service:write.
	for _, svc := range []string{"web", "db"} {
		if _, err := mgmt.Catalog().Register(&api.CatalogRegistration{Node: "ext1", Address: "10.0.0.1",
			Service: &api.AgentService{ID: svc, Service: svc, Port: 80}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	web := withToken(node, t, tokenWith(t, mgmt, "web-read", `service_prefix "web" { policy = "read" }
node_prefix "" { policy = "read" }`))
	svcs, meta, err := web.Catalog().Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := svcs["web"]; !ok || len(svcs) != 1 {
		t.Errorf("catalog services for the web token = %v, want only web", svcs)
	}
	if meta.LastIndex == 0 {
		t.Error("filtered answer lost its index")
	}
	if entries, _, err := web.Health().Service("web", "", false, nil); err != nil || len(entries) != 1 {
		t.Errorf("health of web = %d entries, %v", len(entries), err)
	}
	if _, _, err := web.Health().Service("db", "", false, nil); !isDenied(err) {
		t.Errorf("health of db for the web token = %v, want 403", err)
	}
	if _, err := web.Catalog().Register(&api.CatalogRegistration{Node: "ext1", Address: "10.0.0.1",
		Service: &api.AgentService{ID: "web2", Service: "web", Port: 81}}, nil); !isDenied(err) || !strings.Contains(err.Error(), "service:write") {
		t.Errorf("register without service:write = %v, want 403 naming service:write", err)
	}
	if err := web.Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "web"}); !isDenied(err) {
		t.Errorf("agent service register without service:write = %v, want 403", err)
	}

	// operator = "read" for the raft configuration.
	if _, err := web.Operator().RaftGetConfiguration(nil); !isDenied(err) {
		t.Errorf("raft configuration without operator:read = %v, want 403", err)
	}
	op := withToken(node, t, tokenWith(t, mgmt, "op-read", `operator = "read"`))
	if cfg, err := op.Operator().RaftGetConfiguration(nil); err != nil || len(cfg.Servers) != 1 {
		t.Errorf("raft configuration with operator:read = %+v, %v", cfg, err)
	}

	// An unknown secret is refused, not treated as anonymous.
	if _, err := withToken(node, t, "5f1d6a7e-0000-4000-8000-000000000000").Catalog().Datacenters(); err != nil {
		t.Errorf("datacenters (open) with an unknown token = %v", err)
	}
	if _, _, err := withToken(node, t, "5f1d6a7e-0000-4000-8000-000000000000").KV().Get("app/a", nil); err == nil || !strings.Contains(err.Error(), "ACL not found") {
		t.Errorf("unknown secret = %v, want 403 ACL not found", err)
	}
}

func TestACLTokenExpiresOverHTTP(t *testing.T) {
	c, secret := aclAgents(t)
	node := c.Servers[0]
	mgmt := withToken(node, t, secret)
	pol, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: "kv", Rules: `key_prefix "" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}, ExpirationTTL: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kv := withToken(node, t, tok.SecretID).KV()
	if _, _, err := kv.Get("x", nil); err != nil && time.Now().Before(*tok.ExpirationTime) {
		t.Fatalf("read before expiry: %v", err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, _, err := kv.Get("x", nil)
		if err == nil {
			return errors.New("the token still works")
		}
		return nil
	})
	if time.Now().Before(*tok.ExpirationTime) {
		t.Errorf("token stopped before its expiry")
	}
	if _, _, err := kv.Get("x", nil); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("read after expiry = %v, want 403", err)
	}
}
