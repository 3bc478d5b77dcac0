package rpc

import (
	"context"
	"testing"
	"time"
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
		b.Run(mode.name, func(b *testing.B) { benchEcho(b, p, ts.addr) })
	}
}

// benchEcho measures one small call through p to addr, from one goroutine
// ("seq") or many ("parallel"), after a first call that makes the session.
func benchEcho(b *testing.B, p *Pool, addr string) {
	args := &echoArgs{Msg: "service web on node-17", N: 1}
	var r echoArgs
	if err := p.Call(context.Background(), addr, "Test.Echo", args, &r); err != nil {
		b.Fatal(err)
	}
	b.Run("seq", func(b *testing.B) {
		ctx := context.Background()
		var r echoArgs
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Call(ctx, addr, "Test.Echo", args, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var r echoArgs
			for pb.Next() {
				if err := p.Call(ctx, addr, "Test.Echo", args, &r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
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

// BenchmarkQUICCall measures one small call over a live QUIC link, from one
// goroutine or many; compare with BenchmarkCall (yamux over TCP).
func BenchmarkQUICCall(b *testing.B) {
	qs := startQUICServer(b, "127.0.0.1:0", QUICConfig{TLS: clusterTLS(b, "bench", "s")}, ServerConfig{})
	p, _ := newQUICPool(b, QUICConfig{TLS: clusterTLS(b, "bench", "c")}, PoolConfig{})
	benchEcho(b, p, qs.addr)
}

// BenchmarkQUICNewLink measures what a caller waits for on a new link over
// loopback: DialQUIC (handshake, certificate checks on both sides) plus the
// first call. TestQUICFirstCallRoundTrips counts the round trips.
func BenchmarkQUICNewLink(b *testing.B) {
	qs := startQUICServer(b, "127.0.0.1:0", QUICConfig{TLS: clusterTLS(b, "bench", "s")}, ServerConfig{})
	cfg := QUICConfig{TLS: clusterTLS(b, "bench", "c")}
	args := &echoArgs{Msg: "service web on node-17", N: 1}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p := NewPool(PoolConfig{DialSession: func(ctx context.Context, addr string) (Session, error) {
			return DialQUIC(ctx, addr, cfg)
		}})
		var r echoArgs
		if err := p.Call(ctx, qs.addr, "Test.Echo", args, &r); err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
}

// BenchmarkQUICConcurrentCalls fires bursts of 1000 concurrent calls over
// one QUIC link and reports the median and 99th percentile latency within a
// burst, and their ratio.
func BenchmarkQUICConcurrentCalls(b *testing.B) {
	qs := startQUICServer(b, "127.0.0.1:0", QUICConfig{TLS: clusterTLS(b, "bench", "s")}, ServerConfig{})
	p, _ := newQUICPool(b, QUICConfig{TLS: clusterTLS(b, "bench", "c")}, PoolConfig{})
	var p50s, p99s time.Duration
	n := 0
	for b.Loop() {
		p50, p99 := concurrentCalls(b, p, qs.addr, 1000)
		p50s += p50
		p99s += p99
		n++
	}
	b.ReportMetric(float64(p50s.Microseconds())/float64(n), "p50-µs")
	b.ReportMetric(float64(p99s.Microseconds())/float64(n), "p99-µs")
	b.ReportMetric(float64(p99s)/float64(p50s), "p99/p50")
}
