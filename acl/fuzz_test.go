package acl

import (
	"errors"
	"testing"
)

// FuzzParseRules feeds the rule parser arbitrary text: it must never
// panic, an error must be a *RuleError and come with no rules, and what
// parses must compile and deny anything no rule grants.
func FuzzParseRules(f *testing.F) {
	for _, seed := range []string{
		docsKVPolicyHCL, docsKVPolicyJSON, dnsPolicy, agentPolicy, vaultPolicy, webPolicy, ManagementRules,
		`key "a" { policy = "read" }`, `operator = "read"`, `{"key": {"a": [{"policy": "read"}]}}`,
		`key "a" {`, `{"key": }`, "key \"\\x\" { policy = \"read\" }", "service \"a\" { policy = <<EOT\nread\nEOT\n}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		rules, err := ParseRules(text)
		if err != nil {
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("ParseRules(%q) = %T %v, want a *RuleError", text, err, err)
			}
			if rules != nil {
				t.Fatalf("ParseRules(%q) returned rules with an error", text)
			}
			return
		}
		for _, r := range rules {
			if r.Resource >= numResources || r.Access < AccessDeny || r.Access > AccessWrite {
				t.Fatalf("ParseRules(%q) gave an impossible rule %+v", text, r)
			}
			if r.Access == AccessList && r.Resource != ResKey {
				t.Fatalf("ParseRules(%q) gave list on %s", text, r.Resource)
			}
		}
		a := NewAuthorizer("fuzz", false, rules)
		if a.Allowed(ResACL, "", AccessWrite) && !containsRule(rules, ResACL, AccessWrite) {
			t.Fatalf("ParseRules(%q): acl write without an acl rule", text)
		}
	})
}

func containsRule(rules Rules, res Resource, acc Access) bool {
	for _, r := range rules {
		if r.Resource == res && r.Access == acc {
			return true
		}
	}
	return false
}
