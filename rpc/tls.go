package rpc

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// alpnWAN is the ALPN protocol of WAN links: a QUIC peer that does not offer
// it is refused during the handshake.
const alpnWAN = "meridian-wan/1"

// Validity of the certificates made by ClusterTLS and EphemeralTLS. They are
// fixed, not relative to the clock, so that the cluster CA is the same on
// every server and clock skew between servers never fails a handshake.
var (
	certNotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	certNotAfter  = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// minClusterSecret is the shortest secret ClusterTLS accepts, in bytes: the
// size of the smallest gossip encryption key (AES-128).
const minClusterSecret = 16

// ClusterTLS returns the TLS configuration of WAN links for clusters that
// have no certificate files but share a secret (the gossip encryption key,
// at least 16 bytes). A certificate authority is derived from the secret
// (an ed25519 key from HKDF-SHA256, so every server holding the same secret
// derives the same CA), a fresh certificate for name is signed with it, and
// peers must present a certificate signed by that CA. Two servers with the
// same secret connect; servers with different secrets fail the handshake
// with an error that says so.
//
// Whoever holds the secret can mint certificates, so this authenticates
// membership of the group of secret holders, not individual servers; where
// the gossip key is also given to client agents, they are in that group.
// Use TLSConfigurator.WANConfig with a real CA to tell servers apart. The derivation is one
// way: the CA key does not reveal the secret. The configuration serves as
// both client and server config; host names are not verified.
func ClusterTLS(secret []byte, name string) (*tls.Config, error) {
	if len(secret) < minClusterSecret {
		return nil, fmt.Errorf("cluster tls: secret of %d bytes, want at least %d", len(secret), minClusterSecret)
	}
	if name == "" {
		return nil, errors.New("cluster tls: empty certificate name")
	}
	ca, caKey, err := clusterCA(secret)
	if err != nil {
		return nil, fmt.Errorf("cluster tls: %w", err)
	}
	cert, err := newLeaf(name, ca, caKey)
	if err != nil {
		return nil, fmt.Errorf("cluster tls: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return wanTLS(cert, func(cs tls.ConnectionState) error {
		return verifyPeer(cs, roots, "the two servers have different cluster secrets", x509.ExtKeyUsageAny)
	}), nil
}

// clusterCA derives the cluster's certificate authority from secret. The
// result is the same, byte for byte, for the same secret: the key comes
// from HKDF, every field of the certificate is fixed, and ed25519
// signatures are deterministic.
func clusterCA(secret []byte) (*x509.Certificate, ed25519.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, secret, []byte("meridian cluster ca"), alpnWAN+" ca v1", ed25519.SeedSize)
	if err != nil {
		return nil, nil, fmt.Errorf("derive ca key: %w", err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	// The key's fingerprint in the name makes a mismatch readable:
	// "issued by meridian cluster ca 1a2b..., not by ... 3c4d...".
	sum := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "meridian cluster ca " + hex.EncodeToString(sum[:6])},
		NotBefore:             certNotBefore,
		NotAfter:              certNotAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create ca certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse ca certificate: %w", err)
	}
	return ca, key, nil
}

// EphemeralTLS returns a TLS configuration for WAN links that encrypts but
// does not authenticate: a self-signed certificate for name, made now, and
// no check of the peer's certificate. It is for dev mode and for clusters
// with neither certificate files nor a gossip key.
//
// The trade-off: traffic is safe from passive eavesdroppers, but anyone who
// can reach the port can open a link, and an active man in the middle can
// impersonate either side. Prefer ClusterTLS or TLSConfigurator.WANConfig
// wherever there is something to authenticate against. A peer using either
// refuses a peer using EphemeralTLS.
func EphemeralTLS(name string) (*tls.Config, error) {
	if name == "" {
		return nil, errors.New("ephemeral tls: empty certificate name")
	}
	cert, err := newLeaf(name, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("ephemeral tls: %w", err)
	}
	c := wanTLS(cert, nil)
	// Ask for the client's certificate (so a client presents one, as with
	// the other configs) but do not require or check it.
	c.ClientAuth = tls.RequestClientCert
	return c, nil
}

