package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// withAddr puts addr after the command words of args (members; kv get),
// before its flags and arguments.
func withAddr(args []string, addr string) []string {
	i := 1
	if args[0] == "kv" || args[0] == "catalog" {
		i = 2
	}
	return append(args[:i:i], append([]string{addr}, args[i:]...)...)
}

// TestUsageErrorsAreOneLine checks a mistake prints one line and a hint,
// as Consul's CLI, while -h still prints the whole usage and exits 0.
func TestUsageErrorsAreOneLine(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string // the whole of stderr
	}{
		{[]string{"kv", "get", "-bogus", "x"}, "flag provided but not defined: -bogus\nsee meridian kv get -h\n"},
		{[]string{"kv", "get"}, "meridian kv get: missing KEY argument\nsee meridian kv get -h\n"},
		{[]string{"kv", "put", "-acquire", "k"}, "meridian kv put: -acquire and -release need -session\nsee meridian kv put -h\n"},
		{[]string{"kv", "delete", "-cas", "-recurse", "k"}, "meridian kv delete: -cas and -recurse cannot be used together\nsee meridian kv delete -h\n"},
		{[]string{"members", "x"}, "meridian members: expected no arguments, got 1 argument(s)\nsee meridian members -h\n"},
		{[]string{"members", "-status", "("}, "meridian members: -status \"(\" is not a regular expression: error parsing regexp: missing closing ): `(`\nsee meridian members -h\n"},
		{[]string{"catalog", "nodes", "-node-meta", "nokey"}, "meridian catalog nodes: -node-meta \"nokey\" is not key=value\nsee meridian catalog nodes -h\n"},
		{[]string{"catalog", "services", "-wat"}, "flag provided but not defined: -wat\nsee meridian catalog services -h\n"},
		{[]string{"watch", "-type", "frob"}, "meridian watch: unknown -type \"frob\" (key, keyprefix, services, nodes, service, checks or event)\nsee meridian watch -h\n"},
		{[]string{"watch", "-type", "service"}, "meridian watch: -type service needs -service\nsee meridian watch -h\n"},
		{[]string{"join"}, "meridian join: expected at least one address to join\nsee meridian join -h\n"},
		{[]string{"rtt"}, "meridian rtt: expected one or two node names\nsee meridian rtt -h\n"},
		{[]string{"lock", "p"}, "meridian lock: expected PREFIX and a command, got 1 argument(s)\nsee meridian lock -h\n"},
		{[]string{"kv", "export", "a", "b"}, "meridian kv export: expected at most one prefix, got 2 argument(s)\nsee meridian kv export -h\n"},
		{[]string{"query", "explain", "-nope"}, "flag provided but not defined: -nope\nsee meridian query explain -h\n"},
	}
	for _, tc := range tests {
		code, out, errOut := meridian(tc.args...)
		if code != 1 || out != "" || errOut != tc.wantErr {
			t.Errorf("meridian %v = exit %d, stdout %q, stderr %q; want exit 1 and stderr %q", tc.args, code, out, errOut, tc.wantErr)
		}
	}

	// -h and --help print the whole usage, with every option, and exit 0.
	for _, args := range [][]string{{"kv", "get", "-h"}, {"kv", "put", "--help"}, {"members", "-help"}, {"catalog", "nodes", "-h"}, {"watch", "-h"}} {
		code, _, errOut := meridian(args...)
		if code != 0 || !strings.Contains(errOut, "Usage: meridian "+strings.Join(args[:len(args)-1], " ")) || !strings.Contains(errOut, "Options:") || !strings.Contains(errOut, "-token-file") {
			t.Errorf("meridian %v = exit %d, stderr %q; want exit 0 and the whole usage", args, code, errOut)
		}
	}
}

