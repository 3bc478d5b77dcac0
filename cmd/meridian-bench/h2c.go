package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Conn is one HTTP/2 connection without TLS (prior knowledge) that
// carries many watchers' GETs as streams, made for the herd: one goroutine
// reads every frame of the connection and hands each stream's answer to
// the watcher waiting for it, and the requests' HEADERS frames share
// writes, so that a wake of 200 streams costs the tool a few reads and 200
// channel sends rather than net/http's machinery per response (headers
// maps, body pipes, a goroutine switch per frame). The tool then stays
// small next to the agents it measures on the same cores. GET only, no
// request bodies, no server push. Safe for concurrent use.
type h2Conn struct {
	conn net.Conn
	fr   *http2.Framer

	wmu     sync.Mutex // guards the writes: bw, fr's writes, enc, hbuf
	bw      *bufio.Writer
	enc     *hpack.Encoder
	hbuf    bytes.Buffer
	writers atomic.Int32 // writers waiting for wmu or writing: the last flushes

	mu      sync.Mutex
	streams map[uint32]*h2Stream
	nextID  uint32
	err     error // the connection failed: every stream gets it
	// unacked is the DATA received since the last connection WINDOW_UPDATE
	// (reader goroutine only).
	unacked uint32
}

// h2Stream is one request waiting for its answer.
type h2Stream struct {
	status  int
	index   uint64
	backend string
	body    []byte
	done    chan error // one value: nil once the answer ended
}

// h2Window is the flow-control window the tool grants the agent, per
// stream and for the connection: far more than any answer of the herd, so
// that the agent never waits for the tool's WINDOW_UPDATE.
const h2Window = 1 << 30

// dialH2 opens an HTTP/2 connection to target from src and starts reading
// it; it ends when ctx does or Close is called.
func dialH2(ctx context.Context, target string, src net.IP) (*h2Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", target, src, err)
	}
	c := &h2Conn{conn: conn, bw: bufio.NewWriterSize(conn, 16<<10), streams: make(map[uint32]*h2Stream), nextID: 1}
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(conn, 32<<10))
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	_, err = c.bw.WriteString(http2.ClientPreface)
	if err == nil {
		err = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2Window}, http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	}
	if err == nil {
		err = c.fr.WriteWindowUpdate(0, h2Window-65535)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("start HTTP/2 on %s: %w", target, err)
	}
	go c.read()
	return c, nil
}

// Close ends the connection; waiting streams get an error.
func (c *h2Conn) Close() { c.conn.Close() }

// get sends GET path with the header fields hdr (name, value pairs) and
// returns its status, X-Consul-Index, X-Consul-Query-Backend and body,
// appended to buf. sent is called once the request is written.
func (c *h2Conn) get(ctx context.Context, authority, path string, hdr []string, buf []byte, sent func()) (int, uint64, string, []byte, error) {
	s := &h2Stream{body: buf[:0], done: make(chan error, 1)}
	c.writers.Add(1)
	c.wmu.Lock()
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		c.wmu.Unlock()
		c.writers.Add(-1)
		return 0, 0, "", buf, err
	}
	id := c.nextID
	c.nextID += 2
	c.streams[id] = s
	c.mu.Unlock()
	c.hbuf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", authority}, {":path", path}} {
		_ = c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		_ = c.enc.WriteField(hpack.HeaderField{Name: hdr[i], Value: hdr[i+1]})
	}
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndStream: true, EndHeaders: true})
	if c.writers.Add(-1) == 0 && err == nil {
		err = c.bw.Flush() // the last writer waiting: nobody else will
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
	}
	if sent != nil {
		sent()
	}
	select {
	case err = <-s.done:
	case <-ctx.Done():
		c.mu.Lock()
		_, waiting := c.streams[id]
		delete(c.streams, id)
		c.mu.Unlock()
		if waiting {
			c.write(func() error { return c.fr.WriteRSTStream(id, http2.ErrCodeCancel) })
		}
		return 0, 0, "", buf, ctx.Err()
	}
	return s.status, s.index, s.backend, s.body, err
}

