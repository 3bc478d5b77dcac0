package configs

import (
	"io"
	"path/filepath"
	"testing"
	"time"
)

// TestLoadAutopilot reads the autopilot block in Consul's keys, and keeps
// Consul's defaults for what a file leaves out.
func TestLoadAutopilot(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml": "data_dir: /tmp/x\nautopilot:\n  cleanup_dead_servers: false\n  last_contact_threshold: 300ms\n  max_trailing_logs: 500\n",
	})
	cfg, err := Load([]string{"-config-file", filepath.Join(dir, "a.yaml")}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Autopilot{CleanupDeadServers: false, LastContactThreshold: 300 * time.Millisecond, MaxTrailingLogs: 500, ServerStabilizationTime: 10 * time.Second}
	if cfg.Autopilot != want {
		t.Errorf("autopilot = %+v, want %+v", cfg.Autopilot, want)
	}
	if d := Default().Autopilot; !d.CleanupDeadServers || d.LastContactThreshold != 200*time.Millisecond || d.MaxTrailingLogs != 250 {
		t.Errorf("default autopilot = %+v, want Consul's", d)
	}
}
