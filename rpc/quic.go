package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// QUIC error codes of this package.
const (
	// quicCodeClosed closes a link on purpose (Session.Close): nothing
	// went wrong.
	quicCodeClosed quic.ApplicationErrorCode = 0
	// quicStreamClosed cancels the receiving side of a stream closed by
	// its owner: the peer should stop sending on it.
	quicStreamClosed quic.StreamErrorCode = 0
)

// QUICConfig tunes the QUIC links of ListenQUIC and DialQUIC. TLS is
// required; the zero value of any other field means its default, from
// DefaultQUICConfig.
type QUICConfig struct {
	// TLS authenticates and encrypts the link, both when listening and
	// when dialing; build it with TLSConfigurator.WANConfig, ClusterTLS or
	// EphemeralTLS. It
	// must hold a certificate. It is cloned, never written: on the clone
	// MinVersion is raised to TLS 1.3 and NextProtos is set to
	// "meridian-wan/1", so a peer speaking another protocol is refused
	// during the handshake.
	TLS *tls.Config
	// KeepAlivePeriod is the time between packets sent on an idle link to
	// prove we are alive, so the peer's MaxIdleTimeout does not expire.
	// It must be well below MaxIdleTimeout (QUIC caps it at half of it);
	// each costs one small packet per link.
	KeepAlivePeriod time.Duration
	// MaxIdleTimeout is how long a link may go without receiving a single
	// packet before it is declared dead and closed: calls on it fail with
	// ErrTransport and the Pool redials. The link uses the smaller of
	// ours and the peer's. With keepalives every KeepAlivePeriod, it is
	// reached only when the peer or the path is gone, so a shorter value
	// notices partitions sooner, at the risk of dropping a link through a
	// burst of loss lasting that long. QUIC counts it from the first
	// packet sent after the last one heard (RFC 9000 10.1), and a
	// keepalive goes out KeepAlivePeriod after the last one heard: a peer
	// that falls silent is declared dead within KeepAlivePeriod +
	// MaxIdleTimeout of its last packet (or three probe timeouts, when
	// the round trip is so slow that they are longer).
	MaxIdleTimeout time.Duration
	// HandshakeTimeout bounds the handshake of a new link: it fails when
	// nothing is heard from the peer for this long, and in any case after
	// twice this long. A dial to an address where no Meridian server
	// listens on UDP fails after it.
	HandshakeTimeout time.Duration
	// MaxIncomingStreams is how many streams (calls in flight, plus the
	// Pool's idle streams) the peer may have open at once on one link.
	// Once the peer reaches it, its Session.Open waits for a stream to
	// end (bounded by the caller's context). Each open stream costs a
	// goroutine in Server and some buffer memory.
	MaxIncomingStreams int
	// Logger receives links closed for a reason other than Close, and
	// peers refused during the handshake. Nil discards them.
	Logger *slog.Logger
	// ListenPacket, when set, opens the UDP sockets of ListenQUIC (on the
	// listen address) and DialQUIC (on "127.0.0.1:0" or ":0", one per
	// link) instead of net.ListenPacket and quic-go. It is a test seam
	// (internal/testcluster passes sockets that drop or delay datagrams
	// per pair of agents); nil costs nothing.
	ListenPacket func(network, addr string) (net.PacketConn, error)
}

// DefaultQUICConfig returns the defaults: a keepalive every 250ms, a link
// declared dead after 3s without a packet (so a silent peer is found out
// within 3.25s), a 2s handshake timeout and 4096 streams per link. TLS is
// left nil for the caller to set.
func DefaultQUICConfig() QUICConfig {
	return QUICConfig{
		// Frequent keepalives shorten the detection of a silent peer
		// (see MaxIdleTimeout: with one a second and 4s idle it took
		// 5s) and make a false one less likely: the 3s of silence that
		// declare a peer dead are 12 keepalives unanswered. Each costs
		// two small packets (ping and acknowledgement) per link.
		KeepAlivePeriod: 250 * time.Millisecond,
		// A peer silent this long is dead: a datacenter that falls
		// silent is routed around within 5s even across a ring of 50
		// on a loaded machine (the withdrawal takes a second or more to
		// travel 25 hops there), while a host that stalls a while is
		// not declared dead.
		MaxIdleTimeout:     3 * time.Second,
		HandshakeTimeout:   2 * time.Second,
		MaxIncomingStreams: 4096,
	}
}