// write runs one frame write and flushes it.
func (c *h2Conn) write(fn func() error) {
	c.wmu.Lock()
	err := fn()
	if err == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
	}
}

// fail ends the connection with err: every waiting stream gets it.
func (c *h2Conn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	streams := c.streams
	c.streams = map[uint32]*h2Stream{}
	c.mu.Unlock()
	for _, s := range streams {
		s.done <- err
	}
	c.conn.Close()
}

// end takes stream id off the waiting ones and hands it err.
func (c *h2Conn) end(id uint32, err error) {
	c.mu.Lock()
	s := c.streams[id]
	delete(c.streams, id)
	c.mu.Unlock()
	if s != nil {
		s.done <- err
	}
}

// stream is the waiting stream id, or nil.
func (c *h2Conn) stream(id uint32) *h2Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[id]
}

// errGoAway fails the streams of a connection the agent closed.
var errGoAway = errors.New("the agent sent GOAWAY")

// read reads the connection's frames until it fails.
func (c *h2Conn) read() {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			c.fail(fmt.Errorf("read HTTP/2 frame: %w", err))
			return
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			s := c.stream(f.StreamID)
			if s == nil {
				continue
			}
			for _, hf := range f.Fields {
				switch hf.Name {
				case ":status":
					s.status, _ = strconv.Atoi(hf.Value)
				case "x-consul-index":
					s.index, _ = strconv.ParseUint(hf.Value, 10, 64)
				case "x-consul-query-backend":
					s.backend = hf.Value
				}
			}
			if f.StreamEnded() {
				c.end(f.StreamID, nil)
			}
		case *http2.DataFrame:
			if n := f.Length; n > 0 {
				c.unacked += n
				if c.unacked >= h2Window/2 {
					inc := c.unacked
					c.unacked = 0
					c.write(func() error { return c.fr.WriteWindowUpdate(0, inc) })
				}
			}
			if s := c.stream(f.StreamID); s != nil {
				// Only the reader touches a waiting stream's fields.
				s.body = append(s.body, f.Data()...)
				if f.StreamEnded() {
					c.end(f.StreamID, nil)
				}
			}
		case *http2.RSTStreamFrame:
			c.end(f.StreamID, fmt.Errorf("stream reset by the agent: %v", f.ErrCode))
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.write(c.fr.WriteSettingsAck)
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				c.write(func() error { return c.fr.WritePing(true, data) })
			}
		case *http2.GoAwayFrame:
			c.fail(fmt.Errorf("%w: %v", errGoAway, f.ErrCode))
			return
		}
	}
}

// h2Client is the connection that up to streamsPerConn watchers of one
// agent share, opened again when the agent closed it.
type h2Client struct {
	target string
	src    net.IP
	dials  chan struct{} // the herd's bound on dials at once

	mu sync.Mutex
	c  *h2Conn
}

// conn returns the open connection, dialing one if there is none or the
// last one failed.
func (h *h2Client) conn(ctx context.Context) (*h2Conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c != nil {
		h.c.mu.Lock()
		failed := h.c.err != nil
		h.c.mu.Unlock()
		if !failed {
			return h.c, nil
		}
	}
	select {
	case h.dials <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c, err := dialH2(ctx, h.target, h.src)
	<-h.dials
	if err != nil {
		return nil, err
	}
	h.c = c
	return c, nil
}

// get is h2Conn.get on the open connection.
func (h *h2Client) get(ctx context.Context, path string, hdr []string, buf []byte, sent func()) (int, uint64, string, []byte, error) {
	c, err := h.conn(ctx)
	if err != nil {
		return 0, 0, "", buf, err
	}
	return c.get(ctx, h.target, path, hdr, buf, sent)
}

// Close closes the open connection.
func (h *h2Client) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c != nil {
		h.c.Close()
	}
}
