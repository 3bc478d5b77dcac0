package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// extNodeOps registers, in one transaction, a KV key, node ext1 with a
// serfHealth check, service web1 on it and that service's check.
func extNodeOps() api.TxnOps {
	return api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "txn/a", Value: []byte("1")}},
		{Node: &api.NodeTxnOp{Verb: api.NodeSet, Node: api.Node{Node: "ext1", Address: "10.1.0.1", Meta: map[string]string{"rack": "r1"}}}},
		{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: "ext1", Service: api.AgentService{ID: "web1", Service: "web", Port: 8080, Tags: []string{"v1"}}}},
		{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{Node: "ext1", CheckID: "serfHealth", Name: "Serf", Status: api.HealthPassing}}},
		{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{Node: "ext1", CheckID: "web1-http", Name: "web http", ServiceID: "web1", Status: api.HealthPassing}}},
	}
}

// TestTxnCatalogAndKVInOneEntry: KV, node, service and check operations
// of one transaction apply together, at one Raft index, through a client
// agent (the RPC path) and answer Consul's Results; the catalog and KV
// reads then see all of it.
func TestTxnCatalogAndKVInOneEntry(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	client := c.Clients[0].API()

	ok, resp, _, err := client.Txn().Txn(extNodeOps(), nil)
	if err != nil || !ok {
		t.Fatalf("Txn = ok %v, %v, %+v; want applied", ok, err, resp)
	}
	if len(resp.Results) != 5 {
		t.Fatalf("Txn results = %d, want 5 (one per operation)", len(resp.Results))
	}
	kv, node, svc, check := resp.Results[0].KV, resp.Results[1].Node, resp.Results[2].Service, resp.Results[4].Check
	if kv == nil || node == nil || svc == nil || check == nil {
		t.Fatalf("Txn results = %+v, want KV, Node, Service, Check, Check", resp.Results)
	}
	if node.Node != "ext1" || node.Address != "10.1.0.1" || node.Datacenter != "dc1" || node.Meta["rack"] != "r1" {
		t.Errorf("node result = %+v, want ext1 10.1.0.1 in dc1 with its meta", node)
	}
	if svc.ID != "web1" || svc.Service != "web" || svc.Port != 8080 {
		t.Errorf("service result = %+v, want web1 web:8080", svc)
	}
	if check.CheckID != "web1-http" || check.ServiceName != "web" || check.Status != api.HealthPassing {
		t.Errorf("check result = %+v, want web1-http of web, passing", check)
	}
	idx := kv.ModifyIndex
	for what, got := range map[string]uint64{"node": node.CreateIndex, "service": svc.CreateIndex, "check": check.CreateIndex} {
		if got != idx {
			t.Errorf("%s CreateIndex = %d, want the KV's %d: one Raft entry for the whole transaction", what, got, idx)
		}
	}

	if p, _, err := client.KV().Get("txn/a", nil); err != nil || p == nil || string(p.Value) != "1" {
		t.Errorf("KV get txn/a = %+v, %v", p, err)
	}
	entries, _, err := client.Health().Service("web", "", true, nil)
	if err != nil || len(entries) != 1 || entries[0].Node.Node != "ext1" || len(entries[0].Checks) != 2 {
		t.Fatalf("passing health of web = %+v, %v; want ext1 with serfHealth and web1-http", entries, err)
	}

	// A read-only transaction of gets, stale, from the client's server.
	ok, resp, meta, err := client.Txn().Txn(api.TxnOps{
		{Node: &api.NodeTxnOp{Verb: api.NodeGet, Node: api.Node{Node: "ext1"}}},
		{Service: &api.ServiceTxnOp{Verb: api.ServiceGet, Node: "ext1", Service: api.AgentService{ID: "web1"}}},
		{Check: &api.CheckTxnOp{Verb: api.CheckGet, Check: api.HealthCheck{Node: "ext1", CheckID: "web1-http"}}},
		{KV: &api.KVTxnOp{Verb: api.KVGet, Key: "txn/a"}},
	}, &api.QueryOptions{AllowStale: true})
	if err != nil || !ok || len(resp.Results) != 4 {
		t.Fatalf("read-only txn = ok %v, %v, %+v", ok, err, resp)
	}
	if resp.Results[0].Node.Address != "10.1.0.1" || resp.Results[1].Service.Port != 8080 ||
		resp.Results[2].Check.Status != api.HealthPassing || string(resp.Results[3].KV.Value) != "1" {
		t.Errorf("read-only txn results = %+v", resp.Results)
	}
	if meta.LastIndex < idx {
		t.Errorf("read-only txn index %d, want at least the write's %d", meta.LastIndex, idx)
	}

	// The server agent answers in-process: the same operations work there.
	ok, resp, _, err = c.Servers[0].API().Txn().Txn(api.TxnOps{
		{Service: &api.ServiceTxnOp{Verb: api.ServiceDelete, Node: "ext1", Service: api.AgentService{ID: "web1"}}},
	}, nil)
	if err != nil || !ok || len(resp.Results) != 0 {
		t.Fatalf("service delete on the server agent = ok %v, %v, %+v; want applied, no result", ok, err, resp)
	}
	if entries, _, _ := client.Health().Service("web", "", false, nil); len(entries) != 0 {
		t.Errorf("web after its delete = %d instances, want 0", len(entries))
	}
	if checks, _, _ := client.Health().Node("ext1", nil); len(checks) != 1 {
		t.Errorf("ext1 checks after the service delete = %d, want serfHealth only (web1-http went with web1)", len(checks))
	}
}