// TestEveryClientCommandTakesAToken checks -token and -token-file are on
// every command that talks to an agent.
func TestEveryClientCommandTakesAToken(t *testing.T) {
	for _, cmd := range []string{
		"members", "join", "leave", "force-leave", "info", "monitor", "rtt", "reload",
		"kv get", "kv put", "kv delete", "kv export", "kv import", "lock", "watch",
		"catalog datacenters", "catalog nodes", "catalog services",
		"services register", "services deregister", "operator raft list-peers",
		"snapshot save", "snapshot restore", "query list", "keyring", "acl token list",
	} {
		args := append(strings.Fields(cmd), "-h")
		code, _, errOut := meridian(args...)
		if code != 0 || !strings.Contains(errOut, "-token string") || !strings.Contains(errOut, "-token-file string") {
			t.Errorf("meridian %s -h = exit %d, usage lacks -token and -token-file:\n%s", cmd, code, errOut)
		}
	}
}

func TestMembersAndCatalogAsConsul(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	addr := "-http-addr=" + c.Clients[0].HTTPAddr()
	cat := c.Servers[0].API().Catalog()
	if _, err := cat.Register(&api.CatalogRegistration{
		Node: "ext", Address: "10.0.0.9", NodeMeta: map[string]string{"rack": "r1"},
		TaggedAddresses: map[string]string{"wan": "198.51.100.9"},
		Service:         &api.AgentService{ID: "db1", Service: "db", Tags: []string{"primary", "v2"}, Port: 5432},
	}, nil); err != nil {
		t.Fatal(err)
	}

	header := regexp.MustCompile(`^Node\s+Address\s+Status\s+Type\s+Build\s+Protocol\s+DC\s+Partition\s+Segment\n`)
	server := regexp.MustCompile(`(?m)^server1\s+127\.0\.0\.1:\d+\s+alive\s+server\s+\S+\s+\d+\s+dc1\s+default\s+<all>$`)
	client := regexp.MustCompile(`(?m)^client1\s+127\.0\.0\.1:\d+\s+alive\s+client\s+\S+\s+\d+\s+dc1\s+default\s+<default>$`)
	testcluster.Eventually(t, 10*time.Second, func() error {
		code, out, errOut := meridian("members", addr)
		if code != 0 || !header.MatchString(out) || !server.MatchString(out) || !client.MatchString(out) {
			return fmt.Errorf("members = exit %d, %q, %q; want Consul's columns", code, out, errOut)
		}
		return nil
	})
	steps := []struct {
		args     []string
		wantCode int
		want     string // regexp on stdout
		not      string // text stdout must lack
	}{
		{[]string{"members", "-detailed"}, 0, `(?m)^Node\s+Address\s+Status\s+Tags\n(.|\n)*server1\s+\S+\s+alive\s+\S*role=consul`, "Protocol"},
		{[]string{"members", "-status", "^al"}, 0, `client1`, ""},
		{[]string{"members", "-status", "failed|left"}, 2, `^$`, ""},
		{[]string{"members", "-segment", "other"}, 0, `server1`, "client1"},
		{[]string{"catalog", "datacenters"}, 0, `^dc1\n$`, ""},
		{[]string{"catalog", "nodes"}, 0, `(?m)^Node\s+ID\s+Address\s+DC\n(.|\n)*^ext\s+10\.0\.0\.9\s+dc1$`, "rack"},
		{[]string{"catalog", "nodes", "-detailed"}, 0, `(?m)^Node\s+ID\s+Address\s+DC\s+TaggedAddresses\s+Meta\n(.|\n)*^ext\s+10\.0\.0\.9\s+dc1\s+wan=198\.51\.100\.9\s+rack=r1$`, ""},
		{[]string{"catalog", "nodes", "-node-meta", "rack=r1"}, 0, `ext`, "server1"},
		{[]string{"catalog", "nodes", "-service", "db"}, 0, `ext`, "server1"},
		{[]string{"catalog", "nodes", "-near", "server1"}, 0, `(?m)^Node(.|\n)*^server1\s`, ""},
		{[]string{"catalog", "nodes", "-datacenter", "dc1", "-stale"}, 0, `server1`, ""},
		{[]string{"catalog", "nodes", "-datacenter", "nowhere"}, 1, `^$`, ""},
		{[]string{"catalog", "services", "-node", "ext", "-tags"}, 0, `^db\s+primary,v2\n$`, ""},
		{[]string{"catalog", "services", "-node-meta", "rack=r1"}, 0, `^db\n$`, "consul"},
		{[]string{"catalog", "services", "-node", "nobody"}, 1, `^$`, ""},
	}
	for _, s := range steps {
		args := withAddr(s.args, addr)
		code, out, errOut := meridian(args...)
		if code != s.wantCode || !regexp.MustCompile(s.want).MatchString(out) || (s.not != "" && strings.Contains(out, s.not)) {
			t.Errorf("meridian %v = exit %d, stdout %q, stderr %q; want exit %d, stdout matching %q without %q", args, code, out, errOut, s.wantCode, s.want, s.not)
		}
	}
}

