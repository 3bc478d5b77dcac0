package configs

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	host := hostname(t)
	keys := []struct {
		key      string
		fileLine string // sets the key in the file
		env      string
		flag     []string
		get      func(*Config) any
		def      any
		file     any
		envVal   any
		flagVal  any
	}{
		{
			key: "datacenter", fileLine: "datacenter: file-dc", env: "MERIDIAN_DATACENTER=env-dc", flag: []string{"-datacenter", "flag-dc"},
			get: func(c *Config) any { return c.Datacenter }, def: "dc1", file: "file-dc", envVal: "env-dc", flagVal: "flag-dc",
		},
		{
			key: "node_name", fileLine: "node_name: file-node", env: "MERIDIAN_NODE_NAME=env-node", flag: []string{"-node=flag-node"},
			get: func(c *Config) any { return c.NodeName }, def: host, file: "file-node", envVal: "env-node", flagVal: "flag-node",
		},
		{
			key: "ports.http", fileLine: "ports: {http: 1001}", env: "MERIDIAN_PORTS_HTTP=1002", flag: []string{"--http-port", "1003"},
			get: func(c *Config) any { return c.Ports.HTTP }, def: 8500, file: 1001, envVal: 1002, flagVal: 1003,
		},
		{
			key: "retry_interval", fileLine: "retry_interval: 1m", env: "MERIDIAN_RETRY_INTERVAL=2m", flag: []string{"-retry-interval", "3m"},
			get: func(c *Config) any { return c.RetryInterval }, def: 30 * time.Second, file: time.Minute, envVal: 2 * time.Minute, flagVal: 3 * time.Minute,
		},
		{
			key: "log_level", fileLine: "log_level: debug", env: "MERIDIAN_LOG_LEVEL=WARN", flag: []string{"-log-level", "error"},
			get: func(c *Config) any { return c.LogLevel }, def: "info", file: "debug", envVal: "warn", flagVal: "error",
		},
		{
			key: "ui", fileLine: "ui: true", env: "MERIDIAN_UI=false", flag: []string{"-ui"},
			get: func(c *Config) any { return c.UI }, def: false, file: true, envVal: false, flagVal: true,
		},
		{
			key: "retry_interval_wan", fileLine: "retry_interval_wan: 1m", env: "MERIDIAN_RETRY_INTERVAL_WAN=2m", flag: []string{"-retry-interval-wan", "3m"},
			get: func(c *Config) any { return c.RetryIntervalWAN }, def: 30 * time.Second, file: time.Minute, envVal: 2 * time.Minute, flagVal: 3 * time.Minute,
		},
		{
			key: "wan_transport", fileLine: "wan_transport: tcp", env: "MERIDIAN_WAN_TRANSPORT=QUIC", flag: []string{"-wan-transport=tcp"},
			get: func(c *Config) any { return c.WANTransport }, def: "quic", file: "tcp", envVal: "quic", flagVal: "tcp",
		},
		{
			key: "advertise_addr_wan", fileLine: "advertise_addr_wan: 203.0.113.1", env: "MERIDIAN_ADVERTISE_ADDR_WAN=203.0.113.2", flag: []string{"-advertise-wan", "203.0.113.3"},
			get: func(c *Config) any { return c.AdvertiseAddrWAN }, def: "", file: "203.0.113.1", envVal: "203.0.113.2", flagVal: "203.0.113.3",
		},
		{
			key: "federation.timeout", fileLine: "federation: {timeout: 5s}", env: "MERIDIAN_FEDERATION_TIMEOUT=6s", flag: nil,
			get: func(c *Config) any { return c.Federation.Timeout }, def: 2 * time.Second, file: 5 * time.Second, envVal: 6 * time.Second, flagVal: 6 * time.Second,
		},
		{
			key: "federation.stale_view", fileLine: "federation: {stale_view: false}", env: "MERIDIAN_FEDERATION_STALE_VIEW=true", flag: nil,
			get: func(c *Config) any { return c.Federation.StaleView }, def: true, file: false, envVal: true, flagVal: true,
		},
		{
			key: "performance.raft_multiplier", fileLine: "performance: {raft_multiplier: 5}", env: "MERIDIAN_PERFORMANCE_RAFT_MULTIPLIER=6", flag: nil,
			get: func(c *Config) any { return c.Performance.RaftMultiplier }, def: 1, file: 5, envVal: 6, flagVal: 6,
		},
		{
			key: "raft_snapshot_threshold", fileLine: "raft_snapshot_threshold: 1000", env: "MERIDIAN_RAFT_SNAPSHOT_THRESHOLD=2000", flag: nil,
			get: func(c *Config) any { return c.RaftSnapshotThreshold }, def: 16384, file: 1000, envVal: 2000, flagVal: 2000,
		},
		{
			key: "raft_snapshot_interval", fileLine: "raft_snapshot_interval: 30s", env: "MERIDIAN_RAFT_SNAPSHOT_INTERVAL=1m", flag: nil,
			get: func(c *Config) any { return c.RaftSnapshotInterval }, def: 120 * time.Second, file: 30 * time.Second, envVal: time.Minute, flagVal: time.Minute,
		},
		{
			key: "raft_trailing_logs", fileLine: "raft_trailing_logs: 100", env: "MERIDIAN_RAFT_TRAILING_LOGS=200", flag: nil,
			get: func(c *Config) any { return c.RaftTrailingLogs }, def: 10240, file: 100, envVal: 200, flagVal: 200,
		},
	}
	for _, k := range keys {
		levels := []struct {
			name                 string
			inFile, inEnv, flags bool
			want                 any
		}{
			{"default", false, false, false, k.def},
			{"file", true, false, false, k.file},
			{"env over file", true, true, false, k.envVal},
			{"flag over env and file", true, true, true, k.flagVal},
			{"flag over default", false, false, true, k.flagVal},
		}
		for _, lv := range levels {
			if lv.flags && k.flag == nil {
				continue // this key has no flag; the env case covers it
			}
			t.Run(k.key+"/"+lv.name, func(t *testing.T) {
				t.Parallel()
				content := "data_dir: /tmp/m\n"
				if lv.inFile {
					content += k.fileLine + "\n"
				}
				dir := writeFiles(t, map[string]string{"a.yaml": content})
				args := []string{"-config-file", filepath.Join(dir, "a.yaml")}
				var env []string
				if lv.inEnv {
					env = append(env, k.env)
				}
				if lv.flags {
					args = append(args, k.flag...)
				}
				if got := k.get(mustLoad(t, args, env)); got != lv.want {
					t.Errorf("Load(%q, %q) %s = %v, want %v", args, env, k.key, got, lv.want)
				}
			})
		}
	}
}

