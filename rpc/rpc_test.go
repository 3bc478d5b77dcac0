package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCall(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "127.0.0.1:0")
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, reuse := range []int{0, -1} {
		p, _ := newTestPool(t, PoolConfig{MaxIdleStreamsPerAddr: reuse})
		tests := []struct {
			name    string
			method  string
			args    any
			reply   any
			want    any
			wantErr error // matched with errors.Is
			wantMsg string
		}{
			{name: "echo", method: "Test.Echo", args: &echoArgs{Msg: "hi", N: 1, When: when, Data: []byte("d")},
				reply: new(echoArgs), want: &echoArgs{Msg: "hi", N: 2, When: when, Data: []byte("d")}},
			{name: "nil args", method: "Test.Echo", args: nil, reply: new(echoArgs), want: &echoArgs{N: 1}},
			{name: "nil reply", method: "Test.Echo", args: &echoArgs{}, reply: nil},
			{name: "coded error", method: "Test.Fail", args: &echoArgs{Msg: "k"}, wantErr: errNoLeader,
				wantMsg: `apply "k": no cluster leader`},
			{name: "plain error", method: "Test.Plain", wantMsg: "plain failure"},
			{name: "unknown method", method: "Nope.Nothing", wantErr: ErrUnknownMethod},
			{name: "bad arguments", method: "Test.Echo", args: "a string, not echoArgs", wantErr: &Error{Code: CodeBadRequest}},
			{name: "panic", method: "Test.Panic", wantErr: ErrInternal},
			{name: "alive after panic", method: "Test.Echo", args: &echoArgs{N: 41}, reply: new(echoArgs), want: &echoArgs{N: 42}},
		}
		for _, tc := range tests {
			t.Run(fmt.Sprintf("idle=%d/%s", reuse, tc.name), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				err := p.Call(ctx, ts.addr, tc.method, tc.args, tc.reply)
				if tc.wantErr == nil && tc.wantMsg == "" {
					if err != nil {
						t.Fatalf("Call(%q) = %v, want nil", tc.method, err)
					}
					if tc.want != nil && fmt.Sprint(tc.reply) != fmt.Sprint(tc.want) {
						t.Errorf("Call(%q) reply = %+v, want %+v", tc.method, tc.reply, tc.want)
					}
					return
				}
				var re *Error
				if !errors.As(err, &re) {
					t.Fatalf("Call(%q) = %v (%T), want an *Error", tc.method, err, err)
				}
				if errors.Is(err, ErrTransport) {
					t.Errorf("Call(%q) = %v, matches ErrTransport, want a remote error only", tc.method, err)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("Call(%q) = %#v, want errors.Is %v", tc.method, re, tc.wantErr)
				}
				if tc.wantMsg != "" && re.Message != tc.wantMsg {
					t.Errorf("Call(%q) message = %q, want %q", tc.method, re.Message, tc.wantMsg)
				}
			})
		}
	}
}

func TestCallDeadlineReachesHandler(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "127.0.0.1:0")
	p, _ := newTestPool(t, PoolConfig{})
	tests := []struct {
		name    string
		timeout time.Duration // 0: no deadline
	}{
		{"no deadline", 0},
		{"5s", 5 * time.Second},
		{"1m", time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			var r deadlineReply
			if err := p.Call(ctx, ts.addr, "Test.Deadline", nil, &r); err != nil {
				t.Fatalf("Call(Test.Deadline) = %v", err)
			}
			if r.HasDeadline != (tc.timeout > 0) {
				t.Fatalf("handler HasDeadline = %v, want %v", r.HasDeadline, tc.timeout > 0)
			}
			if tc.timeout > 0 && (r.Remaining > tc.timeout || r.Remaining < tc.timeout-2*time.Second) {
				t.Errorf("handler deadline in %v, want within 2s below %v", r.Remaining, tc.timeout)
			}
		})
	}
}

