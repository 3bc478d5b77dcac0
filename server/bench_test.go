package server_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// BenchmarkKVApply is one KV write through the server's apply path on a
// one-server, in-memory cluster (no disk), called in-process as the
// server's own agent does; -benchmem shows what a write allocates.
func BenchmarkKVApply(b *testing.B) {
	c := testcluster.New(b, testcluster.Options{Servers: 1, InMemory: true})
	srv := c.WaitLeader(10 * time.Second).Agent().Server()
	ctx := context.Background()
	args := rpc.Write[kvstore.KVRequest]{Args: kvstore.KVRequest{Op: kvstore.VerbSet, Key: "bench", Value: []byte("value")}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var reply rpc.WriteResult
			if err := srv.Call(ctx, rpc.MethodKVApply, &args, &reply); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHealthServiceMiss is a health read of a service of 50 instances
// that misses the answer cache every time (each asks for a tag of its own,
// so each is a new cache key): what a miss costs, the state read that
// answers it and the caching of that answer.
func BenchmarkHealthServiceMiss(b *testing.B) {
	c := testcluster.New(b, testcluster.Options{Servers: 1, InMemory: true})
	n := c.WaitLeader(10 * time.Second)
	for i := range 50 {
		node := fmt.Sprintf("node%d", i)
		_, err := n.API().Catalog().Register(&api.CatalogRegistration{
			Node: node, Address: "10.0.0.1",
			Service: &api.AgentService{ID: "web", Service: "web", Port: 80},
			Check:   &api.AgentCheck{Node: node, CheckID: "web-check", Name: "web", Status: api.HealthPassing, ServiceID: "web"},
		}, nil)
		if err != nil {
			b.Fatalf("register %s: %v", node, err)
		}
	}
	srv := n.Agent().Server()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		args := rpc.Query[catalog.ServiceRequest]{Args: catalog.ServiceRequest{Service: "web", ServiceQuery: catalog.ServiceQuery{Tags: []string{strconv.Itoa(i)}}}}
		var reply rpc.Answer[[]*catalog.CheckServiceNode]
		if err := srv.Call(ctx, rpc.MethodHealthService, &args, &reply); err != nil {
			b.Fatal(err)
		}
	}
}
