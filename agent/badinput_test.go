package agent_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// TestStartRefusesBadInput checks that each mistake an operator can make at
// start is refused with one line that names what to fix.
func TestStartRefusesBadInput(t *testing.T) {
	first := testcluster.AgentConfig(t, "taken")
	first.Server, first.Bootstrap = true, true
	if _, err := testcluster.StartAgent(t, first); err != nil {
		t.Fatalf("start the first agent: %v", err)
	}
	aFile := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		modify func(*configs.Config)
		want   []string
	}{
		{"join where nothing listens", func(c *configs.Config) { c.StartJoin = []string{"127.0.0.1:1"} },
			[]string{"join", "127.0.0.1:1"}},
		{"same node name as a member", func(c *configs.Config) {
			c.NodeName = "taken"
			c.StartJoin = []string{"127.0.0.1:" + strconv.Itoa(first.Ports.SerfLAN)}
		}, []string{"taken"}},
		{"data dir under a file", func(c *configs.Config) { c.DataDir = filepath.Join(aFile, "data") },
			[]string{"data_dir", aFile}},
		{"http port in use", func(c *configs.Config) { c.Ports.HTTP = first.Ports.HTTP },
			[]string{"http", strconv.Itoa(first.Ports.HTTP)}},
		{"gossip port in use", func(c *configs.Config) { c.Ports.SerfLAN = first.Ports.SerfLAN },
			[]string{strconv.Itoa(first.Ports.SerfLAN)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testcluster.AgentConfig(t, "newcomer")
			tc.modify(cfg)
			_, err := testcluster.StartAgent(t, cfg)
			if err == nil {
				t.Fatalf("Start() succeeded, want an error naming %v", tc.want)
			}
			msg := err.Error()
			t.Logf("Start() = %v", err)
			if strings.Contains(strings.TrimSpace(msg), "\n") {
				t.Errorf("Start() error spans several lines: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Start() error = %q, want it to name %q", msg, w)
				}
			}
		})
	}
}