func TestCallCancellation(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "127.0.0.1:0")
	p, _ := newTestPool(t, PoolConfig{})
	tests := []struct {
		name    string
		timeout time.Duration // 0: cancelled by hand once the handler runs
		want    error
	}{
		{"cancel", 0, context.Canceled},
		{"deadline", 100 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			if tc.timeout > 0 {
				ctx, cancel = context.WithTimeout(context.Background(), tc.timeout)
			}
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- p.Call(ctx, ts.addr, "Test.Block", nil, nil) }()
			select {
			case <-ts.h.started:
			case <-time.After(5 * time.Second):
				t.Fatal("handler did not start")
			}
			start := time.Now()
			if tc.timeout == 0 {
				cancel()
			}
			select {
			case err := <-errc:
				if !errors.Is(err, tc.want) {
					t.Errorf("Call(Test.Block) = %v, want %v", err, tc.want)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("Call(Test.Block) returned %v after cancellation, want promptly", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Call did not return after cancellation")
			}
			if tc.timeout > 0 {
				// The deadline travelled: the handler's ctx expired too.
				select {
				case err := <-ts.h.blockErr:
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("handler ctx.Err() = %v, want %v", err, context.DeadlineExceeded)
					}
				case <-time.After(5 * time.Second):
					t.Error("handler ctx never expired")
				}
			}
			// The pool still works afterwards.
			ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel2()
			var r echoArgs
			if err := p.Call(ctx2, ts.addr, "Test.Echo", &echoArgs{N: 1}, &r); err != nil || r.N != 2 {
				t.Errorf("Call(Test.Echo) after cancellation = %+v, %v, want N=2", r, err)
			}
		})
	}
}

func TestConcurrentCallsOneSession(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "127.0.0.1:0")
	p, dials := newTestPool(t, PoolConfig{})
	const n = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		errs     = make([]error, n)
		lat      = make([]time.Duration, n)
		mismatch = make([]bool, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			var r echoArgs
			errs[i] = p.Call(ctx, ts.addr, "Test.Echo", &echoArgs{Msg: fmt.Sprint(i), N: i}, &r)
			lat[i] = time.Since(t0)
			mismatch[i] = errs[i] == nil && (r.N != i+1 || r.Msg != fmt.Sprint(i))
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Call #%d = %v", i, errs[i])
		}
		if mismatch[i] {
			t.Fatalf("Call #%d got another call's reply", i)
		}
	}
	if got := dials.Load(); got != 1 {
		t.Errorf("dials for %d concurrent calls = %d, want 1", n, got)
	}
	if got := ts.accepted.n.Load(); got != 1 {
		t.Errorf("server accepted %d connections, want 1", got)
	}
	slices.Sort(lat)
	p50, p99 := lat[n/2], lat[n*99/100]
	// Informational: a burst of 1000 goroutines on a shared machine is too
	// noisy for a hard bound.
	t.Logf("%d concurrent calls: p50 %v, p99 %v (%.1fx)", n, p50, p99, float64(p99)/float64(p50))
}

func TestPoolSharedDial(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "127.0.0.1:0")
	// The dial blocks until every caller has started, so they all race for
	// the first session.
	const n = 50
	var (
		dials   sync.WaitGroup
		release = make(chan struct{})
		count   int
		mu      sync.Mutex
	)
	p := NewPool(PoolConfig{Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		mu.Lock()
		count++
		mu.Unlock()
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return DialProto(ctx, addr, ProtoMux)
	}})
	t.Cleanup(func() { p.Close() })
	errs := make(chan error, n)
	dials.Add(n)
	for i := range n {
		go func() {
			dials.Done()
			var r echoArgs
			errs <- p.Call(context.Background(), ts.addr, "Test.Echo", &echoArgs{N: i}, &r)
		}()
	}
	dials.Wait()
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("Call = %v", err)
		}
	}
	if count != 1 {
		t.Errorf("dials for %d racing first calls = %d, want 1", n, count)
	}
	if got := ts.accepted.n.Load(); got != 1 {
		t.Errorf("server accepted %d connections, want 1", got)
	}
}

