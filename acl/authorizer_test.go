package acl

import (
	"errors"
	"strings"
	"testing"
)

func mustParse(t testing.TB, text string) Rules {
	t.Helper()
	r, err := ParseRules(text)
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	return r
}

type check struct {
	res  Resource
	seg  string
	want Access
	ok   bool
}

func runChecks(t *testing.T, a *Authorizer, checks []check) {
	t.Helper()
	for _, c := range checks {
		if got := a.Allowed(c.res, c.seg, c.want); got != c.ok {
			t.Errorf("Allowed(%s, %q, %s) = %v, want %v", c.res, c.seg, c.want, got, c.ok)
		}
	}
}

func TestAuthorizerDocumentedBehaviour(t *testing.T) {
	tests := []struct {
		name         string
		policies     []string
		defaultAllow bool
		checks       []check
	}{
		{"docs kv example", []string{docsKVPolicyHCL}, false, []check{
			{ResKey, "anything", AccessRead, true},
			{ResKey, "anything", AccessWrite, false},
			{ResKey, "foo/x", AccessWrite, true},
			{ResKey, "foo/private/x", AccessRead, false},
			{ResKey, "foo/private/", AccessRead, false},
			{ResKey, "foo/bar/secret", AccessRead, false},  // exact deny beats the foo/ prefix
			{ResKey, "foo/bar/secret2", AccessWrite, true}, // exact means exact
			{ResOperator, "", AccessRead, true},
			{ResOperator, "", AccessWrite, false},
			{ResService, "web", AccessRead, false}, // default deny
		}},
		{"json same as hcl", []string{docsKVPolicyJSON}, false, []check{
			{ResKey, "foo/x", AccessWrite, true},
			{ResKey, "foo/bar/secret", AccessRead, false},
			{ResOperator, "", AccessRead, true},
		}},
		{"longest prefix wins", []string{`
key_prefix "a/" { policy = "deny" }
key_prefix "a/b/" { policy = "write" }
key_prefix "a/b/c/" { policy = "read" }`}, false, []check{
			{ResKey, "a/x", AccessRead, false},
			{ResKey, "a/b/x", AccessWrite, true},
			{ResKey, "a/b/c/x", AccessRead, true},
			{ResKey, "a/b/c/x", AccessWrite, false}, // found read: no fall-through
		}},
		{"deny wins ties between policies", []string{
			`service "db" { policy = "write" }`,
			`service "db" { policy = "deny" }`,
			`service_prefix "" { policy = "write" }`,
		}, false, []check{
			{ResService, "db", AccessRead, false},
			{ResService, "web", AccessWrite, true},
		}},
		{"widest grant wins otherwise", []string{
			`key_prefix "k/" { policy = "read" }`,
			`key_prefix "k/" { policy = "write" }`,
			`key_prefix "l/" { policy = "list" }`,
		}, false, []check{
			{ResKey, "k/1", AccessWrite, true},
			{ResKey, "l/1", AccessList, true},
			{ResKey, "l/1", AccessRead, true},
			{ResKey, "l/1", AccessWrite, false},
		}},
		{"read does not grant list", []string{`key_prefix "" { policy = "read" }`}, false, []check{
			{ResKey, "x", AccessList, false},
		}},
		{"default allow with an explicit deny", []string{`key_prefix "secret/" { policy = "deny" }`}, true, []check{
			{ResKey, "public", AccessWrite, true},
			{ResKey, "secret/x", AccessRead, false},
			{ResOperator, "", AccessWrite, true},
			{ResACL, "", AccessRead, false}, // the default never grants acl
		}},
		{"dns policy", []string{dnsPolicy}, false, []check{
			{ResService, "web", AccessRead, true},
			{ResNode, "n1", AccessRead, true},
			{ResQuery, "q", AccessRead, true},
			{ResService, "web", AccessWrite, false},
			{ResKey, "x", AccessRead, false},
		}},
		{"vault storage policy", []string{vaultPolicy}, false, []check{
			{ResKey, "vault/core/keyring", AccessWrite, true},
			{ResKey, "other", AccessRead, false},
			{ResService, "vault", AccessWrite, true},
			{ResService, "vault2", AccessRead, false},
			{ResSession, "n1", AccessWrite, true},
			{ResAgent, "n1", AccessWrite, true},
		}},
		{"web with keyring and events", []string{webPolicy}, false, []check{
			{ResService, "web", AccessWrite, true},
			{ResService, "web-sidecar-proxy", AccessWrite, true},
			{ResService, "db", AccessRead, false},
			{ResEvent, "deploy", AccessWrite, true},
			{ResEvent, "other", AccessRead, true},
			{ResEvent, "other", AccessWrite, false},
			{ResKeyring, "", AccessRead, true},
			{ResKeyring, "", AccessWrite, false},
		}},
		{"management", []string{ManagementRules}, false, []check{
			{ResACL, "", AccessWrite, true},
			{ResKey, "any/thing", AccessWrite, true},
			{ResOperator, "", AccessWrite, true},
			{ResKeyring, "", AccessWrite, true},
			{ResService, "x", AccessWrite, true},
		}},
		{"no rules default deny", nil, false, []check{
			{ResKey, "", AccessRead, false},
			{ResOperator, "", AccessRead, false},
		}},
		{"unknown level wanted", []string{ManagementRules}, false, []check{
			{ResKey, "x", AccessDeny, false},
			{ResKey, "x", AccessDefault, false},
			{Resource(200), "x", AccessRead, false},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rules []Rules
			for _, p := range tc.policies {
				rules = append(rules, mustParse(t, p))
			}
			runChecks(t, NewAuthorizer("acc", tc.defaultAllow, rules...), tc.checks)
		})
	}
}