// TestTxnRollsBackWhole: one failing operation (a service on a node that
// does not exist, a stale CAS, a get of nothing) rolls the whole
// transaction back, answers 409 with Consul's OpIndex and What for each,
// and nothing is applied.
func TestTxnRollsBackWhole(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	client := c.Clients[0].API()
	if ok, _, _, err := client.Txn().Txn(extNodeOps(), nil); err != nil || !ok {
		t.Fatalf("setup txn: ok %v, %v", ok, err)
	}
	node, _, err := client.Catalog().Node("ext1", nil)
	if err != nil || node == nil {
		t.Fatal(err)
	}
	before := node.Node.ModifyIndex

	ok, resp, _, err := client.Txn().Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "txn/rolled-back", Value: []byte("x")}},
		{Node: &api.NodeTxnOp{Verb: api.NodeSet, Node: api.Node{Node: "ext2", Address: "10.1.0.2"}}},
		{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: "ghost", Service: api.AgentService{ID: "db1", Service: "db"}}},
		{Node: &api.NodeTxnOp{Verb: api.NodeCAS, Node: api.Node{Node: "ext1", Address: "10.9.9.9", ModifyIndex: before + 100}}},
		{Check: &api.CheckTxnOp{Verb: api.CheckGet, Check: api.HealthCheck{Node: "ext1", CheckID: "nope"}}},
		{Node: &api.NodeTxnOp{Verb: api.NodeDelete, Node: api.Node{Node: "ext1"}}},
	}, nil)
	if err != nil || ok || resp == nil {
		t.Fatalf("Txn = ok %v, %v, %+v; want 409 with errors", ok, err, resp)
	}
	want := map[int]string{
		2: `node "ghost"`,
		3: `failed to set node "ext1", index is stale`,
		4: `check "nope" on node "ext1" doesn't exist`,
	}
	if len(resp.Errors) != len(want) || len(resp.Results) != 0 {
		t.Fatalf("Txn errors = %+v, results %d; want ops 2, 3 and 4 and no results", resp.Errors, len(resp.Results))
	}
	for _, e := range resp.Errors {
		if !strings.Contains(e.What, want[e.OpIndex]) {
			t.Errorf("error of op %d = %q, want it to say %q", e.OpIndex, e.What, want[e.OpIndex])
		}
	}
	if p, _, _ := client.KV().Get("txn/rolled-back", nil); p != nil {
		t.Error("rolled back txn wrote its key")
	}
	if n, _, _ := client.Catalog().Node("ext2", nil); n != nil {
		t.Error("rolled back txn registered ext2")
	}
	n, _, _ := client.Catalog().Node("ext1", nil)
	if n == nil || n.Node.Address != "10.1.0.1" || n.Node.ModifyIndex != before || len(n.Services) != 1 {
		t.Errorf("ext1 after the rolled back txn = %+v, want it untouched (deleted by op 5 only if the txn applied)", n)
	}

	// CAS with the right indexes applies; delete-cas with a stale one does not.
	ok, resp, _, err = client.Txn().Txn(api.TxnOps{
		{Node: &api.NodeTxnOp{Verb: api.NodeCAS, Node: api.Node{Node: "ext1", Address: "10.1.0.9", ModifyIndex: before}}},
		{Node: &api.NodeTxnOp{Verb: api.NodeCAS, Node: api.Node{Node: "ext3", Address: "10.1.0.3"}}},
	}, nil)
	if err != nil || !ok || len(resp.Results) != 2 || resp.Results[0].Node.Address != "10.1.0.9" {
		t.Fatalf("node cas = ok %v, %v, %+v", ok, err, resp)
	}
	ok, resp, _, err = client.Txn().Txn(api.TxnOps{
		{Node: &api.NodeTxnOp{Verb: api.NodeDeleteCAS, Node: api.Node{Node: "ext3", ModifyIndex: 1}}},
	}, nil)
	if err != nil || ok || len(resp.Errors) != 1 || resp.Errors[0].What != `failed to delete node "ext3", index is stale` {
		t.Errorf("stale node delete-cas = ok %v, %v, %+v", ok, err, resp)
	}

	// Bad input never reaches Raft: a 400 naming the operation.
	base := "http://" + c.Clients[0].HTTPAddr()
	for _, body := range []string{
		`[{"Node":{"Verb":"frob","Node":{"Node":"x"}}}]`,
		`[{"Service":{"Verb":"set","Node":"ext1","Service":{"ID":"noname"}}}]`,
		`[{"Check":{"Verb":"set","Check":{"Node":"ext1","CheckID":"c","Status":"sad"}}}]`,
		`[{"KV":{"Verb":"get","Key":"a"},"Node":{"Verb":"get","Node":{"Node":"ext1"}}}]`,
	} {
		if code, msg := rawRequest(t, "PUT", base+"/v1/txn", []byte(body)); code != 400 || !strings.Contains(msg, "operation 0") || strings.Count(strings.TrimSpace(msg), "\n") > 0 {
			t.Errorf("txn %s = %d %q, want a one-line 400 naming operation 0", body, code, msg)
		}
	}
}

