package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// PoolConfig tunes a Pool. The zero value of any field means its default,
// from DefaultPoolConfig.
type PoolConfig struct {
	// Logger receives dial failures and yamux complaints. Nil discards
	// them.
	Logger *slog.Logger
	// DialTimeout bounds one dial (TCP connect plus protocol byte, or
	// DialSession).
	DialTimeout time.Duration
	// Yamux tunes the client sessions. Its StreamOpenTimeout bounds how
	// long an opened stream waits for the server's ack before the session
	// is declared dead.
	Yamux YamuxConfig
	// MaxIdleStreamsPerAddr is how many streams, per server, are kept open
	// after a clean call for the next call to reuse. Each costs the server
	// a parked goroutine. Negative means none: a new stream for every call.
	MaxIdleStreamsPerAddr int
	// MaxMessageSize is the largest reply accepted, in bytes; a longer one
	// fails the call with ErrTransport and ErrFrameTooLarge.
	MaxMessageSize int
	// Dial opens the connection for a session to addr. The default is
	// DialProto(ctx, addr, ProtoMux).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// DialSession, when set, makes the whole session to addr and is used
	// instead of Dial and a yamux client (Dial and Yamux are then unused).
	// With DialQUIC, a Pool of QUIC links:
	//
	//	cfg.DialSession = func(ctx context.Context, addr string) (rpc.Session, error) {
	//		return rpc.DialQUIC(ctx, addr, quicCfg)
	//	}
	//
	// DialTimeout bounds it as it bounds Dial. Everything else (one
	// session per address, shared dials, redials, idle stream reuse,
	// retries) is the same whatever the kind of session.
	DialSession func(ctx context.Context, addr string) (Session, error)
}

// MuxDial is a PoolConfig.Dial that opens RPC sessions (ProtoMux) over
// connections from dial; nil, the Pool's default, when dial is nil.
func MuxDial(dial DialFunc) func(ctx context.Context, addr string) (net.Conn, error) {
	if dial == nil {
		return nil
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return DialProtoWith(ctx, dial, addr, ProtoMux)
	}
}

// DefaultPoolConfig returns the defaults: 5s dial timeout,
// DefaultYamuxConfig (5s stream open timeout), 64 idle streams per server,
// a 64 MiB message limit and DialProto with ProtoMux.
func DefaultPoolConfig() PoolConfig {
	return PoolConfig{
		DialTimeout:           5 * time.Second,
		Yamux:                 DefaultYamuxConfig(),
		MaxIdleStreamsPerAddr: 64,
		MaxMessageSize:        64 << 20,
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return DialProto(ctx, addr, ProtoMux)
		},
	}
}

// Validate reports the first field that is out of range.
func (c PoolConfig) Validate() error {
	switch {
	case c.DialTimeout < 0:
		return fmt.Errorf("pool DialTimeout %v: must not be negative", c.DialTimeout)
	case c.MaxMessageSize < 0:
		return fmt.Errorf("pool MaxMessageSize %d: must not be negative", c.MaxMessageSize)
	}
	if err := c.Yamux.Validate(); err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	return nil
}

// Pool is the client side of RPC: one session per server address, shared by
// all callers, dialed once however many callers race for it and redialed
// when it breaks. Idle streams are kept for reuse. It is safe for concurrent
// use.
type Pool struct {
	cfg PoolConfig
	log *slog.Logger

	ctx    context.Context // cancelled by Close; bounds dials
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[string]*poolConn
	closed bool
	wg     sync.WaitGroup // dial goroutines
}

// poolConn is the session to one address, or the dial that will make it.
type poolConn struct {
	addr  string
	ready chan struct{} // closed once sess or err is set
	sess  Session
	err   error

	mu   sync.Mutex
	idle []*clientStream
	dead bool // evicted: streams coming back are closed
}

// NewPool returns a Pool. It panics if cfg does not pass Validate, as that
// is a programming error.
func NewPool(cfg PoolConfig) *Pool {
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("rpc.NewPool: %v", err))
	}
	d := DefaultPoolConfig()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = d.DialTimeout
	}
	if cfg.MaxIdleStreamsPerAddr == 0 {
		cfg.MaxIdleStreamsPerAddr = d.MaxIdleStreamsPerAddr
	}
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = d.MaxMessageSize
	}
	if cfg.Dial == nil {
		cfg.Dial = d.Dial
	}
	if cfg.Yamux.Logger == nil {
		cfg.Yamux.Logger = cfg.Logger
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{
		cfg:    cfg,
		log:    cfg.Logger,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[string]*poolConn),
	}
}