func TestKVFlagsAsConsul(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	addr := "-http-addr=" + c.Servers[0].HTTPAddr()
	kv := c.Servers[0].API().KV()
	sess, _, err := c.Servers[0].API().Session().Create(&api.SessionEntry{Name: "cli", Behavior: "release"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := c.Servers[0].API().Session().Create(&api.SessionEntry{Name: "other"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	index := func(key string) string {
		p, _, err := kv.Get(key, nil)
		if err != nil || p == nil {
			t.Fatalf("get %s: %v %v", key, p, err)
		}
		return fmt.Sprint(p.ModifyIndex)
	}
	steps := []struct {
		args     []string
		wantCode int
		want     string // the whole of stdout, or of stderr when wantCode != 0
	}{
		{[]string{"kv", "put", "-base64", "b/bin", "AAEC/w=="}, 0, "Success! Data written to: b/bin\n"},
		{[]string{"kv", "get", "-base64", "b/bin"}, 0, "AAEC/w==\n"},
		{[]string{"kv", "get", "-datacenter", "dc1", "-stale", "-recurse", "-base64", "b/"}, 0, "b/bin:AAEC/w==\n"},
		{[]string{"kv", "get", "-datacenter", "nowhere", "b/bin"}, 1, ""},
		{[]string{"kv", "put", "-base64", "b/bad", "not base64!"}, 1, ""},
		{[]string{"kv", "get", "b/none"}, 1, "Error! No key exists at: b/none\n"},
		{[]string{"kv", "put", "-cas", "-modify-index", "0", "b/new", "v1"}, 0, "Success! Data written to: b/new\n"},
		{[]string{"kv", "put", "-cas", "-modify-index", "0", "b/new", "v2"}, 1, "Error! Did not write to b/new: CAS failed\n"},
		{[]string{"kv", "put", "-acquire", "-session", sess, "b/lock", "held"}, 0, "Success! Lock acquired on: b/lock\n"},
		{[]string{"kv", "put", "-acquire", "-session", other, "b/lock", "mine"}, 1, "Error! Did not acquire lock\n"},
		{[]string{"kv", "get", "-detailed", "b/lock"}, 0, "CreateIndex"},
		{[]string{"kv", "put", "-release", "-session", sess, "b/lock", "done"}, 0, "Success! Lock released on: b/lock\n"},
		{[]string{"kv", "delete", "-cas", "-modify-index", "1", "b/new"}, 1, "Error! Did not delete key b/new: CAS failed\n"},
		{[]string{"kv", "get", "-keys", "-separator", ""}, 0, "b/bin\nb/lock\nb/new\n"},
		{[]string{"kv", "get", "-keys"}, 0, "b/\n"},
	}
	for _, s := range steps {
		args := withAddr(s.args, addr)
		code, out, errOut := meridian(args...)
		got := out
		if s.wantCode != 0 {
			got = errOut
		}
		if code != s.wantCode || (s.want != "" && !strings.HasPrefix(got, s.want)) || (s.want != "" && s.want[len(s.want)-1] == '\n' && got != s.want) {
			t.Errorf("meridian %v = exit %d, stdout %q, stderr %q; want exit %d and %q", args, code, out, errOut, s.wantCode, s.want)
		}
	}
	if p, _, err := kv.Get("b/lock", nil); err != nil || p == nil || p.Session != "" || string(p.Value) != "done" {
		t.Errorf("b/lock after acquire and release = %+v, %v; want value done and no session", p, err)
	}
	if p, _, err := kv.Get("b/new", nil); err != nil || p == nil || string(p.Value) != "v1" {
		t.Errorf("b/new after a failed CAS = %+v, %v; want v1", p, err)
	}
	code, out, errOut := meridian("kv", "delete", addr, "-cas", "-modify-index", index("b/new"), "b/new")
	if code != 0 || out != "Success! Deleted key: b/new\n" {
		t.Errorf("kv delete -cas with the right index = exit %d, %q, %q", code, out, errOut)
	}

	// export, then import under another prefix.
	code, exported, errOut := meridian("kv", "export", addr, "-stale", "b/")
	if code != 0 {
		t.Fatalf("kv export = %d %q", code, errOut)
	}
	file := filepath.Join(t.TempDir(), "export.json")
	if err := os.WriteFile(file, []byte(exported), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := meridian("kv", "import", addr, "-prefix", "copy/", "@"+file); code != 0 || out != "Imported 2 key(s)\n" {
		t.Fatalf("kv import -prefix = exit %d, %q, %q", code, out, errOut)
	}
	if p, _, err := kv.Get("copy/b/bin", nil); err != nil || p == nil || string(p.Value) != "\x00\x01\x02\xff" {
		t.Errorf("copy/b/bin after import = %+v, %v", p, err)
	}
	if code, out, _ := meridian("kv", "delete", addr, "-recurse", "copy/"); code != 0 || out != "Success! Deleted keys with prefix: copy/\n" {
		t.Errorf("kv delete -recurse = %d %q", code, out)
	}
}

// TestTokenOnEveryCommand checks reads and writes carry -token,
// -token-file, CONSUL_HTTP_TOKEN and MERIDIAN_HTTP_TOKEN, against an agent
// that denies by default.
func TestTokenOnEveryCommand(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Configure: func(cfg *configs.Config) {
		cfg.ACL.Enabled = true
		cfg.ACL.DefaultPolicy = configs.ACLDeny
	}})
	addr := "-http-addr=" + c.Servers[0].HTTPAddr()
	for _, k := range []string{"MERIDIAN_HTTP_TOKEN", "CONSUL_HTTP_TOKEN", "MERIDIAN_HTTP_TOKEN_FILE", "CONSUL_HTTP_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	var boot acl.Token
	testcluster.Eventually(t, 10*time.Second, func() error {
		code, out, errOut := meridian("acl", "bootstrap", addr, "-format", "json")
		if code != 0 {
			return fmt.Errorf("acl bootstrap = %d %q %q", code, out, errOut)
		}
		return json.Unmarshal([]byte(out), &boot)
	})
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(boot.SecretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	if code, _, errOut := meridian("kv", "put", addr, "t/a", "v"); code != 1 || !strings.Contains(errOut, "403") {
		t.Errorf("kv put without a token = exit %d, %q; want a 403", code, errOut)
	}
	if code, out, errOut := meridian("kv", "put", addr, "-token-file", file, "t/a", "v"); code != 0 || out != "Success! Data written to: t/a\n" {
		t.Errorf("kv put -token-file = exit %d, %q, %q", code, out, errOut)
	}
	if code, out, errOut := meridian("kv", "get", addr, "-token", boot.SecretID, "t/a"); code != 0 || out != "v\n" {
		t.Errorf("kv get -token = exit %d, %q, %q", code, out, errOut)
	}
	if code, out, errOut := meridian("catalog", "services", addr); code != 0 || strings.Contains(out, "consul") {
		t.Errorf("catalog services without a token = exit %d, %q, %q; want an empty list", code, out, errOut)
	}
	t.Setenv("CONSUL_HTTP_TOKEN", boot.SecretID)
	if code, out, errOut := meridian("catalog", "services", addr); code != 0 || !strings.Contains(out, "consul") {
		t.Errorf("catalog services with CONSUL_HTTP_TOKEN = exit %d, %q, %q", code, out, errOut)
	}
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	t.Setenv("MERIDIAN_HTTP_TOKEN", boot.SecretID)
	if code, out, errOut := meridian("members", addr, "-detailed"); code != 0 || !strings.Contains(out, "server1") {
		t.Errorf("members with MERIDIAN_HTTP_TOKEN = exit %d, %q, %q", code, out, errOut)
	}
	// The watch carries the token too.
	out, _ := startWatch(t, addr, "-type", "key", "-key", "t/a")
	testcluster.Eventually(t, 10*time.Second, func() error {
		if s := out.String(); !strings.Contains(s, `"Key": "t/a"`) {
			return fmt.Errorf("watch with MERIDIAN_HTTP_TOKEN printed %q", s)
		}
		return nil
	})
}

func TestWatchCatalogAndHealth(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	addr := "-http-addr=" + c.Servers[0].HTTPAddr()
	agent := c.Servers[0].API().Agent()
	dir := t.TempDir()
	seen := filepath.Join(dir, "services.json")

	// A handler as trailing args gets the JSON on its stdin.
	startWatch(t, addr, "-type", "services", "-datacenter", "dc1", "cat >> "+seen)
	svcOut, _ := startWatch(t, addr, "-type", "service", "-service", "web", "-passingonly", "-stale")
	nodesOut, _ := startWatch(t, addr, "-type", "nodes")
	checksOut, _ := startWatch(t, addr, "-type", "checks", "-service", "web")
	stateOut, _ := startWatch(t, addr, "-type", "checks", "-state", "critical")

	testcluster.Eventually(t, 10*time.Second, func() error {
		b, _ := os.ReadFile(seen)
		if !strings.Contains(string(b), `"consul": [`) {
			return fmt.Errorf("services handler saw %q", b)
		}
		if s := nodesOut.String(); !strings.Contains(s, `"Node": "server1"`) {
			return fmt.Errorf("nodes watch printed %q", s)
		}
		if s := svcOut.String(); !strings.Contains(s, "[]") {
			return fmt.Errorf("service watch printed %q, want an empty list first", s)
		}
		return nil
	})
	if err := agent.ServiceRegister(&api.AgentServiceRegistration{
		ID: "web1", Name: "web", Port: 80, Tags: []string{"v1"},
		Check: &api.AgentServiceCheck{TTL: "1h", Status: api.HealthPassing},
	}); err != nil {
		t.Fatal(err)
	}
	if err := agent.ServiceRegister(&api.AgentServiceRegistration{
		ID: "web2", Name: "web", Port: 81,
		Check: &api.AgentServiceCheck{TTL: "1h", Status: api.HealthCritical},
	}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		b, _ := os.ReadFile(seen)
		if !strings.Contains(string(b), `"web": [`) {
			return fmt.Errorf("services handler saw %q, want web", b)
		}
		if s := svcOut.String(); !strings.Contains(s, `"ID": "web1"`) || strings.Contains(s, `"ID": "web2"`) {
			return fmt.Errorf("service -passingonly watch printed %q, want web1 and not web2", s)
		}
		if s := checksOut.String(); !strings.Contains(s, `"ServiceID": "web1"`) || !strings.Contains(s, `"ServiceID": "web2"`) {
			return fmt.Errorf("checks -service watch printed %q", s)
		}
		if s := stateOut.String(); !strings.Contains(s, `"ServiceID": "web2"`) || strings.Contains(s, `"ServiceID": "web1"`) {
			return fmt.Errorf("checks -state critical watch printed %q", s)
		}
		return nil
	})
}
