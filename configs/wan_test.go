package configs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidateTLS(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"ca.pem":   "ca",
		"cert.pem": "cert",
		"key.pem":  "key",
		"sub/":     "",
	})
	p := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name    string
		tls     TLS
		want    []string // lines of the error, in order; none is valid
		notExit bool     // the error matches fs.ErrNotExist
	}{
		{name: "none", tls: TLS{}},
		{name: "all three", tls: TLS{CAFile: p("ca.pem"), CertFile: p("cert.pem"), KeyFile: p("key.pem")}},
		{name: "ca only", tls: TLS{CAFile: p("ca.pem")}},
		{name: "cert and key without ca", tls: TLS{CertFile: p("cert.pem"), KeyFile: p("key.pem")}},
		{name: "key only", tls: TLS{KeyFile: p("key.pem")},
			want: []string{"tls.key_file: needs tls.cert_file too: set both or neither"}},
		{name: "defaults key only", tls: TLS{Defaults: TLSStanza{KeyFile: p("key.pem")}},
			want: []string{"tls.defaults.key_file: needs tls.defaults.cert_file too: set both or neither"}},
		{name: "verify without a ca", tls: TLS{Defaults: TLSStanza{CertFile: p("cert.pem"), KeyFile: p("key.pem"), VerifyOutgoing: ptr(true)}},
			want: []string{
				"tls.internal_rpc: verify_incoming, verify_outgoing and verify_server_hostname check peers against a CA: set ca_file or ca_path",
				"tls.https: verify_incoming, verify_outgoing and verify_server_hostname check peers against a CA: set ca_file or ca_path",
			}},
		{name: "verify_incoming without a cert", tls: TLS{CAFile: p("ca.pem"), InternalRPC: TLSStanza{VerifyIncoming: ptr(true)}},
			want: []string{"tls.internal_rpc: verify_incoming needs this agent's cert_file and key_file"}},
		{name: "old tls version", tls: TLS{HTTPS: TLSStanza{TLSMinVersion: "TLSv1_0"}},
			want: []string{"tls.https.tls_min_version: TLSv1_0 is no longer safe: use TLSv1_2 or TLSv1_3"}},
		{name: "unknown suite", tls: TLS{Defaults: TLSStanza{TLSCipherSuites: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_NOPE"}},
			want: []string{`tls.defaults.tls_cipher_suites: unknown or insecure cipher suite "TLS_NOPE" (use names such as TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)`}},
		{name: "missing file", tls: TLS{CAFile: p("ca.pem"), CertFile: p("cert.pem"), KeyFile: p("nope.pem")},
			want: []string{`tls.key_file: cannot read "` + p("nope.pem") + `": no such file or directory`}, notExit: true},
		{name: "directory", tls: TLS{CAFile: p("sub"), CertFile: p("cert.pem"), KeyFile: p("key.pem")},
			want: []string{`tls.ca_file: cannot read "` + p("sub") + `": is a directory`}},
		{name: "missing and partial", tls: TLS{CertFile: p("nope.pem")},
			want: []string{
				`tls.cert_file: cannot read "` + p("nope.pem") + `": no such file or directory`,
				"tls.cert_file: needs tls.key_file too: set both or neither",
			}, notExit: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			c.TLS = tc.tls
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if want := strings.Join(tc.want, "\n"); got != want {
				t.Errorf("Validate() with %+v = %q, want %q", tc.tls, got, want)
			}
			if tc.notExit && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Validate() with %+v = %v, want it to match fs.ErrNotExist", tc.tls, err)
			}
		})
	}
}

func TestValidateTLSUnreadable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	dir := writeFiles(t, map[string]string{"ca.pem": "ca", "cert.pem": "cert", "key.pem": "key"})
	key := filepath.Join(dir, "key.pem")
	if err := os.Chmod(key, 0o000); err != nil {
		t.Fatal(err)
	}
	c := validConfig()
	c.TLS = TLS{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: key}
	want := `tls.key_file: cannot read "` + key + `": permission denied`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() with an unreadable key = %v, want %q", err, want)
	}
}

