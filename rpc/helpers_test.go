package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/wait"
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
	wait.Eventually(t, 5*time.Second, func() error {
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

// testSecret returns a cluster secret (a 32-byte gossip key) made from seed.
func testSecret(seed string) []byte {
	return []byte(fmt.Sprintf("%-32s", seed)[:32])
}

// clusterTLS returns ClusterTLS(testSecret(secret), name), failing the test
// on error.
func clusterTLS(t testing.TB, secret, name string) *tls.Config {
	t.Helper()
	c, err := ClusterTLS(testSecret(secret), name)
	if err != nil {
		t.Fatalf("ClusterTLS(%q) = %v", name, err)
	}
	return c
}

// fastQUIC returns a QUICConfig with tls and timeouts short enough for
// tests that wait for a link to die or a handshake to fail.
func fastQUIC(tlsConf *tls.Config) QUICConfig {
	return QUICConfig{
		TLS:              tlsConf,
		KeepAlivePeriod:  50 * time.Millisecond,
		MaxIdleTimeout:   400 * time.Millisecond,
		HandshakeTimeout: time.Second, // a loaded -race run needs it
	}
}

// quicServer is a Server serving QUIC links on a real 127.0.0.1 UDP port.
type quicServer struct {
	addr     string
	srv      *Server
	ln       *QUICListener
	h        *testHandlers
	done     chan struct{}
	stopOnce sync.Once
}

// startQUICServer listens on addr ("127.0.0.1:0" for a fresh port) and
// serves RPC over QUIC with ServeQUIC; it is stopped at the end of the
// test. Retrying the bind lets a restarted server take over the port of a
// stopped one once its last link is gone.
func startQUICServer(t testing.TB, addr string, cfg QUICConfig, scfg ServerConfig) *quicServer {
	t.Helper()
	var ln *QUICListener
	wait.Eventually(t, 5*time.Second, func() error {
		var err error
		ln, err = ListenQUIC(addr, cfg)
		return err
	})
	qs := &quicServer{
		addr: ln.Addr().String(),
		srv:  NewServer(scfg),
		ln:   ln,
		done: make(chan struct{}),
	}
	qs.h = registerTestHandlers(qs.srv)
	go func() { defer close(qs.done); qs.srv.ServeQUIC(ln) }()
	t.Cleanup(qs.stop)
	return qs
}

// stop shuts the server down (closing its listener and links) and waits
// for its goroutines.
func (qs *quicServer) stop() {
	qs.stopOnce.Do(func() {
		qs.srv.Shutdown()
		<-qs.done
	})
}

// newQUICPool returns a Pool of QUIC links made with cfg that counts its
// dials, closed at test end.
func newQUICPool(t testing.TB, cfg QUICConfig, pcfg PoolConfig) (*Pool, *atomic.Int64) {
	t.Helper()
	var dials atomic.Int64
	pcfg.DialSession = func(ctx context.Context, addr string) (Session, error) {
		dials.Add(1)
		return DialQUIC(ctx, addr, cfg)
	}
	p := NewPool(pcfg)
	t.Cleanup(func() { p.Close() })
	return p, &dials
}

// udpRelay forwards datagrams between clients and one UDP server, like
// etcd's bridge: it can add latency, or drop everything (a partition, or
// a peer that vanished without a word). Replies go to the client that sent
// last.
type udpRelay struct {
	front  *net.UDPConn // clients send here
	back   *net.UDPConn // connected to the server
	delay  time.Duration
	drop   atomic.Bool
	client atomic.Pointer[net.UDPAddr]
	wg     sync.WaitGroup
}

// startRelay relays to target, delaying each datagram by delay each way;
// it is closed at the end of the test.
func startRelay(t testing.TB, target string, delay time.Duration) *udpRelay {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		front.Close()
		t.Fatal(err)
	}
	r := &udpRelay{front: front, back: back, delay: delay}
	r.wg.Add(2)
	go r.pump(func(b []byte) (int, error) {
		n, from, err := front.ReadFromUDP(b)
		if err == nil {
			r.client.Store(from)
		}
		return n, err
	}, func(b []byte) { back.Write(b) })
	go r.pump(back.Read, func(b []byte) {
		if c := r.client.Load(); c != nil {
			front.WriteToUDP(b, c)
		}
	})
	t.Cleanup(r.close)
	return r
}

// addr is where clients send.
func (r *udpRelay) addr() string { return r.front.LocalAddr().String() }

// pump moves datagrams from read to write until the relay is closed.
func (r *udpRelay) pump(read func([]byte) (int, error), write func([]byte)) {
	defer r.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || r.drop.Load() {
			continue // e.g. ECONNREFUSED while the server is down
		}
		if r.delay == 0 {
			write(buf[:n])
			continue
		}
		p := slices.Clone(buf[:n])
		r.wg.Add(1)
		time.AfterFunc(r.delay, func() { // simulated latency
			defer r.wg.Done()
			if !r.drop.Load() {
				write(p)
			}
		})
	}
}

func (r *udpRelay) close() {
	r.front.Close()
	r.back.Close()
	r.wg.Wait()
}
