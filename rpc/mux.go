package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/meridian/meridian/internal/ratelog"
)

// First bytes of a connection to the server port.
const (
	// ProtoRaft marks a connection carrying Raft (hashicorp/raft
	// NetworkTransport framing).
	ProtoRaft byte = 0x01
	// ProtoMux marks a connection carrying a yamux session of RPC streams.
	ProtoMux byte = 0x02
	// ProtoTLS marks a TLS connection (Consul's RPCTLS byte); inside it
	// the first byte is again ProtoRaft or ProtoMux.
	ProtoTLS byte = 0x03
)

// MuxConfig tunes a Mux.
type MuxConfig struct {
	// Logger receives warnings about connections that were dropped. Nil
	// discards them.
	Logger *slog.Logger
	// FirstByteTimeout is how long an accepted connection may stay silent
	// before it is closed (for a TLS connection: until its first byte inside
	// TLS). Zero means 5s.
	FirstByteTimeout time.Duration
	// TLS, when set, accepts ProtoTLS connections, checking the peer as its
	// IncomingConfig says and sorting them by their first byte inside TLS;
	// Raft inside TLS needs a server's certificate (CheckServerPeer). With
	// VerifyIncoming, plain connections are refused. Nil: a ProtoTLS
	// connection is refused.
	TLS *TLSConfigurator
}

// DefaultMuxConfig returns the defaults: a 5s first-byte timeout.
func DefaultMuxConfig() MuxConfig {
	return MuxConfig{FirstByteTimeout: 5 * time.Second}
}

// Validate reports a field that is out of range.
func (c MuxConfig) Validate() error {
	if c.FirstByteTimeout < 0 {
		return fmt.Errorf("mux FirstByteTimeout %v: must not be negative", c.FirstByteTimeout)
	}
	return nil
}

// Mux demultiplexes one listener by the first byte of each connection. Get
// a sub-listener per protocol with Listener, then run Serve.
type Mux struct {
	ln    net.Listener
	cfg   MuxConfig
	log   *slog.Logger
	drops *ratelog.Logger // connections dropped in the handshake: a stranger can cause them at will

	mu      sync.Mutex
	subs    map[byte]*muxListener
	pending map[net.Conn]struct{} // connections whose first byte is awaited
	closed  bool

	done chan struct{} // closed by Close
	wg   sync.WaitGroup
}

// NewMux returns a Mux over ln; ln belongs to the Mux from now on. Fields of
// cfg that are zero take their defaults.
func NewMux(ln net.Listener, cfg MuxConfig) *Mux {
	if cfg.FirstByteTimeout <= 0 {
		cfg.FirstByteTimeout = DefaultMuxConfig().FirstByteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Mux{
		ln:      ln,
		cfg:     cfg,
		log:     cfg.Logger,
		drops:   ratelog.New(cfg.Logger, 10*time.Second),
		subs:    make(map[byte]*muxListener),
		pending: make(map[net.Conn]struct{}),
		done:    make(chan struct{}),
	}
}

// Listener returns the listener of connections that began with proto; that
// byte has been consumed. Its Addr is the real listener's. Calling Listener
// again with the same proto returns the same listener. Closing it makes
// later connections with that byte be dropped.
func (m *Mux) Listener(proto byte) net.Listener {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.subs[proto]; ok {
		return l
	}
	l := &muxListener{
		addr:   m.ln.Addr(),
		conns:  make(chan net.Conn),
		closed: make(chan struct{}),
	}
	if m.closed {
		l.close()
	}
	m.subs[proto] = l
	return l
}

// Serve accepts connections until Close and hands each to the sub-listener
// its first byte names. It returns nil after Close, or the listener's error
// if it fails for another reason that does not pass.
func (m *Mux) Serve() error {
	var backoff time.Duration
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("mux accept on %s: %w", m.ln.Addr(), err)
			}
			// Probably out of file descriptors: back off and try again.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			m.log.Warn("mux accept failed", "addr", m.ln.Addr(), "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-m.done:
				t.Stop()
				return nil
			}
			continue
		}
		backoff = 0
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			conn.Close()
			return nil
		}
		m.pending[conn] = struct{}{}
		m.wg.Add(1)
		m.mu.Unlock()
		go m.handshake(conn)
	}
}