func TestIdentities(t *testing.T) {
	a := NewAuthorizer("acc", false, ServiceIdentityRules("web"), NodeIdentityRules("n1"))
	runChecks(t, a, []check{
		{ResService, "web", AccessWrite, true},
		{ResService, "web-sidecar-proxy", AccessWrite, true},
		{ResService, "db", AccessRead, true},
		{ResService, "db", AccessWrite, false},
		{ResNode, "n1", AccessWrite, true},
		{ResNode, "n2", AccessRead, true},
		{ResNode, "n2", AccessWrite, false},
		{ResKey, "x", AccessRead, false},
	})
}

func TestAllowedWritePrefix(t *testing.T) {
	a := NewAuthorizer("acc", false, mustParse(t, `
key_prefix "app/" { policy = "write" }
key "app/locked" { policy = "read" }
key_prefix "open/" { policy = "write" }
key_prefix "open/ro/" { policy = "read" }
key_prefix "all/" { policy = "write" }
`))
	tests := []struct {
		prefix string
		want   bool
	}{
		{"app/", false},   // an exact read rule under it
		{"app/x/", true},  // nothing less than write under app/x/
		{"open/", false},  // a prefix read rule under it
		{"all/", true},    //
		{"", false},       // no rule for the root: default deny
		{"other/", false}, //
	}
	for _, tc := range tests {
		if got := a.AllowedWritePrefix(ResKey, tc.prefix); got != tc.want {
			t.Errorf("AllowedWritePrefix(%q) = %v, want %v", tc.prefix, got, tc.want)
		}
	}
	var none *Authorizer
	if none.AllowedWritePrefix(ResKey, "x") || none.Allowed(ResKey, "x", AccessRead) {
		t.Error("a nil Authorizer allowed something")
	}
}

func TestCheckNamesTheMissingRule(t *testing.T) {
	a := NewAuthorizer("1b4f-accessor", false, mustParse(t, `key_prefix "app/" { policy = "write" }`))
	if err := a.Check(ResKey, "app/x", AccessWrite); err != nil {
		t.Fatalf("Check(app/x) = %v", err)
	}
	err := a.Check(ResKey, "other/x", AccessWrite)
	if !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("Check(other/x) = %v, want ErrPermissionDenied", err)
	}
	want := `Permission denied: token with AccessorID '1b4f-accessor' lacks permission 'key:write' on "other/x"`
	if err.Error() != want {
		t.Errorf("Check(other/x) = %q, want %q", err, want)
	}
	err = a.Check(ResOperator, "", AccessRead)
	if err == nil || !strings.HasSuffix(err.Error(), "lacks permission 'operator:read'") {
		t.Errorf("Check(operator) = %v", err)
	}
	var none *Authorizer
	if err := none.Check(ResKey, "x", AccessRead); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("nil Authorizer Check = %v, want a denial", err)
	}
}
