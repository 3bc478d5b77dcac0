package configs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// TLS is Consul's tls stanza: Defaults apply to every listener and dialer,
// InternalRPC (the server port: RPC, Raft and WAN links) and HTTPS override
// them key by key. CAFile, CertFile and KeyFile directly under tls are the
// keys of earlier Meridian versions (the WAN link certificates) and mean
// the same as under defaults, which wins. Relative paths are relative to
// the agent's working directory.
//
// Without any certificate, WAN links use certificates derived from the
// gossip key (Encrypt), which any holder of the key can mint, else
// ephemeral self-signed ones that authenticate no one (Warnings says so).
type TLS struct {
	// CAFile, CertFile and KeyFile: as Defaults' (older spelling).
	CAFile   string `config:"ca_file"`
	CertFile string `config:"cert_file"`
	KeyFile  string `config:"key_file"`
	// Defaults apply to InternalRPC and HTTPS where they do not say.
	Defaults TLSStanza `config:"defaults"`
	// InternalRPC is the server port (8300): client to server RPC, Raft,
	// and WAN links between servers.
	InternalRPC TLSStanza `config:"internal_rpc"`
	// HTTPS is the HTTPS API on ports.https.
	HTTPS TLSStanza `config:"https"`
}

// TLSStanza is one block of the tls stanza. Unset keys fall back to
// Defaults, then to the top-level keys (ca_file, verify_incoming, ...).
type TLSStanza struct {
	// CAFile is a PEM file of the CA certificates peers must chain to;
	// CAPath a directory of them.
	CAFile string `config:"ca_file"`
	CAPath string `config:"ca_path"`
	// CertFile and KeyFile are this agent's certificate and key, PEM.
	CertFile string `config:"cert_file"`
	KeyFile  string `config:"key_file"`
	// VerifyIncoming refuses peers without a certificate from the CA
	// (plain connections included).
	VerifyIncoming *bool `config:"verify_incoming"`
	// VerifyOutgoing makes the agent dial with TLS and check the peer's
	// certificate against the CA.
	VerifyOutgoing *bool `config:"verify_outgoing"`
	// VerifyServerHostname requires servers to present a certificate for
	// server.<dc>.<domain> (internal_rpc only).
	VerifyServerHostname *bool `config:"verify_server_hostname"`
	// TLSMinVersion is TLSv1_2 (default) or TLSv1_3 (TLSv1_0 and TLSv1_1
	// are refused).
	TLSMinVersion string `config:"tls_min_version"`
	// TLSCipherSuites is a comma-separated list of TLS 1.2 cipher suites
	// by their IANA names; empty means Go's defaults.
	TLSCipherSuites string `config:"tls_cipher_suites"`
}

// TLSSettings is one listener's TLS after the stanza's fallbacks: what the
// agent builds its rpc.TLSConfig from.
type TLSSettings struct {
	CAFile, CAPath, CertFile, KeyFile                    string
	VerifyIncoming, VerifyOutgoing, VerifyServerHostname bool
	MinVersion                                           uint16
	CipherSuites                                         []uint16
}

// Enabled reports whether a certificate is configured, so the listener can
// serve TLS.
func (s TLSSettings) Enabled() bool { return s.CertFile != "" }

// Verifies reports whether a CA is configured to check peers against.
func (s TLSSettings) Verifies() bool { return s.CAFile != "" || s.CAPath != "" }

// InternalRPCTLS is the TLS of the server port: RPC, Raft and WAN links.
func (c *Config) InternalRPCTLS() TLSSettings { return c.tlsFor(c.TLS.InternalRPC) }

// HTTPSTLS is the TLS of the HTTPS API.
func (c *Config) HTTPSTLS() TLSSettings {
	s := c.tlsFor(c.TLS.HTTPS)
	s.VerifyServerHostname = false
	return s
}

// tlsFor resolves stanza over defaults, the older tls keys and the
// top-level keys. Validate has checked the version and suites.
func (c *Config) tlsFor(st TLSStanza) TLSSettings {
	d, t := c.TLS.Defaults, c.TLS
	str := func(vals ...string) string {
		for _, v := range vals {
			if v != "" {
				return v
			}
		}
		return ""
	}
	boolean := func(top bool, vals ...*bool) bool {
		for _, v := range vals {
			if v != nil {
				return *v
			}
		}
		return top
	}
	out := TLSSettings{
		CAFile:               str(st.CAFile, d.CAFile, t.CAFile, c.CAFile),
		CAPath:               str(st.CAPath, d.CAPath, c.CAPath),
		CertFile:             str(st.CertFile, d.CertFile, t.CertFile, c.CertFile),
		KeyFile:              str(st.KeyFile, d.KeyFile, t.KeyFile, c.KeyFile),
		VerifyIncoming:       boolean(c.VerifyIncoming, st.VerifyIncoming, d.VerifyIncoming),
		VerifyOutgoing:       boolean(c.VerifyOutgoing, st.VerifyOutgoing, d.VerifyOutgoing),
		VerifyServerHostname: boolean(c.VerifyServerHostname, st.VerifyServerHostname, d.VerifyServerHostname),
	}
	out.MinVersion, _ = parseTLSVersion(str(st.TLSMinVersion, d.TLSMinVersion, c.TLSMinVersion))
	out.CipherSuites, _ = parseCipherSuites(str(st.TLSCipherSuites, d.TLSCipherSuites, c.TLSCipherSuites))
	return out
}

