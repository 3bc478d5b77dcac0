package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
)

// Session is one multiplexed connection between two peers: a yamux session
// over TCP (NewYamuxClient, NewYamuxServer), or a QUIC connection
// (DialQUIC, QUICListener). The code above it only opens and accepts
// streams, so it never knows which it has. The side that opens a stream must
// write first (QUIC announces a stream to the peer only with its first
// bytes); the RPC client always does. Closing a stream closes both of its
// directions.
type Session interface {
	// Open opens a new stream. It returns early with ctx.Err() when ctx is
	// done first.
	Open(ctx context.Context) (net.Conn, error)
	// Accept waits for the next stream opened by the peer. It returns an
	// error once the session is closed.
	Accept() (net.Conn, error)
	// Close closes the session and every stream on it.
	Close() error
	// IsClosed reports whether the session is closed (by either side, or
	// because its connection broke).
	IsClosed() bool
}

// YamuxConfig tunes a yamux session. The zero value of any field means its
// default, from DefaultYamuxConfig.
type YamuxConfig struct {
	// Logger receives yamux's own complaints (broken connections, timed
	// out stream opens). Nil discards them.
	Logger *slog.Logger
	// AcceptBacklog is how many streams opened by the peer may wait for
	// Accept, and how many of our opens may wait for the peer's ack.
	AcceptBacklog int
	// KeepAliveInterval is the time between pings that detect a dead peer
	// on an idle session.
	KeepAliveInterval time.Duration
	// ConnectionWriteTimeout bounds one write to the underlying
	// connection; when exceeded the session is considered broken and
	// closed.
	ConnectionWriteTimeout time.Duration
	// StreamOpenTimeout is how long an opened stream may wait for the
	// peer's ack; when exceeded the whole session is closed (the peer is
	// presumed dead), so callers redial.
	StreamOpenTimeout time.Duration
	// StreamCloseTimeout is how long a stream closed on our side waits for
	// the peer to close its side before it is reset.
	StreamCloseTimeout time.Duration
	// MaxStreamWindowSize is the largest receive window of one stream, in
	// bytes (at least 256 KiB). Larger windows speed up big transfers on
	// long links and cost that much memory per busy stream.
	MaxStreamWindowSize uint32
}

// DefaultYamuxConfig returns the defaults: a 256-stream backlog, 30s
// keepalives, 10s write timeout, 5s stream open timeout, 5 minute stream
// close timeout and a 256 KiB window.
func DefaultYamuxConfig() YamuxConfig {
	return YamuxConfig{
		AcceptBacklog:          256,
		KeepAliveInterval:      30 * time.Second,
		ConnectionWriteTimeout: 10 * time.Second,
		StreamOpenTimeout:      5 * time.Second,
		StreamCloseTimeout:     5 * time.Minute,
		MaxStreamWindowSize:    256 * 1024,
	}
}

// withDefaults returns c with every zero field set from DefaultYamuxConfig.
func (c YamuxConfig) withDefaults() YamuxConfig {
	d := DefaultYamuxConfig()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.AcceptBacklog == 0 {
		c.AcceptBacklog = d.AcceptBacklog
	}
	if c.KeepAliveInterval == 0 {
		c.KeepAliveInterval = d.KeepAliveInterval
	}
	if c.ConnectionWriteTimeout == 0 {
		c.ConnectionWriteTimeout = d.ConnectionWriteTimeout
	}
	if c.StreamOpenTimeout == 0 {
		c.StreamOpenTimeout = d.StreamOpenTimeout
	}
	if c.StreamCloseTimeout == 0 {
		c.StreamCloseTimeout = d.StreamCloseTimeout
	}
	if c.MaxStreamWindowSize == 0 {
		c.MaxStreamWindowSize = d.MaxStreamWindowSize
	}
	return c
}

// Validate reports the first field that is out of range.
func (c YamuxConfig) Validate() error {
	switch {
	case c.AcceptBacklog < 0:
		return fmt.Errorf("yamux AcceptBacklog %d: must not be negative", c.AcceptBacklog)
	case c.KeepAliveInterval < 0, c.ConnectionWriteTimeout < 0, c.StreamOpenTimeout < 0, c.StreamCloseTimeout < 0:
		return errors.New("yamux timeouts must not be negative")
	case c.MaxStreamWindowSize != 0 && c.MaxStreamWindowSize < 256*1024:
		return fmt.Errorf("yamux MaxStreamWindowSize %d: must be at least 262144", c.MaxStreamWindowSize)
	}
	return nil
}

func (c YamuxConfig) yamux() *yamux.Config {
	c = c.withDefaults()
	return &yamux.Config{
		AcceptBacklog:          c.AcceptBacklog,
		EnableKeepAlive:        true,
		KeepAliveInterval:      c.KeepAliveInterval,
		ConnectionWriteTimeout: c.ConnectionWriteTimeout,
		MaxStreamWindowSize:    c.MaxStreamWindowSize,
		StreamOpenTimeout:      c.StreamOpenTimeout,
		StreamCloseTimeout:     c.StreamCloseTimeout,
		Logger:                 yamuxLogger{c.Logger},
	}
}

// NewYamuxClient starts the client side of a yamux session over conn. The
// session owns conn from now on.
func NewYamuxClient(conn net.Conn, cfg YamuxConfig) (Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := yamux.Client(conn, cfg.yamux())
	if err != nil {
		return nil, fmt.Errorf("yamux client to %s: %w", conn.RemoteAddr(), err)
	}
	return &yamuxSession{s: s}, nil
}

// NewYamuxServer starts the server side of a yamux session over conn. The
// session owns conn from now on.
func NewYamuxServer(conn net.Conn, cfg YamuxConfig) (Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := yamux.Server(conn, cfg.yamux())
	if err != nil {
		return nil, fmt.Errorf("yamux server from %s: %w", conn.RemoteAddr(), err)
	}
	return &yamuxSession{s: s}, nil
}

// yamuxSession adapts *yamux.Session to Session.
type yamuxSession struct {
	s *yamux.Session
}

var _ Session = (*yamuxSession)(nil)

// Open opens a stream. yamux's Open takes no context and rarely blocks (only
// when AcceptBacklog opens already wait for acks, or a write stalls, both
// bounded by the session's timeouts), so a context that can never be done
// costs no goroutine.
func (y *yamuxSession) Open(ctx context.Context) (net.Conn, error) {
	if ctx.Done() == nil {
		return y.s.Open()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := y.s.Open()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

func (y *yamuxSession) Accept() (net.Conn, error) { return y.s.Accept() }
func (y *yamuxSession) Close() error              { return y.s.Close() }
func (y *yamuxSession) IsClosed() bool            { return y.s.IsClosed() }

// yamuxLogger sends yamux's printf-style lines to slog.
type yamuxLogger struct{ log *slog.Logger }

func (l yamuxLogger) Print(v ...any) { l.emit(fmt.Sprint(v...)) }
func (l yamuxLogger) Printf(format string, v ...any) {
	l.emit(fmt.Sprintf(format, v...))
}
func (l yamuxLogger) Println(v ...any) { l.emit(fmt.Sprintln(v...)) }

func (l yamuxLogger) emit(line string) {
	line = strings.TrimSpace(line)
	level := slog.LevelWarn
	if rest, ok := strings.CutPrefix(line, "[ERR] "); ok {
		level, line = slog.LevelError, rest
	} else if rest, ok := strings.CutPrefix(line, "[WARN] "); ok {
		line = rest
	}
	l.log.Log(context.Background(), level, "yamux", "detail", line)
}
