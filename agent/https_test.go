package agent_test

import (
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/rpc"
)

// TestHTTPS: the HTTPS API on ports.https with verify_incoming, plain HTTP
// off (ports.http = -1). The consul/api client with a CLI certificate reads
// and writes; without one, or with plain HTTP, it is refused. A reload
// serves new certificates to new connections, and a bad new file keeps the
// old ones.
func TestHTTPS(t *testing.T) {
	pki := testcluster.NewPKI(t)
	cfg := testcluster.AgentConfig(t, "server1")
	cfg.Server, cfg.Bootstrap = true, true
	pki.MTLS(cfg)
	cfg.Ports.HTTP, cfg.Ports.HTTPS = -1, 0
	a, err := testcluster.StartAgent(t, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if a.HTTPAddr() != "" {
		t.Fatalf("HTTPAddr() = %q with ports.http = -1, want none", a.HTTPAddr())
	}
	addr := a.HTTPSAddr()
	cliCert, cliKey := pki.Cert(rpc.CertCLI, "dc1")

	client, err := api.NewClient(&api.Config{Address: addr, Scheme: "https",
		TLSConfig: api.TLSConfig{CAFile: pki.CAFile(), CertFile: cliCert, KeyFile: cliKey}})
	if err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, err := client.KV().Put(&api.KVPair{Key: "https/k", Value: []byte("v")}, nil)
		return err
	})
	if p, _, err := client.KV().Get("https/k", nil); err != nil || p == nil || string(p.Value) != "v" {
		t.Fatalf("KV().Get over HTTPS = %v, %v; want v", p, err)
	}

	noCert, err := api.NewClient(&api.Config{Address: addr, Scheme: "https", TLSConfig: api.TLSConfig{CAFile: pki.CAFile()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := noCert.KV().Get("https/k", nil); err == nil {
		t.Error("KV().Get over HTTPS without a client certificate = nil error, want refused (verify_incoming)")
	}
	if resp, err := http.Get("http://" + addr + "/v1/kv/https/k"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP to the HTTPS port answered 200")
		}
	}

	// Reload.
	serial := func() *big.Int {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots(t, pki.CAFile()), Certificates: []tls.Certificate{keyPair(t, cliCert, cliKey)}})
		if err != nil {
			t.Fatalf("tls dial %s: %v", addr, err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	first := serial()
	newCert, newKey := pki.Cert(rpc.CertServer, "dc1")
	copyFile(t, newCert, cfg.TLS.Defaults.CertFile)
	copyFile(t, newKey, cfg.TLS.Defaults.KeyFile)
	a.Reload() // rereads the certificates; the definitions part fails (no config files), which is not tested here
	second := serial()
	if first.Cmp(second) == 0 {
		t.Fatal("after Reload HTTPS still serves the first certificate")
	}
	if err := os.WriteFile(cfg.TLS.Defaults.KeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Reload()
	if got := serial(); got.Cmp(second) != 0 {
		t.Fatalf("after a Reload with a bad key HTTPS serves serial %v, want the previous %v", got, second)
	}
	if _, _, err := client.KV().Get("https/k", nil); err != nil {
		t.Fatalf("KV().Get after a failed reload: %v", err)
	}
}

func roots(t *testing.T, caFile string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(data)
	return p
}

func keyPair(t *testing.T, cert, key string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