// withDefaults returns c with every zero field set from DefaultQUICConfig.
func (c QUICConfig) withDefaults() QUICConfig {
	d := DefaultQUICConfig()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.KeepAlivePeriod == 0 {
		c.KeepAlivePeriod = d.KeepAlivePeriod
	}
	if c.MaxIdleTimeout == 0 {
		c.MaxIdleTimeout = d.MaxIdleTimeout
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.MaxIncomingStreams == 0 {
		c.MaxIncomingStreams = d.MaxIncomingStreams
	}
	return c
}

// Validate reports the first field that is missing or out of range.
func (c QUICConfig) Validate() error {
	switch {
	case c.TLS == nil:
		return errors.New("quic TLS: required (see TLSConfigurator.WANConfig, ClusterTLS, EphemeralTLS)")
	case c.TLS.MaxVersion != 0 && c.TLS.MaxVersion < tls.VersionTLS13:
		return fmt.Errorf("quic TLS MaxVersion %#x: QUIC needs TLS 1.3", c.TLS.MaxVersion)
	case len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil && c.TLS.GetConfigForClient == nil:
		return errors.New("quic TLS: no certificate")
	case c.KeepAlivePeriod < 0, c.MaxIdleTimeout < 0, c.HandshakeTimeout < 0:
		return errors.New("quic timeouts must not be negative")
	case c.MaxIncomingStreams < 0:
		return fmt.Errorf("quic MaxIncomingStreams %d: must not be negative", c.MaxIncomingStreams)
	}
	if d := c.withDefaults(); d.KeepAlivePeriod >= d.MaxIdleTimeout {
		return fmt.Errorf("quic KeepAlivePeriod %v: must be shorter than MaxIdleTimeout %v", d.KeepAlivePeriod, d.MaxIdleTimeout)
	}
	return nil
}

// quic returns quic-go's configuration; c has its defaults.
func (c QUICConfig) quic() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:  c.HandshakeTimeout,
		MaxIdleTimeout:        c.MaxIdleTimeout,
		KeepAlivePeriod:       c.KeepAlivePeriod,
		MaxIncomingStreams:    int64(c.MaxIncomingStreams),
		MaxIncomingUniStreams: -1, // RPC uses bidirectional streams only
	}
}

// tls returns a clone of c.TLS with TLS 1.3 and the WAN ALPN protocol.
func (c QUICConfig) tls() *tls.Config {
	t := c.TLS.Clone()
	t.MinVersion = tls.VersionTLS13
	t.NextProtos = []string{alpnWAN}
	return t
}

// QUICListener accepts QUIC links from other servers, each a Session. It
// is safe for concurrent use.
type QUICListener struct {
	ln  *quic.Listener
	cfg QUICConfig
	// socket is the listener's UDP socket, opened here (quic-go would
	// keep its own bound until every link on it had timed out, so that a
	// restarted server could not bind its port): it is closed once the
	// listener and every link it accepted are.
	socket *ownedSocket
}

// ownedSocket closes a packet conn once its user is closed and the links
// on it are gone.
type ownedSocket struct {
	pc     net.PacketConn
	mu     sync.Mutex
	links  int
	closed bool
}

// add counts conn as a link on the socket until it closes, and returns
// the func that stops counting it, which Session.Close calls so that the
// socket is released before Close returns (the link's context ends a
// moment later). Calling it more than once counts it once.
func (o *ownedSocket) add(conn *quic.Conn) (release func()) {
	o.mu.Lock()
	o.links++
	o.mu.Unlock()
	release = sync.OnceFunc(func() {
		o.mu.Lock()
		o.links--
		last := o.closed && o.links == 0
		o.mu.Unlock()
		if last {
			o.pc.Close()
		}
	})
	context.AfterFunc(conn.Context(), release)
	return release
}

func (o *ownedSocket) close() {
	o.mu.Lock()
	o.closed = true
	last := o.links == 0
	o.mu.Unlock()
	if last {
		o.pc.Close()
	}
}

