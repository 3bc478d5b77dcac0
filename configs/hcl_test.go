package configs

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// consulDir is a config dir as a Consul user has it: HCL and JSON, with
// repeated service blocks, checks, node_meta, ports and acl blocks, and keys
// Meridian does not implement.
var consulDir = map[string]string{
	"00-agent.hcl": `
# Consul's primary format
datacenter = "east"
data_dir   = "/var/lib/consul"
node_name  = "web-1"
server     = true
bootstrap_expect = 3
retry_join = ["10.0.0.1", "10.0.0.2"]
log_level  = "DEBUG"

node_meta {
  rack = "r1"
  Zone = "eu-1"
}

ports {
  http = 8501
  grpc = 8502
}
ports {
  dns = 8601
}

addresses {
  http = "0.0.0.0"
}

acl {
  enabled        = true
  default_policy = "deny"
  tokens {
    agent = "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
  }
}

ui_config {
  enabled          = true
  metrics_provider = "prometheus"
}

connect {
  enabled = true
}
disable_update_check = true
`,
	"10-services.hcl": `
service {
  name = "web"
  port = 80
  tags = ["v1", "blue"]
  meta {
    Version = "1.2"
  }
  check {
    http     = "http://localhost/health"
    interval = "10s"
  }
}
service {
  id   = "db-1"
  name = "db"
  port = 5432
  checks = [
    { tcp = "localhost:5432", interval = "5s" },
    { ttl = "30s" },
  ]
}
`,
	"20-more.json": `{
  "services": [{"name": "api", "port": 9000, "enable_tag_override": true}],
  "check": {"id": "mem", "args": ["/bin/true"], "interval": "5s"},
  "enable_local_script_checks": true,
  "node_meta": {"env": "prod"},
  "peering": {"enabled": false},
  "telemetry": {"statsd_address": "127.0.0.1:8125"}
}`,
	"empty.hcl":  "",
	"empty.json": "",
	"empty.yaml": "",
	"README.txt": "not config",
}

// yamlDir is the same configuration in Meridian's YAML, without the
// Consul-only keys.
var yamlDir = map[string]string{
	"agent.yaml": `
datacenter: east
data_dir: /var/lib/consul
node_name: web-1
server: true
bootstrap_expect: 3
retry_join: [10.0.0.1, 10.0.0.2]
log_level: DEBUG
node_meta: {rack: r1, Zone: eu-1, env: prod}
ports: {http: 8501, dns: 8601, grpc: 8502}
addresses: {http: 0.0.0.0}
acl:
  enabled: true
  default_policy: deny
  tokens: {agent: adf4238a-882b-9ddc-4a9d-5b6758e4159e}
ui_config: {enabled: true}
services:
  - name: web
    port: 80
    tags: [v1, blue]
    meta: {Version: "1.2"}
    checks: [{http: "http://localhost/health", interval: 10s}]
  - id: db-1
    name: db
    port: 5432
    checks: [{tcp: "localhost:5432", interval: 5s}, {ttl: 30s}]
  - {name: api, port: 9000, enable_tag_override: true}
checks: [{id: mem, args: [/bin/true], interval: 5s}]
enable_local_script_checks: true
`,
}

// lineWith is the 1-based line of text that holds sub.
func lineWith(t *testing.T, text, sub string) int {
	t.Helper()
	i := strings.Index(text, sub)
	if i < 0 {
		t.Fatalf("%q is not in the test file", sub)
	}
	return 1 + strings.Count(text[:i], "\n")
}

// exported is c without what Load keeps about where keys came from.
func exported(c *Config) Config {
	out := *c
	out.origins, out.notes = nil, nil
	return out
}

func TestLoadConsulHCLAndJSONDirIsTheYAMLConfig(t *testing.T) {
	t.Parallel()
	consul := mustLoad(t, []string{"-config-dir", writeFiles(t, consulDir)}, nil)
	yaml := mustLoad(t, []string{"-config-dir", writeFiles(t, yamlDir)}, nil)
	if got, want := exported(consul), exported(yaml); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(Consul HCL+JSON dir) =\n%+v\nwant the YAML equivalent\n%+v", got, want)
	}
	if got := consul.Services[0].Checks[0].Interval; got != 10*time.Second {
		t.Errorf("services[0].checks[0].interval = %v, want 10s", got)
	}
	warnings := strings.Join(consul.Warnings(), "\n")
	for _, w := range []struct{ file, key, line string }{
		{"00-agent.hcl", "connect", "connect {"},
		{"00-agent.hcl", "disable_update_check", "disable_update_check"},
		{"00-agent.hcl", "ui_config.metrics_provider", "metrics_provider"},
		{"20-more.json", "peering", ""},
		{"20-more.json", "telemetry.statsd_address", ""},
	} {
		at := w.file
		if w.line != "" {
			at += fmt.Sprintf(":%d", lineWith(t, consulDir[w.file], w.line))
		}
		want := at + ": " + w.key + ": a Consul setting Meridian does not implement; it has no effect"
		if !strings.Contains(warnings, want) {
			t.Errorf("Warnings() =\n%s\nwant a line %q", warnings, want)
		}
	}
	if !strings.Contains(warnings, "ports.grpc = 8502: Meridian has no gRPC interface") {
		t.Errorf("Warnings() =\n%s\nwant one for ports.grpc", warnings)
	}
	if !strings.Contains(warnings, "skipped README.txt") {
		t.Errorf("Warnings() =\n%s\nwant one for the skipped README.txt", warnings)
	}
}

