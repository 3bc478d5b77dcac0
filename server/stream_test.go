package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
)

type healthEvent = server.HealthEvent

func webQuery(token string) *rpc.Query[catalog.ServiceRequest] {
	return &rpc.Query[catalog.ServiceRequest]{QueryOptions: rpc.QueryOptions{Token: token}, Args: catalog.ServiceRequest{Service: "web"}}
}

// evaluations is the server's consul_health_service_evaluations.
func evaluations(t *testing.T, httpAddr string) int {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/v1/agent/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "consul_health_service_evaluations "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	t.Fatal("no consul_health_service_evaluations metric")
	return 0
}

// TestSubscribeHealthSharesEvaluation: subscriptions of one service all
// get the same snapshot at the same index, first the current one and then
// one per change, and a change costs the server one evaluation and one
// encoding however many subscribe.
func TestSubscribeHealthSharesEvaluation(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	srv := c.Servers[0].Agent().Server()
	pool := rpc.NewPool(rpc.PoolConfig{})
	t.Cleanup(func() { pool.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	register := func(node, status string) {
		t.Helper()
		reg := catalog.RegisterRequest{Node: node, Address: "10.0.0.1", Service: &catalog.Service{ID: "web", Service: "web"},
			Check: &catalog.HealthCheck{Node: node, CheckID: "web-check", Name: "web", Status: status, ServiceID: "web"}}
		var wr rpc.WriteResult
		if err := pool.Call(ctx, c.Servers[0].ServerAddr(), rpc.MethodCatalogReg, &rpc.Write[catalog.RegisterRequest]{Args: reg}, &wr); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	register("ext1", catalog.HealthPassing)
	register("ext2", catalog.HealthPassing)
	const n = 20
	subs := make([]*rpc.Subscription, n)
	for i := range subs {
		sub, err := pool.Subscribe(ctx, c.Servers[0].ServerAddr(), rpc.MethodSubscribeHealth, webQuery(""))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Close() })
		subs[i] = sub
	}
	recvAll := func(after uint64) healthEvent {
		t.Helper()
		var first healthEvent
		for i, sub := range subs {
			var ev healthEvent
			if err := sub.Recv(&ev); err != nil {
				t.Fatalf("subscription %d: %v", i, err)
			}
			if ev.Index <= after {
				t.Fatalf("subscription %d: snapshot at index %d, want past %d", i, ev.Index, after)
			}
			if i == 0 {
				first = ev
			} else if ev.Index != first.Index || !reflect.DeepEqual(ev.Order, first.Order) || !reflect.DeepEqual(ev.Changed, first.Changed) {
				t.Fatalf("subscription %d: event at %d %+v, the first's at %d %+v", i, ev.Index, ev, first.Index, first)
			}
		}
		return first
	}
	ev := recvAll(0)
	if len(ev.Order) != 2 || len(ev.Changed) != 2 {
		t.Fatalf("first event = %d instances, %d sent; want the whole answer: ext1 and ext2", len(ev.Order), len(ev.Changed))
	}
	if open := srv.Subscriptions().Open; open != n {
		t.Errorf("Subscriptions() = %d open, want %d", open, n)
	}
	for _, status := range []string{catalog.HealthCritical, catalog.HealthPassing} {
		before := evaluations(t, c.Servers[0].HTTPAddr())
		stats := srv.Subscriptions()
		register("ext1", status)
		ev = recvAll(ev.Index)
		// A subscription counts its event once the write returned, which
		// can be after its reader has it.
		var now server.SubscriptionStats
		testcluster.Eventually(t, 5*time.Second, func() error {
			if now = srv.Subscriptions(); now.Snapshots-stats.Snapshots < n {
				return fmt.Errorf("%d snapshots counted, %d received", now.Snapshots-stats.Snapshots, n)
			}
			return nil
		})
		if got := now.Snapshots - stats.Snapshots; got != n {
			t.Errorf("one change: %d snapshots sent to %d subscriptions, want one each", got, n)
		}
		if got := now.Encodes - stats.Encodes; got > 2 {
			t.Errorf("one change: %d snapshots encoded for %d subscriptions, want one", got, n)
		}
		// Only what changed travels: ext1, not ext2.
		if len(ev.Order) != 2 || len(ev.Changed) != 1 || ev.Changed[0].Node.Node != "ext1" || ev.Changed[0].Checks[0].Status != status {
			t.Errorf("event after ext1's flip to %s: %d instances, sent %+v; want ext1 alone sent", status, len(ev.Order), ev.Changed)
		}
		if got := evaluations(t, c.Servers[0].HTTPAddr()) - before; got > 2 {
			t.Errorf("one change cost %d evaluations for %d subscriptions, want one", got, n)
		}
	}
	for _, sub := range subs {
		sub.Close()
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if open := srv.Subscriptions().Open; open != 0 {
			return fmt.Errorf("%d subscriptions open after every subscriber closed", open)
		}
		return nil
	})
}