// ListenQUIC listens for QUIC links on the UDP address addr
// ("127.0.0.1:0" picks a free port; Addr tells which).
func ListenQUIC(addr string, cfg QUICConfig) (*QUICListener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("quic listen %s: %w", addr, err)
	}
	cfg = cfg.withDefaults()
	listen := cfg.ListenPacket
	if listen == nil {
		listen = net.ListenPacket
	}
	pc, err := listen("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("quic listen %s: %w", addr, err)
	}
	ln, err := quic.Listen(pc, cfg.serverTLS(), cfg.quic())
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("quic listen %s: %w", addr, err)
	}
	return &QUICListener{ln: ln, cfg: cfg, socket: &ownedSocket{pc: pc}}, nil
}

// serverTLS is the listener's TLS config: c.tls(), logging the peers its
// VerifyConnection refuses, with their address.
func (c QUICConfig) serverTLS() *tls.Config {
	conf := c.tls()
	if conf.VerifyConnection == nil || conf.GetConfigForClient != nil {
		return conf
	}
	log := c.Logger
	conf.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		var peer net.Addr
		if hi.Conn != nil { // quic-go sets it, with the peer's address
			peer = hi.Conn.RemoteAddr()
		}
		pc := conf.Clone()
		pc.GetConfigForClient = nil
		verify := pc.VerifyConnection
		pc.VerifyConnection = func(cs tls.ConnectionState) error {
			err := verify(cs)
			if err != nil {
				log.Warn("quic link refused", "peer", peer, "err", err)
			}
			return err
		}
		return pc, nil
	}
	return conf
}

// Accept waits for the next link whose handshake completed, or for ctx to
// be done. After Close it returns an error wrapping net.ErrClosed.
func (l *QUICListener) Accept(ctx context.Context) (Session, error) {
	conn, err := l.ln.Accept(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("quic accept on %s: %w", l.ln.Addr(), err)
	}
	q := newQUICSession(conn, l.cfg)
	q.release = l.socket.add(conn)
	return q, nil
}

// Close stops accepting links; links whose handshake completed but that
// Accept did not return yet are closed. Links already accepted stay up:
// they belong to whoever accepted them (Server.Shutdown closes those it
// serves). The UDP port is released once the last of them is closed (by
// the time its Close returns), so that a server shut down can be started
// again on the same port at once. Safe to call more than once.
func (l *QUICListener) Close() error {
	err := l.ln.Close()
	l.socket.close()
	return err
}

// Addr returns the UDP address the listener is bound to.
func (l *QUICListener) Addr() net.Addr { return l.ln.Addr() }

// DialQUIC opens a QUIC link to the server listening on the UDP address
// addr. It returns once the handshake is complete from our side, after one
// round trip (QUIC's handshake carries TLS 1.3's); a call then takes one
// more. ctx bounds the dial, not the link. Errors name addr and the reason
// in one line, e.g.
//
//	quic link to 10.0.0.5:8300: tls: peer certificate "dc2-s1" is issued by "...", not by a CA we trust: x509: certificate signed by unknown authority
//
// Under TLS 1.3 the server checks our certificate only after we consider
// the handshake done, so a server refusing us shows as the link closing
// right after DialQUIC returns: the first call fails with ErrTransport and
// "peer refused our certificate".
func DialQUIC(ctx context.Context, addr string, cfg QUICConfig) (Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("quic link to %s: %w", addr, err)
	}
	cfg = cfg.withDefaults()
	// Resolved here first: quic.DialAddr leaks its UDP socket when the
	// address does not resolve.
	if _, err := net.ResolveUDPAddr("udp", addr); err != nil {
		return nil, fmt.Errorf("quic link to %s: %w", addr, err)
	}
	conn, err := dialQUIC(ctx, addr, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("quic link to %s: %w", addr, ctx.Err())
		}
		return nil, &linkError{peer: addr, reason: describeLinkErr(err, cfg, true), err: err}
	}
	return newQUICSession(conn, cfg), nil
}

