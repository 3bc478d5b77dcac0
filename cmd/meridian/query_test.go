package main

import (
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

func TestQueryCommands(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	client := c.Clients[0]
	addr := "-http-addr=" + client.HTTPAddr()
	for i, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		reg := &api.AgentServiceRegistration{ID: "web" + string(rune('1'+i)), Name: "web", Address: ip, Port: 80, Tags: []string{"v1"}}
		if err := client.API().Agent().ServiceRegister(reg); err != nil {
			t.Fatal(err)
		}
	}
	pq := client.API().PreparedQuery()
	if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "web", Service: api.ServiceQuery{Service: "web", Failover: api.QueryFailoverOptions{NearestN: 2}}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "geo-", Template: api.QueryTemplate{Type: "name_prefix_match"}, Service: api.ServiceQuery{Service: "${name.suffix}", Tags: []string{"v1"}}}, nil); err != nil {
		t.Fatal(err)
	}

	runSteps(t, []cliStep{
		{"list", []string{"query", "list", addr}, 0, []string{"web", "geo-", "name_prefix_match", "nearest 2"}},
		{"exec", []string{"query", "exec", addr, "web"}, 0, []string{"answered by dc1 after 0 failover(s): 2 instance(s)", "10.0.0.1", "10.0.0.2"}},
		{"exec flags after the name", []string{"query", "exec", "web", addr, "-limit", "1"}, 0, []string{": 1 instance(s)"}},
		{"exec a template", []string{"query", "exec", addr, "geo-web"}, 0, []string{"Service web", "2 instance(s)"}},
		{"explain", []string{"query", "explain", addr, "geo-web"}, 0, []string{`"Service": "web"`, `"Name": "geo-"`}},
		{"help", []string{"query", "--help"}, 0, []string{"meridian query exec NAME|ID"}},
	})

	bad := []struct {
		name string
		args []string
		want string // substring of stderr
	}{
		{"unknown query", []string{"query", "exec", addr, "nope"}, "404"},
		{"no name", []string{"query", "exec", addr}, "expected one query name"},
		{"two names", []string{"query", "explain", addr, "a", "b"}, "expected one query name"},
		{"negative limit", []string{"query", "exec", addr, "web", "-limit", "-1"}, "must not be negative"},
		{"unknown subcommand", []string{"query", "run"}, "unknown subcommand"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			code, out, errOut := meridian(b.args...)
			if code == 0 || !strings.Contains(errOut, b.want) {
				t.Errorf("meridian %v = %d, stdout %q, stderr %q; want failure naming %q", b.args, code, out, errOut, b.want)
			}
		})
	}
	if code, _, errOut := meridian("query", "exec", "-h"); code != 0 || !strings.Contains(errOut, "-limit") {
		t.Errorf("query exec -h = %d %q, want the options", code, errOut)
	}
}
