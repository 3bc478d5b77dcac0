package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/meridian/meridian/internal/ratelog"
)

// ServerConfig tunes a Server. The zero value of any field means its
// default, from DefaultServerConfig.
type ServerConfig struct {
	// Logger receives handler panics and broken streams. Nil discards them.
	Logger *slog.Logger
	// Yamux tunes the sessions ServeListener creates.
	Yamux YamuxConfig
	// MaxMessageSize is the largest request accepted, in bytes; a longer
	// one breaks its stream.
	MaxMessageSize int
	// FrameTimeout is how long the rest of a request may take to arrive
	// once its first bytes have; a stream may idle between requests. A
	// slower request breaks its stream.
	FrameTimeout time.Duration
}

// DefaultServerConfig returns the defaults: DefaultYamuxConfig, a 64 MiB
// message limit and 30s for a request to arrive.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{Yamux: DefaultYamuxConfig(), MaxMessageSize: 64 << 20, FrameTimeout: 30 * time.Second}
}

// Validate reports the first field that is out of range.
func (c ServerConfig) Validate() error {
	if c.MaxMessageSize < 0 {
		return fmt.Errorf("server MaxMessageSize %d: must not be negative", c.MaxMessageSize)
	}
	if c.FrameTimeout < 0 {
		return fmt.Errorf("server FrameTimeout %v: must not be negative", c.FrameTimeout)
	}
	if err := c.Yamux.Validate(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// handlerFunc decodes a request body, runs the handler and returns the reply
// to encode.
type handlerFunc func(ctx context.Context, body []byte) (reply any, err error)

// Server dispatches RPC streams to handlers by method name. Register
// handlers, then serve sessions with ServeSession, a listener of yamux
// connections with ServeListener, or a QUIC listener with ServeQUIC. It is
// safe for concurrent use, including Register while serving.
type Server struct {
	cfg   ServerConfig
	log   *slog.Logger
	drops *ratelog.Logger // broken streams and sessions: a peer can cause them at will

	ctx    context.Context // cancelled by Shutdown; parent of handler contexts
	cancel context.CancelFunc

	hmu      sync.RWMutex
	handlers map[string]handlerFunc
	streams  map[string]streamFunc // subscriptions (stream.go)

	mu        sync.Mutex
	closed    bool
	sessions  map[io.Closer]struct{} // Session
	listeners map[io.Closer]struct{} // net.Listener or *QUICListener
	wg        sync.WaitGroup
}

// NewServer returns a Server with no handlers. It panics if cfg does not
// pass Validate, as that is a programming error.
func NewServer(cfg ServerConfig) *Server {
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("rpc.NewServer: %v", err))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = DefaultServerConfig().MaxMessageSize
	}
	if cfg.FrameTimeout == 0 {
		cfg.FrameTimeout = DefaultServerConfig().FrameTimeout
	}
	drops := ratelog.New(cfg.Logger, 10*time.Second)
	if cfg.Yamux.Logger == nil {
		cfg.Yamux.Logger = drops.Slog()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		drops:     drops,
		ctx:       ctx,
		cancel:    cancel,
		handlers:  make(map[string]handlerFunc),
		sessions:  make(map[io.Closer]struct{}),
		listeners: make(map[io.Closer]struct{}),
	}
}

// Register makes fn answer calls of method, replacing any earlier handler.
// Each call decodes its arguments into a new(A), and the *R that fn filled
// is encoded as the reply unless fn returns an error. fn's ctx carries the
// caller's deadline and is cancelled by Shutdown.
func Register[A, R any](s *Server, method string, fn func(ctx context.Context, args *A, reply *R) error) {
	h := func(ctx context.Context, body []byte) (any, error) {
		args := new(A)
		if len(body) > 0 {
			if err := Unmarshal(body, args); err != nil {
				return nil, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("decode %s arguments: %v", method, err)}
			}
		}
		reply := new(R)
		if err := fn(ctx, args, reply); err != nil {
			return nil, err
		}
		return reply, nil
	}
	s.hmu.Lock()
	s.handlers[method] = h
	s.hmu.Unlock()
}

// goTracked runs fn in a goroutine that Shutdown waits for. When the server
// is shut down it closes c instead, runs nothing and returns false.
func (s *Server) goTracked(c io.Closer, fn func()) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return false
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

// hold adds c to set (s.sessions or s.listeners), so that Shutdown closes it,
// and returns a func that takes it out again. When the server is shut down
// it closes c instead and returns false.
func (s *Server) hold(set map[io.Closer]struct{}, c io.Closer) (release func(), ok bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return nil, false
	}
	set[c] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(set, c)
		s.mu.Unlock()
	}, true
}

// ServeSession serves every stream the peer opens on sess, each in its own
// goroutine, until sess closes; then it returns. Shutdown closes sess.
func (s *Server) ServeSession(sess Session) {
	release, ok := s.hold(s.sessions, sess)
	if !ok {
		return
	}
	defer func() {
		release()
		sess.Close()
	}()
	for {
		stream, err := sess.Accept()
		if err != nil {
			return
		}
		if !s.goTracked(stream, func() { s.serveStream(stream) }) {
			return
		}
	}
}