// dialQUIC dials with quic-go's own socket, or with one from
// cfg.ListenPacket, closed when the link is.
func dialQUIC(ctx context.Context, addr string, cfg QUICConfig) (*quic.Conn, error) {
	if cfg.ListenPacket == nil {
		return quic.DialAddr(ctx, addr, cfg.tls(), cfg.quic())
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	local := ":0"
	if raddr.IP.IsLoopback() {
		local = "127.0.0.1:0"
	}
	pc, err := cfg.ListenPacket("udp", local)
	if err != nil {
		return nil, err
	}
	conn, err := quic.Dial(ctx, pc, raddr, cfg.tls(), cfg.quic())
	if err != nil {
		pc.Close()
		return nil, err
	}
	context.AfterFunc(conn.Context(), func() { pc.Close() })
	return conn, nil
}

// linkError is a failure of a QUIC link, described for people, wrapping
// quic-go's error (which wraps net.ErrClosed once the link is down).
type linkError struct {
	peer   string
	reason string
	err    error
}

func (e *linkError) Error() string { return "quic link to " + e.peer + ": " + e.reason }
func (e *linkError) Unwrap() error { return e.err }

// describeLinkErr says in words why a link failed (handshake: while it
// was being set up) or closed.
func describeLinkErr(err error, cfg QUICConfig, handshake bool) string {
	if pe, ok := errors.AsType[*peerCertError](err); ok {
		return "tls: " + pe.Error() // we refused the peer
	}
	if te, ok := errors.AsType[*quic.TransportError](err); ok && te.ErrorCode.IsCryptoError() {
		alert := tls.AlertError(te.ErrorCode - 0x100)
		switch {
		case !te.Remote:
			return "tls handshake: " + te.Error()
		case alert == alertNoAppProtocol:
			return fmt.Sprintf("peer does not speak %s (%v)", alpnWAN, alert)
		case alert == alertBadCertificate || alert == alertUnknownCA || alert == alertCertificateNeeded:
			return fmt.Sprintf("peer refused our certificate (%v)", alert)
		default:
			return fmt.Sprintf("peer refused the handshake (%v)", alert)
		}
	}
	if ae, ok := errors.AsType[*quic.ApplicationError](err); ok {
		switch {
		case !ae.Remote:
			return "closed on our side"
		case ae.ErrorMessage != "":
			return fmt.Sprintf("link closed by peer (code %d: %s)", ae.ErrorCode, ae.ErrorMessage)
		default:
			return fmt.Sprintf("link closed by peer (code %d)", ae.ErrorCode)
		}
	}
	_, idle := errors.AsType[*quic.IdleTimeoutError](err)
	_, hs := errors.AsType[*quic.HandshakeTimeoutError](err)
	switch {
	case hs || idle && handshake: // quic-go reports a silent peer during the handshake as idle
		return fmt.Sprintf("no QUIC handshake within %v: no Meridian server answers on that UDP port, or UDP is blocked", cfg.HandshakeTimeout)
	case idle:
		return fmt.Sprintf("nothing heard from peer within the idle timeout (at most %v): peer or path presumed dead", cfg.MaxIdleTimeout)
	}
	if _, ok := errors.AsType[*quic.StatelessResetError](err); ok {
		return "peer reset the link (it restarted and lost the link's state)"
	}
	return err.Error()
}

// quicSession adapts a QUIC connection to Session.
type quicSession struct {
	conn *quic.Conn
	cfg  QUICConfig // with defaults
	peer string

	// closed is set by Close and by the first stream error that says the
	// connection is gone: quic-go fails streams before it cancels the
	// connection's context, and the Pool asks IsClosed right after a
	// failed call.
	closed atomic.Bool
	// release, for a link a QUICListener accepted, tells its socket that
	// the link is closed.
	release func()
}

var _ Session = (*quicSession)(nil)

func newQUICSession(conn *quic.Conn, cfg QUICConfig) *quicSession {
	q := &quicSession{conn: conn, cfg: cfg, peer: conn.RemoteAddr().String()}
	ctx := conn.Context()
	context.AfterFunc(ctx, func() {
		q.closed.Store(true)
		cause := context.Cause(ctx)
		if ae, ok := errors.AsType[*quic.ApplicationError](cause); ok && ae.ErrorCode == quicCodeClosed {
			cfg.Logger.Debug("quic link closed", "peer", q.peer, "by_peer", ae.Remote)
			return
		}
		cfg.Logger.Warn("quic link lost", "peer", q.peer, "reason", describeLinkErr(cause, cfg, false))
	})
	return q
}

// Open opens a stream. It waits (bounded by ctx) while the peer's limit of
// open streams is reached. The peer learns of the stream with its first
// bytes, so the caller must write first.
func (q *quicSession) Open(ctx context.Context) (net.Conn, error) {
	s, err := q.conn.OpenStreamSync(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, q.linkErr(err)
	}
	return &quicStream{s: s, sess: q}, nil
}

// Accept waits for the next stream the peer opens and writes to.
func (q *quicSession) Accept() (net.Conn, error) {
	s, err := q.conn.AcceptStream(context.Background())
	if err != nil {
		return nil, q.linkErr(err)
	}
	return &quicStream{s: s, sess: q}, nil
}

// Close closes the link and every stream on it, telling the peer.
func (q *quicSession) Close() error {
	q.closed.Store(true)
	err := q.conn.CloseWithError(quicCodeClosed, "session closed")
	if q.release != nil {
		q.release()
	}
	return err
}

// IsClosed reports whether the link is closed or known to be broken.
func (q *quicSession) IsClosed() bool {
	return q.closed.Load() || q.conn.Context().Err() != nil
}

// linkErr converts an error of the connection or one of its streams. An
// error of the whole connection marks the session closed and is described
// and wrapped (it still wraps net.ErrClosed, as quic-go's do); others, like
// io.EOF, a stream reset or a deadline, come back as they are.
func (q *quicSession) linkErr(err error) error {
	if !isConnErr(err) {
		return err
	}
	q.closed.Store(true)
	return &linkError{peer: q.peer, reason: describeLinkErr(err, q.cfg, false), err: err}
}

// isConnErr reports whether err means the QUIC connection is gone.
func isConnErr(err error) bool {
	if _, ok := errors.AsType[*quic.ApplicationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*quic.TransportError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*quic.IdleTimeoutError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*quic.StatelessResetError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*quic.HandshakeTimeoutError](err); ok {
		return true
	}
	_, ok := errors.AsType[*quic.VersionNegotiationError](err)
	return ok
}

// quicStream makes a QUIC stream a net.Conn: addresses are the
// connection's, deadlines the stream's, and Close closes both directions
// (quic-go's Close closes only the sending side).
type quicStream struct {
	s    *quic.Stream
	sess *quicSession

	mu      sync.Mutex
	writers int // Writes in progress: Close must cancel, not finish
	closed  bool
}

var _ net.Conn = (*quicStream)(nil)

func (c *quicStream) Read(b []byte) (int, error) {
	n, err := c.s.Read(b)
	if err != nil && err != io.EOF {
		err = c.sess.linkErr(err)
	}
	return n, err
}

func (c *quicStream) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.writers++
	c.mu.Unlock()
	n, err := c.s.Write(b)
	c.mu.Lock()
	c.writers--
	c.mu.Unlock()
	if err != nil {
		err = c.sess.linkErr(err)
	}
	return n, err
}

// Close finishes the sending side (the peer reads EOF after the data
// written so far) and cancels the receiving side (the peer's further
// writes fail), so the stream is done on both ends. A Write in progress is
// aborted instead, as net.Conn's Close must unblock it: quic-go's Close
// must not run concurrently with Write.
func (c *quicStream) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	writing := c.writers > 0
	c.mu.Unlock()
	c.s.CancelRead(quicStreamClosed)
	if writing {
		c.s.CancelWrite(quicStreamClosed)
		return nil
	}
	// An error here means the peer already cancelled our sending side,
	// which leaves nothing to close.
	c.s.Close()
	return nil
}

func (c *quicStream) LocalAddr() net.Addr                { return c.sess.conn.LocalAddr() }
func (c *quicStream) RemoteAddr() net.Addr               { return c.sess.conn.RemoteAddr() }
func (c *quicStream) SetDeadline(t time.Time) error      { return c.s.SetDeadline(t) }
func (c *quicStream) SetReadDeadline(t time.Time) error  { return c.s.SetReadDeadline(t) }
func (c *quicStream) SetWriteDeadline(t time.Time) error { return c.s.SetWriteDeadline(t) }