// TestTxnWakesCatalogBlockingQueries: a blocking read of a service's
// health, parked on the catalog, wakes when a transaction registers an
// instance; a session bound to a check goes when a transaction sets it
// critical, and one on a node when a transaction deletes the node.
func TestTxnWakesCatalogBlockingQueries(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, InMemory: true})
	client := c.Clients[0].API()
	_, meta, err := client.Health().Service("web", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		entries []*api.ServiceEntry
		err     error
		took    time.Duration
	}
	done := make(chan answer, 1)
	const wait = time.Minute
	go func() {
		start := time.Now()
		entries, _, err := client.Health().Service("web", "", false, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: wait})
		done <- answer{entries, err, time.Since(start)}
	}()
	// The blocking read may not be parked yet when the txn applies: either
	// way it must answer with the instance, long before its wait.
	if ok, _, _, err := client.Txn().Txn(extNodeOps(), nil); err != nil || !ok {
		t.Fatalf("txn: ok %v, %v", ok, err)
	}
	select {
	case a := <-done:
		if a.err != nil || len(a.entries) != 1 || a.entries[0].Service.ID != "web1" {
			t.Fatalf("blocking health read = %+v, %v; want web1", a.entries, a.err)
		}
		if a.took >= wait {
			t.Errorf("blocking read took %v: it waited out its wait instead of waking", a.took)
		}
	case <-time.After(wait + 30*time.Second):
		t.Fatal("blocking read never answered")
	}

	// A session bound to serfHealth (the default) goes when a transaction
	// sets that check critical, as a registration's would.
	bound, _, err := client.Session().Create(&api.SessionEntry{Node: "ext1", Name: "bound"}, nil)
	if err != nil {
		t.Fatalf("session on ext1: %v", err)
	}
	if ok, resp, _, err := client.Txn().Txn(api.TxnOps{
		{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{Node: "ext1", CheckID: "serfHealth", Name: "Serf", Status: api.HealthCritical}}},
	}, nil); err != nil || !ok {
		t.Fatalf("check critical txn: ok %v, %v, %+v", ok, err, resp)
	}
	if s, _, err := client.Session().Info(bound, nil); err != nil || s != nil {
		t.Errorf("session bound to the check set critical = %+v, %v; want it destroyed", s, err)
	}
	if ok, _, _, err := client.Txn().Txn(api.TxnOps{
		{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{Node: "ext1", CheckID: "serfHealth", Name: "Serf", Status: api.HealthPassing}}},
	}, nil); err != nil || !ok {
		t.Fatalf("check passing txn: ok %v, %v", ok, err)
	}
	id, _, err := client.Session().Create(&api.SessionEntry{Node: "ext1", Name: "on-ext1"}, nil)
	if err != nil {
		t.Fatalf("session on ext1: %v", err)
	}
	if ok, resp, _, err := client.Txn().Txn(api.TxnOps{
		{Node: &api.NodeTxnOp{Verb: api.NodeDelete, Node: api.Node{Node: "ext1"}}},
	}, nil); err != nil || !ok {
		t.Fatalf("node delete txn: ok %v, %v, %+v", ok, err, resp)
	}
	if s, _, err := client.Session().Info(id, nil); err != nil || s != nil {
		t.Errorf("session on the deleted node = %+v, %v; want it destroyed", s, err)
	}
	if entries, _, _ := client.Health().Service("web", "", false, nil); len(entries) != 0 {
		t.Errorf("web after its node's delete = %d instances, want 0", len(entries))
	}
}

