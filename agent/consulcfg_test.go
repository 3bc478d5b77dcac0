package agent_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	loaded, err := configs.Load([]string{"-dev", "-config-dir", dir, "-node-meta", "team:core"}, nil, nil)
	if err != nil {
		t.Fatalf("configs.Load: %v", err)
	}
	cfg := testcluster.AgentConfig(t, "node1")
	cfg.Services, cfg.Checks, cfg.NodeMeta = loaded.Services, loaded.Checks, loaded.NodeMeta
	_, c := localAgent(t, cfg, agent.Options{})

	want := map[string]string{
		"rack": "r1", "Zone": "eu-1", "env": "prod", "team": "core",
		"consul-network-segment": "", "consul-version": agent.Version,
	}
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
			return fmt.Errorf("services = %v, want web and api", n.Services)
		}
		if _, ok := n.Services["api"]; !ok {
			return fmt.Errorf("services = %v, want web and api", n.Services)
		}
		return nil
	})
}
