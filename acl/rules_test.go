package acl

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Policies as Consul's documentation and tutorials write them.
const (
	// The example of Consul's "ACL Rules" reference, in HCL and in JSON.
	docsKVPolicyHCL = `
# These control access to the key/value store.
key_prefix "" {
  policy = "read"
}
key_prefix "foo/" {
  policy = "write"
}
key_prefix "foo/private/" {
  policy = "deny"
}
# Or for exact key matches
key "foo/bar/secret" {
  policy = "deny"
}

# This controls access to cluster-wide Consul operator information.
operator = "read"
`
	docsKVPolicyJSON = `{
  "key_prefix": {
    "": {
      "policy": "read"
    },
    "foo/": {
      "policy": "write"
    },
    "foo/private/": {
      "policy": "deny"
    }
  },
  "key" : {
    "foo/bar/secret" : {
      "policy" : "deny"
    }
  },
  "operator": "read"
}`
	// The DNS token policy of Consul's "DNS with ACLs" guide.
	dnsPolicy = `
node_prefix "" {
  policy = "read"
}
service_prefix "" {
  policy = "read"
}
# only needed if using prepared queries
query_prefix "" {
  policy = "read"
}
`
	// An agent token policy as the ACL bootstrap tutorial writes it.
	agentPolicy = `
node "consul-client-1" {
  policy = "write"
}
service_prefix "" {
   policy = "read"
}
`
	// Vault's Consul storage backend policy, from Vault's documentation.
	vaultPolicy = `
key_prefix "vault/" {
  policy = "write"
}
node_prefix "" {
  policy = "write"
}
service "vault" {
  policy = "write"
}
agent_prefix "" {
  policy = "write"
}
session_prefix "" {
  policy = "write"
}
`
	// Prometheus' consul_sd_configs needs to read services and nodes.
	prometheusPolicy = `
agent_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
service_prefix "" { policy = "read" }
`
	// A service policy with intentions, as Consul's service rules show.
	webPolicy = `
service "web" {
  policy     = "write"
  intentions = "read"
}
service "web-sidecar-proxy" { policy = "write" }
node_prefix "" { policy = "read" }
event "deploy" { policy = "write" }
event_prefix "" { policy = "read" }
keyring = "read"
`
)

