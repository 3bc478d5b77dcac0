package main

import (
	"strings"
	"testing"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestInfo reads Consul's Stats sections from a server and a client agent
// through the Consul client and the CLI, and /v1/agent/host.
func TestInfo(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1})
	want := map[string][]string{
		"agent":    {"services", "checks", "check_monitors", "check_ttls"},
		"build":    {"version"},
		"consul":   {"server", "leader", "known_datacenters"},
		"raft":     {"state", "term", "last_log_index", "commit_index", "applied_index", "fsm_pending", "last_snapshot_index", "num_peers", "protocol_version"},
		"runtime":  {"goroutines", "cpu_count", "version"},
		"serf_lan": {"members", "failed", "left", "health_score", "event_queue", "encrypted"},
		"serf_wan": {"members", "failed", "left", "health_score", "event_queue", "encrypted"},
	}
	self, err := c.Servers[0].API().Agent().Self()
	if err != nil {
		t.Fatalf("Agent().Self() on the server: %v", err)
	}
	stats, _ := self["Stats"]["raft"].(map[string]any)
	if stats["state"] != "Leader" {
		t.Errorf("server's Stats.raft.state = %v, want Leader", stats["state"])
	}
	code, out, errOut := meridian("info", "-http-addr="+c.Servers[0].HTTPAddr())
	if code != 0 {
		t.Fatalf("info on the server = exit %d, %q", code, errOut)
	}
	for section, keys := range want {
		if !strings.Contains(out, section+":\n") {
			t.Errorf("info on the server lacks section %s:\n%s", section, out)
		}
		for _, k := range keys {
			if !strings.Contains(out, "\t"+k+" = ") {
				t.Errorf("info on the server lacks %s.%s", section, k)
			}
		}
	}
	if !strings.Contains(out, "\tleader = true") || !strings.Contains(out, "\tmembers = 2") {
		t.Errorf("info on the server does not say it leads a pool of 2:\n%s", out)
	}

	self, err = c.Clients[0].API().Agent().Self()
	if err != nil {
		t.Fatalf("Agent().Self() on the client: %v", err)
	}
	for _, section := range []string{"agent", "build", "consul", "runtime", "serf_lan"} {
		if _, ok := self["Stats"][section]; !ok {
			t.Errorf("client's Stats lack section %s", section)
		}
	}
	if consul, _ := self["Stats"]["consul"].(map[string]any); consul["server"] != "false" || consul["known_servers"] != "1" {
		t.Errorf("client's Stats.consul = %v, want server false and 1 known server", consul)
	}

	host, err := c.Clients[0].API().Agent().Host()
	if err != nil {
		t.Fatalf("Agent().Host(): %v", err)
	}
	for _, k := range []string{"Host", "Memory", "CPU", "Disk", "CollectionTime"} {
		if _, ok := host[k]; !ok {
			t.Errorf("Agent().Host() lacks %s: %v", k, host)
		}
	}
	if mem, _ := host["Memory"].(map[string]any); mem["total"] == nil || mem["total"].(float64) <= 0 {
		t.Errorf("Agent().Host() Memory = %v, want a total", host["Memory"])
	}
}