// txnAs sends a raw transaction with a token and answers the status and
// body.
func txnAs(t *testing.T, addr, token string, ops api.TxnOps) (int, string) {
	t.Helper()
	body, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("PUT", "http://"+addr+"/v1/txn", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Consul-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTxnACLPerOperation: each operation needs what its single endpoint
// needs (key, node, service write; read for gets); one denied operation
// refuses the whole transaction with 403 and applies nothing, also when
// only the catalog can name the service (an ID-only delete, checked by the
// server).
func TestTxnACLPerOperation(t *testing.T) {
	c, secret := aclAgents(t)
	node := c.Clients[0]
	mgmt := withToken(node, t, secret)
	if ok, _, _, err := mgmt.Txn().Txn(extNodeOps(), nil); err != nil || !ok {
		t.Fatalf("management txn: ok %v, %v", ok, err)
	}
	limited := tokenWith(t, mgmt, "txn-limited", `
key_prefix "txn/" { policy = "write" }
node_prefix "ext" { policy = "write" }
service "db" { policy = "write" }
service "web" { policy = "read" }
`)
	cases := []struct {
		name string
		ops  api.TxnOps
		code int
		says string
	}{
		{"allowed", api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "txn/b", Value: []byte("2")}},
			{Node: &api.NodeTxnOp{Verb: api.NodeSet, Node: api.Node{Node: "ext2", Address: "10.1.0.2"}}},
			{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: "ext2", Service: api.AgentService{ID: "db1", Service: "db"}}},
			{Service: &api.ServiceTxnOp{Verb: api.ServiceGet, Node: "ext1", Service: api.AgentService{ID: "web1"}}},
		}, 200, ""},
		{"service write denied", api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "txn/c", Value: []byte("3")}},
			{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: "ext1", Service: api.AgentService{ID: "web2", Service: "web"}}},
		}, 403, "service:write"},
		{"node write denied", api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "txn/c", Value: []byte("3")}},
			{Node: &api.NodeTxnOp{Verb: api.NodeSet, Node: api.Node{Node: "other", Address: "10.1.0.3"}}},
		}, 403, "node:write"},
		{"key write denied", api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "elsewhere", Value: []byte("3")}},
		}, 403, "key:write"},
		{"service named only by the catalog", api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "txn/c", Value: []byte("3")}},
			{Service: &api.ServiceTxnOp{Verb: api.ServiceDelete, Node: "ext1", Service: api.AgentService{ID: "web1"}}},
		}, 403, "service:write"},
		{"check of a service denied", api.TxnOps{
			{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{Node: "ext1", CheckID: "web1-http", ServiceID: "web1", Status: api.HealthCritical}}},
		}, 403, "service:write"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := txnAs(t, node.HTTPAddr(), limited, tc.ops)
			if code != tc.code || !strings.Contains(body, tc.says) {
				t.Fatalf("txn = %d %q, want %d naming %q", code, body, tc.code, tc.says)
			}
		})
	}
	if p, _, _ := mgmt.KV().Get("txn/c", nil); p != nil {
		t.Error("a refused txn wrote txn/c")
	}
	if entries, _, _ := mgmt.Health().Service("web", "", false, nil); len(entries) != 1 {
		t.Errorf("web instances after refused txns = %d, want web1 only", len(entries))
	}
	if checks, _, _ := mgmt.Health().Checks("web", nil); len(checks) != 1 || checks[0].Status != api.HealthPassing {
		t.Errorf("web checks after refused txns = %+v, want web1-http still passing", checks)
	}
}
