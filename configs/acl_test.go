package configs

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestLoadACL(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, []string{"-dev"}, nil)
	if c.ACL.Enabled || !c.ACL.DefaultAllow() || c.ACL.DownPolicy != ACLExtendCache || c.ACL.TokenTTL != 30*time.Second {
		t.Errorf("dev ACL defaults = %+v, want off, allow, extend-cache, 30s", c.ACL)
	}
	dir := writeFiles(t, map[string]string{
		"a.yaml": `data_dir: /d
primary_datacenter: dc1
acl:
  enabled: true
  default_policy: deny
  down_policy: deny
  enable_token_persistence: true
  token_ttl: 10s
  tokens:
    initial_management: 9a8c1f2e-1b3d-4c5e-8f70-0a1b2c3d4e5f
`,
		"b.json": `{"acl": {"tokens": {"agent": "1a8c1f2e-1b3d-4c5e-8f70-0a1b2c3d4e5f"}}}`,
	})
	c = mustLoad(t, []string{"-config-dir", dir}, nil)
	a := c.ACL
	if !a.Enabled || a.DefaultAllow() || a.DownPolicy != ACLDeny || !a.EnableTokenPersistence || a.TokenTTL != 10*time.Second || a.PolicyTTL != 30*time.Second {
		t.Errorf("ACL = %+v", a)
	}
	if a.Tokens.InitialManagement != "9a8c1f2e-1b3d-4c5e-8f70-0a1b2c3d4e5f" || a.Tokens.Agent != "1a8c1f2e-1b3d-4c5e-8f70-0a1b2c3d4e5f" || c.PrimaryDatacenter != "dc1" {
		t.Errorf("tokens = %+v, primary %q", a.Tokens, c.PrimaryDatacenter)
	}
	c = mustLoad(t, []string{"-dev"}, []string{"MERIDIAN_ACL_ENABLED=true", "MERIDIAN_ACL_DEFAULT_POLICY=deny"})
	if !c.ACL.Enabled || c.ACL.DefaultAllow() {
		t.Errorf("ACL from the environment = %+v, want on with deny", c.ACL)
	}
}

func TestLoadACLRefusesBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, want string
	}{
		{"default policy", "acl: {default_policy: maybe}", `acl.default_policy: must be "allow" or "deny", got "maybe"`},
		{"down policy", "acl: {down_policy: retry}", `acl.down_policy: must be "allow", "deny", "extend-cache" or "async-cache"`},
		{"ttl", "acl: {token_ttl: 0s}", "acl.token_ttl"},
		{"token not a uuid", "acl: {tokens: {agent: hunter2}}", "acl.tokens.agent: must be a UUID"},
		{"unknown key", "acl: {tokens: {agnet: x}}", `acl.tokens.agnet: unknown key, did you mean "agent"?`},
		{"primary dc", "primary_datacenter: DC.1", "primary_datacenter: must be lowercase"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, map[string]string{"a.yaml": "data_dir: /d\n" + tc.yaml + "\n"})
			_, err := Load([]string{"-config-dir", dir}, nil, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load(%s) = %v, want an error containing %q", tc.yaml, err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q echoes a secret", err)
			}
		})
	}
}