// TestLoadTLS sets the TLS files through the environment and a file, so the
// errors name the source.
func TestLoadTLS(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"ca.pem": "ca", "cert.pem": "cert", "key.pem": "key"})
	server := []string{"-server", "-bootstrap-expect", "3", "-data-dir", "/d", "-retry-join-wan", "10.1.0.1"}
	all := []string{
		"MERIDIAN_TLS_CA_FILE=" + filepath.Join(dir, "ca.pem"),
		"MERIDIAN_TLS_CERT_FILE=" + filepath.Join(dir, "cert.pem"),
		"MERIDIAN_TLS_KEY_FILE=" + filepath.Join(dir, "key.pem"),
		"MERIDIAN_TLS_INTERNAL_RPC_VERIFY_SERVER_HOSTNAME=true",
	}
	t.Run("all three", func(t *testing.T) {
		t.Parallel()
		c := mustLoad(t, server, all)
		want := TLS{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
		if got := c.InternalRPCTLS(); !got.VerifyServerHostname || got.CAFile != want.CAFile {
			t.Errorf("Load(%q, %q) InternalRPCTLS() = %+v, want verify_server_hostname and %s", server, all, got, want.CAFile)
		}
		got := c.TLS
		got.InternalRPC = TLSStanza{}
		if got != want {
			t.Errorf("Load(%q, %q) TLS = %+v, want %+v", server, all, got, want)
		}
		if w := c.Warnings(); len(w) != 0 {
			t.Errorf("Load(%q, %q) Warnings() = %q, want none", server, all, w)
		}
	})
	t.Run("from a file, CamelCase", func(t *testing.T) {
		t.Parallel()
		fdir := writeFiles(t, map[string]string{"tls.json": `{"TLS": {"CAFile": "` + filepath.Join(dir, "ca.pem") +
			`", "CertFile": "` + filepath.Join(dir, "cert.pem") + `", "KeyFile": "` + filepath.Join(dir, "key.pem") + `"}}`})
		args := append([]string{"-config-dir", fdir}, server...)
		if c := mustLoad(t, args, nil); !c.InternalRPCTLS().Enabled() || c.TLS.KeyFile != filepath.Join(dir, "key.pem") {
			t.Errorf("Load(%q) TLS = %+v, want the three files", args, c.TLS)
		}
	})
	errTests := []struct {
		name  string
		files map[string]string
		env   []string
		want  []string
	}{
		{name: "partial in env", env: all[1:2],
			want: []string{"env MERIDIAN_TLS_CERT_FILE: tls.cert_file: needs tls.key_file too"}},
		{name: "missing file in env", env: []string{all[0], all[1], "MERIDIAN_TLS_KEY_FILE=" + filepath.Join(dir, "nope.pem")},
			want: []string{`env MERIDIAN_TLS_KEY_FILE: tls.key_file: cannot read "` + filepath.Join(dir, "nope.pem") + `": no such file or directory`}},
		{name: "missing files in a file",
			files: map[string]string{"x.yaml": "tls:\n  ca_file: /nonexistent/ca.pem\n  cert_file: /nonexistent/cert.pem\n"},
			want: []string{
				`x.yaml: tls.ca_file: cannot read "/nonexistent/ca.pem": no such file or directory`,
				`x.yaml: tls.cert_file: cannot read "/nonexistent/cert.pem": no such file or directory`,
				"x.yaml: tls.cert_file: needs tls.key_file too: set both or neither",
			}},
		{name: "unknown tls key", files: map[string]string{"x.yaml": "tls:\n  ca_flie: /ca.pem\n"},
			want: []string{`x.yaml: tls.ca_flie: unknown key, did you mean "ca_file"?`}},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fdir := writeFiles(t, tc.files)
			args := append([]string{"-config-dir", fdir}, server...)
			_, err := Load(args, tc.env, io.Discard)
			if err == nil {
				t.Fatalf("Load(%q, %q) error = nil, want %q", args, tc.env, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%q, %q) error = %q, want it to contain %q", args, tc.env, err, w)
				}
			}
		})
	}
}

