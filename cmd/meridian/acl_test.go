package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// TestACLCommands drives the acl commands against an agent with ACLs on
// and default deny: bootstrap, a policy from a rules file, a role, a token
// read back with -token, -token-file and the environment, then the
// updates, clone and deletes.
func TestACLCommands(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Configure: func(cfg *configs.Config) {
		cfg.ACL.Enabled = true
		cfg.ACL.DefaultPolicy = configs.ACLDeny
	}})
	addr := "-http-addr=" + c.Servers[0].HTTPAddr()
	t.Setenv("MERIDIAN_HTTP_TOKEN", "")
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	t.Setenv("CONSUL_HTTP_TOKEN_FILE", "")

	var boot acl.Token
	testcluster.Eventually(t, 10*time.Second, func() error {
		args := []string{"acl", "bootstrap", addr, "-format", "json"}
		code, out, errOut := meridian(args...)
		if code != 0 {
			return &cliError{args: args, code: code, out: out, errOut: errOut}
		}
		return json.Unmarshal([]byte(out), &boot)
	})
	if code, _, errOut := meridian("acl", "bootstrap", addr); code != 1 || !strings.Contains(errOut, "reset index") {
		t.Errorf("second bootstrap: exit %d, %q", code, errOut)
	}
	mgmt := "-token=" + boot.SecretID

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.hcl")
	rules := filepath.Join(dir, "app.hcl")
	for path, text := range map[string]string{bad: "key_prefix \"app/\" {\n  policy = \"rwx\"\n}\n", rules: `key_prefix "app/" { policy = "write" }` + "\n"} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, errOut := meridian("acl", "policy", "create", addr, mgmt, "-name", "app", "-rules", "@"+bad); code != 1 || !strings.Contains(errOut, "line 2, column 12") {
		t.Errorf("policy create with bad rules: exit %d, %q; want line and column", code, errOut)
	}
	code, out, errOut := meridian("acl", "policy", "create", addr, mgmt, "-name", "app", "-rules", "@"+rules)
	if code != 0 || !strings.Contains(out, "Name:") || !strings.Contains(out, `key_prefix "app/"`) {
		t.Fatalf("policy create: exit %d, %q, %q", code, out, errOut)
	}
	if code, out, _ := meridian("acl", "policy", "read", addr, mgmt, "-name", "app"); code != 0 || !strings.Contains(out, "app") {
		t.Errorf("policy read -name: exit %d, %q", code, out)
	}
	if code, _, errOut := meridian("acl", "policy", "list", addr); code != 1 || !strings.Contains(errOut, "Permission denied") {
		t.Errorf("policy list without a token: exit %d, %q; want permission denied", code, errOut)
	}
	if code, out, errOut := meridian("acl", "role", "create", addr, mgmt, "-name", "web", "-service-identity", "web", "-policy-name", "app"); code != 0 || !strings.Contains(out, "web (Datacenters: all)") {
		t.Fatalf("role create: exit %d, %q, %q", code, out, errOut)
	}
	if code, out, errOut := meridian("acl", "role", "read", addr, mgmt, "-name", "web", "-format", "json"); code != 0 || !strings.Contains(out, `"ServiceName": "web"`) {
		t.Errorf("role read -name -format json: exit %d, %q, %q", code, out, errOut)
	}
	if code, _, errOut := meridian("acl", "role", "read", addr, mgmt, "-id", "x", "-name", "web"); code != 1 || !strings.Contains(errOut, "give -id or -name, not both") {
		t.Errorf("role read with -id and -name: exit %d, %q", code, errOut)
	}

	code, out, errOut = meridian("acl", "token", "create", addr, mgmt, "-description", "app token", "-policy-name", "app", "-format", "json")
	var tok acl.Token
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || tok.SecretID == "" {
		t.Fatalf("token create: exit %d, %q, %q", code, out, errOut)
	}
	// The token works with -token, -token-file and each variable.
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(tok.SecretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := meridian("kv", "put", addr, "-token-file", tokenFile, "app/x", "1"); code != 0 {
		t.Errorf("kv put with -token-file: exit %d, %q", code, errOut)
	}
	if code, _, errOut := meridian("kv", "put", addr, "-token", tok.SecretID, "other/x", "1"); code != 1 || !strings.Contains(errOut, "key:write") {
		t.Errorf("kv put outside the policy: exit %d, %q; want a denial naming key:write", code, errOut)
	}
	for _, env := range []string{"MERIDIAN_HTTP_TOKEN", "CONSUL_HTTP_TOKEN"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, tok.SecretID)
			if code, out, errOut := meridian("acl", "token", "read", addr, "-self"); code != 0 || !strings.Contains(out, tok.AccessorID) {
				t.Errorf("token read -self with %s: exit %d, %q, %q", env, code, out, errOut)
			}
		})
	}
	t.Run("CONSUL_HTTP_TOKEN_FILE", func(t *testing.T) {
		t.Setenv("CONSUL_HTTP_TOKEN_FILE", tokenFile)
		if code, out, errOut := meridian("acl", "token", "read", addr, "-self"); code != 0 || !strings.Contains(out, tok.AccessorID) {
			t.Errorf("token read -self with CONSUL_HTTP_TOKEN_FILE: exit %d, %q, %q", code, out, errOut)
		}
	})
	if code, _, errOut := meridian("kv", "get", addr, "-token-file", filepath.Join(dir, "missing"), "app/x"); code != 1 || !strings.Contains(errOut, "token file") {
		t.Errorf("missing token file: exit %d, %q", code, errOut)
	}

	if code, out, errOut := meridian("acl", "token", "update", addr, mgmt, "-id", tok.AccessorID, "-description", "renamed", "-role-name", "web"); code != 0 || !strings.Contains(out, "renamed") || !strings.Contains(out, "Roles:") {
		t.Errorf("token update: exit %d, %q, %q", code, out, errOut)
	}
	if code, out, _ := meridian("acl", "token", "list", addr, mgmt); code != 0 || !strings.Contains(out, tok.AccessorID) || !strings.Contains(out, "global-management") {
		t.Errorf("token list: exit %d, %q", code, out)
	}
	code, out, errOut = meridian("acl", "token", "clone", addr, mgmt, "-id", tok.AccessorID, "-description", "copy", "-format", "json")
	var clone acl.Token
	if code != 0 || json.Unmarshal([]byte(out), &clone) != nil || clone.Description != "copy" {
		t.Fatalf("token clone: exit %d, %q, %q", code, out, errOut)
	}
	if code, _, errOut := meridian("acl", "token", "delete", addr, mgmt, "-id", clone.AccessorID); code != 0 {
		t.Errorf("token delete: exit %d, %q", code, errOut)
	}
	if code, _, errOut := meridian("acl", "set-agent-token", addr, mgmt, "default", tok.SecretID); code != 0 {
		t.Errorf("set-agent-token: exit %d, %q", code, errOut)
	}
	if code, _, errOut := meridian("acl", "set-agent-token", addr, mgmt, "bogus", tok.SecretID); code != 1 || !strings.Contains(errOut, "not one of") {
		t.Errorf("set-agent-token bogus: exit %d, %q", code, errOut)
	}
	if code, _, errOut := meridian("acl", "role", "delete", addr, mgmt, "-name", "web"); code != 0 {
		t.Errorf("role delete: exit %d, %q", code, errOut)
	}
	if code, _, errOut := meridian("acl", "policy", "delete", addr, mgmt, "-name", "app"); code != 0 {
		t.Errorf("policy delete: exit %d, %q", code, errOut)
	}
	if code, _, errOut := meridian("acl", "policy", "read", addr, mgmt); code != 1 || !strings.Contains(errOut, "missing -id or -name") {
		t.Errorf("policy read without a name: exit %d, %q", code, errOut)
	}
	if code, out, _ := meridian("acl", "-h"); code != 0 || !strings.Contains(out, "set-agent-token") {
		t.Errorf("acl -h: exit %d, %q", code, out)
	}
}
