package rpc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// TLSConfig names the certificate files of one of an agent's TLS
// listeners and dialers (the server port, or HTTPS) and how peers are
// checked, as Consul's tls stanza does.
type TLSConfig struct {
	// CAFile is a PEM file of the CA certificates peers must chain to;
	// CAPath a directory of such files (*.pem, *.crt). At least one is
	// needed to verify anyone.
	CAFile, CAPath string
	// CertFile and KeyFile are this agent's certificate (with any
	// intermediates after it) and its private key, PEM.
	CertFile, KeyFile string
	// VerifyIncoming requires every peer connecting to present a
	// certificate from the CA; plain connections are refused.
	VerifyIncoming bool
	// VerifyOutgoing makes connections this agent dials use TLS and check
	// the peer's certificate against the CA.
	VerifyOutgoing bool
	// VerifyServerHostname requires servers to present a certificate for
	// ServerName(Datacenter, Domain) of their datacenter, so that a
	// client's certificate cannot pose as a server.
	VerifyServerHostname bool
	// MinVersion is the oldest TLS version accepted (tls.VersionTLS12 if
	// zero); CipherSuites, when not empty, the TLS 1.2 suites offered.
	MinVersion   uint16
	CipherSuites []uint16
	// Datacenter and Domain (no trailing dot) are this agent's.
	Datacenter, Domain string
	// Server says this agent is a server: with VerifyServerHostname its
	// own certificate must hold ServerName(Datacenter, Domain), or every
	// peer would refuse it.
	Server bool
}

// tlsMaterial is what the files held when last loaded.
type tlsMaterial struct {
	roots *x509.CertPool
	cert  *tls.Certificate // nil when no cert file is configured
}

// TLSConfigurator holds an agent's certificates and hands out the TLS
// configurations built from them; Reload rereads the files, and every
// connection made after it uses what was read. It is safe for concurrent
// use.
type TLSConfigurator struct {
	cfg TLSConfig
	cur atomic.Pointer[tlsMaterial]
}

// NewTLSConfigurator loads cfg's files. It fails with an error naming the
// file and the reason when a file cannot be read or parsed, the key does
// not match the certificate, a CA or certificate has expired, the
// certificate does not chain to the CA, or (with VerifyServerHostname) a
// server's certificate lacks its server name.
func NewTLSConfigurator(cfg TLSConfig) (*TLSConfigurator, error) {
	cfg.CipherSuites = append([]uint16(nil), cfg.CipherSuites...)
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	c := &TLSConfigurator{cfg: cfg}
	m, err := loadMaterial(cfg, time.Now())
	if err != nil {
		return nil, err
	}
	c.cur.Store(m)
	return c, nil
}

// Reload rereads the files. On error the certificates loaded before stay
// in use and the error says why the new ones were refused.
func (c *TLSConfigurator) Reload() error {
	m, err := loadMaterial(c.cfg, time.Now())
	if err != nil {
		return err
	}
	c.cur.Store(m)
	return nil
}

// Config returns the settings c was made with.
func (c *TLSConfigurator) Config() TLSConfig { return c.cfg }

// HasCert reports whether a certificate is configured (a TLS listener can
// serve).
func (c *TLSConfigurator) HasCert() bool { return c.cur.Load().cert != nil }

// loadMaterial reads and checks cfg's files as of now.
func loadMaterial(cfg TLSConfig, now time.Time) (*tlsMaterial, error) {
	m := &tlsMaterial{}
	if cfg.CAFile != "" || cfg.CAPath != "" {
		roots, err := loadRoots(cfg.CAFile, cfg.CAPath, now)
		if err != nil {
			return nil, err
		}
		m.roots = roots
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("tls: cert_file and key_file go together: set both or neither")
	}
	if cfg.CertFile != "" {
		cert, err := loadKeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		leaf := cert.Leaf
		if now.After(leaf.NotAfter) {
			return nil, fmt.Errorf("tls cert %s: expired on %s", cfg.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		if m.roots != nil {
			inter, err := parseChain(cert.Certificate[1:])
			if err != nil {
				return nil, fmt.Errorf("tls cert %s: %w", cfg.CertFile, err)
			}
			if err := verifyChainAt(m.roots, leaf, inter, x509.ExtKeyUsageAny, now); err != nil {
				return nil, fmt.Errorf("tls cert %s: does not chain to the ca: %w", cfg.CertFile, err)
			}
		}
		if cfg.Server && cfg.VerifyServerHostname {
			if name := ServerName(cfg.Datacenter, cfg.Domain); leaf.VerifyHostname(name) != nil {
				return nil, fmt.Errorf("tls cert %s: is for %s, not %s, which verify_server_hostname requires of this server (make one with meridian tls cert create -server -dc %s)",
					cfg.CertFile, strings.Join(leaf.DNSNames, ", "), name, cfg.Datacenter)
			}
		}
		m.cert = &cert
	}
	if (cfg.VerifyIncoming || cfg.VerifyOutgoing) && m.roots == nil {
		return nil, errors.New("tls: verify_incoming and verify_outgoing need ca_file or ca_path")
	}
	if cfg.VerifyIncoming && m.cert == nil {
		return nil, errors.New("tls: verify_incoming needs cert_file and key_file")
	}
	return m, nil
}

// loadRoots reads the CAs of caFile and of every *.pem and *.crt file in
// caPath. An expired CA is refused: nothing it signed verifies.
func loadRoots(caFile, caPath string, now time.Time) (*x509.CertPool, error) {
	var files []string
	if caFile != "" {
		files = append(files, caFile)
	}
	if caPath != "" {
		entries, err := os.ReadDir(caPath)
		if err != nil {
			return nil, fmt.Errorf("tls ca_path: %w", err)
		}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".pem" || ext == ".crt") {
				files = append(files, filepath.Join(caPath, e.Name()))
			}
		}
		if caFile == "" && len(files) == 0 {
			return nil, fmt.Errorf("tls ca_path %s: no .pem or .crt file", caPath)
		}
	}
	pool := x509.NewCertPool()
	for _, f := range files {
		certs, err := readCerts(f)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			if now.After(c.NotAfter) {
				return nil, fmt.Errorf("tls ca %s: %q expired on %s", f, c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
			}
			pool.AddCert(c)
		}
	}
	return pool, nil
}

