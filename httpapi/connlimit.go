package httpapi

import (
	"log/slog"
	"net"
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
// does not read cannot hold the goroutine that refuses it.
const refuseWriteTimeout = 100 * time.Millisecond

// limitListener accepts at most max open connections per client IP; a
// connection past that is answered 429 and closed at once. Connections
// count until closed.
type limitListener struct {
	net.Listener
	max  int
	warn *ratelog.Logger

	mu    sync.Mutex
	conns map[string]int
}

func newLimitListener(ln net.Listener, max int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, max: max, warn: ratelog.New(log, 10*time.Second), conns: make(map[string]int)}
}

// Accept returns the next connection within its client's limit.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(c.RemoteAddr())
		l.mu.Lock()
		n := l.conns[ip]
		if n >= l.max {
			l.mu.Unlock()
			l.warn.Warn("too many HTTP connections from one client: refused", "client", ip, "limit", l.max)
			go refuse(c)
			continue
		}
		l.conns[ip] = n + 1
		l.mu.Unlock()
		return &limitedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[ip] <= 1 {
		delete(l.conns, ip)
		return
	}
	l.conns[ip]--
}

func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	_, _ = c.Write(tooManyConns)
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

// limitedConn gives its slot back once, on the first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
