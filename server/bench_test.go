package server_test

import (
	"context"
	"testing"
	"time"

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
