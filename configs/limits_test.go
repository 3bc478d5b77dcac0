package configs

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLimits(t *testing.T) {
	tests := []struct {
		name    string
		file    string // limits.yaml, or limits.json when it starts with {
		wantErr string
		check   func(*Config) string
	}{
		{name: "defaults are Consul's", file: "dev: true\n", check: func(c *Config) string {
			if c.Limits.HTTPMaxConnsPerClient != 200 || c.MaxQueryTime != 600*time.Second || c.DefaultQueryTime != 300*time.Second {
				return "defaults are not Consul's"
			}
			return ""
		}},
		{name: "set", file: "dev: true\nlimits:\n  http_max_conns_per_client: 50\nmax_query_time: 60s\ndefault_query_time: 30s\n", check: func(c *Config) string {
			if c.Limits.HTTPMaxConnsPerClient != 50 || c.MaxQueryTime != time.Minute || c.DefaultQueryTime != 30*time.Second {
				return "settings not read"
			}
			return ""
		}},
		{name: "consul json", file: `{"dev": true, "limits": {"http_max_conns_per_client": 0}, "max_query_time": "10m"}`, check: func(c *Config) string {
			if c.Limits.HTTPMaxConnsPerClient != 0 || c.MaxQueryTime != 10*time.Minute {
				return "settings not read"
			}
			return ""
		}},
		{name: "negative conns", file: "dev: true\nlimits:\n  http_max_conns_per_client: -1\n", wantErr: "limits.http_max_conns_per_client: must not be negative"},
		{name: "zero max_query_time", file: "dev: true\nmax_query_time: 0s\n", wantErr: "max_query_time: must be positive"},
		{name: "default longer than max", file: "dev: true\nmax_query_time: 10s\ndefault_query_time: 1m\n", wantErr: "default_query_time: must not be longer than max_query_time (10s), got 1m0s"},
		{name: "unknown limits key", file: "dev: true\nlimits:\n  http_max_conn_per_client: 5\n", wantErr: "http_max_conn_per_client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "limits.yaml"
			if strings.HasPrefix(tc.file, "{") {
				name = "limits.json"
			}
			file := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(file, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load([]string{"-config-file", file}, nil, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load(%q) error = %v, want %q", tc.file, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q): %v", tc.file, err)
			}
			if msg := tc.check(cfg); msg != "" {
				t.Errorf("Load(%q): %s: %+v max %s default %s", tc.file, msg, cfg.Limits, cfg.MaxQueryTime, cfg.DefaultQueryTime)
			}
		})
	}
}