// newLeaf makes a certificate for name with a fresh ed25519 key, signed by
// ca with caKey, or self-signed when ca is nil. It is valid for both server
// and client authentication.
func newLeaf(name string, ca *x509.Certificate, caKey ed25519.PrivateKey) (tls.Certificate, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             certNotBefore,
		NotAfter:              certNotAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate for %q: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse certificate for %q: %w", name, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// wanTLS returns the configuration shared by every WAN TLS mode: TLS 1.3,
// the WAN ALPN protocol, cert presented by both sides, and verify (when not
// nil) run on the peer's certificates by both sides.
func wanTLS(cert tls.Certificate, verify func(tls.ConnectionState) error) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{alpnWAN},
		Certificates: []tls.Certificate{cert},
		// The server requires a certificate; verify checks it. The stock
		// client-side check is off because it would verify the peer's host
		// name against the address dialed, and servers are reached by IP
		// with certificates that do not list it: verify checks the chain.
		ClientAuth:         tls.RequireAnyClientCert,
		InsecureSkipVerify: true,
		// VerifyConnection, unlike VerifyPeerCertificate, also runs on
		// resumed sessions.
		VerifyConnection: verify,
	}
}

// peerCertError is a peer certificate that failed verification. It wraps
// the TLS alert to send, so that over QUIC the peer learns why it was
// refused (crypto/tls sends "internal error" for any other error).
type peerCertError struct {
	msg   string // what is wrong, in words
	alert tls.AlertError
	err   error // the verification error, or nil
}

func (e *peerCertError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *peerCertError) Unwrap() []error {
	if e.err == nil {
		return []error{e.alert}
	}
	return []error{e.err, e.alert}
}

// TLS alerts sent when a peer certificate is refused.
const (
	alertBadCertificate    tls.AlertError = 42
	alertUnknownCA         tls.AlertError = 48
	alertNoAppProtocol     tls.AlertError = 120
	alertCertificateNeeded tls.AlertError = 116
)

// verifyPeer checks that the peer's certificate chains to roots for usage. hint, if
// not empty, is added to the error when the issuer is unknown (and the
// certificate is not self-signed, which says more).
func verifyPeer(cs tls.ConnectionState, roots *x509.CertPool, hint string, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return &peerCertError{msg: "peer presented no certificate", alert: alertCertificateNeeded}
	}
	leaf := cs.PeerCertificates[0]
	err := verifyChain(roots, leaf, cs.PeerCertificates[1:], usage)
	if err == nil {
		return nil
	}
	pe := &peerCertError{
		msg:   fmt.Sprintf("peer certificate %q is not valid", leaf.Subject.CommonName),
		alert: alertBadCertificate,
		err:   err,
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		issuer := leaf.Issuer.CommonName
		if issuer == "" {
			issuer = leaf.Issuer.String()
		}
		pe.msg = fmt.Sprintf("peer certificate %q is issued by %q, not by a CA we trust", leaf.Subject.CommonName, issuer)
		switch {
		case bytes.Equal(leaf.RawIssuer, leaf.RawSubject):
			pe.msg += " (it is self-signed: the peer has neither certificate files nor a cluster secret)"
		case hint != "":
			pe.msg += " (" + hint + ")"
		}
		pe.alert = alertUnknownCA
	}
	return pe
}

// verifyChain verifies leaf, with the intermediates after it, against roots
// for usage (ExtKeyUsageAny: one certificate serves as client and server).
func verifyChain(roots *x509.CertPool, leaf *x509.Certificate, intermediates []*x509.Certificate, usage x509.ExtKeyUsage) error {
	return verifyChainAt(roots, leaf, intermediates, usage, time.Time{})
}

// verifyChainAt is verifyChain as of now (the current time if zero).
func verifyChainAt(roots *x509.CertPool, leaf *x509.Certificate, intermediates []*x509.Certificate, usage x509.ExtKeyUsage, now time.Time) error {
	var inter *x509.CertPool
	if len(intermediates) > 0 {
		inter = x509.NewCertPool()
		for _, c := range intermediates {
			inter.AddCert(c)
		}
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	return err
}

// parseChain parses the DER certificates that follow a leaf.
func parseChain(ders [][]byte) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(ders))
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("intermediate certificate %d: %w", i+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}
