package rpc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTLSConfiguratorBadInput: each bad file is refused at start with an
// error naming the file and the reason.
func TestTLSConfiguratorBadInput(t *testing.T) {
	p := newPKI(t)
	ca := filepath.Join(p.dir, "ca.pem")
	srvCert, srvKey := p.cert(t, CertServer, "dc1")
	cliCert, cliKey := p.cert(t, CertClient, "dc1")
	notPEM := p.write(t, "notpem.pem", []byte("hello, not a certificate\n"))

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "old ca"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	expired := p.write(t, "expired-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))

	for _, tc := range []struct {
		name string
		cfg  TLSConfig
		want []string
	}{
		{"ca not pem", TLSConfig{CAFile: notPEM, CertFile: srvCert, KeyFile: srvKey}, []string{notPEM, "not PEM"}},
		{"key does not match", TLSConfig{CAFile: ca, CertFile: srvCert, KeyFile: cliKey}, []string{cliKey, "does not match", srvCert}},
		{"expired ca", TLSConfig{CAFile: expired}, []string{expired, "expired"}},
		{"other ca", TLSConfig{CAFile: filepath.Join(newPKI(t).dir, "ca.pem"), CertFile: srvCert, KeyFile: srvKey}, []string{srvCert, "does not chain"}},
		{"server without its name", TLSConfig{CAFile: ca, CertFile: cliCert, KeyFile: cliKey, VerifyServerHostname: true,
			Server: true, Datacenter: "dc1", Domain: "consul"}, []string{cliCert, "not server.dc1.consul"}},
		{"server of another dc", TLSConfig{CAFile: ca, CertFile: srvCert, KeyFile: srvKey, VerifyServerHostname: true,
			Server: true, Datacenter: "dc2", Domain: "consul"}, []string{srvCert, "not server.dc2.consul"}},
		{"verify without ca", TLSConfig{CertFile: srvCert, KeyFile: srvKey, VerifyIncoming: true}, []string{"need ca_file"}},
		{"cert without key", TLSConfig{CAFile: ca, CertFile: srvCert}, []string{"set both"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTLSConfigurator(tc.cfg)
			if err == nil {
				t.Fatalf("NewTLSConfigurator(%+v) = nil error, want %q", tc.cfg, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("NewTLSConfigurator error %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
		})
	}
}

// TestTLSConfiguratorReload: new connections use the reloaded certificate;
// a bad new file keeps the old one and says why.
func TestTLSConfiguratorReload(t *testing.T) {
	p := newPKI(t)
	cf, kf := p.cert(t, CertServer, "dc1")
	c, err := NewTLSConfigurator(TLSConfig{CAFile: filepath.Join(p.dir, "ca.pem"), CertFile: cf, KeyFile: kf})
	if err != nil {
		t.Fatal(err)
	}
	serial := func() *big.Int {
		crt, err := c.IncomingConfig().GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return crt.Leaf.SerialNumber
	}
	before := serial()
	p.cert(t, CertServer, "dc1") // overwrites the same two files
	if err := c.Reload(); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	after := serial()
	if before.Cmp(after) == 0 {
		t.Fatal("Reload kept the old certificate")
	}
	p.write(t, "dc1-server-key.pem", []byte("garbage"))
	if err := c.Reload(); err == nil || !strings.Contains(err.Error(), kf) {
		t.Fatalf("Reload() with a bad key = %v, want an error naming %s", err, kf)
	}
	if serial().Cmp(after) != 0 {
		t.Fatal("a failed Reload replaced the certificate")
	}
}

// TestIncomingClientAuth: a listener asks for client certificates only
// when it checks them (verify_incoming, or servers' names).
func TestIncomingClientAuth(t *testing.T) {
	p := newPKI(t)
	cf, kf := p.cert(t, CertServer, "dc1")
	for _, tc := range []struct {
		incoming, hostname bool
		want               tls.ClientAuthType
	}{
		{false, false, tls.NoClientCert},
		{true, false, tls.RequestClientCert},
		{false, true, tls.RequestClientCert},
	} {
		c, err := NewTLSConfigurator(TLSConfig{CAFile: filepath.Join(p.dir, "ca.pem"), CertFile: cf, KeyFile: kf,
			VerifyIncoming: tc.incoming, VerifyServerHostname: tc.hostname, Datacenter: "dc1", Domain: "consul"})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.IncomingConfig().ClientAuth; got != tc.want {
			t.Errorf("verify_incoming %v, verify_server_hostname %v: ClientAuth = %v, want %v", tc.incoming, tc.hostname, got, tc.want)
		}
	}
}