func TestParseRules(t *testing.T) {
	docsKV := Rules{
		{Resource: ResKey, Segment: "", Prefix: true, Access: AccessRead},
		{Resource: ResKey, Segment: "foo/", Prefix: true, Access: AccessWrite},
		{Resource: ResKey, Segment: "foo/private/", Prefix: true, Access: AccessDeny},
		{Resource: ResKey, Segment: "foo/bar/secret", Access: AccessDeny},
		{Resource: ResOperator, Access: AccessRead},
	}
	tests := []struct {
		name  string
		rules string
		want  Rules
	}{
		{"empty", "  \n", nil},
		{"docs kv hcl", docsKVPolicyHCL, docsKV},
		{"docs kv json", docsKVPolicyJSON, docsKV},
		{"dns", dnsPolicy, Rules{
			{Resource: ResNode, Prefix: true, Access: AccessRead},
			{Resource: ResService, Prefix: true, Access: AccessRead},
			{Resource: ResQuery, Prefix: true, Access: AccessRead},
		}},
		{"agent", agentPolicy, Rules{
			{Resource: ResNode, Segment: "consul-client-1", Access: AccessWrite},
			{Resource: ResService, Prefix: true, Access: AccessRead},
		}},
		{"vault", vaultPolicy, Rules{
			{Resource: ResKey, Segment: "vault/", Prefix: true, Access: AccessWrite},
			{Resource: ResNode, Prefix: true, Access: AccessWrite},
			{Resource: ResService, Segment: "vault", Access: AccessWrite},
			{Resource: ResAgent, Prefix: true, Access: AccessWrite},
			{Resource: ResSession, Prefix: true, Access: AccessWrite},
		}},
		{"web with intentions", webPolicy, Rules{
			{Resource: ResService, Segment: "web", Access: AccessWrite},
			{Resource: ResService, Segment: "web-sidecar-proxy", Access: AccessWrite},
			{Resource: ResNode, Prefix: true, Access: AccessRead},
			{Resource: ResEvent, Segment: "deploy", Access: AccessWrite},
			{Resource: ResEvent, Prefix: true, Access: AccessRead},
			{Resource: ResKeyring, Access: AccessRead},
		}},
		{"key list", `key_prefix "bar" { policy = "list" }`, Rules{{Resource: ResKey, Segment: "bar", Prefix: true, Access: AccessList}}},
		{"json list of blocks", `{"service": [{"web": {"policy": "read"}}, {"db": [{"policy": "deny"}]}]}`, Rules{
			{Resource: ResService, Segment: "web", Access: AccessRead},
			{Resource: ResService, Segment: "db", Access: AccessDeny},
		}},
		{"hcl object form", `key = { "a" = { policy = "read" } }`, Rules{{Resource: ResKey, Segment: "a", Access: AccessRead}}},
		{"all switches", "acl = \"write\"\nmesh = \"read\"\npeering = \"deny\"\n", Rules{
			{Resource: ResACL, Access: AccessWrite}, {Resource: ResMesh, Access: AccessRead}, {Resource: ResPeering, Access: AccessDeny},
		}},
		{"management", ManagementRules, nil}, // checked for parsing only
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRules(tc.rules)
			if err != nil {
				t.Fatalf("ParseRules: %v", err)
			}
			if tc.name == "management" {
				if len(got) != 12 {
					t.Fatalf("management rules: %d rules, want 12: %v", len(got), got)
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ParseRules = %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name         string
		rules        string
		line, column int
		want         string
	}{
		{"syntax", "key_prefix \"a\" {\n  policy = \n}", 3, 2, "expected"},
		{"unclosed", "key \"a\" {\n policy = \"read\"\n", 0, 0, ""},
		{"unknown resource", "\n\nkeys \"a\" { policy = \"read\" }", 3, 1, `unknown resource "keys"`},
		{"unknown level", "service \"web\" {\n  policy = \"admin\"\n}", 2, 12, `"admin" is not a level`},
		{"list outside keys", `service "web" { policy = "list" }`, 1, 26, `"list" is not a level`},
		{"number level", `operator = 3`, 1, 12, "wants a string"},
		{"switch with a name", `operator "x" { policy = "read" }`, 1, 10, "takes no name"},
		{"no policy", "node \"n\" {\n}", 1, 10, "has no policy"},
		{"unknown field", "node \"n\" {\n  polcy = \"read\"\n}", 2, 3, `unknown field "polcy"`},
		{"intentions on keys", `key "a" { policy = "read" intentions = "read" }`, 1, 27, `unknown field "intentions"`},
		{"two names", `key "a" "b" { policy = "read" }`, 1, 9, "takes one name"},
		{"block as string", `key "a" = "read"`, 1, 9, "nested object expected"},
		{"json block as string", `{"key": {"a": "read"}}`, 1, 15, "wants a block"},
		{"json unknown", "{\n  \"kee\": {\"a\": {\"policy\": \"read\"}}\n}", 2, 3, `unknown resource "kee"`},
		{"json bad level", `{"key_prefix": {"": {"policy": "writ"}}}`, 1, 32, `"writ" is not a level`},
		{"json syntax", `{"key": }`, 1, 9, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRules(tc.rules)
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("ParseRules(%q) = %v, want a *RuleError", tc.rules, err)
			}
			if tc.line != 0 && (re.Line != tc.line || re.Column != tc.column) {
				t.Errorf("ParseRules(%q): error at %d:%d (%v), want %d:%d", tc.rules, re.Line, re.Column, err, tc.line, tc.column)
			}
			if tc.line != 0 && !strings.Contains(err.Error(), "line ") {
				t.Errorf("error %q does not say the line", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestParseRulesTooLarge(t *testing.T) {
	_, err := ParseRules(strings.Repeat(" ", maxRulesSize+1))
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("ParseRules(huge) = %v, want a size error", err)
	}
}