// readCerts parses every certificate of a PEM file; a file without one is
// an error.
func readCerts(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load tls ca: %w", err)
	}
	var out []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("load tls ca %s: certificate %d: %w", file, len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("load tls ca %s: not PEM: no CERTIFICATE block found", file)
	}
	return out, nil
}

// loadKeyPair reads a certificate and its key; the error names the file
// and says whether the key does not match.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load tls cert: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load tls key: %w", err)
	}
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return tls.Certificate{}, fmt.Errorf("load tls cert %s: not PEM: no CERTIFICATE block found", certFile)
	}
	if b, _ := pem.Decode(keyPEM); b == nil {
		return tls.Certificate{}, fmt.Errorf("load tls key %s: not PEM", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return tls.Certificate{}, fmt.Errorf("load tls key %s: does not match the certificate in %s", keyFile, certFile)
		}
		return tls.Certificate{}, fmt.Errorf("load tls key %s for cert %s: %w", keyFile, certFile, err)
	}
	return cert, nil
}

// ServerName is the name servers of this agent's datacenter present.
func (c *TLSConfigurator) ServerName() string {
	return ServerName(c.cfg.Datacenter, c.cfg.Domain)
}

// base is the part of every configuration c hands out.
func (c *TLSConfigurator) base() *tls.Config {
	return &tls.Config{
		MinVersion:   c.cfg.MinVersion,
		CipherSuites: c.cfg.CipherSuites,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if m := c.cur.Load(); m.cert != nil {
				return m.cert, nil
			}
			return nil, errors.New("no tls certificate configured")
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if m := c.cur.Load(); m.cert != nil {
				return m.cert, nil
			}
			return &tls.Certificate{}, nil // none: the server decides
		},
	}
}

// IncomingConfig is the configuration of a TLS listener (the server port's
// TLS connections, HTTPS). With VerifyIncoming a client must present a
// certificate that chains to the CA. Without it a client is asked for
// none (a browser would prompt for one), unless VerifyServerHostname needs
// the certificates of servers dialing in; one presented is checked.
func (c *TLSConfigurator) IncomingConfig() *tls.Config {
	t := c.base()
	// VerifyConnection, not ClientAuth, requires the certificate, so the
	// refusal says why.
	t.ClientAuth = tls.NoClientCert
	if c.cfg.VerifyIncoming || c.cfg.VerifyServerHostname {
		t.ClientAuth = tls.RequestClientCert
	}
	t.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			if c.cfg.VerifyIncoming {
				return &peerCertError{msg: "peer presented no certificate (verify_incoming is set)", alert: alertCertificateNeeded}
			}
			return nil
		}
		return c.verify(cs, x509.ExtKeyUsageClientAuth, "")
	}
	return t
}

// OutgoingConfig is the configuration of a TLS connection to a server of
// datacenter dc. Its certificate must chain to the CA and, with
// VerifyServerHostname, hold ServerName(dc, Domain).
func (c *TLSConfigurator) OutgoingConfig(dc string) *tls.Config {
	t := c.base()
	name := ""
	if c.cfg.VerifyServerHostname {
		name = ServerName(dc, c.cfg.Domain)
		t.ServerName = name
	}
	// The stock check would match the address dialed (an IP): verify
	// checks the chain and the server name instead.
	t.InsecureSkipVerify = true
	t.VerifyConnection = func(cs tls.ConnectionState) error {
		if !c.cfg.VerifyOutgoing {
			return nil
		}
		return c.verify(cs, x509.ExtKeyUsageServerAuth, name)
	}
	return t
}

