package federation

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian/meridian/rpc"
)

// answering serves Test.Echo (a read) and Test.Write over yamux on the
// server port's protocol, as a remote server reached with TransportTCP,
// counting the calls.
func answering(t *testing.T, calls *atomic.Int32) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := rpc.NewMux(ln, rpc.MuxConfig{})
	srv := rpc.NewServer(rpc.ServerConfig{})
	rpc.Register(srv, "Test.Echo", func(_ context.Context, args *rpc.Query[string], reply *string) error {
		calls.Add(1)
		*reply = args.Args
		return nil
	})
	rpc.Register(srv, "Test.Write", func(_ context.Context, args *string, reply *string) error {
		calls.Add(1)
		*reply = *args
		return nil
	})
	var wg sync.WaitGroup
	wg.Go(func() { srv.ServeListener(mux.Listener(rpc.ProtoMux)) })
	wg.Go(func() { _ = mux.Serve() })
	t.Cleanup(func() {
		srv.Shutdown()
		mux.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// silent accepts connections and never answers: a server behind a path
// that broke after the link was up.
func silent(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// forwarder has dc2 with a silent server tried first (by name) and an
// answering one, and dc3 with a silent server only.
func forwarder(t *testing.T, timeout time.Duration, calls *atomic.Int32) *Forwarder {
	t.Helper()
	f, err := New(Config{Datacenter: "dc1", Transport: TransportTCP, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	f.Update([]Server{
		{Name: "s1.dc2", Datacenter: "dc2", Addr: silent(t), Alive: true},
		{Name: "s2.dc2", Datacenter: "dc2", Addr: answering(t, calls), Alive: true},
		{Name: "s1.dc3", Datacenter: "dc3", Addr: silent(t), Alive: true},
	})
	return f
}

// TestForwardBoundedByTimeout: a read for a DC whose nearest server has
// gone silent is answered by the next one within Timeout of its start; with
// every server silent it answers ErrDCUnreachable within Timeout, and the
// silent server is quarantined so that the next request does not wait; a
// write that went to a silent server is not sent again.
func TestForwardBoundedByTimeout(t *testing.T) {
	const timeout = time.Second
	bound := timeout + 200*time.Millisecond
	var calls atomic.Int32
	f := forwarder(t, timeout, &calls)
	hello := &rpc.Query[string]{Args: "hello"}

	start := time.Now()
	var reply string
	err := f.Forward(context.Background(), "dc2", "Test.Echo", hello, &reply)
	if took := time.Since(start); err != nil || reply != "hello" || took > bound {
		t.Fatalf("read of dc2 past a silent server = %q, %v after %v; want the next server's answer within %v", reply, err, took, timeout)
	}

	start = time.Now()
	err = f.Forward(context.Background(), "dc3", "Test.Echo", hello, &reply)
	if took := time.Since(start); !errors.Is(err, rpc.ErrDCUnreachable) || took > bound {
		t.Errorf("read of an all-silent dc3 = %v after %v, want ErrDCUnreachable within %v", err, took, timeout)
	}
	start = time.Now()
	err = f.Forward(context.Background(), "dc3", "Test.Echo", hello, &reply)
	if took := time.Since(start); !errors.Is(err, rpc.ErrDCUnreachable) || took > 100*time.Millisecond {
		t.Errorf("next read of dc3 = %v after %v, want ErrDCUnreachable at once (its server quarantined)", err, took)
	}

	calls.Store(0)
	f = forwarder(t, timeout, &calls)
	err = f.Forward(context.Background(), "dc2", "Test.Write", "w", &reply)
	if !errors.Is(err, rpc.ErrMaybeDelivered) || calls.Load() != 0 {
		t.Errorf("write to dc2 whose first server is silent = %v, %d calls on the other; want ErrMaybeDelivered and none", err, calls.Load())
	}
}
