package agent_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// TestKeyringRotation rotates the gossip key through /v1/operator/keyring
// (consul/api's Operator().Keyring*) on a server of dc1: the WAN pool and
// the LAN pools of dc1 and dc2 follow; a client restarted afterwards (its keyring file
// holds the new key, its config the old) rejoins; a client that was down
// during the rotation is refused when it comes back.
func TestKeyringRotation(t *testing.T) {
	k1 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	k2 := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	enc := func(cfg *configs.Config) { cfg.Encrypt = k1 }
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 2, Datacenter: "dc1", Configure: enc})
	dc2 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc2", Configure: enc})
	testcluster.Federate(t, dc1, dc2)

	missed := dc1.Clients[1]
	missed.Kill()
	srv := dc1.Servers[0]
	testcluster.Eventually(t, 15*time.Second, func() error {
		members, err := srv.API().Agent().Members(false)
		if err != nil {
			return err
		}
		for _, m := range members {
			if m.Name == missed.Name && m.Status == 1 {
				return fmt.Errorf("%s is still alive to the server", m.Name)
			}
		}
		return nil
	})

	op := srv.API().Operator()
	// Each step is a serf query per pool, answered within a few gossip
	// intervals; on a loaded machine an answer can come late, and every
	// step is safe to repeat.
	for _, step := range []struct {
		name string
		do   func() error
	}{
		{"install", func() error { return op.KeyringInstall(k2, nil) }},
		{"use", func() error { return op.KeyringUse(k2, nil) }},
		{"remove", func() error { return op.KeyringRemove(k1, nil) }},
	} {
		testcluster.Eventually(t, 20*time.Second, func() error {
			if err := step.do(); err != nil {
				return fmt.Errorf("keyring %s: %w", step.name, err)
			}
			return nil
		})
	}
	var list []*api.KeyringResponse
	testcluster.Eventually(t, 20*time.Second, func() error {
		var err error
		list, err = op.KeyringList(nil)
		return err
	})
	pools := map[string]int{}
	for _, r := range list {
		name := r.Datacenter
		if r.WAN {
			name = "wan"
		}
		pools[name] = r.NumNodes
		if len(r.Keys) != 1 || r.Keys[k2] != r.NumNodes || r.PrimaryKeys[k2] != r.NumNodes {
			t.Errorf("KeyringList %s = keys %v primary %v of %d nodes, want only k2 everywhere", name, r.Keys, r.PrimaryKeys, r.NumNodes)
		}
	}
	if len(list) != 3 || pools["wan"] != 2 || pools["dc1"] != 2 || pools["dc2"] != 1 {
		t.Fatalf("KeyringList pools = %v, want the WAN (2 servers), dc1's LAN (a server and the client alive) and dc2's LAN (1)", pools)
	}

	// A member that took part restarts with k1 still in its config.
	dc1.Clients[0].Restart()
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, err := dc1.Clients[0].API().KV().Put(&api.KVPair{Key: "after", Value: []byte("v")}, nil)
		return err
	})

	// The member that missed it is refused.
	missed.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := missed.Agent().Join(ctx, srv.LANAddr(), false)
	if err == nil || !strings.Contains(err.Error(), "encrypt") {
		t.Fatalf("Join of the client that missed the rotation = %v, want refused for its key", err)
	}
	if err := op.KeyringInstall("c2hvcnQ=", nil); err == nil || !strings.Contains(err.Error(), "decodes to 5 bytes") {
		t.Errorf("KeyringInstall of a 5-byte key = %v, want a 400 saying so", err)
	}
}

// TestKeyringACL: with ACLs on (default deny), listing the keyring takes
// keyring:read and changing it keyring:write.
func TestKeyringACL(t *testing.T) {
	k1 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	k2 := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	c := testcluster.New(t, testcluster.Options{Servers: 1, Configure: func(cfg *configs.Config) {
		cfg.Encrypt = k1
		cfg.ACL.Enabled = true
		cfg.ACL.DefaultPolicy = configs.ACLDeny
	}})
	srv := c.Servers[0]
	var boot *api.ACLToken
	testcluster.Eventually(t, 10*time.Second, func() error {
		var err error
		boot, _, err = srv.API().ACL().Bootstrap()
		return err
	})
	withToken := func(token string) *api.Operator {
		cfg := api.DefaultConfig()
		cfg.Address, cfg.Token = srv.HTTPAddr(), token
		cl, err := api.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cl.Operator()
	}
	mgmt := withToken(boot.SecretID)
	acls := srv.API().ACL()
	wo := &api.WriteOptions{Token: boot.SecretID}
	pol, _, err := acls.PolicyCreate(&api.ACLPolicy{Name: "keyring-read", Rules: `keyring = "read"`}, wo)
	if err != nil {
		t.Fatalf("PolicyCreate: %v", err)
	}
	reader, _, err := acls.TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, wo)
	if err != nil {
		t.Fatalf("TokenCreate: %v", err)
	}
	read := withToken(reader.SecretID)
	anon := withToken("")
	if _, err := anon.KeyringList(nil); err == nil || !strings.Contains(err.Error(), "ermission denied") {
		t.Errorf("anonymous KeyringList = %v, want permission denied", err)
	}
	if _, err := read.KeyringList(nil); err != nil {
		t.Errorf("KeyringList with keyring:read = %v", err)
	}
	if err := read.KeyringInstall(k2, nil); err == nil || !strings.Contains(err.Error(), "ermission denied") {
		t.Errorf("KeyringInstall with keyring:read = %v, want permission denied", err)
	}
	if err := mgmt.KeyringInstall(k2, nil); err != nil {
		t.Errorf("KeyringInstall with the management token = %v", err)
	}
}