func TestLoadHCLFileFlagAndFormat(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"a.hcl":       "dev = true\nnode_name = \"n1\"\n",
		"consul.conf": "{\"datacenter\": \"dc9\"}",
	})
	c := mustLoad(t, []string{"-config-file", dir + "/a.hcl", "-hcl", `datacenter = "dc2"`, "-hcl", `node_meta { k = "v" }`}, nil)
	if c.NodeName != "n1" || c.Datacenter != "dc2" || c.NodeMeta["k"] != "v" {
		t.Errorf("Load(-config-file a.hcl -hcl ...) = node %q dc %q meta %v, want n1, dc2, k=v", c.NodeName, c.Datacenter, c.NodeMeta)
	}
	c = mustLoad(t, []string{"-dev", "-config-format", "json", "-config-file", dir + "/consul.conf"}, nil)
	if c.Datacenter != "dc9" {
		t.Errorf("Load(-config-format json consul.conf) datacenter = %q, want dc9", c.Datacenter)
	}
}

func TestLoadConsulFlags(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, []string{
		"-dev", "-recursor", "8.8.8.8", "-recursor", "1.1.1.1:53", "-domain", "corp.", "-alt-domain", "alt.",
		"-node-meta", "rack:r1", "-node-meta", "empty", "-pid-file", "/run/m.pid",
		"-log-file", "/var/log/m/", "-log-rotate-bytes", "1024", "-log-rotate-duration", "1h", "-log-rotate-max-files", "3",
		"-syslog", "-default-query-time", "30s", "-max-query-time", "2m", "-https-port", "-1", "-grpc-port", "8502",
	}, nil)
	grpc := 8502
	want := struct {
		Recursors                []string
		Domain, AltDomain        string
		NodeMeta                 map[string]string
		PidFile, LogFile         string
		RotBytes, RotMax         int
		RotDur, DefQuery, MaxQry time.Duration
		Syslog                   bool
		HTTPS                    int
		GRPC                     *int
	}{[]string{"8.8.8.8", "1.1.1.1:53"}, "corp.", "alt.", map[string]string{"rack": "r1", "empty": ""},
		"/run/m.pid", "/var/log/m/", 1024, 3, time.Hour, 30 * time.Second, 2 * time.Minute, true, -1, &grpc}
	got := want
	got.Recursors, got.Domain, got.AltDomain, got.NodeMeta = c.Recursors, c.Domain, c.AltDomain, c.NodeMeta
	got.PidFile, got.LogFile, got.RotBytes, got.RotMax = c.PidFile, c.LogFile, c.LogRotateBytes, c.LogRotateMaxFiles
	got.RotDur, got.DefQuery, got.MaxQry = c.LogRotateDuration, c.DefaultQueryTime, c.MaxQueryTime
	got.Syslog, got.HTTPS, got.GRPC = c.EnableSyslog, c.Ports.HTTPS, c.Ports.GRPC
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(Consul's flags) = %+v, want %+v", got, want)
	}
	w := strings.Join(c.Warnings(), "\n")
	for _, s := range []string{"ports.grpc = 8502", "enable_syslog (-syslog)"} {
		if !strings.Contains(w, s) {
			t.Errorf("Warnings() =\n%s\nwant a line with %q", w, s)
		}
	}
}

func TestLoadNodeMetaMergesFilesEnvAndFlags(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"a.hcl": "dev = true\nnode_meta { a = \"1\"\n b = \"1\" }\n", "b.json": `{"node_meta": {"b": "2"}}`})
	c := mustLoad(t, []string{"-config-dir", dir, "-node-meta", "c:3"}, []string{"MERIDIAN_NODE_META=d:4,e:5"})
	want := map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}
	if !reflect.DeepEqual(c.NodeMeta, want) {
		t.Errorf("NodeMeta = %v, want %v", c.NodeMeta, want)
	}
}

