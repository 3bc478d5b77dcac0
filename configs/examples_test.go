package configs

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExamples loads every agent dir of examples/ the way its README runs it.
func TestExamples(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob(filepath.Join("examples", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var agents []string
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			agents = append(agents, d)
		}
	}
	if len(agents) < 4 {
		t.Fatalf("examples hold %d agent dirs (%q), want at least 4", len(agents), agents)
	}
	servers := 0
	for _, dir := range agents {
		t.Run(dir, func(t *testing.T) {
			args := []string{"-config-dir", dir}
			c := mustLoad(t, args, nil)
			if err := c.Validate(); err != nil {
				t.Errorf("Load(%q).Validate() = %v, want nil", args, err)
			}
			if w := c.Warnings(); len(w) != 0 {
				t.Errorf("Load(%q).Warnings() = %q, want none", args, w)
			}
			if c.NodeName != filepath.Base(dir) || c.Datacenter != filepath.Base(filepath.Dir(dir)) {
				t.Errorf("Load(%q) node %q in %q, want %q in %q", args, c.NodeName, c.Datacenter, filepath.Base(dir), filepath.Base(filepath.Dir(dir)))
			}
			if len(c.RetryJoin) == 0 {
				t.Errorf("Load(%q) RetryJoin is empty, want the servers", args)
			}
			if c.Server {
				servers++
				if c.BootstrapExpect != 3 {
					t.Errorf("Load(%q) BootstrapExpect = %d, want 3", args, c.BootstrapExpect)
				}
			}
		})
	}
	if servers != 3 {
		t.Errorf("examples hold %d servers, want 3", servers)
	}
}