func TestLoadConfigDirMerge(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"d1/10-base.yaml":    "data_dir: /tmp/m\ndatacenter: base\nlog_level: debug\nports:\n  http: 1001\n  dns: 1002\n",
		"d1/20-over.json":    `{"datacenter": "over", "ports": {"dns": 2002}}`,
		"d1/30-last.yml":     "log_level: warn\n",
		"d1/notes.txt":       "not: [config",
		"d1/99-subdir.yaml/": "",
		"f.yaml":             "datacenter: file\nports: {server: 3003}\n",
	})
	d1, f := filepath.Join(dir, "d1"), filepath.Join(dir, "f.yaml")
	tests := []struct {
		name       string
		args       []string
		datacenter string
		logLevel   string
		ports      Ports
	}{
		{
			name: "one dir in lexical order", args: []string{"-config-dir", d1},
			datacenter: "over", logLevel: "warn", ports: Ports{HTTP: 1001, HTTPS: -1, DNS: 2002, Server: 8300, SerfLAN: 8301, SerfWAN: 8302},
		},
		{
			name: "file after dir overrides it", args: []string{"-config-dir", d1, "-config-file", f},
			datacenter: "file", logLevel: "warn", ports: Ports{HTTP: 1001, HTTPS: -1, DNS: 2002, Server: 3003, SerfLAN: 8301, SerfWAN: 8302},
		},
		{
			name: "dir after file overrides it", args: []string{"-config-file", f, "-config-dir", d1},
			datacenter: "over", logLevel: "warn", ports: Ports{HTTP: 1001, HTTPS: -1, DNS: 2002, Server: 3003, SerfLAN: 8301, SerfWAN: 8302},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tc.args, nil)
			if c.Datacenter != tc.datacenter {
				t.Errorf("Load(%q) Datacenter = %q, want %q", tc.args, c.Datacenter, tc.datacenter)
			}
			if c.LogLevel != tc.logLevel {
				t.Errorf("Load(%q) LogLevel = %q, want %q", tc.args, c.LogLevel, tc.logLevel)
			}
			if c.Ports != tc.ports {
				t.Errorf("Load(%q) Ports = %+v, want %+v", tc.args, c.Ports, tc.ports)
			}
		})
	}
}

