package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/rpc"
)

// TestCLIOverHTTPS: the CLI reaches an HTTPS-only agent that requires
// client certificates through Consul's environment variables, and through
// the MERIDIAN_ ones; a bad CA file is one line naming it.
func TestCLIOverHTTPS(t *testing.T) {
	pki := testcluster.NewPKI(t)
	cfg := testcluster.AgentConfig(t, "server1")
	cfg.Server, cfg.Bootstrap, cfg.Dev = true, true, true
	pki.MTLS(cfg)
	cfg.Ports.HTTP, cfg.Ports.HTTPS = -1, 0
	a, err := testcluster.StartAgent(t, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	cert, key := pki.Cert(rpc.CertCLI, "dc1")

	t.Setenv("CONSUL_HTTP_ADDR", a.HTTPSAddr())
	t.Setenv("CONSUL_HTTP_SSL", "true")
	t.Setenv("CONSUL_CACERT", pki.CAFile())
	t.Setenv("CONSUL_CLIENT_CERT", cert)
	t.Setenv("CONSUL_CLIENT_KEY", key)
	testcluster.Eventually(t, 10*time.Second, func() error {
		if code, _, errOut := meridian("kv", "put", "https/a", "1"); code != 0 {
			return fmt.Errorf("kv put over https: %s", errOut)
		}
		return nil
	})
	if code, out, errOut := meridian("kv", "get", "https/a"); code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("kv get over https = %d, %q, %q; want 1", code, out, errOut)
	}

	t.Setenv("CONSUL_CLIENT_CERT", "")
	t.Setenv("CONSUL_CLIENT_KEY", "")
	if code, _, _ := meridian("kv", "get", "https/a"); code == 0 {
		t.Fatal("kv get without a client certificate succeeded, want refused")
	}
	t.Setenv("MERIDIAN_CLIENT_CERT", cert)
	t.Setenv("MERIDIAN_CLIENT_KEY", key)
	if code, out, errOut := meridian("kv", "get", "https/a"); code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("kv get with MERIDIAN_CLIENT_CERT = %d, %q, %q; want 1", code, out, errOut)
	}

	t.Setenv("MERIDIAN_CACERT", key) // a key, not a certificate
	code, _, errOut := meridian("kv", "get", "https/a")
	if code == 0 || !strings.Contains(errOut, "CONSUL_CACERT "+key+": not PEM") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("kv get with a bad CA = %d, %q; want one line naming %s", code, errOut, key)
	}
}
