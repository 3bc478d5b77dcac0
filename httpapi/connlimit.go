package httpapi

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/meridian/meridian/internal/ratelog"
)

// tooManyConnsBody is what a client past its connection limit is told
// before its connection is closed (Consul's 429 and wording).
const tooManyConnsBody = "Your IP is issuing too many concurrent connections, please rate limit your calls\n"

var tooManyConns = []byte("HTTP/1.1 429 Too Many Requests\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n" +
	"Content-Length: " + strconv.Itoa(len(tooManyConnsBody)) + "\r\n\r\n" + tooManyConnsBody)

// refuseWriteTimeout bounds writing tooManyConns, so a refused client that
// does not read cannot hold the server's accept loop.
const refuseWriteTimeout = 100 * time.Millisecond

// connLimit holds each client IP to max open connections, counted through
// http.Server's ConnState hook so that it sees the connections of every
// listener the server serves, TLS ones as the *tls.Conn net/http expects.
// A connection past the limit is answered 429 and closed at once.
type connLimit struct {
	max  int
	warn *ratelog.Logger

	mu    sync.Mutex
	conns map[string]int
}

func newConnLimit(max int, log *slog.Logger) *connLimit {
	return &connLimit{max: max, warn: ratelog.New(log, 10*time.Second), conns: make(map[string]int)}
}

// connState is the http.Server ConnState hook. Every connection counts
// from StateNew until StateClosed or StateHijacked, refused ones too until
// they are closed, which happens in the hook.
func (l *connLimit) connState(c net.Conn, st http.ConnState) {
	ip := clientIP(c.RemoteAddr())
	switch st {
	case http.StateNew:
		l.mu.Lock()
		l.conns[ip]++
		over := l.conns[ip] > l.max
		l.mu.Unlock()
		if over {
			l.warn.Warn("too many HTTP connections from one client: refused", "client", ip, "limit", l.max)
			refuse(c)
		}
	case http.StateClosed, http.StateHijacked:
		l.mu.Lock()
		if l.conns[ip] <= 1 {
			delete(l.conns, ip)
		} else {
			l.conns[ip]--
		}
		l.mu.Unlock()
	}
}

// refuse answers 429 on a plain connection and closes it, before the
// server reads a request from it (the hook runs in the accept loop, and a
// fresh socket takes the few bytes at once). A TLS connection is closed
// without an answer: the handshake the answer needs is the client's to
// drag out.
func refuse(c net.Conn) {
	if _, isTLS := c.(*tls.Conn); !isTLS {
		_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
		_, _ = c.Write(tooManyConns)
	}
	_ = c.Close()
}

func clientIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