func TestPoolRedialsAfterServerRestart(t *testing.T) {
	t.Parallel()
	for _, reuse := range []int{0, -1} {
		t.Run(fmt.Sprintf("idle=%d", reuse), func(t *testing.T) {
			ts := startServer(t, "127.0.0.1:0")
			p, dials := newTestPool(t, PoolConfig{MaxIdleStreamsPerAddr: reuse})
			call := func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				var r echoArgs
				return p.Call(ctx, ts.addr, "Test.Echo", &echoArgs{N: 1}, &r)
			}
			if err := call(); err != nil {
				t.Fatalf("Call before restart = %v", err)
			}
			ts.stop()
			// Nothing listens: a transport error, not a remote one.
			err := call()
			var re *Error
			if !errors.Is(err, ErrTransport) || errors.As(err, &re) {
				t.Fatalf("Call with server down = %v, want ErrTransport and no *Error", err)
			}
			ts2 := startServer(t, ts.addr)
			if err := call(); err != nil {
				t.Fatalf("Call after restart = %v, want nil", err)
			}
			if got := dials.Load(); got != 3 {
				t.Errorf("dials = %d, want 3 (first, the failed one, after restart)", got)
			}
			if got := ts2.accepted.n.Load(); got != 1 {
				t.Errorf("restarted server accepted %d connections, want 1", got)
			}
		})
	}
}

// lazyDeathConn is a connection that, once killed, fails only when it is
// next written to: the pool cannot see the death before it uses the session.
type lazyDeathConn struct {
	net.Conn
	killed   atomic.Bool
	dead     chan struct{}
	deadOnce sync.Once
}

func (c *lazyDeathConn) kill() {
	c.killed.Store(true)
	c.Conn.Close()
}

func (c *lazyDeathConn) die() { c.deadOnce.Do(func() { close(c.dead) }) }

func (c *lazyDeathConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.killed.Load() {
		<-c.dead
		return 0, io.EOF
	}
	return n, err
}

func (c *lazyDeathConn) Write(b []byte) (int, error) {
	if c.killed.Load() {
		c.die()
		return len(b), nil // as if the kernel took it
	}
	return c.Conn.Write(b)
}

func (c *lazyDeathConn) Close() error {
	c.die()
	return c.Conn.Close()
}

func TestPoolRedialsDeadSessionOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		idle      int
		killAgain bool // the redialed session dies too
		write     bool // the call is not a read: never sent twice
	}{
		{"idle stream", 0, false, false},
		{"stream per call", -1, false, false},
		{"second session dead too", 0, true, false},
		{"write not resent", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, "127.0.0.1:0")
			var (
				mu    sync.Mutex
				conns []*lazyDeathConn
			)
			p := NewPool(PoolConfig{MaxIdleStreamsPerAddr: tc.idle, Dial: func(ctx context.Context, addr string) (net.Conn, error) {
				c, err := DialProto(ctx, addr, ProtoMux)
				if err != nil {
					return nil, err
				}
				lc := &lazyDeathConn{Conn: c, dead: make(chan struct{})}
				mu.Lock()
				defer mu.Unlock()
				if tc.killAgain && len(conns) > 0 {
					lc.kill()
				}
				conns = append(conns, lc)
				return lc, nil
			}})
			t.Cleanup(func() { p.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.Call(ctx, ts.addr, "Test.Echo", &echoArgs{}, nil); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			conns[0].kill()
			mu.Unlock()
			var args any = &readEcho{}
			if tc.write {
				args = &echoArgs{}
			}
			err := p.Call(ctx, ts.addr, "Test.Echo", args, nil)
			if tc.write {
				if !errors.Is(err, ErrTransport) || !errors.Is(err, ErrMaybeDelivered) {
					t.Errorf("write on a dead session = %v, want ErrTransport and ErrMaybeDelivered", err)
				}
				return
			}
			if tc.killAgain {
				if !errors.Is(err, ErrTransport) {
					t.Errorf("Call with both sessions dead = %v, want ErrTransport", err)
				}
			} else if err != nil {
				t.Errorf("Call on a dead session = %v, want nil after one redial", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(conns) != 2 {
				t.Errorf("dials = %d, want 2", len(conns))
			}
		})
	}
}

func TestServerShutdownCancelsHandlers(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "127.0.0.1:0")
	p, _ := newTestPool(t, PoolConfig{})
	errc := make(chan error, 1)
	go func() { errc <- p.Call(context.Background(), ts.addr, "Test.Block", nil, nil) }()
	select {
	case <-ts.h.started:
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not start")
	}
	ts.srv.Shutdown()
	ts.srv.Shutdown() // twice is fine
	select {
	case err := <-ts.h.blockErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler ctx.Err() after Shutdown = %v, want %v", err, context.Canceled)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler ctx not cancelled by Shutdown")
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrTransport) {
			t.Errorf("Call during Shutdown = %v, want ErrTransport", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Call did not return after Shutdown")
	}
}