// verify checks the peer's chain against the current CAs for usage, and
// that it holds name when name is not empty.
func (c *TLSConfigurator) verify(cs tls.ConnectionState, usage x509.ExtKeyUsage, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return &peerCertError{msg: "peer presented no certificate", alert: alertCertificateNeeded}
	}
	leaf := cs.PeerCertificates[0]
	m := c.cur.Load()
	if m.roots == nil {
		return &peerCertError{msg: "no ca configured to verify the peer", alert: alertUnknownCA}
	}
	if err := verifyPeer(cs, m.roots, "", usage); err != nil {
		return err
	}
	if name != "" {
		if err := leaf.VerifyHostname(name); err != nil {
			return &peerCertError{
				msg:   fmt.Sprintf("peer certificate %q is not for %s (verify_server_hostname)", leaf.Subject.CommonName, name),
				alert: alertBadCertificate,
			}
		}
	}
	return nil
}

// IsServerCert reports whether cert holds a server name of some datacenter
// of domain (server.<dc>.<domain>).
func IsServerCert(cert *x509.Certificate, domain string) bool {
	for _, n := range cert.DNSNames {
		if dc, ok := strings.CutPrefix(n, "server."); ok {
			if dc, ok = strings.CutSuffix(dc, "."+domain); ok && dc != "" && !strings.Contains(dc, ".") {
				return true
			}
		}
	}
	return false
}

// CheckServerPeer checks, when VerifyServerHostname is set, that the peer
// of an accepted TLS connection holds the server name of this datacenter:
// Raft is for this datacenter's servers only.
func (c *TLSConfigurator) CheckServerPeer(cs tls.ConnectionState) error {
	if !c.cfg.VerifyServerHostname {
		return nil
	}
	name := c.ServerName()
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("peer presented no certificate, and only %s may speak raft", name)
	}
	leaf := cs.PeerCertificates[0]
	if err := leaf.VerifyHostname(name); err != nil {
		return fmt.Errorf("peer certificate %q is not for %s, which only may speak raft", leaf.Subject.CommonName, name)
	}
	return nil
}

// WANConfig is the configuration of WAN links (QUIC, or TLS over TCP on the
// server port) to and from servers of other datacenters: both sides present
// their certificate and check the other's against the CA. dc is the
// datacenter dialed, or empty when listening. With VerifyServerHostname, a
// server dialed must hold ServerName(dc, Domain), and one that dials in must
// hold some server name of the domain, so no client certificate opens a link.
func (c *TLSConfigurator) WANConfig(dc string) *tls.Config {
	t := c.base()
	t.MinVersion = tls.VersionTLS13
	t.NextProtos = []string{alpnWAN}
	t.ClientAuth = tls.RequestClientCert // verify requires it
	t.InsecureSkipVerify = true
	name := ""
	if dc != "" && c.cfg.VerifyServerHostname {
		name = ServerName(dc, c.cfg.Domain)
		t.ServerName = name
	}
	t.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := c.verify(cs, x509.ExtKeyUsageAny, name); err != nil {
			return err
		}
		if dc == "" && c.cfg.VerifyServerHostname && !IsServerCert(cs.PeerCertificates[0], c.cfg.Domain) {
			return &peerCertError{
				msg:   fmt.Sprintf("peer certificate %q is not a server's (no server.<dc>.%s name): only servers open wan links", cs.PeerCertificates[0].Subject.CommonName, c.cfg.Domain),
				alert: alertBadCertificate,
			}
		}
		return nil
	}
	return t
}

// DialTLS dials addr over TCP, writes ProtoTLS, does the TLS handshake with
// cfg and writes proto as the first byte inside TLS. ctx bounds it all.
func DialTLS(ctx context.Context, dial DialFunc, addr string, proto byte, cfg *tls.Config) (net.Conn, error) {
	raw, err := DialProtoWith(ctx, dial, addr, ProtoTLS)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetWriteDeadline(dl)
	}
	_, err = conn.Write([]byte{proto})
	conn.SetWriteDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("write protocol byte to %s: %w", addr, err)
	}
	return conn, nil
}

// Dialer returns how this agent dials proto connections to servers of dc,
// with dial (a net.Dialer when nil): over TLS with VerifyOutgoing, else in
// the clear.
func (c *TLSConfigurator) Dialer(dc string, proto byte, dial DialFunc) func(ctx context.Context, addr string) (net.Conn, error) {
	if c == nil || !c.cfg.VerifyOutgoing {
		return func(ctx context.Context, addr string) (net.Conn, error) { return DialProtoWith(ctx, dial, addr, proto) }
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return DialTLS(ctx, dial, addr, proto, c.OutgoingConfig(dc))
	}
}
