package configs

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// validConfig is a Config that passes Validate, built in code.
func validConfig() *Config {
	c := Default()
	c.NodeName = "n1"
	c.DataDir = "/d"
	return c
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" is valid; else the whole message of the only error
	}{
		{"default with data_dir", func(*Config) {}, ""},
		{"dev needs no data_dir", func(c *Config) { c.DataDir = ""; c.Dev = true }, ""},
		{"port 0 picks a free port", func(c *Config) { c.Ports = Ports{} }, ""},
		{"ipv6 addresses", func(c *Config) { c.BindAddr, c.ClientAddr, c.AdvertiseAddr = "::", "::1", "fd00::1" }, ""},
		{"server with bootstrap_expect", func(c *Config) { c.Server, c.BootstrapExpect = true, 3 }, ""},
		{"good encrypt key", func(c *Config) { c.Encrypt = "MDEyMzQ1Njc4OWFiY2RlZg==" }, ""},
		{"good node id", func(c *Config) { c.NodeID = "adf4238a-882b-9ddc-4a9d-5b6758e4159e" }, ""},
		{"no data_dir", func(c *Config) { c.DataDir = "" }, "data_dir: required unless dev mode"},
		{"no node name", func(c *Config) { c.NodeName = "" }, "node_name: required (the hostname could not be read)"},
		{"no datacenter", func(c *Config) { c.Datacenter = "" }, "datacenter: required"},
		{"datacenter with a dot", func(c *Config) { c.Datacenter = "dc.1" }, `datacenter: must be lowercase letters, digits, '-' and '_', got "dc.1"`},
		{"negative bootstrap_expect", func(c *Config) { c.Server, c.BootstrapExpect = true, -1 }, "bootstrap_expect: must not be negative, got -1"},
		{"bootstrap and bootstrap_expect", func(c *Config) { c.Server, c.Bootstrap, c.BootstrapExpect = true, true, 3 },
			"bootstrap_expect: cannot be set together with bootstrap: choose one"},
		{"bootstrap_expect on a client", func(c *Config) { c.BootstrapExpect = 3 }, "bootstrap_expect: needs server mode (server: true or -server)"},
		{"port too big", func(c *Config) { c.Ports.SerfWAN = 65536 }, "ports.serf_wan: must be 0-65535 (0 picks a free port), got 65536"},
		{"client addr hostname", func(c *Config) { c.ClientAddr = "example.com" }, `client_addr: must be an IP address (not a hostname), got "example.com"`},
		{"empty retry_join entry", func(c *Config) { c.RetryJoin = []string{"a", " "} }, "retry_join[1]: must not be empty"},
		{"zero retry interval", func(c *Config) { c.RetryInterval = 0 }, "retry_interval: must be positive, got 0s"},
		{"negative retry_max", func(c *Config) { c.RetryMax = -1 }, "retry_max: must not be negative, got -1"},
		{"zero reconnect timeout", func(c *Config) { c.ReconnectTimeout = 0 }, "reconnect_timeout: must be positive, got 0s"},
		{"raft multiplier 0", func(c *Config) { c.Performance.RaftMultiplier = 0 }, "performance.raft_multiplier: must be 1-10, got 0"},
		{"raft snapshot threshold 0", func(c *Config) { c.RaftSnapshotThreshold = 0 }, "raft_snapshot_threshold: must be at least 1, got 0"},
		{"raft snapshot interval 1ms", func(c *Config) { c.RaftSnapshotInterval = time.Millisecond }, "raft_snapshot_interval: must be at least 5ms, got 1ms"},
		{"negative raft trailing logs", func(c *Config) { c.RaftTrailingLogs = -1 }, "raft_trailing_logs: must not be negative, got -1"},
		{"service port", func(c *Config) { c.Services = []ServiceDefinition{{Name: "a", Port: -1}} }, "services[0].port: must be 0-65535, got -1"},
		{"service weight", func(c *Config) { c.Services = []ServiceDefinition{{Name: "a", Weights: Weights{Warning: -1}}} },
			"services[0].weights.warning: must not be negative, got -1"},
		{"check bad url", func(c *Config) { c.Checks = []CheckDefinition{{HTTP: "localhost:80", Interval: time.Second}} },
			`checks[0].http: must be an http:// or https:// URL, got "localhost:80"`},
		{"check bad tcp", func(c *Config) { c.Checks = []CheckDefinition{{TCP: "localhost", Interval: time.Second}} },
			`checks[0].tcp: must be host:port, got "localhost"`},
		{"check bad status", func(c *Config) { c.Checks = []CheckDefinition{{TTL: time.Second, Status: "ok"}} },
			`checks[0].status: must be passing, warning or critical, got "ok"`},
		{"check negative timeout", func(c *Config) { c.Checks = []CheckDefinition{{TTL: time.Second, Timeout: -time.Second}} },
			"checks[0].timeout: must not be negative, got -1s"},
		{"duplicate check id", func(c *Config) {
			c.Checks = []CheckDefinition{{ID: "x", TTL: time.Second}, {ID: "x", TTL: time.Second}}
		}, `checks[1].id: check id "x" is already used by checks[0]`},
		{"duplicate service id", func(c *Config) {
			c.Services = []ServiceDefinition{{Name: "web"}, {ID: "web", Name: "other"}}
		}, `services[1].id: service id "web" is already used by services[0]`},

		// WAN federation
		{"server joins the WAN", func(c *Config) {
			c.Server, c.BootstrapExpect = true, 3
			c.StartJoinWAN, c.RetryJoinWAN = []string{"10.1.0.1"}, []string{"10.1.0.2:8302", "dc2.example.com"}
			c.AdvertiseAddrWAN, c.WANTransport, c.RetryMaxWAN = "203.0.113.7", WANTransportTCP, 5
		}, ""},
		{"dev agent joins the WAN", func(c *Config) { c.DataDir, c.Dev, c.RetryJoinWAN = "", true, []string{"10.1.0.1"} }, ""},
		{"start_join_wan on a client", func(c *Config) { c.StartJoinWAN = []string{"10.1.0.1"} },
			"start_join_wan: only servers join the WAN pool; set server: true"},
		{"retry_join_wan on a client", func(c *Config) { c.RetryJoinWAN = []string{"10.1.0.1"} },
			"retry_join_wan: only servers join the WAN pool; set server: true"},
		{"empty start_join_wan entry", func(c *Config) { c.Server, c.StartJoinWAN = true, []string{""} }, "start_join_wan[0]: must not be empty"},
		{"empty retry_join_wan entry", func(c *Config) { c.Server, c.RetryJoinWAN = true, []string{"a", " "} }, "retry_join_wan[1]: must not be empty"},
		{"zero retry_interval_wan", func(c *Config) { c.RetryIntervalWAN = 0 }, "retry_interval_wan: must be positive, got 0s"},
		{"negative retry_interval_wan", func(c *Config) { c.RetryIntervalWAN = -time.Second }, "retry_interval_wan: must be positive, got -1s"},
		{"negative retry_max_wan", func(c *Config) { c.RetryMaxWAN = -1 }, "retry_max_wan: must not be negative, got -1"},
		{"advertise_addr_wan hostname", func(c *Config) { c.AdvertiseAddrWAN = "wan.example.com" },
			`advertise_addr_wan: must be an IP address (not a hostname), got "wan.example.com"`},
		{"advertise_addr_wan unspecified", func(c *Config) { c.AdvertiseAddrWAN = "::" }, "advertise_addr_wan: must be an address others can reach, not ::"},
		{"wan_transport udp", func(c *Config) { c.WANTransport = "udp" }, `wan_transport: must be quic or tcp, got "udp"`},
		{"wan_transport empty", func(c *Config) { c.WANTransport = "" }, `wan_transport: must be quic or tcp, got ""`},
		{"zero federation timeout", func(c *Config) { c.Federation.Timeout = 0 }, "federation.timeout: must be positive, got 0s"},
		{"stale view off", func(c *Config) { c.Federation.StaleView = false }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tc.change(c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Source != "" {
					t.Errorf("Validate() error = %#v, want a *FieldError without a source", err)
				}
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.DataDir, c.LogLevel, c.Ports.HTTP = "", "loud", -5
	err := c.Validate()
	if err == nil {
		t.Fatalf("Validate() = nil, want three errors")
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("Validate() = %q, want 3 lines", err)
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings, one per warning, in order
	}{
		{"none for three servers", func(c *Config) { c.Server, c.BootstrapExpect = true, 3 }, nil},
		{"two servers", func(c *Config) { c.Server, c.BootstrapExpect = true, 2 }, []string{"bootstrap_expect = 2: two servers tolerate no failure"}},
		{"four servers", func(c *Config) { c.Server, c.BootstrapExpect = true, 4 }, []string{"bootstrap_expect = 4: an even number of servers tolerates no more failures than 3"}},
		{"bootstrap", func(c *Config) { c.Server, c.Bootstrap = true, true }, []string{"bootstrap mode"}},
		{"dev bootstraps quietly", func(c *Config) { c.Server, c.Bootstrap, c.Dev = true, true, true }, nil},
		{"node name not a DNS label", func(c *Config) { c.NodeName = "web.example.com" }, []string{`node_name "web.example.com" is not a valid DNS label`}},
		{"script checks", func(c *Config) { c.EnableScriptChecks = true }, []string{"enable_script_checks lets anyone"}},
		{"WAN joins without tls or encrypt", func(c *Config) { c.Server, c.BootstrapExpect, c.RetryJoinWAN = true, 3, []string{"10.1.0.1"} },
			[]string{"WAN links use ephemeral self-signed certificates"}},
		{"dev WAN join without tls or encrypt", func(c *Config) { c.Server, c.Bootstrap, c.Dev, c.StartJoinWAN = true, true, true, []string{"10.1.0.1"} },
			[]string{"WAN links use ephemeral self-signed certificates"}},
		{"WAN joins with encrypt", func(c *Config) {
			c.Server, c.BootstrapExpect, c.RetryJoinWAN, c.Encrypt = true, 3, []string{"10.1.0.1"}, "MDEyMzQ1Njc4OWFiY2RlZg=="
		}, []string{"WAN link certificates are derived from the gossip key"}},
		{"WAN joins with tls but no names checked", func(c *Config) {
			c.Server, c.BootstrapExpect, c.RetryJoinWAN = true, 3, []string{"10.1.0.1"}
			c.TLS = TLS{CAFile: "ca.pem", CertFile: "cert.pem", KeyFile: "key.pem"}
		}, []string{"WAN links check certificates against the CA but not their names"}},
		{"WAN joins with tls", func(c *Config) {
			c.Server, c.BootstrapExpect, c.RetryJoinWAN = true, 3, []string{"10.1.0.1"}
			c.TLS = TLS{CAFile: "ca.pem", CertFile: "cert.pem", KeyFile: "key.pem"}
			c.VerifyServerHostname = true
		}, nil},
		{"server without WAN joins", func(c *Config) { c.Server, c.BootstrapExpect, c.WANTransport = true, 3, WANTransportTCP }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tc.change(c)
			got := c.Warnings()
			if len(got) != len(tc.want) {
				t.Fatalf("Warnings() = %q, want %d lines like %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("Warnings()[%d] = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestLoadWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bootstrap_expect 2", []string{"-server", "-bootstrap-expect", "2", "-data-dir", "/d"}, "bootstrap_expect = 2"},
		{"bootstrap_expect 1", []string{"-server", "-bootstrap-expect", "1", "-data-dir", "/d"}, "bootstrap_expect = 1 is the same as bootstrap"},
		{"data_dir in dev", []string{"-dev", "-data-dir", "/d"}, "data_dir is not used in dev mode"},
		{"WAN join without keys", []string{"-server", "-bootstrap-expect", "3", "-data-dir", "/d", "-retry-join-wan", "10.1.0.1"}, "ephemeral self-signed certificates"},
		{"dev WAN join without keys", []string{"-dev", "-join-wan", "10.1.0.1"}, "ephemeral self-signed certificates"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := strings.Join(mustLoad(t, tc.args, nil).Warnings(), "\n")
			if !strings.Contains(got, tc.want) {
				t.Errorf("Load(%q).Warnings() = %q, want it to contain %q", tc.args, got, tc.want)
			}
		})
	}
}

func TestEncryptKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		encrypt string
		want    []byte
	}{
		{"", nil},
		{"MDEyMzQ1Njc4OWFiY2RlZg==", []byte("0123456789abcdef")},
		{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3", []byte("0123456789abcdef01234567")},
		{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", []byte("0123456789abcdef0123456789abcdef")},
		{"MDEyMzQ1Njc4OQ==", nil}, // 10 bytes
		{"%%%", nil},
	}
	for _, tc := range tests {
		t.Run(tc.encrypt, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			c.Encrypt = tc.encrypt
			if got := c.EncryptKey(); !bytes.Equal(got, tc.want) {
				t.Errorf("EncryptKey() with encrypt %q = %q, want %q", tc.encrypt, got, tc.want)
			}
		})
	}
}