func TestPoolLimits(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "127.0.0.1:0")
	p, _ := newTestPool(t, PoolConfig{MaxMessageSize: 1024})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tests := []struct {
		name string
		size int
		want error
	}{
		{"fits", 100, nil},
		{"too large", 4096, ErrFrameTooLarge},
		{"fits again", 100, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r []byte
			err := p.Call(ctx, ts.addr, "Test.Big", &tc.size, &r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Call(Test.Big, %d) = %v, want %v", tc.size, err, tc.want)
			}
			if tc.want == nil && len(r) != tc.size {
				t.Errorf("Call(Test.Big, %d) reply has %d bytes", tc.size, len(r))
			}
			if tc.want != nil && !errors.Is(err, ErrTransport) {
				t.Errorf("Call(Test.Big, %d) = %v, want ErrTransport too", tc.size, err)
			}
		})
	}
}

func TestPoolClosed(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "127.0.0.1:0")
	p := NewPool(PoolConfig{})
	if err := p.Call(context.Background(), ts.addr, "Test.Echo", nil, nil); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := p.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	if err := p.Call(context.Background(), ts.addr, "Test.Echo", nil, nil); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Call after Close = %v, want %v", err, ErrPoolClosed)
	}
}

func TestDialFailureIsTransport(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p, _ := newTestPool(t, PoolConfig{})
	err = p.Call(context.Background(), addr, "Test.Echo", nil, nil)
	if !errors.Is(err, ErrTransport) {
		t.Errorf("Call(%q) with nothing listening = %v, want ErrTransport", addr, err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
	}{
		{"pool default", DefaultPoolConfig().Validate()},
		{"server default", DefaultServerConfig().Validate()},
		{"mux default", DefaultMuxConfig().Validate()},
		{"yamux default", DefaultYamuxConfig().Validate()},
	}
	for _, tc := range tests {
		if tc.err != nil {
			t.Errorf("%s Validate() = %v, want nil", tc.name, tc.err)
		}
	}
	bad := []struct {
		name string
		err  error
	}{
		{"pool negative dial timeout", PoolConfig{DialTimeout: -1}.Validate()},
		{"server negative size", ServerConfig{MaxMessageSize: -1}.Validate()},
		{"mux negative timeout", MuxConfig{FirstByteTimeout: -1}.Validate()},
		{"yamux small window", YamuxConfig{MaxStreamWindowSize: 1}.Validate()},
		{"pool bad yamux", PoolConfig{Yamux: YamuxConfig{AcceptBacklog: -1}}.Validate()},
	}
	for _, tc := range bad {
		if tc.err == nil {
			t.Errorf("%s Validate() = nil, want an error", tc.name)
		}
	}
}

// TestForgetFailsCallsInFlight: a call waiting on a server that gossip has
// declared dead fails at once when the pool forgets the server, and the next
// call dials again.
func TestForgetFailsCallsInFlight(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "127.0.0.1:0")
	p, dials := newTestPool(t, PoolConfig{})
	errc := make(chan error, 1)
	go func() { errc <- p.Call(context.Background(), ts.addr, "Test.Block", &struct{}{}, nil) }()
	select {
	case <-ts.h.started:
	case <-time.After(5 * time.Second):
		t.Fatal("Test.Block never started")
	}
	start := time.Now()
	p.Forget(ts.addr)
	select {
	case err := <-errc:
		if !errors.Is(err, ErrTransport) {
			t.Errorf("Call after Forget = %v, want ErrTransport", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Call returned %v after Forget, want at once", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Call did not return after Forget")
	}
	var r echoArgs
	if err := p.Call(context.Background(), ts.addr, "Test.Echo", &echoArgs{N: 1}, &r); err != nil || r.N != 2 {
		t.Errorf("Call after Forget = %+v, %v; want N=2", r, err)
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("dials = %d, want 2 (the first, and one after Forget)", n)
	}
	p.Forget("127.0.0.1:1") // unknown address: nothing to do
}