// Call invokes method on the server at addr: args is encoded as the
// request, and the reply is decoded into reply (a pointer, or nil to
// discard it).
//
// A handler's error comes back as an *Error, matchable with errors.Is. A
// failure of the connection wraps ErrTransport; before failing so, a call
// whose pooled session turns out dead is retried once on a new session. A
// request that was wholly sent is retried only when it is a read (args has
// an IsRead method, as every rpc.Query does); otherwise the error also
// wraps ErrMaybeDelivered, since the server may have applied it. When ctx
// is done first, Call returns ctx.Err() promptly, even when the server's
// answer to the expired deadline arrived first; the caller's deadline
// travels with the request into the handler's context.
func (p *Pool) Call(ctx context.Context, addr, method string, args, reply any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		pc, fresh, err := p.session(ctx, addr)
		if err != nil {
			return err
		}
		cs, err := p.stream(ctx, pc)
		if err == nil {
			err = cs.call(ctx, method, args, reply, p.cfg.MaxMessageSize)
			if cs.broken {
				cs.close()
			} else {
				p.release(pc, cs)
			}
		}
		te, ok := err.(*transportErr) // never wrapped: see stream and call
		if !ok {
			if cerr := ctxErr(ctx); err != nil && cerr != nil {
				return cerr // the handler saw the same deadline
			}
			return err // nil, a remote *Error, an encoding error or ctx.Err()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if pc.sess.IsClosed() {
			p.evict(pc)
			if attempt == 0 && !fresh && (!te.sent || isRead(args)) {
				p.log.Debug("rpc session died, redialing", "addr", addr, "method", method, "err", te.err)
				continue
			}
		}
		if te.sent {
			return transportError(method, addr, fmt.Errorf("%w: %w", ErrMaybeDelivered, te.err))
		}
		return transportError(method, addr, te.err)
	}
}

// ctxErr is ctx.Err(), and also DeadlineExceeded once ctx's deadline has
// passed: a context's timer may fire after its deadline, later than the
// handler's answer to the same deadline arrives.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// transportErr marks an error of the connection inside Call; sent says
// whether the whole request had been written, so the server may have run it.
type transportErr struct {
	err  error
	sent bool
}

func (e *transportErr) Error() string { return e.err.Error() }
func (e *transportErr) Unwrap() error { return e.err }

// session returns the live session to addr, dialing it if needed. fresh
// reports whether this call waited for a dial.
func (p *Pool) session(ctx context.Context, addr string) (pc *poolConn, fresh bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, ErrPoolClosed
	}
	pc = p.conns[addr]
	if pc != nil {
		select {
		case <-pc.ready:
			if pc.err == nil && !pc.sess.IsClosed() {
				p.mu.Unlock()
				return pc, false, nil
			}
			p.dropLocked(pc)
			pc = nil
		default:
		}
	}
	if pc == nil {
		pc = &poolConn{addr: addr, ready: make(chan struct{})}
		p.conns[addr] = pc
		p.wg.Add(1)
		go p.dial(pc)
	}
	p.mu.Unlock()

	select {
	case <-pc.ready:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	if pc.err != nil {
		return nil, false, pc.err
	}
	return pc, true, nil
}

// dial makes pc's session; every caller waiting on pc.ready shares it.
func (p *Pool) dial(pc *poolConn) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.DialTimeout)
	defer cancel()
	sess, err := p.dialSession(ctx, pc.addr)
	p.mu.Lock()
	if err == nil && p.closed {
		sess.Close()
		err = ErrPoolClosed
	}
	if err != nil {
		if !errors.Is(err, ErrPoolClosed) {
			p.log.Warn("rpc dial failed", "addr", pc.addr, "err", err)
			err = fmt.Errorf("rpc dial %s: %w: %w", pc.addr, ErrTransport, err)
		}
		pc.err = err
		p.dropLocked(pc)
	}
	pc.sess = sess
	close(pc.ready)
	p.mu.Unlock()
}

// dialSession makes a session to addr with DialSession, or with Dial and a
// yamux client.
func (p *Pool) dialSession(ctx context.Context, addr string) (Session, error) {
	if p.cfg.DialSession != nil {
		sess, err := p.cfg.DialSession(ctx, addr)
		if err == nil && sess == nil {
			err = errors.New("DialSession returned no session and no error")
		}
		return sess, err
	}
	conn, err := p.cfg.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	sess, err := NewYamuxClient(conn, p.cfg.Yamux)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return sess, nil
}

// dropLocked forgets pc if it is still the current entry for its address.
// p.mu must be held.
func (p *Pool) dropLocked(pc *poolConn) {
	if p.conns[pc.addr] == pc {
		delete(p.conns, pc.addr)
	}
}

// Forget closes the session to addr, if there is one: calls in flight on
// it fail with ErrTransport at once, and the next call dials again. Callers
// use it when gossip declares the server failed, rather than wait for the
// session's keepalives to notice (a peer that vanished without closing its
// connections is otherwise noticed only after them).
func (p *Pool) Forget(addr string) {
	p.mu.Lock()
	pc := p.conns[addr]
	if pc == nil {
		p.mu.Unlock()
		return
	}
	select {
	case <-pc.ready:
	default:
		p.mu.Unlock()
		return // still dialing: the dial is bounded by DialTimeout
	}
	p.dropLocked(pc)
	p.mu.Unlock()
	pc.shut()
}

