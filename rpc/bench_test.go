package rpc

import (
	"context"
	"testing"
)

// BenchmarkCall measures one small call over a live session, reusing idle
// streams or opening a stream per call, from one goroutine or many.
func BenchmarkCall(b *testing.B) {
	ts := startServer(b, "127.0.0.1:0")
	for _, mode := range []struct {
		name string
		idle int
	}{
		{"reuse", 0},
		{"stream-per-call", -1},
	} {
		p, _ := newTestPool(b, PoolConfig{MaxIdleStreamsPerAddr: mode.idle})
		args := &echoArgs{Msg: "service web on node-17", N: 1}
		warm := func(b *testing.B) {
			var r echoArgs
			if err := p.Call(context.Background(), ts.addr, "Test.Echo", args, &r); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(mode.name+"/seq", func(b *testing.B) {
			warm(b)
			ctx := context.Background()
			var r echoArgs
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Call(ctx, ts.addr, "Test.Echo", args, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mode.name+"/parallel", func(b *testing.B) {
			warm(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var r echoArgs
				for pb.Next() {
					if err := p.Call(ctx, ts.addr, "Test.Echo", args, &r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkMarshal measures the pooled codec on a small struct.
func BenchmarkMarshal(b *testing.B) {
	args := &echoArgs{Msg: "service web on node-17", N: 1}
	var out echoArgs
	b.ReportAllocs()
	for b.Loop() {
		buf, err := Marshal(args)
		if err != nil {
			b.Fatal(err)
		}
		if err := Unmarshal(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}