// TestSubscribeHealthChecksToken: a subscription is cut down to what its
// token may read, one whose token may not read the service is refused,
// and one whose token is deleted ends with the refusal.
func TestSubscribeHealthChecksToken(t *testing.T) {
	c, cl := newACLCluster(t, 1, server.ACLConfig{Enabled: true})
	boot := cl.bootstrap()
	for _, node := range []string{"ext1", "ext2"} {
		reg := catalog.RegisterRequest{Node: node, Address: "10.0.0.1", Service: &catalog.Service{ID: "web", Service: "web"}}
		var wr rpc.WriteResult
		if err := cl.call(rpc.MethodCatalogReg, &rpc.Write[catalog.RegisterRequest]{WriteOptions: rpc.WriteOptions{Token: boot.SecretID}, Args: reg}, &wr); err != nil {
			t.Fatalf("register web on %s: %v", node, err)
		}
	}
	token := func(rules string) *acl.Token {
		t.Helper()
		pol, err := cl.setPolicy(boot.SecretID, acl.Policy{Name: fmt.Sprintf("p%d", time.Now().UnixNano()), Rules: rules})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cl.createToken(boot.SecretID, acl.Token{Policies: []acl.PolicyLink{{ID: pol.ID}}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ext1 := token(`service "web" { policy = "read" }
node "ext1" { policy = "read" }`)
	nodesOnly := token(`node_prefix "" { policy = "read" }`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr := c.Servers[0].ServerAddr()

	sub, err := cl.pool.Subscribe(ctx, addr, rpc.MethodSubscribeHealth, webQuery(ext1.SecretID))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var ev healthEvent
	if err := sub.Recv(&ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Order) != 1 || len(ev.Changed) != 1 || ev.Changed[0].Node.Node != "ext1" || !ev.ResultsFilteredByACLs {
		t.Errorf("snapshot with the ext1 token = %d instances (filtered %v), want ext1 alone, filtered", len(ev.Order), ev.ResultsFilteredByACLs)
	}

	denied, err := cl.pool.Subscribe(ctx, addr, rpc.MethodSubscribeHealth, webQuery(nodesOnly.SecretID))
	if err != nil {
		t.Fatal(err)
	}
	defer denied.Close()
	if err := denied.Recv(&ev); !errors.Is(err, rpc.ErrPermissionDenied) {
		t.Errorf("subscription with a token that may not read web: Recv = %v, want permission denied", err)
	}

	var wr rpc.WriteResult
	if err := cl.call(rpc.MethodACLTokenDelete, &rpc.Write[rpc.ACLIDRequest]{WriteOptions: rpc.WriteOptions{Token: boot.SecretID}, Args: rpc.ACLIDRequest{ID: ext1.AccessorID}}, &wr); err != nil {
		t.Fatal(err)
	}
	for {
		err := sub.Recv(&ev)
		if err == nil {
			continue // a snapshot sent before the deletion was seen
		}
		if !errors.Is(err, rpc.ErrACLNotFound) && !errors.Is(err, rpc.ErrPermissionDenied) {
			t.Errorf("subscription whose token was deleted: Recv = %v, want ACL not found", err)
		}
		break
	}
}
