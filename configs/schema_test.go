package configs

import (
	"reflect"
	"testing"
)

func TestNormKey(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"service_id", "ServiceID", "serviceId", "service-id", "SERVICE_ID"} {
		if got := normKey(in); got != "serviceid" {
			t.Errorf("normKey(%q) = %q, want %q", in, got, "serviceid")
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	fields := fieldsOf(reflect.TypeFor[Config]())
	tests := []struct {
		in, want string
	}{
		{"bootstrap_expct", `, did you mean "bootstrap_expect"?`},
		{"BootstrapExpected", `, did you mean "bootstrap_expect"?`},
		{"datacentre", `, did you mean "datacenter"?`},
		{"servics", `, did you mean "services"?`},
		{"retryjoin_", `, did you mean "retry_join"?`},
		{"retry_join_wna", `, did you mean "retry_join_wan"?`},
		{"RetryJoinWANs", `, did you mean "retry_join_wan"?`},
		{"wan_transprot", `, did you mean "wan_transport"?`},
		{"x", ""},
		{"quux", ""},
	}
	for _, tc := range tests {
		if got := suggest(fields, tc.in); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"kitten", "sitting", 3}, {"http", "htpp", 1}, {"datadri", "datadir", 1}, {"same", "same", 0},
	}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestEnvKeys checks that every scalar key has its MERIDIAN_ variable and that
// definitions have none.
func TestEnvKeys(t *testing.T) {
	t.Parallel()
	keys := envKeys(reflect.TypeFor[Config](), "")
	tests := []struct {
		name, key string
	}{
		{"MERIDIAN_DATACENTER", "datacenter"},
		{"MERIDIAN_NODE_NAME", "node_name"},
		{"MERIDIAN_PORTS_HTTP", "ports.http"},
		{"MERIDIAN_PORTS_SERF_LAN", "ports.serf_lan"},
		{"MERIDIAN_RETRY_JOIN", "retry_join"},
		{"MERIDIAN_PERFORMANCE_RAFT_MULTIPLIER", "performance.raft_multiplier"},
		{"MERIDIAN_RETRY_JOIN_WAN", "retry_join_wan"},
		{"MERIDIAN_START_JOIN_WAN", "start_join_wan"},
		{"MERIDIAN_RETRY_INTERVAL_WAN", "retry_interval_wan"},
		{"MERIDIAN_ADVERTISE_ADDR_WAN", "advertise_addr_wan"},
		{"MERIDIAN_WAN_TRANSPORT", "wan_transport"},
		{"MERIDIAN_TLS_CA_FILE", "tls.ca_file"},
		{"MERIDIAN_TLS_KEY_FILE", "tls.key_file"},
		{"MERIDIAN_FEDERATION_TIMEOUT", "federation.timeout"},
		{"MERIDIAN_FEDERATION_STALE_VIEW", "federation.stale_view"},
		{"MERIDIAN_SERVICES", ""},
		{"MERIDIAN_CHECKS", ""},
	}
	for _, tc := range tests {
		if got := keys[tc.name]; got != tc.key {
			t.Errorf("envKeys()[%q] = %q, want %q", tc.name, got, tc.key)
		}
	}
}
