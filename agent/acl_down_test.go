package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// TestClientTokenCacheWithServersDown: a client agent keeps what tokens
// may do for acl.token_ttl and, once its servers are gone, applies
// down_policy: extend-cache keeps a token it resolved and denies one it
// never saw, deny denies both, allow allows both.
func TestClientTokenCacheWithServersDown(t *testing.T) {
	const ttl = 50 * time.Millisecond
	for _, tc := range []struct {
		policy            string
		cachedOK, freshOK bool
	}{
		{configs.ACLExtendCache, true, false},
		{configs.ACLDeny, false, false},
		{configs.ACLAllow, true, true},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Configure: func(cfg *configs.Config) {
				cfg.ACL.Enabled = true
				cfg.ACL.DefaultPolicy = configs.ACLDeny
				cfg.ACL.DownPolicy = tc.policy
				cfg.ACL.TokenTTL = ttl // checks after the cut ask the servers
			}})
			client := c.Clients[0]
			var boot *api.ACLToken
			testcluster.Eventually(t, 10*time.Second, func() error {
				var err error
				boot, _, err = client.API().ACL().Bootstrap()
				return err
			})
			mgmt := withToken(t, client, boot.SecretID)
			pol, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: "agent-read", Rules: `agent_prefix "" { policy = "read" }`}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var toks [2]*api.ACLToken
			for i := range toks {
				if toks[i], _, err = mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil); err != nil {
					t.Fatal(err)
				}
			}
			cached, fresh := withToken(t, client, toks[0].SecretID), withToken(t, client, toks[1].SecretID)
			if _, err := cached.Agent().Self(); err != nil {
				t.Fatalf("agent self with the token, servers up: %v", err)
			}
			c.Servers[0].Kill()
			killed := time.Now()
			check := func(name string, cl *api.Client, wantOK bool) error {
				_, err := cl.Agent().Self()
				if wantOK && err != nil {
					return fmt.Errorf("%s token, servers down, down_policy %s: %v, want allowed", name, tc.policy, err)
				}
				if !wantOK && !denied(err) {
					return fmt.Errorf("%s token, servers down, down_policy %s: %v, want 403", name, tc.policy, err)
				}
				return nil
			}
			// The cached entry outlives token_ttl only by down_policy:
			// wait until it is past.
			testcluster.Eventually(t, 10*time.Second, func() error {
				if time.Since(killed) < 4*ttl {
					return fmt.Errorf("token_ttl not past yet")
				}
				if err := check("cached", cached, tc.cachedOK); err != nil {
					return err
				}
				return check("never resolved", fresh, tc.freshOK)
			})
			for _, name := range []string{"cached", "never resolved"} {
				cl, want := cached, tc.cachedOK
				if name != "cached" {
					cl, want = fresh, tc.freshOK
				}
				if err := check(name, cl, want); err != nil {
					t.Error(err) // and it stays so
				}
			}
		})
	}
}
