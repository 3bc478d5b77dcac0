package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Test argument and reply types.
type echoArgs struct {
	Msg  string
	N    int
	When time.Time
	Data []byte
}

// readEcho is echoArgs declared a read, which the pool may send twice.
type readEcho struct {
	Msg  string
	N    int
	When time.Time
	Data []byte
}

func (readEcho) IsRead() bool { return true }

type deadlineReply struct {
	HasDeadline bool
	Remaining   time.Duration
}

var errNoLeader = &Error{Code: "no_leader", Message: "no cluster leader"}

// testHandlers registers the handlers every test server has. started
// receives a value when Block begins; blockErr receives Block's ctx error.
type testHandlers struct {
	started  chan struct{}
	blockErr chan error
}

func registerTestHandlers(s *Server) *testHandlers {
	th := &testHandlers{started: make(chan struct{}, 16), blockErr: make(chan error, 16)}
	Register(s, "Test.Echo", func(ctx context.Context, a *echoArgs, r *echoArgs) error {
		*r = *a
		r.N++
		return nil
	})
	Register(s, "Test.Fail", func(ctx context.Context, a *echoArgs, r *struct{}) error {
		return fmt.Errorf("apply %q: %w", a.Msg, errNoLeader)
	})
	Register(s, "Test.Plain", func(ctx context.Context, a *struct{}, r *struct{}) error {
		return errors.New("plain failure")
	})
	Register(s, "Test.Panic", func(ctx context.Context, a *struct{}, r *struct{}) error {
		panic("boom")
	})
	Register(s, "Test.Deadline", func(ctx context.Context, a *struct{}, r *deadlineReply) error {
		dl, ok := ctx.Deadline()
		r.HasDeadline, r.Remaining = ok, time.Until(dl)
		return nil
	})
	Register(s, "Test.Block", func(ctx context.Context, a *struct{}, r *struct{}) error {
		th.started <- struct{}{}
		<-ctx.Done()
		th.blockErr <- ctx.Err()
		return ctx.Err()
	})
	Register(s, "Test.Big", func(ctx context.Context, a *int, r *[]byte) error {
		*r = make([]byte, *a)
		return nil
	})
	return th
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// testServer is a Server behind a Mux on a real 127.0.0.1 port.
type testServer struct {
	addr     string
	srv      *Server
	mux      *Mux
	accepted *countingListener
	h        *testHandlers
	done     chan struct{}
	stopOnce sync.Once
}

// startServer listens on addr ("127.0.0.1:0" for a fresh port) and serves
// RPC; it is stopped at the end of the test.
func startServer(t testing.TB, addr string) *testServer {
	t.Helper()
	var ln net.Listener
	waitFor(t, 5*time.Second, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	ts := &testServer{
		addr:     ln.Addr().String(),
		srv:      NewServer(ServerConfig{}),
		mux:      NewMux(ln, MuxConfig{}),
		accepted: &countingListener{},
		done:     make(chan struct{}),
	}
	ts.h = registerTestHandlers(ts.srv)
	ts.accepted.Listener = ts.mux.Listener(ProtoMux)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ts.mux.Serve() }()
	go func() { defer wg.Done(); ts.srv.ServeListener(ts.accepted) }()
	go func() { wg.Wait(); close(ts.done) }()
	t.Cleanup(ts.stop)
	return ts
}

// stop shuts the server down and waits for its goroutines.
func (ts *testServer) stop() {
	ts.stopOnce.Do(func() {
		ts.srv.Shutdown()
		ts.mux.Close()
		<-ts.done
	})
}

// newTestPool returns a Pool that counts its dials, closed at test end.
func newTestPool(t testing.TB, cfg PoolConfig) (*Pool, *atomic.Int64) {
	t.Helper()
	var dials atomic.Int64
	cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		return DialProto(ctx, addr, ProtoMux)
	}
	p := NewPool(cfg)
	t.Cleanup(func() { p.Close() })
	return p, &dials
}

// waitFor retries fn until it returns nil, failing the test with fn's last
// error when timeout passes.
func waitFor(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %v: %v", timeout, err)
		}
		// Not synchronisation: a poll interval, bounded by the deadline.
		time.Sleep(5 * time.Millisecond)
	}
}

// recordHandler is a slog.Handler that keeps every record as one line.
type recordHandler struct {
	mu    *sync.Mutex
	lines *[]string
}

func newRecordHandler() recordHandler {
	return recordHandler{mu: new(sync.Mutex), lines: new([]string)}
}

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	*h.lines = append(*h.lines, b.String())
	h.mu.Unlock()
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

// find returns the first recorded line containing every part.
func (h recordHandler) find(parts ...string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
next:
	for _, l := range *h.lines {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		return l, true
	}
	return "", false
}