// handshake reads conn's first byte and hands conn to its sub-listener.
func (m *Mux) handshake(conn net.Conn) {
	defer m.wg.Done()
	var b [1]byte
	raw := conn
	conn.SetReadDeadline(time.Now().Add(m.cfg.FirstByteTimeout))
	_, err := conn.Read(b[:])
	if err == nil {
		conn, b[0], err = m.unwrapTLS(conn, b[0])
	}
	raw.SetReadDeadline(time.Time{})

	m.mu.Lock()
	delete(m.pending, raw)
	closed := m.closed
	sub := m.subs[b[0]]
	m.mu.Unlock()

	if r, ok := errors.AsType[*refusal](err); ok {
		m.log.Warn("mux refused connection", "peer", raw.RemoteAddr(), "reason", r.reason)
		raw.Close()
		return
	}
	switch {
	case closed:
		conn.Close()
		return
	case err != nil:
		m.drops.Warn("mux dropped connection before its first byte", "peer", conn.RemoteAddr(), "err", err)
		conn.Close()
		return
	case sub == nil:
		m.drops.Warn("mux dropped connection with unknown first byte", "peer", conn.RemoteAddr(), "byte", fmt.Sprintf("%#02x", b[0]))
		conn.Close()
		return
	}
	select {
	case sub.conns <- conn:
	case <-sub.closed:
		m.drops.Warn("mux dropped connection for closed listener", "peer", conn.RemoteAddr(), "byte", fmt.Sprintf("%#02x", b[0]))
		conn.Close()
	case <-m.done:
		conn.Close()
	}
}

// Close closes the listener and every sub-listener (their Accept returns
// net.ErrClosed), drops connections still being sorted and waits for the
// goroutines it started. Serve returns nil. Safe to call more than once.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return nil
	}
	m.closed = true
	close(m.done)
	err := m.ln.Close()
	for _, l := range m.subs {
		l.close()
	}
	for c := range m.pending {
		c.SetReadDeadline(time.Now()) // wake handshake, which closes c
	}
	m.mu.Unlock()
	m.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close mux listener %s: %w", m.ln.Addr(), err)
	}
	return nil
}

// muxListener is the net.Listener of one protocol.
type muxListener struct {
	addr      net.Addr
	conns     chan net.Conn
	closeOnce sync.Once
	closed    chan struct{}
}

var _ net.Listener = (*muxListener)(nil)

func (l *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *muxListener) Close() error {
	l.close()
	return nil
}

func (l *muxListener) close() { l.closeOnce.Do(func() { close(l.closed) }) }

func (l *muxListener) Addr() net.Addr { return l.addr }

// DialFunc opens a network connection, as net.Dialer's DialContext does.
// Configs that take one use it instead of net.Dialer only when set: it is a
// test seam (internal/testcluster routes agents' connections through a
// fault-injecting bridge with it) and costs nothing when nil.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DialProto dials addr over TCP and writes proto as the connection's first
// byte. ctx bounds both the dial and that write.
func DialProto(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	return DialProtoWith(ctx, nil, addr, proto)
}

// DialProtoWith is DialProto dialing with dial, or with a net.Dialer when
// dial is nil.
func DialProtoWith(ctx context.Context, dial DialFunc, addr string, proto byte) (net.Conn, error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetWriteDeadline(time.Now()) })
	_, err = conn.Write([]byte{proto})
	stopped := stop()
	conn.SetWriteDeadline(time.Time{})
	if err != nil || !stopped {
		conn.Close()
		if err == nil || ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("write protocol byte to %s: %w", addr, err)
	}
	return conn, nil
}
