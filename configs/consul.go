package configs

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// consulOnlyKeys are keys of Consul's agent configuration (its "Agents
// configuration file reference") that Meridian does not implement, by the
// section they sit in. A file that sets one still loads: the key is skipped
// with one warning naming it, so that an existing Consul config dir works
// unchanged. Only a key nobody knows is an error.
var consulOnlyKeys = map[reflect.Type][]string{
	reflect.TypeFor[Config](): {
		"advertise_addr_ipv4", "advertise_addr_ipv6", "advertise_addr_wan_ipv4", "advertise_addr_wan_ipv6",
		"advertise_reconnect_timeout", "audit", "auto_config", "auto_encrypt", "auto_reload_config",
		"bind_addr_ipv6", "cache", "check_output_max_size", "check_update_interval", "cloud",
		"config_entries", "connect", "disable_anonymous_signature", "disable_coordinates",
		"disable_host_node_id", "disable_http_unprintable_char_filter", "disable_keyring_file",
		"disable_update_check", "discard_check_output", "discovery_max_stale",
		"enable_acl_replication", "enable_agent_tls_for_checks", "enable_central_service_config",
		"experiments", "gossip_lan", "gossip_wan", "http_config", "license_path", "locality",
		"non_voting_server", "peering", "primary_gateways", "primary_gateways_retry_interval", "protocol",
		"raft_boltdb", "raft_logstore", "raft_protocol", "read_replica", "reporting", "rpc", "segment",
		"segments", "serf_lan", "serf_lan_allowed_cidrs", "serf_wan", "serf_wan_allowed_cidrs",
		"server_name", "server_rejoin_age_max", "session_ttl_min", "syslog_facility",
		"translate_wan_addrs", "ui_dir", "unix_sockets", "watches", "xds",
		"acl_datacenter", "acl_default_policy", "acl_down_policy", "acl_master_token", "acl_token",
		"acl_ttl", "acl_agent_token", "acl_agent_master_token", "acl_replication_token",
		"acl_enforce_version_8",
	},
	reflect.TypeFor[Ports](): {
		"sidecar_min_port", "sidecar_max_port", "expose_min_port", "expose_max_port",
	},
	reflect.TypeFor[Addresses](): {"grpc", "grpc_tls"},
	reflect.TypeFor[UIConfig](): {
		"dir", "metrics_provider", "metrics_provider_files", "metrics_provider_options_json",
		"metrics_proxy", "dashboard_url_templates",
	},
	reflect.TypeFor[ACL](): {
		"enable_key_list_policy", "role_ttl", "token_replication", "enable_token_replication",
		"msp_disable_bootstrap",
	},
	reflect.TypeFor[ACLTokens](): {"master", "agent_master", "config_file_service_registration", "dns"},
	reflect.TypeFor[TLS]():       {"grpc"},
	reflect.TypeFor[TLSStanza](): {"use_auto_cert"},
	reflect.TypeFor[Telemetry](): {
		"circonus_api_token", "circonus_api_app", "circonus_api_url", "circonus_submission_interval",
		"circonus_submission_url", "circonus_check_id", "circonus_check_force_metric_activation",
		"circonus_check_instance_id", "circonus_check_search_tag", "circonus_check_display_name",
		"circonus_check_tags", "circonus_broker_id", "circonus_broker_select_tag", "disable_compat_1.9",
		"dogstatsd_addr", "dogstatsd_tags", "enable_host_metrics", "filter_default", "prefix_filter",
		"retry_failed_connection", "statsd_address", "statsite_address", "allowed_prefixes",
		"blocked_prefixes",
	},
	reflect.TypeFor[DNSConfig](): {
		"enable_additional_node_meta_txt", "soa", "use_cache", "cache_max_age", "prefer_namespace",
		"recursor_strategy",
	},
	reflect.TypeFor[Limits](): {
		"https_handshake_timeout", "rpc_handshake_timeout", "rpc_client_timeout", "rpc_max_burst",
		"rpc_max_conns_per_client", "rpc_rate", "kv_max_value_size", "txn_max_req_len", "request_limits",
	},
	reflect.TypeFor[Performance](): {
		"leave_drain_time", "rpc_hold_timeout", "grpc_keepalive_interval", "grpc_keepalive_timeout",
	},
	reflect.TypeFor[ServiceDefinition](): {
		"kind", "proxy", "connect", "token", "namespace", "partition",
	},
	reflect.TypeFor[CheckDefinition](): {
		"docker_container_id", "shell", "grpc", "grpc_use_tls", "h2ping", "h2ping_use_tls", "os_service",
		"udp", "alias_node", "alias_service", "output_max_size", "tls_server_name", "disable_redirects",
		"token", "namespace", "partition",
	},
}

// consulOnly reports whether spelled names a Consul key of section t that
// Meridian does not implement.
func consulOnly(t reflect.Type, spelled string) bool {
	n := normKey(spelled)
	for _, k := range consulOnlyKeys[t] {
		if normKey(k) == n {
			return true
		}
	}
	return false
}

// Consul's limits on node meta (its structs.ValidateNodeMetadata).
const (
	maxNodeMetaPairs    = 64
	maxNodeMetaKeyLen   = 128
	maxNodeMetaValueLen = 512
	reservedMetaPrefix  = "consul-"
)

// validNodeMetaKey is Consul's ^[a-zA-Z0-9_-]+$.
func validNodeMetaKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		ok := r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// nodeMetaProblem is what is wrong with node meta m, or "".
func nodeMetaProblem(m map[string]string) string {
	if len(m) > maxNodeMetaPairs {
		return fmt.Sprintf("at most %d key/value pairs, got %d", maxNodeMetaPairs, len(m))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case len(k) > maxNodeMetaKeyLen:
			return fmt.Sprintf("key %.20q... is longer than %d characters", k, maxNodeMetaKeyLen)
		case !validNodeMetaKey(k):
			return fmt.Sprintf("key %q may only hold letters, digits, '-' and '_'", k)
		case strings.HasPrefix(k, reservedMetaPrefix):
			return fmt.Sprintf("key %q: the prefix %q is reserved for the agent's own meta", k, reservedMetaPrefix)
		case len(m[k]) > maxNodeMetaValueLen:
			return fmt.Sprintf("value of %q is longer than %d characters", k, maxNodeMetaValueLen)
		}
	}
	return ""
}
