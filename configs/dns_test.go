package configs

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDNSConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(*Config) string
	}{
		{name: "defaults", yaml: "dev: true\n", check: func(c *Config) string {
			if c.Domain != "consul." || !c.DNSConfig.AllowStale || c.DNSConfig.UDPAnswerLimit != 3 {
				return "defaults are not Consul's"
			}
			return ""
		}},
		{name: "set", yaml: "dev: true\ndomain: example.\nrecursors: [1.1.1.1]\ndns_config:\n  only_passing: true\n  node_ttl: 5s\n  service_ttl:\n    web: 10s\n    \"*\": 1s\n", check: func(c *Config) string {
			ttls := c.DNSConfig.ServiceTTLs()
			if c.Domain != "example." || len(c.Recursors) != 1 || !c.DNSConfig.OnlyPassing || c.DNSConfig.NodeTTL != 5*time.Second || ttls["web"] != 10*time.Second || ttls["*"] != time.Second {
				return "settings not read"
			}
			return ""
		}},
		{name: "bad service ttl", yaml: "dev: true\ndns_config:\n  service_ttl:\n    web: soon\n", wantErr: "dns_config.service_ttl.web: must be a duration"},
		{name: "negative a_record_limit", yaml: "dev: true\ndns_config:\n  a_record_limit: -1\n", wantErr: "dns_config.a_record_limit"},
		{name: "unknown dns key", yaml: "dev: true\ndns_config:\n  only_pasing: true\n", wantErr: "only_pasing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "dns.yaml")
			if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load([]string{"-config-file", file}, nil, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load(%q) error = %v, want %q", tc.yaml, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q): %v", tc.yaml, err)
			}
			if msg := tc.check(cfg); msg != "" {
				t.Errorf("Load(%q): %s: %+v %+v", tc.yaml, msg, cfg.Domain, cfg.DNSConfig)
			}
		})
	}
}
