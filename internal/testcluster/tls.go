package testcluster

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/rpc"
)

// PKI is a CA and the certificates it signed, written to a directory, for
// clusters with TLS. It is safe for concurrent use.
type PKI struct {
	t   testing.TB
	dir string
	ca  rpc.PEMPair

	mu sync.Mutex
	n  int
}

// NewPKI makes a CA (as `meridian tls ca create` does) in a temporary
// directory.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca, err := rpc.NewCA("consul", 30)
	if err != nil {
		t.Fatalf("testcluster: new ca: %v", err)
	}
	p := &PKI{t: t, dir: t.TempDir(), ca: ca}
	p.write("consul-agent-ca.pem", ca.Cert)
	return p
}

// CAFile is the CA certificate's file.
func (p *PKI) CAFile() string { return filepath.Join(p.dir, "consul-agent-ca.pem") }

func (p *PKI) write(name string, data []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		p.t.Fatalf("testcluster: %v", err)
	}
	return path
}

// Cert makes a certificate of kind (rpc.CertServer, CertClient, CertCLI)
// for dc and returns its certificate and key files.
func (p *PKI) Cert(kind, dc string) (certFile, keyFile string) {
	p.t.Helper()
	pair, err := rpc.NewCert(p.ca, rpc.CertRequest{Kind: kind, Datacenter: dc, Domain: "consul", Days: 30})
	if err != nil {
		p.t.Fatalf("testcluster: new %s cert for %s: %v", kind, dc, err)
	}
	p.mu.Lock()
	p.n++
	base := filepath.Join(p.dir, dc+"-"+kind+"-consul-"+strconv.Itoa(p.n))
	p.mu.Unlock()
	return p.write(filepath.Base(base)+".pem", pair.Cert), p.write(filepath.Base(base)+"-key.pem", pair.Key)
}

// MTLS is an Options.Configure that turns on mutual TLS on the server port
// as Consul's secure setup does: verify_incoming, verify_outgoing and
// verify_server_hostname, a server certificate for servers and a client
// certificate for clients of the agent's datacenter.
func (p *PKI) MTLS(cfg *configs.Config) {
	kind := rpc.CertClient
	if cfg.Server {
		kind = rpc.CertServer
	}
	cert, key := p.Cert(kind, cfg.Datacenter)
	t := true
	cfg.TLS.Defaults = configs.TLSStanza{CAFile: p.CAFile(), CertFile: cert, KeyFile: key, VerifyIncoming: &t, VerifyOutgoing: &t}
	cfg.TLS.InternalRPC = configs.TLSStanza{VerifyServerHostname: &t}
}
