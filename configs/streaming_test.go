package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUseStreamingBackend: use_streaming_backend defaults to true, as in
// Consul, and a YAML, JSON or Consul HCL file turns it off without a
// warning that Meridian skips it.
func TestUseStreamingBackend(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		want                bool
	}{
		{"default", "a.yaml", "dev: true\n", true},
		{"yaml off", "a.yaml", "dev: true\nuse_streaming_backend: false\n", false},
		{"json off", "a.json", `{"dev": true, "use_streaming_backend": false}`, false},
		{"consul hcl off", "a.hcl", "use_streaming_backend = false\nserver = true\nbootstrap = true\ndata_dir = \"/tmp/x\"\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cfg, err := Load([]string{"-config-file", file}, nil, &stderr)
			if err != nil {
				t.Fatalf("Load(%q): %v", tc.content, err)
			}
			if cfg.UseStreamingBackend != tc.want {
				t.Errorf("Load(%q): UseStreamingBackend = %v, want %v", tc.content, cfg.UseStreamingBackend, tc.want)
			}
			if strings.Contains(stderr.String()+strings.Join(cfg.Warnings(), "\n"), "use_streaming_backend") {
				t.Errorf("Load(%q) warned about use_streaming_backend: %s %v", tc.content, stderr.String(), cfg.Warnings())
			}
		})
	}
}