// parseTLSVersion reads Consul's spelling of a TLS version; "" is TLS 1.2.
func parseTLSVersion(s string) (uint16, error) {
	switch strings.ToLower(s) {
	case "", "tlsv1_2", "tls12":
		return tls.VersionTLS12, nil
	case "tlsv1_3", "tls13":
		return tls.VersionTLS13, nil
	case "tlsv1_0", "tlsv1_1", "tls10", "tls11":
		return 0, fmt.Errorf("%s is no longer safe: use TLSv1_2 or TLSv1_3", s)
	}
	return 0, fmt.Errorf("must be TLSv1_2 or TLSv1_3, got %q", s)
}

// parseCipherSuites reads a comma-separated list of IANA suite names.
func parseCipherSuites(s string) ([]uint16, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	known := map[string]uint16{}
	for _, cs := range tls.CipherSuites() {
		known[cs.Name] = cs.ID
	}
	var out []uint16
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		id, ok := known[name]
		if !ok {
			return nil, fmt.Errorf("unknown or insecure cipher suite %q (use names such as TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)", name)
		}
		out = append(out, id)
	}
	return out, nil
}

// tls checks the TLS keys: files that can be read, certificate and key
// together, a CA where something is verified, versions and suites known.
// Whether the files hold what they should is checked when the agent loads
// them (rpc.NewTLSConfigurator), with the file and the reason.
func (v *validation) tls() {
	c := v.c
	type stanza struct {
		prefix string
		st     TLSStanza
	}
	stanzas := []stanza{
		{"", TLSStanza{CAFile: c.CAFile, CAPath: c.CAPath, CertFile: c.CertFile, KeyFile: c.KeyFile, TLSMinVersion: c.TLSMinVersion, TLSCipherSuites: c.TLSCipherSuites}},
		{"tls.", TLSStanza{CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile}},
		{"tls.defaults.", c.TLS.Defaults},
		{"tls.internal_rpc.", c.TLS.InternalRPC},
		{"tls.https.", c.TLS.HTTPS},
	}
	for _, s := range stanzas {
		for _, f := range []struct{ key, path string }{
			{"ca_file", s.st.CAFile}, {"cert_file", s.st.CertFile}, {"key_file", s.st.KeyFile},
		} {
			if f.path != "" {
				v.readable(s.prefix+f.key, f.path)
			}
		}
		switch {
		case s.st.CertFile != "" && s.st.KeyFile == "":
			v.failf(s.prefix+"cert_file", "needs %skey_file too: set both or neither", s.prefix)
		case s.st.KeyFile != "" && s.st.CertFile == "":
			v.failf(s.prefix+"key_file", "needs %scert_file too: set both or neither", s.prefix)
		}
		if s.st.CAPath != "" {
			v.directory(s.prefix+"ca_path", s.st.CAPath)
		}
		if s.st.TLSMinVersion != "" {
			if _, err := parseTLSVersion(s.st.TLSMinVersion); err != nil {
				v.failf(s.prefix+"tls_min_version", "%w", err)
			}
		}
		if _, err := parseCipherSuites(s.st.TLSCipherSuites); err != nil {
			v.failf(s.prefix+"tls_cipher_suites", "%w", err)
		}
	}
	for _, r := range []struct {
		name string
		s    TLSSettings
	}{{"internal_rpc", c.InternalRPCTLS()}, {"https", c.HTTPSTLS()}} {
		s := r.s
		if (s.VerifyIncoming || s.VerifyOutgoing || s.VerifyServerHostname) && !s.Verifies() {
			v.failf("tls."+r.name, "verify_incoming, verify_outgoing and verify_server_hostname check peers against a CA: set ca_file or ca_path")
		}
		if s.VerifyIncoming && !s.Enabled() {
			v.failf("tls."+r.name, "verify_incoming needs this agent's cert_file and key_file")
		}
	}
	if c.HTTPSTLS().Enabled() || c.Ports.HTTPS <= 0 {
		return
	}
	v.failf("ports.https", "needs a certificate: set tls.https.cert_file and key_file (or tls.defaults)")
}

// directory checks that path is a directory this process can read.
func (v *validation) directory(key, path string) {
	if _, err := os.ReadDir(path); err != nil {
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			err = pe.Err
		}
		v.failf(key, "cannot read directory %q: %w", path, err)
	}
}

// tlsWarnings are the lines about TLS that Warnings logs.
func (c *Config) tlsWarnings() []string {
	if !c.Server || !c.joinsWAN() {
		return nil
	}
	rpcTLS := c.InternalRPCTLS()
	switch {
	case rpcTLS.Enabled() && rpcTLS.Verifies() && rpcTLS.VerifyServerHostname:
		return nil
	case rpcTLS.Enabled() && rpcTLS.Verifies():
		return []string{"WAN links check certificates against the CA but not their names: any certificate of the CA, a client's included, can link as any datacenter's server; set tls.internal_rpc.verify_server_hostname"}
	case c.EncryptKey() != nil:
		return []string{"WAN link certificates are derived from the gossip key: every agent holding the key, clients included, can pose as a server of any datacenter; set tls.defaults.ca_file, cert_file and key_file (meridian tls ca create) and verify_server_hostname"}
	}
	return []string{"WAN links use ephemeral self-signed certificates without tls files or an encrypt key: encrypted, but no server checks who it links to; set tls.defaults.ca_file, cert_file and key_file (meridian tls ca create), or encrypt"}
}