// ServeListener turns every connection ln accepts into a yamux server
// session served by ServeSession. It returns when ln is closed, or on
// Shutdown (which closes ln).
func (s *Server) ServeListener(ln net.Listener) {
	release, ok := s.hold(s.listeners, ln)
	if !ok {
		return
	}
	defer release()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("rpc accept failed", "addr", ln.Addr(), "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		sess, err := NewYamuxServer(conn, s.cfg.Yamux)
		if err != nil {
			s.drops.Warn("rpc session setup failed", "peer", conn.RemoteAddr(), "err", err)
			conn.Close()
			continue
		}
		if !s.goTracked(sess, func() { s.ServeSession(sess) }) {
			return
		}
	}
}

// ServeQUIC serves every QUIC link ln accepts with ServeSession. It returns
// when ln is closed, or on Shutdown (which closes ln and every link it
// accepted).
func (s *Server) ServeQUIC(ln *QUICListener) {
	release, ok := s.hold(s.listeners, ln)
	if !ok {
		return
	}
	defer release()
	for {
		sess, err := ln.Accept(s.ctx)
		if err != nil {
			// quic-go's Accept fails only once the listener is closed
			// or ctx is done.
			if !errors.Is(err, net.ErrClosed) && s.ctx.Err() == nil {
				s.log.Warn("rpc quic accept failed, not serving", "addr", ln.Addr(), "err", err)
			}
			return
		}
		if !s.goTracked(sess, func() { s.ServeSession(sess) }) {
			return
		}
	}
}

// Shutdown cancels every handler's context, closes every served listener
// and session, and waits for the goroutines the server started (handlers
// included). Safe to call more than once.
func (s *Server) Shutdown() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.cancel()
		for ln := range s.listeners {
			ln.Close()
		}
		for sess := range s.sessions {
			sess.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// serveStream answers calls on one stream until the peer closes it.
func (s *Server) serveStream(stream net.Conn) {
	defer stream.Close()
	var in, out []byte
	for {
		var err error
		in, err = readFrameWithin(stream, in, s.cfg.MaxMessageSize, s.cfg.FrameTimeout)
		if err != nil {
			if !isEOF(err) && s.ctx.Err() == nil {
				s.drops.Warn("rpc stream broken", "peer", stream.RemoteAddr(), "err", err)
			}
			return
		}
		if h := s.streamHandler(in); h != nil {
			s.serveSubscription(stream, h, in)
			return
		}
		out = s.handle(in, out)
		if _, err := stream.Write(out); err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("rpc reply not sent", "peer", stream.RemoteAddr(), "err", err)
			}
			return
		}
	}
}

// handle answers one request payload; it returns the response frame, built
// in out.
func (s *Server) handle(req, out []byte) []byte {
	method, timeout, body, err := parseRequest(req)
	if err != nil {
		return errorFrame(out, CodeBadRequest, err.Error())
	}
	s.hmu.RLock()
	h := s.handlers[string(method)]
	s.hmu.RUnlock()
	if h == nil {
		return errorFrame(out, CodeUnknownMethod, fmt.Sprintf("unknown method %q", method))
	}
	ctx := s.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout))
		defer cancel()
	}
	reply, err := s.call(ctx, h, method, body)
	if err != nil {
		code, msg := remoteError(err)
		return errorFrame(out, code, msg)
	}
	out = startFrame(out)
	out = appendStr(out, "")
	out = appendStr(out, "")
	if err := appendEncode(&out, reply); err != nil {
		s.log.Error("rpc reply not encodable", "method", string(method), "err", err)
		return errorFrame(out, CodeInternal, fmt.Sprintf("encode %s reply: %v", method, err))
	}
	finishFrame(out)
	return out
}

// Dispatch runs the handler of method on body, an encoded request, as a
// call arriving on a stream would run (panics become ErrInternal), and
// returns its encoded reply. A federation relay hands the request it
// carried from another datacenter to its endpoint this way.
func (s *Server) Dispatch(ctx context.Context, method string, body []byte) ([]byte, error) {
	s.hmu.RLock()
	h := s.handlers[method]
	s.hmu.RUnlock()
	if h == nil {
		return nil, &Error{Code: CodeUnknownMethod, Message: fmt.Sprintf("unknown method %q", method)}
	}
	reply, err := s.call(ctx, h, []byte(method), body)
	if err != nil {
		return nil, err
	}
	out, err := Marshal(reply)
	if err != nil {
		return nil, &Error{Code: CodeInternal, Message: fmt.Sprintf("encode %s reply: %v", method, err)}
	}
	return out, nil
}

// call runs h, turning a panic into an ErrInternal.
func (s *Server) call(ctx context.Context, h handlerFunc, method, body []byte) (reply any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("rpc handler panicked", "method", string(method), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			reply, err = nil, &Error{Code: CodeInternal, Message: fmt.Sprintf("handler for %s panicked", method)}
		}
	}()
	return h(ctx, body)
}

// errorFrame builds an error response frame in out.
func errorFrame(out []byte, code, msg string) []byte {
	out = startFrame(out)
	out = appendStr(out, code)
	out = appendStr(out, msg)
	finishFrame(out)
	return out
}
