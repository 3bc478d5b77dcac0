package rpc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// The kinds of certificate NewCert makes, as `meridian tls cert create`
// names them.
const (
	// CertServer is a server's certificate: server.<dc>.<domain>, for both
	// serving and dialing (servers dial each other).
	CertServer = "server"
	// CertClient is a client agent's certificate: client.<dc>.<domain>.
	CertClient = "client"
	// CertCLI is a certificate for the CLI and other HTTPS clients:
	// cli.client.<dc>.<domain>, client authentication only.
	CertCLI = "cli"
)

// ServerName is the DNS name that a certificate of a server of dc must
// hold, and that verify_server_hostname checks: server.<dc>.<domain>.
// domain is given without the trailing dot ("consul").
func ServerName(dc, domain string) string {
	return "server." + dc + "." + domain
}

// PEMPair is a certificate and its private key, PEM-encoded.
type PEMPair struct {
	Cert []byte
	Key  []byte
}

// NewCA makes a self-signed certificate authority with a new ECDSA P-256
// key, valid from now for days days, as `consul tls ca create` does.
func NewCA(domain string, days int) (PEMPair, error) {
	if days <= 0 {
		return PEMPair{}, fmt.Errorf("new ca: days %d must be positive", days)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PEMPair{}, fmt.Errorf("new ca: generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return PEMPair{}, fmt.Errorf("new ca: %w", err)
	}
	skid, err := keyID(key.Public())
	if err != nil {
		return PEMPair{}, fmt.Errorf("new ca: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   fmt.Sprintf("Meridian Agent CA %d", serial),
			Organization: []string{"Meridian"},
			Country:      []string{"US"},
		},
		NotBefore:             now.Add(-time.Minute), // clock skew
		NotAfter:              now.AddDate(0, 0, days),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          skid,
		AuthorityKeyId:        skid,
	}
	if domain != "" {
		tmpl.Subject.OrganizationalUnit = []string{domain}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return PEMPair{}, fmt.Errorf("new ca: create certificate: %w", err)
	}
	return encodePair(der, key)
}

// CertRequest says what certificate NewCert makes.
type CertRequest struct {
	// Kind is CertServer, CertClient or CertCLI.
	Kind string
	// Datacenter and Domain (without trailing dot) make the certificate's
	// name: server.dc1.consul.
	Datacenter, Domain string
	// Days is how long the certificate is valid, from now.
	Days int
	// DNSNames and IPs are added to the names every certificate holds
	// (its name and localhost; 127.0.0.1 for servers and clients).
	DNSNames []string
	IPs      []net.IP
}

// NewCert makes a certificate with a new ECDSA P-256 key, signed by the CA
// in ca (as NewCA made it).
func NewCert(ca PEMPair, req CertRequest) (PEMPair, error) {
	if req.Days <= 0 {
		return PEMPair{}, fmt.Errorf("new cert: days %d must be positive", req.Days)
	}
	if req.Datacenter == "" || req.Domain == "" {
		return PEMPair{}, errors.New("new cert: datacenter and domain must not be empty")
	}
	caCert, caKey, err := parseCA(ca)
	if err != nil {
		return PEMPair{}, fmt.Errorf("new cert: %w", err)
	}
	var (
		name  string
		usage []x509.ExtKeyUsage
		ips   []net.IP
	)
	switch req.Kind {
	case CertServer:
		name = ServerName(req.Datacenter, req.Domain)
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		ips = []net.IP{net.IPv4(127, 0, 0, 1)}
	case CertClient:
		name = "client." + req.Datacenter + "." + req.Domain
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		ips = []net.IP{net.IPv4(127, 0, 0, 1)}
	case CertCLI:
		name = "cli.client." + req.Datacenter + "." + req.Domain
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		return PEMPair{}, fmt.Errorf("new cert: kind %q: want %s, %s or %s", req.Kind, CertServer, CertClient, CertCLI)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PEMPair{}, fmt.Errorf("new cert: generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return PEMPair{}, fmt.Errorf("new cert: %w", err)
	}
	skid, err := keyID(key.Public())
	if err != nil {
		return PEMPair{}, fmt.Errorf("new cert: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(0, 0, req.Days),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           usage,
		DNSNames:              append([]string{name, "localhost"}, req.DNSNames...),
		IPAddresses:           append(ips, req.IPs...),
		SubjectKeyId:          skid,
		AuthorityKeyId:        caCert.SubjectKeyId,
	}
	if caCert.NotAfter.Before(tmpl.NotAfter) {
		tmpl.NotAfter = caCert.NotAfter // a certificate outliving its CA is never valid
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return PEMPair{}, fmt.Errorf("new cert: create certificate: %w", err)
	}
	return encodePair(der, key)
}

// parseCA decodes a CA's certificate and key.
func parseCA(ca PEMPair) (*x509.Certificate, crypto.Signer, error) {
	cb, _ := pem.Decode(ca.Cert)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, errors.New("ca certificate: no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("ca certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, nil, errors.New("ca certificate: not a CA (basic constraints)")
	}
	kb, _ := pem.Decode(ca.Key)
	if kb == nil {
		return nil, nil, errors.New("ca key: no PEM block")
	}
	var key any
	switch kb.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ca key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("ca key: %T cannot sign", key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, errors.New("ca key does not match the ca certificate")
	}
	return cert, signer, nil
}

// encodePair PEM-encodes a certificate and its ECDSA key.
func encodePair(der []byte, key *ecdsa.PrivateKey) (PEMPair, error) {
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return PEMPair{}, fmt.Errorf("encode key: %w", err)
	}
	return PEMPair{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}, nil
}

// newSerial returns a random 128-bit serial number.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial: %w", err)
	}
	return n, nil
}

// keyID is the subject key identifier of pub: a hash of its encoding.
func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}