func TestLoadCollectsDefinitions(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"00-agent.yaml": "data_dir: /tmp/m\nservices:\n  - name: a\n  - name: b\n",
		"10-one.yaml":   "service:\n  name: c\ncheck:\n  name: disk\n  ttl: 30s\n",
		"20-more.json":  `{"services": [{"name": "d"}], "checks": [{"name": "mem", "ttl": "1m"}, {"name": "cpu", "ttl": "1m"}]}`,
		"30-none.yaml":  "log_level: info\n",
	})
	c := mustLoad(t, []string{"-config-dir", dir}, nil)
	var services, checks []string
	for _, s := range c.Services {
		services = append(services, s.Name)
	}
	for _, ch := range c.Checks {
		checks = append(checks, ch.Name)
	}
	if want := []string{"a", "b", "c", "d"}; !reflect.DeepEqual(services, want) {
		t.Errorf("Load(-config-dir %s) services = %q, want %q", dir, services, want)
	}
	if want := []string{"disk", "mem", "cpu"}; !reflect.DeepEqual(checks, want) {
		t.Errorf("Load(-config-dir %s) checks = %q, want %q", dir, checks, want)
	}
}

func TestLoadKeySpellings(t *testing.T) {
	t.Parallel()
	want := ServiceDefinition{
		ID:                "web-1",
		Name:              "web",
		Tags:              []string{"v1", "blue"},
		Address:           "10.0.0.5",
		Port:              8080,
		Meta:              map[string]string{"Team": "Frontend", "tier": "1"},
		Weights:           Weights{Passing: 10, Warning: 1},
		EnableTagOverride: true,
		Checks: []CheckDefinition{
			{
				ID: "web-http", Name: "http", ServiceID: "web-1", HTTP: "https://10.0.0.5:8080/health", Method: "POST",
				Header: map[string][]string{"X-Token": {"abc"}, "Accept": {"a", "b"}}, Body: "{}",
				TLSSkipVerify: true, Interval: 10 * time.Second, Timeout: 2 * time.Second,
				DeregisterCriticalServiceAfter: time.Hour, SuccessBeforePassing: 2, FailuresBeforeCritical: 3, Status: "passing",
			},
			{Name: "alive", TTL: 30 * time.Second, Notes: "app heartbeat"},
		},
	}
	tests := []struct {
		name, file, content string
	}{
		{"snake_case yaml", "s.yaml", `
service:
  id: web-1
  name: web
  tags: [v1, blue]
  address: 10.0.0.5
  port: 8080
  meta: {Team: Frontend, tier: "1"}
  weights: {passing: 10, warning: 1}
  enable_tag_override: true
  check:
    id: web-http
    name: http
    service_id: web-1
    http: https://10.0.0.5:8080/health
    method: POST
    header: {X-Token: abc, Accept: [a, b]}
    body: "{}"
    tls_skip_verify: true
    interval: 10s
    timeout: 2s
    deregister_critical_service_after: 1h
    success_before_passing: 2
    failures_before_critical: 3
    status: passing
  checks:
    - {name: alive, ttl: 30s, notes: app heartbeat}
`},
		{"CamelCase json", "c.json", `{"Service": {
  "ID": "web-1", "Name": "web", "Tags": ["v1", "blue"], "Address": "10.0.0.5", "Port": 8080,
  "Meta": {"Team": "Frontend", "tier": "1"}, "Weights": {"Passing": 10, "Warning": 1}, "EnableTagOverride": true,
  "Check": {"ID": "web-http", "Name": "http", "ServiceID": "web-1", "HTTP": "https://10.0.0.5:8080/health",
    "Method": "POST", "Header": {"X-Token": ["abc"], "Accept": ["a", "b"]}, "Body": "{}", "TLSSkipVerify": true,
    "Interval": "10s", "Timeout": "2s", "DeregisterCriticalServiceAfter": "1h",
    "SuccessBeforePassing": 2, "FailuresBeforeCritical": 3, "Status": "passing"},
  "Checks": [{"Name": "alive", "TTL": "30s", "Notes": "app heartbeat"}]}}`},
		{"mixed yaml list", "m.yaml", `
services:
  - ID: web-1
    name: web
    Tags: [v1, blue]
    address: 10.0.0.5
    Port: 8080
    meta: {Team: Frontend, tier: "1"}
    Weights: {passing: 10, Warning: 1}
    enable_tag_override: true
    Checks:
      - id: web-http
        Name: http
        ServiceID: web-1
        http: https://10.0.0.5:8080/health
        method: POST
        Header: {X-Token: [abc], Accept: [a, b]}
        body: "{}"
        TLSSkipVerify: true
        interval: 10s
        Timeout: 2s
        deregister_critical_service_after: 1h
        SuccessBeforePassing: 2
        failures_before_critical: 3
        Status: passing
      - {Name: alive, TTL: 30s, notes: app heartbeat}
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, map[string]string{tc.file: tc.content})
			args := []string{"-data-dir", "/tmp/m", "-config-file", filepath.Join(dir, tc.file)}
			c := mustLoad(t, args, nil)
			if len(c.Services) != 1 {
				t.Fatalf("Load(%q) services = %d, want 1", args, len(c.Services))
			}
			if got := c.Services[0]; !reflect.DeepEqual(got, want) {
				t.Errorf("Load(%q) service = %+v, want %+v", args, got, want)
			}
		})
	}
}

func TestLoadJoinLists(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"a.yaml": "data_dir: /tmp/m\nserver: true\nbootstrap_expect: 3\nretry_join: [s1, s2]\nstart_join: [j1]\n" +
			"retry_join_wan: [w1, w2]\nstart_join_wan: [x1]\n",
		"b.yaml": "retry_join: [s3]\nretry_join_wan: [w3]\n",
		"c.json": `{"RetryJoinWAN": ["w4"]}`,
	})
	tests := []struct {
		name               string
		args, env          []string
		retry, start       []string
		retryWAN, startWAN []string
	}{
		{"files append", nil, nil, []string{"s1", "s2", "s3"}, []string{"j1"}, []string{"w1", "w2", "w3", "w4"}, []string{"x1"}},
		{"env replaces", nil, []string{"MERIDIAN_RETRY_JOIN=e1, e2"}, []string{"e1", "e2"}, []string{"j1"}, []string{"w1", "w2", "w3", "w4"}, []string{"x1"}},
		{"flag replaces", []string{"-retry-join", "f1", "-retry-join=f2", "-join", "f3"}, nil, []string{"f1", "f2"}, []string{"f3"}, []string{"w1", "w2", "w3", "w4"}, []string{"x1"}},
		{"flag over env", []string{"-retry-join", "f1"}, []string{"MERIDIAN_RETRY_JOIN=e1"}, []string{"f1"}, []string{"j1"}, []string{"w1", "w2", "w3", "w4"}, []string{"x1"}},
		{"WAN env replaces", nil, []string{"MERIDIAN_RETRY_JOIN_WAN=e1,e2", "MERIDIAN_START_JOIN_WAN=e3"},
			[]string{"s1", "s2", "s3"}, []string{"j1"}, []string{"e1", "e2"}, []string{"e3"}},
		{"WAN flag replaces", []string{"-retry-join-wan", "f1", "-retry-join-wan=f2", "-join-wan", "f3"}, nil,
			[]string{"s1", "s2", "s3"}, []string{"j1"}, []string{"f1", "f2"}, []string{"f3"}},
		{"WAN flag over env", []string{"-retry-join-wan", "f1"}, []string{"MERIDIAN_RETRY_JOIN_WAN=e1", "MERIDIAN_START_JOIN_WAN=e2"},
			[]string{"s1", "s2", "s3"}, []string{"j1"}, []string{"f1"}, []string{"e2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"-config-dir", dir}, tc.args...)
			c := mustLoad(t, args, tc.env)
			if !reflect.DeepEqual(c.RetryJoin, tc.retry) {
				t.Errorf("Load(%q, %q) RetryJoin = %q, want %q", args, tc.env, c.RetryJoin, tc.retry)
			}
			if !reflect.DeepEqual(c.StartJoin, tc.start) {
				t.Errorf("Load(%q, %q) StartJoin = %q, want %q", args, tc.env, c.StartJoin, tc.start)
			}
			if !reflect.DeepEqual(c.RetryJoinWAN, tc.retryWAN) {
				t.Errorf("Load(%q, %q) RetryJoinWAN = %q, want %q", args, tc.env, c.RetryJoinWAN, tc.retryWAN)
			}
			if !reflect.DeepEqual(c.StartJoinWAN, tc.startWAN) {
				t.Errorf("Load(%q, %q) StartJoinWAN = %q, want %q", args, tc.env, c.StartJoinWAN, tc.startWAN)
			}
		})
	}
}

func TestLoadDerivedDefaults(t *testing.T) {
	t.Parallel()
	type derived struct {
		Server, Bootstrap, UI                  bool
		BootstrapExpect                        int
		BindAddr, ClientAddr, DataDir          string
		LeaveOnTerminate, SkipLeaveOnInterrupt bool
	}
	tests := []struct {
		name string
		args []string
		want derived
	}{
		{"client", []string{"-data-dir", "/d"},
			derived{BindAddr: "0.0.0.0", ClientAddr: "127.0.0.1", DataDir: "/d", LeaveOnTerminate: true}},
		{"server", []string{"-data-dir", "/d", "-server", "-bootstrap-expect", "3"},
			derived{Server: true, BootstrapExpect: 3, BindAddr: "0.0.0.0", ClientAddr: "127.0.0.1", DataDir: "/d", SkipLeaveOnInterrupt: true}},
		{"server keeps explicit leave settings", []string{"-data-dir", "/d", "-server", "-bootstrap"},
			derived{Server: true, Bootstrap: true, BindAddr: "0.0.0.0", ClientAddr: "127.0.0.1", DataDir: "/d", SkipLeaveOnInterrupt: true}},
		{"bootstrap_expect 1 is bootstrap", []string{"-data-dir", "/d", "-server", "-bootstrap-expect", "1"},
			derived{Server: true, Bootstrap: true, BindAddr: "0.0.0.0", ClientAddr: "127.0.0.1", DataDir: "/d", SkipLeaveOnInterrupt: true}},
		{"dev", []string{"-dev"},
			derived{Server: true, Bootstrap: true, UI: true, BindAddr: "127.0.0.1", ClientAddr: "127.0.0.1", SkipLeaveOnInterrupt: true}},
		{"dev with bind and client", []string{"-dev", "-bind", "10.1.2.3", "-client", "0.0.0.0"},
			derived{Server: true, Bootstrap: true, UI: true, BindAddr: "10.1.2.3", ClientAddr: "0.0.0.0", SkipLeaveOnInterrupt: true}},
		{"dev with bootstrap_expect", []string{"-dev", "-bootstrap-expect", "3"},
			derived{Server: true, BootstrapExpect: 3, UI: true, BindAddr: "127.0.0.1", ClientAddr: "127.0.0.1", SkipLeaveOnInterrupt: true}},
		{"dev with ui off", []string{"-dev", "-ui=false"},
			derived{Server: true, Bootstrap: true, BindAddr: "127.0.0.1", ClientAddr: "127.0.0.1", SkipLeaveOnInterrupt: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tc.args, nil)
			got := derived{
				Server: c.Server, Bootstrap: c.Bootstrap, UI: c.UI, BootstrapExpect: c.BootstrapExpect,
				BindAddr: c.BindAddr, ClientAddr: c.ClientAddr, DataDir: c.DataDir,
				LeaveOnTerminate: c.LeaveOnTerminate, SkipLeaveOnInterrupt: c.SkipLeaveOnInterrupt,
			}
			if got != tc.want {
				t.Errorf("Load(%q) = %+v, want %+v", tc.args, got, tc.want)
			}
			// The agent validates what Load gave it once more.
			if err := c.Validate(); err != nil {
				t.Errorf("Load(%q).Validate() = %v, want nil", tc.args, err)
			}
		})
	}
}

func TestLoadExplicitLeaveSettings(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"a.yaml": "data_dir: /d\nserver: true\nbootstrap: true\nleave_on_terminate: true\nskip_leave_on_interrupt: false\n",
	})
	args := []string{"-config-dir", dir}
	c := mustLoad(t, args, nil)
	if !c.LeaveOnTerminate || c.SkipLeaveOnInterrupt {
		t.Errorf("Load(%q) LeaveOnTerminate, SkipLeaveOnInterrupt = %v, %v, want true, false", args, c.LeaveOnTerminate, c.SkipLeaveOnInterrupt)
	}
}

func TestLoadEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      []string
		dc       string
		warnings int
	}{
		{"empty variable is unset", []string{"MERIDIAN_DATACENTER="}, "dc1", 0},
		{"last duplicate wins", []string{"MERIDIAN_DATACENTER=a", "MERIDIAN_DATACENTER=b"}, "b", 0},
		{"unknown variable is a warning", []string{"MERIDIAN_DATACENTRE=x"}, "dc1", 1},
		{"CLI variable is no warning", []string{"MERIDIAN_HTTP_ADDR=127.0.0.1:1"}, "dc1", 0},
		{"other prefixes are ignored", []string{"CONSUL_DATACENTER=x", "DATACENTER=y"}, "dc1", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, []string{"-data-dir", "/d"}, tc.env)
			if c.Datacenter != tc.dc {
				t.Errorf("Load(env %q) Datacenter = %q, want %q", tc.env, c.Datacenter, tc.dc)
			}
			if got := c.Warnings(); len(got) != tc.warnings {
				t.Errorf("Load(env %q) Warnings() = %q, want %d lines", tc.env, got, tc.warnings)
			}
		})
	}
}

// TestLoadDisableRemoteExec: remote exec is off unless a file turns it on,
// YAML or JSON.
func TestLoadDisableRemoteExec(t *testing.T) {
	t.Parallel()
	if c := mustLoad(t, []string{"-data-dir", t.TempDir()}, nil); !c.DisableRemoteExec {
		t.Fatal("DisableRemoteExec = false by default, want true")
	}
	for _, tc := range []struct{ file, content string }{
		{"a.yaml", "disable_remote_exec: false\n"},
		{"a.json", `{"disable_remote_exec": false}`},
	} {
		dir := writeFiles(t, map[string]string{tc.file: tc.content})
		c := mustLoad(t, []string{"-data-dir", dir, "-config-dir", dir}, nil)
		if c.DisableRemoteExec {
			t.Errorf("%s: DisableRemoteExec = true, want false", tc.file)
		}
	}
}