func TestLoadWANDefaults(t *testing.T) {
	t.Parallel()
	type wan struct {
		Server                     bool
		StartJoinWAN, RetryJoinWAN []string
		RetryIntervalWAN           time.Duration
		RetryMaxWAN                int
		AdvertiseWAN, Transport    string
		TLS                        TLS
		Federation                 Federation
	}
	def := wan{RetryIntervalWAN: 30 * time.Second, Transport: "quic", Federation: Federation{Timeout: 2 * time.Second, StaleView: true}}
	with := func(f func(*wan)) wan {
		w := def
		f(&w)
		return w
	}
	tests := []struct {
		name string
		args []string
		env  []string
		want wan
	}{
		{name: "client", args: []string{"-data-dir", "/d"}, want: def},
		{name: "server", args: []string{"-data-dir", "/d", "-server", "-bootstrap-expect", "3"},
			want: with(func(w *wan) { w.Server = true })},
		{name: "dev may join the WAN", args: []string{"-dev", "-join-wan", "127.0.0.2", "-retry-join-wan", "127.0.0.3:8302"},
			want: with(func(w *wan) {
				w.Server, w.StartJoinWAN, w.RetryJoinWAN = true, []string{"127.0.0.2"}, []string{"127.0.0.3:8302"}
			})},
		{name: "advertise is the WAN default", args: []string{"-dev", "-advertise", "10.0.0.5"},
			want: with(func(w *wan) { w.Server, w.AdvertiseWAN = true, "10.0.0.5" })},
		{name: "advertise-wan wins", args: []string{"-dev", "-advertise", "10.0.0.5", "-advertise-wan", "203.0.113.5"},
			want: with(func(w *wan) { w.Server, w.AdvertiseWAN = true, "203.0.113.5" })},
		{name: "every flag", args: []string{"-data-dir", "/d", "-server", "-bootstrap-expect", "3", "-join-wan", "a", "-retry-join-wan", "b",
			"-retry-interval-wan", "5s", "-retry-max-wan", "4", "-advertise-wan", "203.0.113.5", "-wan-transport", "tcp"},
			want: with(func(w *wan) {
				w.Server, w.StartJoinWAN, w.RetryJoinWAN, w.RetryIntervalWAN, w.RetryMaxWAN = true, []string{"a"}, []string{"b"}, 5*time.Second, 4
				w.AdvertiseWAN, w.Transport = "203.0.113.5", "tcp"
			})},
		{name: "transport is lower-cased", args: []string{"-dev", "-wan-transport", "QUIC"},
			want: with(func(w *wan) { w.Server = true })},
		{name: "federation from env", args: []string{"-dev"}, env: []string{"MERIDIAN_FEDERATION_TIMEOUT=500ms", "MERIDIAN_FEDERATION_STALE_VIEW=false"},
			want: with(func(w *wan) { w.Server, w.Federation = true, Federation{Timeout: 500 * time.Millisecond} })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tc.args, tc.env)
			got := wan{
				Server: c.Server, StartJoinWAN: c.StartJoinWAN, RetryJoinWAN: c.RetryJoinWAN,
				RetryIntervalWAN: c.RetryIntervalWAN, RetryMaxWAN: c.RetryMaxWAN,
				AdvertiseWAN: c.AdvertiseWAN(), Transport: c.WANTransport, TLS: c.TLS, Federation: c.Federation,
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Load(%q, %q) = %+v, want %+v", tc.args, tc.env, got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestLoadFederationLinks: federation.links reads the same from YAML, JSON
// and HCL (a spoke of hub dc1), and is empty (learned) by default.
func TestLoadFederationLinks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"default", map[string]string{"a.yaml": "dev: true\n"}, nil},
		{"yaml", map[string]string{"a.yaml": "dev: true\ndatacenter: dc2\nfederation: { links: [dc1] }\n"}, []string{"dc1"}},
		{"json", map[string]string{"a.json": `{"dev": true, "datacenter": "dc2", "federation": {"links": ["dc1", "dc3"]}}`}, []string{"dc1", "dc3"}},
		{"hcl", map[string]string{"a.hcl": "dev = true\ndatacenter = \"dc2\"\nfederation {\n  links = [\"dc1\"]\n}\n"}, []string{"dc1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tc.files)
			c := mustLoad(t, []string{"-config-dir", dir}, nil)
			if !reflect.DeepEqual(c.Federation.Links, tc.want) {
				t.Errorf("federation.links = %q, want %q", c.Federation.Links, tc.want)
			}
		})
	}
}
