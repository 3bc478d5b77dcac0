package configs

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		args  []string // $DIR is the directory holding files
		env   []string
		want  []string // substrings of the error
		not   string   // a substring the error must not hold
	}{
		// flags
		{name: "unknown flag", args: []string{"-bogus"},
			want: []string{"flag provided but not defined: -bogus", "(see meridian agent -h)"}},
		{name: "stray argument", args: []string{"-dev", "extra"},
			want: []string{`unexpected argument "extra"`, "see meridian agent -h"}},
		{name: "bad int flag", args: []string{"-dev", "-http-port", "abc"},
			want: []string{`invalid value "abc" for flag -http-port`, "must be an integer"}},
		{name: "bad duration flag", args: []string{"-dev", "-retry-interval", "soon"},
			want: []string{`invalid value "soon" for flag -retry-interval`, "must be a duration"}},
		{name: "port out of range by flag", args: []string{"-dev", "-http-port", "70000"},
			want: []string{"flag -http-port: ports.http: must be 0-65535", "got 70000"}},
		{name: "negative port by flag", args: []string{"-dev", "-serf-lan-port=-1"},
			want: []string{"flag -serf-lan-port: ports.serf_lan: must be 0-65535", "got -1"}},

		// environment
		{name: "bad int env", args: []string{"-dev"}, env: []string{"MERIDIAN_PORTS_HTTP=abc"},
			want: []string{"env MERIDIAN_PORTS_HTTP: ports.http: must be an integer"}},
		{name: "bad bool env", args: []string{"-dev"}, env: []string{"MERIDIAN_SERVER=yes please"},
			want: []string{"env MERIDIAN_SERVER: server: must be true or false"}},

		// files and dirs
		{name: "unreadable file", args: []string{"-config-file", "$DIR/missing.yaml"},
			want: []string{"read config file", "missing.yaml", "no such file"}},
		{name: "directory as file", files: map[string]string{"d.yaml/": ""}, args: []string{"-config-file", "$DIR/d.yaml"},
			want: []string{"read config file", "d.yaml", "is a directory"}},
		{name: "config dir that does not exist", args: []string{"-config-dir", "$DIR/nope"},
			want: []string{"config dir", "nope", "no such file"}},
		{name: "config dir that is a file", files: map[string]string{"f.yaml": "ui: true\n"}, args: []string{"-config-dir", "$DIR/f.yaml"},
			want: []string{"config dir", "f.yaml", "not a directory"}},
		{name: "config file with other extension", files: map[string]string{"a.conf": ""}, args: []string{"-config-file", "$DIR/a.conf"},
			want: []string{"a.conf", "must end in .hcl, .json, .yaml or .yml (or set -config-format)"}},
		{name: "malformed YAML", files: map[string]string{"a.yaml": "data_dir: /d\nui: true\nports: http: 1\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"a.yaml: invalid YAML: line 3: mapping values are not allowed"}},
		{name: "duplicate YAML key", files: map[string]string{"a.yaml": "data_dir: /d\nui: true\nui: false\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`a.yaml: invalid YAML: unmarshal errors: line 3: mapping key "ui" already defined at line 2`}},
		{name: "malformed YAML tab", files: map[string]string{"a.yaml": "data_dir: /d\n\tui: true\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"a.yaml: invalid YAML: line 2"}},
		{name: "YAML that is a list", files: map[string]string{"a.yaml": "- ui\n- server\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"a.yaml: invalid YAML: unmarshal errors: line 1"}},
		{name: "malformed JSON", files: map[string]string{"b.json": "{\n  \"data_dir\": \"/d\",\n  \"ui\": true,\n}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"b.json: line 4: invalid JSON"}},
		{name: "truncated JSON", files: map[string]string{"b.json": "{\n  \"data_dir\": \"/d\",\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"b.json: line 3: invalid JSON"}},
		{name: "JSON that is a list", files: map[string]string{"b.json": "\n[1, 2]"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"b.json: line 2: invalid JSON"}},

		// keys
		{name: "unknown key with suggestion", files: map[string]string{"y.yaml": "data_dir: /d\nserver: true\nbootstrap_expct: 3\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`y.yaml: bootstrap_expct: unknown key, did you mean "bootstrap_expect"?`}},
		{name: "unknown CamelCase key with suggestion", files: map[string]string{"y.json": `{"DataDri": "/d"}`},
			args: []string{"-config-dir", "$DIR"}, want: []string{`y.json: DataDri: unknown key, did you mean "data_dir"?`}},
		{name: "unknown nested key with suggestion", files: map[string]string{"y.yaml": "data_dir: /d\nports: {htpp: 1}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`y.yaml: ports.htpp: unknown key, did you mean "http"?`}},
		{name: "unknown key in a check", files: map[string]string{"y.yaml": "data_dir: /d\nservice: {name: w, check: {ttl: 1s, intreval: 1s}}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`y.yaml: service.check.intreval: unknown key, did you mean "interval"?`}},
		{name: "unknown key far from any", files: map[string]string{"y.yaml": "data_dir: /d\nfrobnicate: 1\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`y.yaml: frobnicate: unknown key`}, not: "did you mean"},
		{name: "every unknown key at once", files: map[string]string{"y.yaml": "datacentr: a\nnode_nme: b\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"datacentr: unknown key", "node_nme: unknown key"}},
		{name: "key set twice in one mapping", files: map[string]string{"y.yaml": "data_dir: /d\ncheck: {ttl: 1s, service_id: a, ServiceID: b}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`y.yaml: check.service_id: set twice, also as "ServiceID"`}},

		// values
		{name: "port out of range in file", files: map[string]string{"x.yaml": "data_dir: /d\nports:\n  http: 70000\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"x.yaml: ports.http: must be 0-65535 (0 picks a free port) or -1 (off), got 70000"}},
		{name: "port as string", files: map[string]string{"x.yaml": "data_dir: /d\nports: {http: eighty}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: ports.http: must be an integer, got "eighty"`}},
		{name: "fractional port in JSON", files: map[string]string{"x.json": `{"data_dir": "/d", "ports": {"dns": 53.5}}`},
			args: []string{"-config-dir", "$DIR"}, want: []string{"x.json: ports.dns: must be an integer, got 53.5"}},
		{name: "bad duration", files: map[string]string{"x.yaml": "data_dir: /d\nretry_interval: 10 minutes\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: retry_interval: must be a duration such as "10s", got "10 minutes"`}},
		{name: "duration as a number", files: map[string]string{"x.yaml": "data_dir: /d\nreconnect_timeout: 10\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: reconnect_timeout: must be a duration such as "10s", got 10`}},
		{name: "negative duration", files: map[string]string{"x.yaml": "data_dir: /d\nreconnect_timeout: -1h\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"x.yaml: reconnect_timeout: must be positive, got -1h0m0s"}},
		{name: "bool as string", files: map[string]string{"x.yaml": "data_dir: /d\nserver: \"yes\"\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: server: must be true or false, got "yes"`}},
		{name: "list as scalar", files: map[string]string{"x.yaml": "data_dir: /d\nretry_join: 10.0.0.1\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: retry_join: must be a list, got "10.0.0.1"`}},
		{name: "bad encrypt key", files: map[string]string{"x.yaml": "data_dir: /d\nencrypt: not*base64\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"x.yaml: encrypt: must be base64"}, not: "not*base64"},
		{name: "encrypt key of the wrong size", args: []string{"-dev", "-encrypt", "MDEyMzQ1Njc4OQ=="},
			want: []string{"flag -encrypt: encrypt: must decode to 16, 24 or 32 bytes, got 10"}, not: "MDEyMzQ1Njc4OQ=="},
		{name: "datacenter with capitals", args: []string{"-dev", "-datacenter", "DC1"},
			want: []string{`flag -datacenter: datacenter: must be lowercase letters, digits, '-' and '_', got "DC1"`}},
		{name: "bind to a hostname", args: []string{"-dev", "-bind", "localhost"},
			want: []string{`flag -bind: bind_addr: must be an IP address (not a hostname), got "localhost"`}},
		{name: "advertise unspecified", args: []string{"-dev", "-advertise", "0.0.0.0"},
			want: []string{"flag -advertise: advertise_addr: must be an address others can reach"}},
		{name: "node id not a UUID", args: []string{"-dev", "-node-id", "1234"},
			want: []string{`flag -node-id: node_id: must be a UUID`}},
		{name: "bad log level", env: []string{"MERIDIAN_LOG_LEVEL=loud"}, args: []string{"-dev"},
			want: []string{`env MERIDIAN_LOG_LEVEL: log_level: must be trace, debug, info, warn or error, got "loud"`}},
		{name: "raft multiplier too big", files: map[string]string{"x.yaml": "data_dir: /d\nperformance:\n  raft_multiplier: 11\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"x.yaml: performance.raft_multiplier: must be 1-10, got 11"}},

		// rules between keys
		{name: "bootstrap with bootstrap_expect", args: []string{"-data-dir", "/d", "-server", "-bootstrap", "-bootstrap-expect", "3"},
			want: []string{"flag -bootstrap-expect: bootstrap_expect: cannot be set together with bootstrap"}},
		{name: "bootstrap_expect zero", args: []string{"-data-dir", "/d", "-server", "-bootstrap-expect", "0"},
			want: []string{"flag -bootstrap-expect: bootstrap_expect: must be at least 1, got 0"}},
		{name: "bootstrap_expect without server", files: map[string]string{"x.yaml": "data_dir: /d\nbootstrap_expect: 3\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"x.yaml: bootstrap_expect: needs server mode"}},
		{name: "bootstrap without server", args: []string{"-data-dir", "/d", "-bootstrap"},
			want: []string{"flag -bootstrap: bootstrap: needs server mode"}},
		{name: "data_dir missing", args: []string{"-server", "-bootstrap-expect", "3"},
			want: []string{"data_dir: required unless dev mode"}},

		// WAN federation
		{name: "start_join_wan on a client", files: map[string]string{"x.yaml": "data_dir: /d\nstart_join_wan: [10.1.0.1]\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"x.yaml: start_join_wan: only servers join the WAN pool; set server: true"}},
		{name: "retry_join_wan on a client by flag", args: []string{"-data-dir", "/d", "-retry-join-wan", "10.1.0.1"},
			want: []string{"flag -retry-join-wan: retry_join_wan: only servers join the WAN pool; set server: true"}},
		{name: "retry_join_wan on a client by env", args: []string{"-data-dir", "/d"}, env: []string{"MERIDIAN_RETRY_JOIN_WAN=10.1.0.1,10.1.0.2"},
			want: []string{"env MERIDIAN_RETRY_JOIN_WAN: retry_join_wan: only servers join the WAN pool; set server: true"}},
		{name: "start_join_wan on a client by flag", args: []string{"-data-dir", "/d", "-join-wan", "10.1.0.1", "-server=false"},
			want: []string{"flag -join-wan: start_join_wan: only servers join the WAN pool"}},
		{name: "empty WAN join address in a later file", files: map[string]string{
			"a.yaml": "data_dir: /d\nserver: true\nbootstrap_expect: 3\nretry_join_wan: [10.1.0.1, 10.1.0.2]\n",
			"b.yaml": "retry_join_wan: [\"\"]\n",
		}, args: []string{"-config-dir", "$DIR"}, want: []string{"b.yaml: retry_join_wan[0]: must not be empty"}},
		{name: "empty start_join_wan address by flag", args: []string{"-dev", "-join-wan", ""},
			want: []string{"flag -join-wan: start_join_wan[0]: must not be empty"}},
		{name: "wan_transport by flag", args: []string{"-dev", "-wan-transport", "udp"},
			want: []string{`flag -wan-transport: wan_transport: must be quic or tcp, got "udp"`}},
		{name: "wan_transport in a file", files: map[string]string{"x.yaml": "dev: true\nwan_transport: websocket\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: wan_transport: must be quic or tcp, got "websocket"`}},
		{name: "zero retry_interval_wan", args: []string{"-dev", "-retry-interval-wan", "0s"},
			want: []string{"flag -retry-interval-wan: retry_interval_wan: must be positive, got 0s"}},
		{name: "bad retry_interval_wan", args: []string{"-dev", "-retry-interval-wan", "later"},
			want: []string{`invalid value "later" for flag -retry-interval-wan`, "must be a duration"}},
		{name: "negative retry_max_wan", args: []string{"-dev", "-retry-max-wan=-2"},
			want: []string{"flag -retry-max-wan: retry_max_wan: must not be negative, got -2"}},
		{name: "advertise-wan hostname", env: []string{"MERIDIAN_ADVERTISE_ADDR_WAN=wan.example.com"}, args: []string{"-dev"},
			want: []string{`env MERIDIAN_ADVERTISE_ADDR_WAN: advertise_addr_wan: must be an IP address (not a hostname), got "wan.example.com"`}},
		{name: "advertise-wan unspecified", args: []string{"-dev", "-advertise-wan", "0.0.0.0"},
			want: []string{"flag -advertise-wan: advertise_addr_wan: must be an address others can reach, not 0.0.0.0"}},
		{name: "zero federation timeout", files: map[string]string{"x.yaml": "dev: true\nfederation:\n  timeout: 0s\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"x.yaml: federation.timeout: must be positive, got 0s"}},
		{name: "federation stale_view not a bool", files: map[string]string{"x.yaml": "dev: true\nfederation: {stale_view: sometimes}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: federation.stale_view: must be true or false, got "sometimes"`}},
		{name: "federation link to the local datacenter", files: map[string]string{"x.yaml": "dev: true\ndatacenter: dc2\nfederation: {links: [dc1, dc2]}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: federation.links: "dc2" is this agent's own datacenter, which is always linked; remove it`}},
		{name: "federation link twice", files: map[string]string{"x.yaml": "dev: true\nfederation: {links: [dc2, dc3, dc2]}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: federation.links: "dc2" is named twice; name each datacenter once`}},
		{name: "federation link not a datacenter name", files: map[string]string{"x.yaml": "dev: true\nfederation: {links: [\"10.0.0.1:8302\"]}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: federation.links: must be datacenter names (lowercase letters, digits, '-' and '_'), got "10.0.0.1:8302"`}},
		{name: "federation links on a client", files: map[string]string{"x.yaml": "data_dir: /d\nfederation: {links: [dc2]}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: federation.links: only servers join the WAN pool; set server: true`}},
		{name: "unknown WAN key with suggestion", files: map[string]string{"x.yaml": "dev: true\nretry_join_wna: [a]\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: retry_join_wna: unknown key, did you mean "retry_join_wan"?`}},
		{name: "unknown federation key with suggestion", files: map[string]string{"x.yaml": "dev: true\nfederation: {timout: 1s}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{`x.yaml: federation.timout: unknown key, did you mean "timeout"?`}},
		{name: "partial tls in a file", files: map[string]string{"x.yaml": "dev: true\ntls: {key_file: /nonexistent/key.pem}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{
				`x.yaml: tls.key_file: cannot read "/nonexistent/key.pem": no such file or directory`,
				"x.yaml: tls.key_file: needs tls.cert_file too: set both or neither",
			}},

		// definitions
		{name: "check without interval", files: map[string]string{"s.yaml": `
data_dir: /d
services:
  - name: db
  - name: web
    checks:
      - http: http://127.0.0.1:8080/health
`}, args: []string{"-config-dir", "$DIR"}, want: []string{"s.yaml: services[1].checks[0].interval: required for an http check"}},
		{name: "check without interval in later file", files: map[string]string{
			"a.yaml": "data_dir: /d\nservices: [{name: a}, {name: b}]\n",
			"b.yaml": "service:\n  name: web\n  check: {tcp: \"localhost:80\"}\n",
		}, args: []string{"-config-dir", "$DIR"}, want: []string{"b.yaml: service.check.interval: required for a tcp check"}},
		{name: "top-level check without interval", files: map[string]string{"c.json": `{"data_dir": "/d", "enable_local_script_checks": true, "checks": [{"ttl": "1s"}, {"Args": ["/bin/true"]}]}`},
			args: []string{"-config-dir", "$DIR"}, want: []string{"c.json: checks[1].interval: required for a script (args) check"}},
		{name: "check of two kinds", files: map[string]string{"c.yaml": "data_dir: /d\ncheck: {tcp: \"a:1\", ttl: 5s, interval: 1s}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"c.yaml: check: has tcp and ttl: a check is exactly one of http, tcp, ttl or args"}},
		{name: "check of no kind", files: map[string]string{"c.yaml": "data_dir: /d\ncheck: {name: x}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"c.yaml: check: needs one of http, tcp, ttl or args"}},
		{name: "script check not enabled", files: map[string]string{"c.yaml": "data_dir: /d\ncheck: {args: [/bin/true], interval: 5s}\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"c.yaml: check.args: script checks need enable_script_checks or enable_local_script_checks"}},
		{name: "service without name", files: map[string]string{"s.yaml": "data_dir: /d\nservices: [{name: a}, {port: 80}]\n"},
			args: []string{"-config-dir", "$DIR"}, want: []string{"s.yaml: services[1].name: required"}},
		{name: "duplicate service id across files", files: map[string]string{
			"a.yaml": "data_dir: /d\nservice: {name: web}\n",
			"b.yaml": "services: [{name: web}]\n",
		}, args: []string{"-config-dir", "$DIR"}, want: []string{`b.yaml: services[0].id: service id "web" is already used by`, `a.yaml: service`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tc.files)
			args := expandDir(tc.args, dir)
			var stderr strings.Builder
			c, err := Load(args, tc.env, &stderr)
			if err == nil {
				t.Fatalf("Load(%q, %q) = %+v, nil; want an error", args, tc.env, c)
			}
			if c != nil {
				t.Errorf("Load(%q, %q) config = %+v, want nil with an error", args, tc.env, c)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Load(%q, %q) error = %q, want it to contain %q", args, tc.env, msg, w)
				}
			}
			if tc.not != "" && strings.Contains(msg, tc.not) {
				t.Errorf("Load(%q, %q) error = %q, want it not to contain %q", args, tc.env, msg, tc.not)
			}
			if stderr.Len() != 0 {
				t.Errorf("Load(%q, %q) wrote %q to stderr, want nothing", args, tc.env, stderr.String())
			}
		})
	}
}

func TestLoadErrorIsFieldError(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"x.yaml": "data_dir: /d\nports: {dns: 99999}\n"})
	args := []string{"-config-dir", dir}
	_, err := Load(args, nil, io.Discard)
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("Load(%q) error = %v, want a *FieldError", args, err)
	}
	if want := dir + "/x.yaml"; fe.Source != want || fe.Key != "ports.dns" {
		t.Errorf("Load(%q) FieldError = {Source: %q, Key: %q}, want {%q, %q}", args, fe.Source, fe.Key, want, "ports.dns")
	}
}

func TestLoadHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "-help", "--help", "--h"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			var stderr strings.Builder
			c, err := Load([]string{"-server", arg}, nil, &stderr)
			if !errors.Is(err, flag.ErrHelp) || c != nil {
				t.Fatalf("Load(%q) = %v, %v, want nil, flag.ErrHelp", arg, c, err)
			}
			usage := stderr.String()
			for _, s := range flagSpecs() {
				if n := strings.Count(usage, "\n  -"+s.name+" "); n != 1 {
					t.Errorf("Load(%q) usage has %d lines for -%s, want 1:\n%s", arg, n, s.name, usage)
				}
			}
			for _, w := range []string{"Usage: meridian agent", "Joining the cluster:", "WAN federation (servers only):", "-wan-transport quic|tcp", "(default quic)", "-http-port port", "(default 8500)", "(default 30s)", "(default dc1)"} {
				if !strings.Contains(usage, w) {
					t.Errorf("Load(%q) usage lacks %q:\n%s", arg, w, usage)
				}
			}
		})
	}
}

func TestLoadFlagSpellings(t *testing.T) {
	t.Parallel()
	tests := [][]string{
		{"-server", "-bootstrap-expect", "3", "-data-dir", "/d"},
		{"--server", "--bootstrap-expect=3", "--data-dir=/d"},
		{"-server=true", "-bootstrap-expect=3", "-data-dir", "/d"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, args, nil)
			if !c.Server || c.BootstrapExpect != 3 || c.DataDir != "/d" {
				t.Errorf("Load(%q) = server %v, bootstrap_expect %d, data_dir %q, want true, 3, %q", args, c.Server, c.BootstrapExpect, c.DataDir, "/d")
			}
		})
	}
}

func TestFlagSpecsMatchConfig(t *testing.T) {
	t.Parallel()
	fl, err := newAgentFlags()
	if err != nil {
		t.Fatalf("newAgentFlags() error = %v", err)
	}
	seen := make(map[string]bool)
	for _, s := range fl.specs {
		if seen[s.name] {
			t.Errorf("flagSpecs() has -%s twice", s.name)
		}
		seen[s.name] = true
	}
}
