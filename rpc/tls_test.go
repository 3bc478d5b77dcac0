package rpc

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testPKI is a directory of PEM files made by writeTestPKI:
//
//	a-ca.pem, b-ca.pem   two unrelated CAs
//	a1.crt, a1.key       signed by CA a
//	a2.crt, a2.key       signed by an intermediate of CA a; a2.crt holds
//	                     the leaf then the intermediate
//	b1.crt, b1.key       signed by CA b
//	garbage.pem          not PEM at all
type testPKI struct{ dir string }

func (p testPKI) path(name string) string { return filepath.Join(p.dir, name) }

// writeTestPKI writes the files of testPKI (ECDSA keys, unlike the ed25519
// ones of ClusterTLS) into a temporary directory.
func writeTestPKI(t testing.TB) testPKI {
	t.Helper()
	p := testPKI{dir: t.TempDir()}
	now := time.Now()
	type issuer struct {
		cert *x509.Certificate
		key  crypto.Signer
	}
	var serial int64
	mint := func(name string, ca *issuer, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{CommonName: name},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(time.Hour),
			BasicConstraintsValid: true,
			IsCA:                  isCA,
			KeyUsage:              x509.KeyUsageDigitalSignature,
		}
		if isCA {
			tmpl.KeyUsage |= x509.KeyUsageCertSign
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}
		parent, signer := tmpl, crypto.Signer(key)
		if ca != nil {
			parent, signer = ca.cert, ca.key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	write := func(name string, data ...[]byte) {
		if err := os.WriteFile(p.path(name), bytes.Join(data, nil), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeKey := func(name string, key *ecdsa.PrivateKey) {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		write(name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	caA, caAKey, caAPEM := mint("test ca a", nil, true)
	caB, caBKey, caBPEM := mint("test ca b", nil, true)
	inter, interKey, interPEM := mint("test intermediate a", &issuer{caA, caAKey}, true)
	_, a1Key, a1PEM := mint("a1", &issuer{caA, caAKey}, false)
	_, a2Key, a2PEM := mint("a2", &issuer{inter, interKey}, false)
	_, b1Key, b1PEM := mint("b1", &issuer{caB, caBKey}, false)
	write("a-ca.pem", caAPEM)
	write("b-ca.pem", caBPEM)
	write("a1.crt", a1PEM)
	writeKey("a1.key", a1Key)
	write("a2.crt", a2PEM, interPEM)
	writeKey("a2.key", a2Key)
	write("b1.crt", b1PEM)
	writeKey("b1.key", b1Key)
	write("garbage.pem", []byte("not a certificate\n"))
	return p
}

// loadTestTLS returns the WAN link configuration of leaf (a1, a2 or b1)
// with the CA that issued it.
func loadTestTLS(t testing.TB, p testPKI, leaf string) *tls.Config {
	t.Helper()
	c, err := loadFiles(p.path(leaf[:1]+"-ca.pem"), p.path(leaf+".crt"), p.path(leaf+".key"))
	if err != nil {
		t.Fatalf("load %s: %v", leaf, err)
	}
	return c
}

// loadFiles is TLSConfigurator.WANConfig of a CA, certificate and key.
func loadFiles(ca, cert, key string) (*tls.Config, error) {
	c, err := NewTLSConfigurator(TLSConfig{CAFile: ca, CertFile: cert, KeyFile: key})
	if err != nil {
		return nil, err
	}
	return c.WANConfig(""), nil
}

// ephemeralTLS returns EphemeralTLS(name), failing the test on error.
func ephemeralTLS(t testing.TB, name string) *tls.Config {
	t.Helper()
	c, err := EphemeralTLS(name)
	if err != nil {
		t.Fatalf("EphemeralTLS(%q) = %v", name, err)
	}
	return c
}

// TestWANTLSFiles loads the WAN link configuration from files, and refuses
// bad ones with the file and the reason.
func TestWANTLSFiles(t *testing.T) {
	t.Parallel()
	p := writeTestPKI(t)
	missing := p.path("missing.pem")
	tests := []struct {
		name            string
		ca, cert, key   string
		wantErr, inFile string // wantErr "" for success; inFile is named by the error
	}{
		{name: "leaf signed by ca", ca: "a-ca.pem", cert: "a1.crt", key: "a1.key"},
		{name: "leaf with intermediate", ca: "a-ca.pem", cert: "a2.crt", key: "a2.key"},
		{name: "missing ca", ca: "missing.pem", cert: "a1.crt", key: "a1.key", wantErr: "no such file", inFile: missing},
		{name: "ca not PEM", ca: "garbage.pem", cert: "a1.crt", key: "a1.key", wantErr: "no CERTIFICATE block", inFile: p.path("garbage.pem")},
		{name: "ca is a key", ca: "a1.key", cert: "a1.crt", key: "a1.key", wantErr: "no CERTIFICATE block", inFile: p.path("a1.key")},
		{name: "missing cert", ca: "a-ca.pem", cert: "missing.pem", key: "a1.key", wantErr: "no such file", inFile: missing},
		{name: "missing key", ca: "a-ca.pem", cert: "a1.crt", key: "missing.pem", wantErr: "no such file", inFile: missing},
		{name: "key of another cert", ca: "a-ca.pem", cert: "a1.crt", key: "b1.key", wantErr: "does not match the certificate", inFile: p.path("a1.crt")},
		{name: "cert not PEM", ca: "a-ca.pem", cert: "garbage.pem", key: "a1.key", wantErr: "not PEM", inFile: p.path("garbage.pem")},
		{name: "cert of another ca", ca: "a-ca.pem", cert: "b1.crt", key: "b1.key", wantErr: "does not chain to the ca", inFile: p.path("b1.crt")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadFiles(p.path(tc.ca), p.path(tc.cert), p.path(tc.key))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("load(%s, %s, %s) = %v, want nil", tc.ca, tc.cert, tc.key, err)
				}
				checkWANTLS(t, c)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.inFile) {
				t.Errorf("load(%s, %s, %s) = %v, want an error naming %s and containing %q", tc.ca, tc.cert, tc.key, err, tc.inFile, tc.wantErr)
			}
		})
	}
}

// checkWANTLS checks what every WAN TLS config must have.
func checkWANTLS(t *testing.T, c *tls.Config) {
	t.Helper()
	if c.MinVersion != tls.VersionTLS13 {
		t.Errorf("MinVersion = %#x, want TLS 1.3", c.MinVersion)
	}
	if !slices.Equal(c.NextProtos, []string{alpnWAN}) {
		t.Errorf("NextProtos = %q, want [%q]", c.NextProtos, alpnWAN)
	}
	if (len(c.Certificates) != 1 || c.Certificates[0].Leaf == nil) && c.GetCertificate == nil {
		t.Errorf("Certificates = %d and no GetCertificate, want a certificate", len(c.Certificates))
	}
	if c.ClientAuth == tls.NoClientCert {
		t.Error("ClientAuth = NoClientCert, want the client's certificate asked for")
	}
}

// TestTLSHandshake runs TLS (over a pipe, no QUIC) between every pair of
// configs that matter and checks who gets through, and that a refusal says
// why on the refusing side and reaches the other side as an alert.
func TestTLSHandshake(t *testing.T) {
	t.Parallel()
	p := writeTestPKI(t)
	tests := []struct {
		name           string
		client, server *tls.Config
		wantErr        string // on the refusing side; "" when both get through
	}{
		{name: "files, same ca", client: loadTestTLS(t, p, "a1"), server: loadTestTLS(t, p, "a2")},
		{name: "files, same ca, other way", client: loadTestTLS(t, p, "a2"), server: loadTestTLS(t, p, "a1")},
		{name: "files, different cas", client: loadTestTLS(t, p, "a1"), server: loadTestTLS(t, p, "b1"),
			wantErr: `peer certificate "b1" is issued by "test ca b", not by a CA we trust: x509: certificate signed by unknown authority`},
		{name: "cluster, same secret", client: clusterTLS(t, "same", "c"), server: clusterTLS(t, "same", "s")},
		{name: "cluster, different secrets", client: clusterTLS(t, "mine", "c"), server: clusterTLS(t, "yours", "s"),
			wantErr: "(the two servers have different cluster secrets)"},
		{name: "ephemeral both", client: ephemeralTLS(t, "c"), server: ephemeralTLS(t, "s")},
		{name: "cluster client, ephemeral server", client: clusterTLS(t, "mine", "c"), server: ephemeralTLS(t, "s"),
			wantErr: "self-signed"},
		{name: "ephemeral client, cluster server", client: ephemeralTLS(t, "c"), server: clusterTLS(t, "mine", "s"),
			wantErr: `peer certificate "c" is issued by "c"`},
		{name: "files client, cluster server", client: loadTestTLS(t, p, "a1"), server: clusterTLS(t, "mine", "s"),
			wantErr: "not by a CA we trust"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cerr, serr := tlsExchange(t, tc.client, tc.server)
			if tc.wantErr == "" {
				if cerr != nil || serr != nil {
					t.Fatalf("handshake: client %v, server %v; want both nil", cerr, serr)
				}
				return
			}
			// One side refuses with our message, the other hears an alert.
			var refusal, heard error
			switch {
			case cerr != nil && strings.Contains(cerr.Error(), tc.wantErr):
				refusal, heard = cerr, serr
			case serr != nil && strings.Contains(serr.Error(), tc.wantErr):
				refusal, heard = serr, cerr
			default:
				t.Fatalf("handshake: client %v, server %v; want one containing %q", cerr, serr, tc.wantErr)
			}
			var alert tls.AlertError
			if !errors.As(refusal, &alert) {
				t.Errorf("refusal %v wraps no tls.AlertError to send", refusal)
			}
			if heard == nil || !strings.Contains(heard.Error(), "remote error: tls:") {
				t.Errorf("other side's error = %v, want a remote tls alert", heard)
			}
		})
	}
}

// tlsExchange handshakes client and server over loopback TCP, then the
// server writes a byte for the client to read: in TLS 1.3 the client's
// handshake ends before the server has checked the client's certificate,
// so only that read tells the client it was refused.
func tlsExchange(t *testing.T, client, server *tls.Config) (cerr, serr error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		sc, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer sc.Close()
		s := tls.Server(sc, server)
		err = s.HandshakeContext(ctx)
		if err == nil {
			_, err = s.Write([]byte{1})
		}
		done <- err
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cc.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(cc, client)
	cerr = c.HandshakeContext(ctx)
	if cerr == nil {
		_, cerr = c.Read(make([]byte, 1))
	}
	cc.Close()
	return cerr, <-done
}

func TestClusterTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		secret  []byte
		cert    string
		wantErr string
	}{
		{name: "16-byte key", secret: testSecret("k")[:16], cert: "dc1-s1"},
		{name: "32-byte key", secret: testSecret("k"), cert: "dc1-s1"},
		{name: "short secret", secret: []byte("short"), cert: "dc1-s1", wantErr: "secret of 5 bytes, want at least 16"},
		{name: "no name", secret: testSecret("k"), wantErr: "empty certificate name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ClusterTLS(tc.secret, tc.cert)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("ClusterTLS(%d bytes, %q) = %v, want error containing %q", len(tc.secret), tc.cert, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ClusterTLS(%d bytes, %q) = %v", len(tc.secret), tc.cert, err)
			}
			checkWANTLS(t, c)
			if c.ClientAuth != tls.RequireAnyClientCert || c.VerifyConnection == nil {
				t.Errorf("ClientAuth = %v, VerifyConnection set %v; want the peer's certificate required and verified", c.ClientAuth, c.VerifyConnection != nil)
			}
			if got := c.Certificates[0].Leaf.Subject.CommonName; got != tc.cert {
				t.Errorf("certificate name = %q, want %q", got, tc.cert)
			}
		})
	}

	// The CA depends on the secret alone, and each call makes a new leaf.
	ca1, _, err := clusterCA(testSecret("k"))
	if err != nil {
		t.Fatal(err)
	}
	ca2, _, _ := clusterCA(testSecret("k"))
	ca3, _, _ := clusterCA(testSecret("other"))
	if !bytes.Equal(ca1.Raw, ca2.Raw) {
		t.Error("clusterCA(same secret) twice = different certificates, want the same bytes")
	}
	if ca1.PublicKey.(ed25519.PublicKey).Equal(ca3.PublicKey) || ca1.Subject.CommonName == ca3.Subject.CommonName {
		t.Errorf("clusterCA(different secrets) names = %q and %q, want different", ca1.Subject.CommonName, ca3.Subject.CommonName)
	}
	l1 := clusterTLS(t, "k", "n").Certificates[0]
	l2 := clusterTLS(t, "k", "n").Certificates[0]
	if bytes.Equal(l1.Leaf.Raw, l2.Leaf.Raw) {
		t.Error("ClusterTLS twice = the same leaf, want a fresh key each time")
	}
	if err := l1.Leaf.CheckSignatureFrom(ca1); err != nil {
		t.Errorf("leaf not signed by the derived CA: %v", err)
	}
}

func TestEphemeralTLS(t *testing.T) {
	t.Parallel()
	c := ephemeralTLS(t, "dev")
	checkWANTLS(t, c)
	if c.VerifyConnection != nil || c.ClientAuth != tls.RequestClientCert {
		t.Errorf("ClientAuth = %v, VerifyConnection set %v; want certificates asked for and not checked", c.ClientAuth, c.VerifyConnection != nil)
	}
	if _, err := EphemeralTLS(""); err == nil {
		t.Error("EphemeralTLS(\"\") = nil error, want one")
	}
}
