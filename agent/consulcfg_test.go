package agent_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/agent"
	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// A Consul config dir (HCL and JSON, with Consul-only keys) starts an agent
// whose node carries the user's node meta, Consul's own meta and tagged
// addresses, and whose services are in the catalog.
func TestConsulConfigDirNodeMetaInCatalog(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"agent.hcl": `
node_meta {
  rack = "r1"
  Zone = "eu-1"
}
disable_update_check = true
connect { enabled = true }
service {
  name = "web"
  port = 8080
  check {
    ttl = "30s"
  }
}
`,
		"extra.json": `{"node_meta": {"env": "prod"}, "services": [{"name": "api", "port": 9000}]}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-dev", "-config-dir", dir, "-node-meta", "team:core"}
	loaded, err := configs.Load(args, nil, nil)
	if err != nil {
		t.Fatalf("configs.Load: %v", err)
	}
	cfg := testcluster.AgentConfig(t, "node1")
	cfg.Services, cfg.Checks, cfg.NodeMeta = loaded.Services, loaded.Checks, loaded.NodeMeta
	a, c := localAgent(t, cfg, agent.Options{ConfigArgs: args, ConfigEnv: []string{}})

	want := map[string]string{
		"rack": "r1", "Zone": "eu-1", "env": "prod", "team": "core",
		"consul-network-segment": "", "consul-version": agent.ConsulCompatVersion,
	}
	waitNode(t, c, want)
	testcluster.Eventually(t, 10*time.Second, func() error {
		svcs, _, err := c.Catalog().Service("api", "", nil)
		if err != nil || len(svcs) != 1 || svcs[0].ServicePort != 9000 {
			return fmt.Errorf("Catalog().Service(api) = %v, %v; want the one from extra.json on port 9000", svcs, err)
		}
		return nil
	})

	// node_meta is reloadable, as in Consul.
	if err := os.WriteFile(filepath.Join(dir, "extra.json"), []byte(`{"node_meta": {"env": "staging"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	want["env"] = "staging"
	waitNode(t, c, want)
}

// waitNode waits for node1 in the catalog to carry meta want, Consul's tagged
// addresses, and the service web.
func waitNode(t *testing.T, c *api.Client, want map[string]string) {
	t.Helper()
	testcluster.Eventually(t, 10*time.Second, func() error {
		n, _, err := c.Catalog().Node("node1", nil)
		if err != nil {
			return err
		}
		if n == nil || n.Node == nil {
			return fmt.Errorf("Catalog().Node(node1) = nil")
		}
		if !maps.Equal(n.Node.Meta, want) {
			return fmt.Errorf("Node.Meta = %v, want %v", n.Node.Meta, want)
		}
		ta := n.Node.TaggedAddresses
		for _, k := range []string{"lan", "lan_ipv4", "wan", "wan_ipv4"} {
			if ta[k] != n.Node.Address {
				return fmt.Errorf("TaggedAddresses[%s] = %q, want the node address %q (all: %v)", k, ta[k], n.Node.Address, ta)
			}
		}
		if _, ok := n.Services["web"]; !ok {
			return fmt.Errorf("services = %v, want web", n.Services)
		}
		return nil
	})
}
