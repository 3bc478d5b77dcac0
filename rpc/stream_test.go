package rpc

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/wait"
)

// TestSubscribe: a subscription gets every event its handler sends, in
// order, then the error it ends with; closing it from the subscriber's end
// cancels the handler; calls on the same session go on meanwhile.
func TestSubscribe(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	cancelled := make(chan struct{})
	RegisterStream(ts.srv, "Test.Count", func(ctx context.Context, args *int, send func(any) error) error {
		for i := range *args {
			if err := send(i); err != nil {
				return err
			}
		}
		if *args == 0 {
			<-ctx.Done()
			close(cancelled)
			return ctx.Err()
		}
		return &Error{Code: "done", Message: "counted"}
	})
	pool, _ := newTestPool(t, PoolConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	n := 3
	sub, err := pool.Subscribe(ctx, ts.addr, "Test.Count", &n)
	if err != nil {
		t.Fatal(err)
	}
	for want := range n {
		var got int
		if err := sub.Recv(&got); err != nil || got != want {
			t.Fatalf("Recv = %d, %v; want %d", got, err, want)
		}
	}
	var got int
	if err := sub.Recv(&got); !errors.Is(err, &Error{Code: "done"}) {
		t.Fatalf("Recv after the last event = %v, want the handler's error", err)
	}
	sub.Close()

	var echo echoArgs
	if err := pool.Call(ctx, ts.addr, "Test.Echo", &echoArgs{Msg: "hi"}, &echo); err != nil || echo.Msg != "hi" {
		t.Fatalf("Call beside a subscription = %+v, %v", echo, err)
	}

	zero := 0
	idle, err := pool.Subscribe(ctx, ts.addr, "Test.Count", &zero)
	if err != nil {
		t.Fatal(err)
	}
	recvd := make(chan error, 1)
	go func() { recvd <- idle.Recv(&got) }()
	idle.Close()
	if err := <-recvd; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Recv during Close = %v, want net.ErrClosed", err)
	}
	select {
	case <-cancelled:
	case <-ctx.Done():
		t.Fatal("closing the subscription did not cancel its handler")
	}
}

// TestSubscribeServerGone: a subscription whose server shuts down fails
// with ErrTransport, and ends when its context does.
func TestSubscribeServerGone(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	RegisterStream(ts.srv, "Test.Park", func(ctx context.Context, _ *struct{}, send func(any) error) error {
		if err := send(1); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	})
	pool, _ := newTestPool(t, PoolConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := pool.Subscribe(ctx, ts.addr, "Test.Park", &struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var v int
	if err := sub.Recv(&v); err != nil {
		t.Fatal(err)
	}
	ts.stop()
	if err := sub.Recv(&v); !errors.Is(err, ErrTransport) {
		t.Errorf("Recv after the server stopped = %v, want ErrTransport", err)
	}

	ts2 := startServer(t, "127.0.0.1:0")
	RegisterStream(ts2.srv, "Test.Park", func(ctx context.Context, _ *struct{}, send func(any) error) error {
		<-ctx.Done()
		return ctx.Err()
	})
	sctx, scancel := context.WithCancel(ctx)
	sub2, err := pool.Subscribe(sctx, ts2.addr, "Test.Park", &struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	scancel()
	wait.Eventually(t, 10*time.Second, func() error {
		if err := sub2.Recv(&v); !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
}