// evict forgets pc and closes its session and idle streams.
func (p *Pool) evict(pc *poolConn) {
	p.mu.Lock()
	p.dropLocked(pc)
	p.mu.Unlock()
	pc.shut()
}

// shut closes pc's idle streams and session and refuses returning streams.
func (pc *poolConn) shut() {
	pc.mu.Lock()
	idle := pc.idle
	pc.idle, pc.dead = nil, true
	pc.mu.Unlock()
	for _, cs := range idle {
		cs.close()
	}
	if pc.sess != nil {
		pc.sess.Close()
	}
}

// stream returns an idle stream of pc or opens a new one.
func (p *Pool) stream(ctx context.Context, pc *poolConn) (*clientStream, error) {
	pc.mu.Lock()
	if n := len(pc.idle); n > 0 {
		cs := pc.idle[n-1]
		pc.idle[n-1] = nil
		pc.idle = pc.idle[:n-1]
		pc.mu.Unlock()
		return cs, nil
	}
	pc.mu.Unlock()
	conn, err := pc.sess.Open(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &transportErr{err: fmt.Errorf("open stream: %w", err)}
	}
	return &clientStream{conn: conn}, nil
}

// release keeps cs for reuse, or closes it when the idle list is full or
// reuse is off.
func (p *Pool) release(pc *poolConn, cs *clientStream) {
	pc.mu.Lock()
	if !pc.dead && len(pc.idle) < p.cfg.MaxIdleStreamsPerAddr {
		pc.idle = append(pc.idle, cs)
		pc.mu.Unlock()
		return
	}
	pc.mu.Unlock()
	cs.close()
}

// Close closes every session, waits for dials in progress and makes later
// calls fail with ErrPoolClosed. Calls in flight fail. Safe to call more
// than once.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	p.cancel()
	conns := p.conns
	p.conns = make(map[string]*poolConn)
	p.mu.Unlock()
	p.wg.Wait() // after this every pc.ready is closed
	for _, pc := range conns {
		pc.shut()
	}
	return nil
}

// clientStream is one stream with its reusable frame buffer.
type clientStream struct {
	conn   net.Conn
	buf    []byte
	broken bool // must not be reused
}

func (cs *clientStream) close() { cs.conn.Close() }

// call runs one request/response exchange on cs. Errors of the stream come
// back as *transportErr, and mark cs broken.
func (cs *clientStream) call(ctx context.Context, method string, args, reply any, maxSize int) error {
	var timeout int64
	if dl, ok := ctx.Deadline(); ok {
		timeout = int64(time.Until(dl))
		if timeout <= 0 {
			return context.DeadlineExceeded
		}
	}
	frame := startFrame(cs.buf)
	frame = appendStr(frame, method)
	frame = appendInt64(frame, timeout)
	if err := appendEncode(&frame, args); err != nil {
		cs.buf = frame
		return fmt.Errorf("rpc %s arguments: %w", method, err)
	}
	finishFrame(frame)

	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { cs.conn.SetDeadline(time.Unix(1, 0)) })
		defer func() {
			if !stop() {
				cs.broken = true // the deadline is set, or about to be
			}
		}()
	}
	if _, err := cs.conn.Write(frame); err != nil {
		cs.buf, cs.broken = frame, true
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &transportErr{err: fmt.Errorf("send request: %w", err)}
	}
	frame, err := readFrame(cs.conn, frame, maxSize)
	cs.buf = frame
	if err != nil {
		cs.broken = true
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, ok := errors.AsType[*linkError](err); ok {
			err = fmt.Errorf("read reply: %w", err) // it says what happened to the link
		} else if isEOF(err) {
			err = fmt.Errorf("read reply: stream closed by server: %w", err)
		} else {
			err = fmt.Errorf("read reply: %w", err)
		}
		return &transportErr{err: err, sent: true}
	}
	code, msg, body, err := parseResponse(frame)
	if err != nil {
		cs.broken = true
		return &transportErr{err: err, sent: true}
	}
	if len(msg) > 0 || len(code) > 0 {
		return &Error{Code: string(code), Message: string(msg)}
	}
	if reply == nil {
		return nil
	}
	if err := Unmarshal(body, reply); err != nil {
		return fmt.Errorf("rpc %s reply: %w", method, err)
	}
	return nil
}

// isEOF reports whether err means the peer closed the stream or session.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, yamux.ErrStreamClosed) || errors.Is(err, yamux.ErrSessionShutdown) ||
		errors.Is(err, yamux.ErrConnectionReset) || errors.Is(err, net.ErrClosed)
}

// isRead reports whether args declares itself a read, safe to send twice.
func isRead(args any) bool {
	r, ok := args.(interface{ IsRead() bool })
	return ok && r.IsRead()
}
