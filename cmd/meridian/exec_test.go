package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// execCluster is one server and two clients; remote exec is enabled on
// server1 and client1 and left off (the default) on client2.
func execCluster(t *testing.T, acl bool) *testcluster.Cluster {
	t.Helper()
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 2, Configure: func(cfg *configs.Config) {
		cfg.DisableRemoteExec = cfg.NodeName == "client2"
		if acl {
			cfg.ACL.Enabled = true
			cfg.ACL.DefaultPolicy = configs.ACLDeny
		}
	}})
	if !acl {
		waitCatalogNodes(t, c.Servers[0].API(), 3)
	}
	return c
}

// waitCatalogNodes waits until the catalog lists n nodes: a session (which
// exec makes) needs its agent's node there.
func waitCatalogNodes(t *testing.T, client *api.Client, n int) {
	t.Helper()
	testcluster.Eventually(t, 15*time.Second, func() error {
		nodes, _, err := client.Catalog().Nodes(nil)
		if err != nil || len(nodes) != n {
			return fmt.Errorf("catalog lists %d nodes (%v), want %d", len(nodes), err, n)
		}
		return nil
	})
}

// runExecCmd runs `meridian exec` with args and answers its exit code and
// output.
func runExecCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code = execCmd(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestExecRunsWhereEnabled(t *testing.T) {
	c := execCluster(t, false)
	// -wait 5s: a loaded machine may take a while to deliver the event.
	addr := "-http-addr=" + c.Clients[0].HTTPAddr()

	code, out, errs := runExecCmd(t, addr, "-wait", "5s", "echo", "hi", "from", "'$(hostname)'", ";", "echo", "second line")
	if code != 0 {
		t.Fatalf("exec echo = exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{"    server1: hi from $(hostname)\n", "    client1: hi from $(hostname)\n", "    client1: second line\n",
		"==> server1: finished with exit code 0", "==> client1: finished with exit code 0", "2 / 2 node(s) completed / acknowledged"} {
		if !strings.Contains(out, want) {
			t.Errorf("exec stdout lacks %q:\n%s", want, out)
		}
	}
	for _, node := range []string{"server1", "client1"} {
		if i, j := strings.Index(out, "    "+node+": second line"), strings.Index(out, "==> "+node+": finished"); i < 0 || j < i {
			t.Errorf("%s's exit code is not printed after its output:\n%s", node, out)
		}
	}
	if strings.Contains(out, "client2:") {
		t.Errorf("client2 (remote exec disabled) ran the job:\n%s", out)
	}
	if !strings.Contains(errs, "did not acknowledge") || !strings.Contains(errs, "client2") || !strings.Contains(errs, "disable_remote_exec") {
		t.Errorf("exec stderr does not name client2 as not acknowledging:\n%s", errs)
	}

	// The worst exit code wins; -node narrows the nodes.
	code, out, errs = runExecCmd(t, addr, "-wait", "5s", "-node", "^client", "exit 3")
	if code != 3 || !strings.Contains(out, "==> client1: finished with exit code 3") || strings.Contains(out, "server1") {
		t.Fatalf("exec -node ^client 'exit 3' = exit %d, want 3 from client1 only\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}

	// The job's keys are gone afterwards.
	testcluster.Eventually(t, 10*time.Second, func() error {
		keys, _, err := c.Servers[0].API().KV().Keys("_rexec/", "", nil)
		if err != nil || len(keys) != 0 {
			return fmt.Errorf("keys under _rexec/: %v (%v), want none", keys, err)
		}
		return nil
	})
}

func TestExecTimeoutKills(t *testing.T) {
	c := execCluster(t, false)
	start := time.Now()
	code, out, errs := runExecCmd(t, "-http-addr="+c.Servers[0].HTTPAddr(), "-wait", "5s", "-node", "^client1$", "-timeout", "1s", "echo started; sleep 600")
	took := time.Since(start)
	if code != 124 {
		t.Fatalf("exec of a command that never ends = exit %d, want 124\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{"client1: started", "client1: meridian exec: killed after 1s", "finished with exit code 124"} {
		if !strings.Contains(out, want) {
			t.Errorf("exec stdout lacks %q:\n%s", want, out)
		}
	}
	if took > 30*time.Second {
		t.Errorf("exec took %v to give up on a job with -timeout 1s", took)
	}
}

func TestExecNobodyEnabled(t *testing.T) {
	c := execCluster(t, false)
	code, out, errs := runExecCmd(t, "-http-addr="+c.Servers[0].HTTPAddr(), "-node", "client2", "-wait", "1s", "uptime")
	if code != 1 || !strings.Contains(errs, "no node ran the command") || !strings.Contains(errs, "client2") {
		t.Fatalf("exec on client2 only (disabled) = exit %d, want 1 naming client2\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

func TestExecBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "expected a command"},
		{[]string{"-tag", "v1", "uptime"}, "-tag needs -service"},
		{[]string{"-node", "(", "uptime"}, "not a regular expression"},
		{[]string{"-wait", "0s", "uptime"}, "positive durations"},
	} {
		code, _, errs := runExecCmd(t, append([]string{"-http-addr=127.0.0.1:1"}, tc.args...)...)
		if code != 1 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("exec %v = exit %d, stderr %q; want exit 1 and one line with %q", tc.args, code, errs, tc.want)
		}
	}
}

// TestExecACL: with ACLs on, exec needs key write on _rexec/ (the KV
// guards), session write and event write on _rexec.
func TestExecACL(t *testing.T) {
	c := execCluster(t, true)
	srv := c.Servers[0]
	var boot *api.ACLToken
	testcluster.Eventually(t, 10*time.Second, func() error {
		var err error
		boot, _, err = srv.API().ACL().Bootstrap()
		return err
	})
	mgmt := apiWithToken(t, srv.HTTPAddr(), boot.SecretID)
	waitCatalogNodes(t, mgmt, 3)
	// The agents write acks and output with their agent token.
	for _, n := range append(c.Servers, c.Clients...) {
		if _, err := apiWithToken(t, n.HTTPAddr(), boot.SecretID).Agent().UpdateAgentACLToken(boot.SecretID, nil); err != nil {
			t.Fatal(err)
		}
	}
	token := func(rules string) string {
		pol, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: fmt.Sprintf("p%d", time.Now().UnixNano()), Rules: rules}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok.SecretID
	}
	base := `session_prefix "" { policy = "write" }
node_prefix "" { policy = "read" }
event "_rexec" { policy = "write" }
`
	noKV := token(base + `key_prefix "_rexec/" { policy = "read" }`)
	withKV := token(base + `key_prefix "_rexec/" { policy = "write" }`)
	addr := "-http-addr=" + srv.HTTPAddr()

	code, out, errs := runExecCmd(t, addr, "-token", noKV, "-node", "^client1$", "echo hi")
	if code != 1 || !strings.Contains(errs, "403") || !strings.Contains(errs, "_rexec/") {
		t.Fatalf("exec without key write on _rexec/ = exit %d, want 1 and a 403\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	code, out, errs = runExecCmd(t, addr, "-token", withKV, "-wait", "5s", "-node", "^client1$", "echo hi")
	if code != 0 || !strings.Contains(out, "    client1: hi\n") {
		t.Fatalf("exec with key write on _rexec/ = exit %d, want 0 and client1's hi\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

func apiWithToken(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token = addr, token
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestExecOtherDatacenter runs a job in dc2 from an agent of dc1: the
// session, the job and the answers live in dc2's KV.
func TestExecOtherDatacenter(t *testing.T) {
	enable := func(cfg *configs.Config) { cfg.DisableRemoteExec = false }
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Datacenter: "dc1", Configure: enable})
	dc2 := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Datacenter: "dc2", Configure: enable})
	testcluster.Federate(t, dc1, dc2)
	waitCatalogNodes(t, dc2.Servers[0].API(), 2)

	code, out, errs := runExecCmd(t, "-http-addr="+dc1.Clients[0].HTTPAddr(), "-datacenter", "dc2", "-wait", "5s", "echo in $(printf dc2)")
	if code != 0 || !strings.Contains(out, "    server1: in dc2\n") || !strings.Contains(out, "    client1: in dc2\n") || !strings.Contains(out, "2 / 2 node(s)") {
		t.Fatalf("exec -datacenter dc2 = exit %d, want 0 with both dc2 nodes\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, n := range append(dc1.Servers, dc1.Clients...) {
		if evs, _, err := n.API().Event().List("_rexec", nil); err != nil || len(evs) != 0 {
			t.Errorf("%s of dc1 holds %d _rexec events (%v), want none", n.Name, len(evs), err)
		}
	}
}

// TestExecAbsorbOrder: read in one answer, a node's output is printed in
// chunk order and before its exit code, a line split over two chunks
// whole, and nothing twice when the keys are read again.
func TestExecAbsorbOrder(t *testing.T) {
	var out bytes.Buffer
	e := &executor{stdout: &out, stderr: &out}
	dir := "_rexec/s1"
	pairs := []kvPair{
		{Key: dir + "/job"},
		{Key: dir + "/n1/exit", Value: []byte("3")},
		{Key: dir + "/n1/out/00001", Value: []byte("ld\nlast")},
		{Key: dir + "/n1/ack"},
		{Key: dir + "/n1/out/00000", Value: []byte("hello wor")},
	}
	nodes := map[string]*nodeState{}
	if !e.absorb(dir, pairs, nodes) {
		t.Fatal("absorb() = false on new keys, want true")
	}
	if e.absorb(dir, pairs, nodes) {
		t.Fatal("absorb() = true on keys already read, want false")
	}
	want := "    n1: hello world\n    n1: last\n==> n1: finished with exit code 3\n"
	if out.String() != want {
		t.Fatalf("absorb printed %q, want %q", out.String(), want)
	}
	if n := nodes["n1"]; n == nil || !n.acked || !n.exited || n.code != 3 {
		t.Fatalf("node state %+v, want acked, exited with 3", n)
	}
}
