package rpc

import (
	"context"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// MethodSubscribeHealth subscribes to the health of one service (a
// Query[catalog.ServiceRequest]): the server sends a server.HealthEvent
// with the whole answer once its index is at least the query's MinIndex,
// then one with what changed each time the answer's index moves, each cut
// down to what the token may read at that moment. It ends with an error
// when the token may no longer read the service. Client agents keep their
// materialized views of watched services with it (use_streaming_backend).
const MethodSubscribeHealth = "Subscribe.Health"

// streamFunc runs one subscription: it decodes the request body and
// sends events until it returns.
type streamFunc func(ctx context.Context, body []byte, send func(event any) error) error

// RegisterStream makes fn answer subscriptions to method, replacing any
// earlier handler. A subscription has a stream of its own: the request
// is decoded into a new(A), and every event fn passes to send (a value,
// or an Encoded one) goes to the subscriber as a reply frame, until fn
// returns; its error, if any, is the stream's last frame. fn's ctx is
// cancelled when the subscriber closes the stream and by Shutdown. send fails when the subscriber is
// gone or does not read an event within ServerConfig.FrameTimeout.
func RegisterStream[A any](s *Server, method string, fn func(ctx context.Context, args *A, send func(event any) error) error) {
	h := func(ctx context.Context, body []byte, send func(any) error) error {
		args := new(A)
		if len(body) > 0 {
			if err := Unmarshal(body, args); err != nil {
				return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("decode %s arguments: %v", method, err)}
			}
		}
		return fn(ctx, args, send)
	}
	s.hmu.Lock()
	if s.streams == nil {
		s.streams = make(map[string]streamFunc)
	}
	s.streams[method] = h
	s.hmu.Unlock()
}

// Encoded is an event encoded once, by Encode, to be sent to many
// subscribers: a stream handler's send writes its bytes as they are.
type Encoded struct{ b []byte }

// Encode encodes v as an event for send.
func Encode(v any) (Encoded, error) {
	b, err := Marshal(v)
	return Encoded{b: b}, err
}

// streamHandler is the subscription handler named by the request payload
// req, or nil.
func (s *Server) streamHandler(req []byte) streamFunc {
	method, _, _, err := parseRequest(req)
	if err != nil {
		return nil
	}
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	return s.streams[string(method)]
}

// serveSubscription runs h for the request req on stream, which it owns
// from now on: any byte the subscriber sends, or its close, ends the
// subscription.
func (s *Server) serveSubscription(stream net.Conn, h streamFunc, req []byte) {
	method, _, body, _ := parseRequest(req) // streamHandler parsed it
	name := string(method)
	ctx, cancel := context.WithCancel(s.ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		var b [1]byte
		stream.Read(b[:])
		cancel()
	})
	defer func() {
		cancel()
		stream.Close()
		wg.Wait()
	}()
	var out []byte
	send := func(ev any) error {
		out = startFrame(out)
		out = appendStr(out, "")
		out = appendStr(out, "")
		if e, ok := ev.(Encoded); ok {
			out = append(out, e.b...)
		} else if err := appendEncode(&out, ev); err != nil {
			return fmt.Errorf("encode %s event: %w", name, err)
		}
		finishFrame(out)
		stream.SetWriteDeadline(time.Now().Add(s.cfg.FrameTimeout))
		_, err := stream.Write(out)
		return err
	}
	err := s.runStream(ctx, h, name, body, send)
	if err == nil || ctx.Err() != nil {
		return
	}
	code, msg := remoteError(err)
	out = errorFrame(out, code, msg)
	stream.SetWriteDeadline(time.Now().Add(s.cfg.FrameTimeout))
	stream.Write(out)
}

// runStream runs h, turning a panic into an ErrInternal.
func (s *Server) runStream(ctx context.Context, h streamFunc, method string, body []byte, send func(any) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("rpc stream handler panicked", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = &Error{Code: CodeInternal, Message: fmt.Sprintf("handler for %s panicked", method)}
		}
	}()
	return h(ctx, body, send)
}

// Subscription is the subscriber's end of a stream of events from a
// server (Pool.Subscribe). Recv must not be called concurrently; Close may
// be called at any time, from any goroutine.
type Subscription struct {
	conn         net.Conn
	method, addr string
	maxSize      int
	buf          []byte
	stop         func() bool
	closeOnce    sync.Once
	closed       chan struct{}
}

// Subscribe opens a subscription to method on the server at addr, with
// args as its request, on a stream of its own of the shared session. The
// subscription lasts until Close, ctx is done, the server ends it or the
// connection breaks. A failure to reach the server wraps ErrTransport.
func (p *Pool) Subscribe(ctx context.Context, addr, method string, args any) (*Subscription, error) {
	frame := startFrame(nil)
	frame = appendStr(frame, method)
	frame = appendInt64(frame, 0)
	if err := appendEncode(&frame, args); err != nil {
		return nil, fmt.Errorf("rpc %s arguments: %w", method, err)
	}
	finishFrame(frame)
	for attempt := 0; ; attempt++ {
		pc, fresh, err := p.session(ctx, addr)
		if err != nil {
			return nil, err
		}
		conn, err := pc.sess.Open(ctx)
		if err == nil {
			conn.SetWriteDeadline(time.Now().Add(p.cfg.DialTimeout))
			if _, err = conn.Write(frame); err == nil {
				conn.SetWriteDeadline(time.Time{})
				sub := &Subscription{conn: conn, method: method, addr: addr, maxSize: p.cfg.MaxMessageSize, buf: frame, closed: make(chan struct{})}
				sub.stop = context.AfterFunc(ctx, sub.shut)
				return sub, nil
			}
			conn.Close()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if pc.sess.IsClosed() {
			p.evict(pc)
			if attempt == 0 && !fresh {
				continue
			}
		}
		return nil, transportError(method, addr, fmt.Errorf("open subscription: %w", err))
	}
}

// Recv waits for the next event and decodes it into ev. An error the
// server ended the subscription with comes back as an *Error; a broken
// connection wraps ErrTransport; after Close, net.ErrClosed.
func (s *Subscription) Recv(ev any) error {
	frame, err := readFrame(s.conn, s.buf, s.maxSize)
	s.buf = frame
	if err != nil {
		select {
		case <-s.closed:
			return fmt.Errorf("rpc %s subscription: %w", s.method, net.ErrClosed)
		default:
		}
		if isEOF(err) {
			err = fmt.Errorf("stream closed by server: %w", err)
		}
		return transportError(s.method, s.addr, err)
	}
	code, msg, body, err := parseResponse(frame)
	if err != nil {
		return transportError(s.method, s.addr, err)
	}
	if len(msg) > 0 || len(code) > 0 {
		return &Error{Code: string(code), Message: string(msg)}
	}
	if err := Unmarshal(body, ev); err != nil {
		return fmt.Errorf("rpc %s event: %w", s.method, err)
	}
	return nil
}

// Close ends the subscription: the server's handler is cancelled, and a
// Recv in progress returns. Safe to call more than once.
func (s *Subscription) Close() error {
	s.stop()
	s.shut()
	return nil
}

// shut closes the stream, once.
func (s *Subscription) shut() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.conn.Close()
	})
}