func TestLoadBadHCLAndNodeMeta(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 129)
	many := "node_meta {\n"
	for i := range 65 {
		many += "  k" + strings.Repeat("x", i) + " = \"v\"\n"
	}
	many += "}\n"
	tests := []struct {
		name string
		hcl  string
		want []string // each must appear in the one-line error
	}{
		{"syntax error", "dev = true\nports {\n  http = \n}\n", []string{"a.hcl: line 5: invalid HCL: object expected closing RBRACE got: EOF"}},
		{"value missing at the end", "dev = true\ndatacenter = \n", []string{"a.hcl: line 2: invalid HCL: no value after '='"}},
		{"unclosed block", "dev = true\nservice {\n  name = \"web\"\n", []string{"a.hcl: line", "invalid HCL"}},
		{"unknown top-level key", "dev = true\n\nbootstrap_expct = 3\n", []string{`a.hcl:3: bootstrap_expct: unknown key, did you mean "bootstrap_expect"?`}},
		{"key in the wrong block", "dev = true\nports {\n  http = 1\n  datacenter = \"x\"\n}\n", []string{"a.hcl:4: ports.datacenter: unknown key"}},
		{"unknown key in a service", "dev = true\nservice {\n  name = \"a\"\n}\nservice {\n  name = \"b\"\n  prot = 80\n}\n", []string{`a.hcl:7: service[1].prot: unknown key, did you mean "port"?`}},
		{"unknown key in a check", "dev = true\nservice {\n  name = \"a\"\n  check {\n    ttl = \"1s\"\n    intervl = \"1s\"\n  }\n}\n", []string{"a.hcl:6: service[0].check[0].intervl: unknown key"}},
		{"wrong type", "dev = true\nports {\n  http = \"80\"\n}\n", []string{"a.hcl:3: ports.http: must be an integer"}},
		{"bad duration", "dev = true\nretry_interval = 10\n", []string{"a.hcl:2: retry_interval: must be a duration"}},
		{"value set twice", "dev = true\ndatacenter = \"a\"\ndatacenter = \"b\"\n", []string{"a.hcl: line 3: datacenter: set twice (first on line 2)"}},
		{"invalid value names its line", "dev = true\n\nports {\n  http = 70000\n}\n", []string{"a.hcl:4: ports.http: must be 0-65535"}},
		{"node meta key too long", "dev = true\nnode_meta {\n  " + long + " = \"v\"\n}\n", []string{"a.hcl:2: node_meta: key", "longer than 128 characters"}},
		{"node meta value too long", "dev = true\nnode_meta {\n  k = \"" + strings.Repeat("v", 513) + "\"\n}\n", []string{`a.hcl:2: node_meta: value of "k" is longer than 512 characters`}},
		{"node meta bad key", "dev = true\nnode_meta {\n  \"a.b\" = \"v\"\n}\n", []string{`node_meta: key "a.b" may only hold letters, digits, '-' and '_'`}},
		{"node meta reserved prefix", "dev = true\nnode_meta {\n  consul-version = \"9\"\n}\n", []string{`node_meta: key "consul-version": the prefix "consul-" is reserved`}},
		{"node meta too many", "dev = true\n" + many, []string{"a.hcl:2: node_meta: at most 64 key/value pairs, got 65"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, map[string]string{"a.hcl": tc.hcl})
			_, err := Load([]string{"-config-dir", dir}, nil, nil)
			if err == nil {
				t.Fatalf("Load(%q) error = nil, want one", tc.hcl)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("Load(%q) error = %q, want one line", tc.hcl, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Load(%q) error = %q, want it to contain %q", tc.hcl, msg, w)
				}
			}
		})
	}
}

func TestLoadBadConsulFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-dev", "-node-meta", ":v"}, `want key:value, got ":v"`},
		{[]string{"-dev", "-node-meta", "consul-x:1"}, `flag -node-meta: node_meta: key "consul-x"`},
		{[]string{"-dev", "-config-format", "toml"}, `must be hcl, json or yaml, got "toml"`},
		{[]string{"-dev", "-hcl", "ports {"}, "flag -hcl: line 1: invalid HCL"},
		{[]string{"-dev", "-log-rotate-max-files", "-2"}, "log_rotate_max_files: must be -1"},
	} {
		_, err := Load(tc.args, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q) error = %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}

func TestConsulOnlyKeysAreNotConfigKeys(t *testing.T) {
	t.Parallel()
	// A key Meridian implements must not also be listed as Consul-only:
	// the listing would never be reached and would go stale.
	for typ, keys := range consulOnlyKeys {
		for _, k := range keys {
			if _, _, found := matchField(fieldsOf(typ), k); found {
				t.Errorf("consulOnlyKeys[%s] lists %q, which is a key of %s", typ, k, typ)
			}
		}
	}
}
