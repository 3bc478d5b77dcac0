package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestAutopilotCLI reads, changes and checks autopilot's configuration and
// state through the CLI, and refuses bad settings with one line each.
func TestAutopilotCLI(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	via := "-http-addr=" + c.Servers[0].HTTPAddr()
	code, out, errOut := meridian("operator", "autopilot", "get-config", via)
	if code != 0 || !strings.Contains(out, "CleanupDeadServers = false") || !strings.Contains(out, "LastContactThreshold = 200ms") {
		t.Fatalf("get-config = exit %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = meridian("operator", "autopilot", "set-config", via, "-cleanup-dead-servers=true", "-max-trailing-logs=42", "-server-stabilization-time=3s")
	if code != 0 || !strings.Contains(out, "Configuration updated!") {
		t.Fatalf("set-config = exit %d, %q, %q", code, out, errOut)
	}
	cfg, err := c.Servers[0].API().Operator().AutopilotGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.CleanupDeadServers || cfg.MaxTrailingLogs != 42 || cfg.ServerStabilizationTime.Duration() != 3*time.Second ||
		cfg.LastContactThreshold.Duration() != 200*time.Millisecond {
		t.Fatalf("configuration after set-config = %+v", cfg)
	}
	for _, args := range [][]string{
		{"-cleanup-dead-servers=maybe"},
		{"-last-contact-threshold=0s"},
		{"-max-trailing-logs=-3"},
		{"unexpected"},
	} {
		code, _, errOut := meridian(append([]string{"operator", "autopilot", "set-config", via}, args...)...)
		// One line, and at most the hint after it (see meridian ... -h).
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code != 1 || len(lines) > 2 || len(lines) == 2 && !strings.HasPrefix(lines[1], "see meridian ") {
			t.Errorf("set-config %v = exit %d, stderr %q; want 1 and one line (and the hint)", args, code, errOut)
		}
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		code, out, errOut := meridian("operator", "autopilot", "state", via)
		if code != 0 || !strings.Contains(out, "Healthy:                      true") || !strings.Contains(out, "leader") {
			return fmt.Errorf("state = exit %d, %q, %q", code, out, errOut)
		}
		return nil
	})
}

// TestMaintCLI enables and disables node and service maintenance and lists
// what is in maintenance.
func TestMaintCLI(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	client := c.Servers[0].API()
	if err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web1", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	via := "-http-addr=" + c.Servers[0].HTTPAddr()
	for _, args := range [][]string{
		{"-enable", "-reason", "kernel upgrade"},
		{"-enable", "-service", "web1", "-reason", "deploy"},
	} {
		if code, out, errOut := meridian(append([]string{"maint", via}, args...)...); code != 0 || !strings.Contains(out, "now enabled") {
			t.Fatalf("maint %v = exit %d, %q, %q", args, code, out, errOut)
		}
	}
	code, out, errOut := meridian("maint", via)
	if code != 0 || !strings.Contains(out, "Reason: kernel upgrade") || !strings.Contains(out, "ID:     web1") || !strings.Contains(out, "Reason: deploy") {
		t.Fatalf("maint (list) = exit %d, %q, %q", code, out, errOut)
	}
	checks, err := client.Agent().Checks()
	if err != nil || checks["_node_maintenance"] == nil || checks["_service_maintenance:web1"] == nil {
		t.Fatalf("agent checks = %v, %v; want both maintenance checks", checks, err)
	}
	for _, args := range [][]string{{"-disable"}, {"-disable", "-service", "web1"}} {
		if code, out, errOut := meridian(append([]string{"maint", via}, args...)...); code != 0 || !strings.Contains(out, "now disabled") {
			t.Fatalf("maint %v = exit %d, %q, %q", args, code, out, errOut)
		}
	}
	if code, out, _ := meridian("maint", via); code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("maint (list) after disable = exit %d, %q; want nothing", code, out)
	}
	for _, args := range [][]string{{"-enable", "-disable"}, {"-service", "web1"}, {"-enable", "-service", "nope"}} {
		code, _, errOut := meridian(append([]string{"maint", via}, args...)...)
		if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("maint %v = exit %d, stderr %q; want 1 and one line", args, code, errOut)
		}
	}
}

// TestValidate checks files and directories as the agent reads them.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	write := func(name, body string) {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(good, "datacenter: dc1\ndata_dir: /tmp/meridian\nautopilot:\n  cleanup_dead_servers: false\n  last_contact_threshold: 300ms\n")
	write(bad, "datacenter: dc1\ndata_dir: /tmp/meridian\nautopilot:\n  last_contact_threshold: -1s\n  server_stabilization_time: -2s\n")
	for _, arg := range []string{good, dir} {
		if code, out, errOut := meridian("validate", arg); code != 0 || strings.TrimSpace(out) != "Configuration is valid!" {
			t.Errorf("validate %s = exit %d, %q, %q", arg, code, out, errOut)
		}
	}
	code, out, errOut := meridian("validate", bad)
	if code != 1 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 1 ||
		!strings.Contains(errOut, "autopilot.last_contact_threshold") || !strings.Contains(errOut, "autopilot.server_stabilization_time") {
		t.Errorf("validate bad = exit %d, %q, stderr %q; want 1 and one line per problem", code, out, errOut)
	}
	for _, args := range [][]string{{"validate"}, {"validate", filepath.Join(dir, "none.yaml")}} {
		code, _, errOut := meridian(args...)
		if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("meridian %v = exit %d, stderr %q; want 1 and one line", args, code, errOut)
		}
	}
}
