package configs

import (
	"crypto/tls"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestTLSStanza loads Consul's tls stanza (JSON and YAML) and the older
// top-level keys, and checks what each listener gets: the specific block
// over defaults over the top-level keys, https.verify_incoming = false
// overriding defaults.
func TestTLSStanza(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"ca.pem": "ca", "cert.pem": "cert", "key.pem": "key", "other.pem": "o", "cas/": ""})
	p := func(n string) string { return filepath.Join(dir, n) }
	base := []string{"-server", "-bootstrap-expect", "3", "-data-dir", "/d"}
	tests := []struct {
		name       string
		file       string
		body       string
		rpc, https TLSSettings
	}{
		{name: "consul stanza", file: "tls.json", body: `{
  "ports": {"https": 8501},
  "tls": {
    "defaults": {
      "ca_file": "` + p("ca.pem") + `",
      "cert_file": "` + p("cert.pem") + `",
      "key_file": "` + p("key.pem") + `",
      "verify_incoming": true,
      "verify_outgoing": true,
      "tls_min_version": "TLSv1_3"
    },
    "internal_rpc": {"verify_server_hostname": true},
    "https": {"verify_incoming": false, "cert_file": "` + p("other.pem") + `", "key_file": "` + p("key.pem") + `"}
  }
}`,
			rpc: TLSSettings{CAFile: p("ca.pem"), CertFile: p("cert.pem"), KeyFile: p("key.pem"),
				VerifyIncoming: true, VerifyOutgoing: true, VerifyServerHostname: true, MinVersion: tls.VersionTLS13},
			https: TLSSettings{CAFile: p("ca.pem"), CertFile: p("other.pem"), KeyFile: p("key.pem"),
				VerifyOutgoing: true, MinVersion: tls.VersionTLS13}},
		{name: "top-level keys", file: "tls.json", body: `{"ca_path": "` + p("cas") + `", "cert_file": "` + p("cert.pem") + `", "key_file": "` + p("key.pem") +
			`", "verify_incoming": true, "verify_outgoing": true, "verify_server_hostname": true, "tls_cipher_suites": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}`,
			rpc: TLSSettings{CAPath: p("cas"), CertFile: p("cert.pem"), KeyFile: p("key.pem"), VerifyIncoming: true, VerifyOutgoing: true,
				VerifyServerHostname: true, MinVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
			https: TLSSettings{CAPath: p("cas"), CertFile: p("cert.pem"), KeyFile: p("key.pem"), VerifyIncoming: true, VerifyOutgoing: true,
				MinVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}},
		{name: "yaml defaults over top level", file: "tls.yaml", body: "verify_outgoing: true\nca_file: " + p("other.pem") +
			"\ntls:\n  defaults:\n    ca_file: " + p("ca.pem") + "\n    verify_outgoing: false\n",
			rpc:   TLSSettings{CAFile: p("ca.pem"), MinVersion: tls.VersionTLS12},
			https: TLSSettings{CAFile: p("ca.pem"), MinVersion: tls.VersionTLS12}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fdir := writeFiles(t, map[string]string{tc.file: tc.body})
			args := append([]string{"-config-dir", fdir}, base...)
			c := mustLoad(t, args, nil)
			if got := c.InternalRPCTLS(); !reflect.DeepEqual(got, tc.rpc) {
				t.Errorf("InternalRPCTLS() = %+v, want %+v", got, tc.rpc)
			}
			if got := c.HTTPSTLS(); !reflect.DeepEqual(got, tc.https) {
				t.Errorf("HTTPSTLS() = %+v, want %+v", got, tc.https)
			}
		})
	}
}

// TestTLSStanzaErrors: bad TLS settings are refused at load with the file,
// key and reason.
func TestTLSStanzaErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"https without a cert", "ports:\n  https: 8501\n", "x.yaml: ports.https: needs a certificate: set tls.https.cert_file and key_file (or tls.defaults)"},
		{"http and https off", "ports:\n  http: -1\n", "x.yaml: ports.http: -1 turns HTTP off, and HTTPS is off too"},
		{"verify_incoming as a string", "tls:\n  defaults:\n    verify_incoming: yes please\n", `x.yaml: tls.defaults.verify_incoming: must be true or false, got "yes please"`},
		{"missing ca_path", "tls:\n  defaults:\n    ca_path: /nonexistent\n", `x.yaml: tls.defaults.ca_path: cannot read directory "/nonexistent": no such file or directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fdir := writeFiles(t, map[string]string{"x.yaml": "data_dir: /d\n" + tc.body})
			_, err := Load([]string{"-config-dir", fdir}, nil, nil)
			if err == nil || !contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestEncryptVerify: encrypt_verify_incoming and encrypt_verify_outgoing
// default to true and can be turned off for a rolling upgrade.
func TestEncryptVerify(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, []string{"-dev"}, nil)
	if !c.EncryptVerifyIncoming || !c.EncryptVerifyOutgoing {
		t.Fatalf("defaults: encrypt_verify_incoming %v, encrypt_verify_outgoing %v; want both true", c.EncryptVerifyIncoming, c.EncryptVerifyOutgoing)
	}
	fdir := writeFiles(t, map[string]string{"x.yaml": "encrypt_verify_incoming: false\nencrypt_verify_outgoing: false\n"})
	c = mustLoad(t, []string{"-dev", "-config-dir", fdir}, nil)
	if c.EncryptVerifyIncoming || c.EncryptVerifyOutgoing {
		t.Fatalf("encrypt_verify_* false in a file: %v, %v", c.EncryptVerifyIncoming, c.EncryptVerifyOutgoing)
	}
}
