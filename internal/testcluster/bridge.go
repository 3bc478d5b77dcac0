package testcluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meridian/meridian/rpc"
)

// Fault is what a Bridge does to the traffic from one agent to another.
// The zero value lets everything through untouched.
type Fault struct {
	// Blackhole lets nothing through: datagrams are dropped, bytes
	// written on a connection are held (as TCP retransmits them) until
	// the path heals or the connection's deadline passes, and a new
	// connection waits for the path to heal or its dial to time out.
	Blackhole bool
	// Delay is added to every datagram and to every write (and read of
	// the other direction) on a connection.
	Delay time.Duration
	// Loss is the probability in [0, 1] that a datagram is dropped; on a
	// connection, that a write waits RetransmitDelay longer, as a lost
	// TCP segment is retransmitted.
	Loss float64
	// RaftOnly limits the fault to Raft connections (those that open with
	// rpc.ProtoRaft): RPC sessions, gossip and datagrams between the same
	// agents pass untouched, and dials are not held. It holds a leader's
	// heartbeats back, as a busy host delays them, while requests still
	// flow.
	RaftOnly bool
}

// on is the fault as it applies to traffic on a Raft connection or not.
func (f Fault) on(raft bool) Fault {
	if f.RaftOnly && !raft {
		return Fault{}
	}
	return f
}

// RetransmitDelay is what a lost segment costs a connection under
// Fault.Loss.
const RetransmitDelay = 200 * time.Millisecond

// Bridge sits between the agents of one or more clusters and cuts, delays
// or drops their traffic per ordered pair of agents, on real loopback
// sockets: every connection an agent dials to another (Raft, RPC, gossip
// over TCP, yamux WAN links) and every datagram it sends (gossip over UDP,
// QUIC WAN links) goes through it. Nothing is killed: a partition is a
// path that carries nothing until healed. Traffic from a test itself (HTTP,
// DNS) is not touched, so a test still reads every agent's view.
//
// Agents are named by Node.ID ("dc1/server1"); Options.Bridge wires a
// cluster's agents through a bridge (share one bridge between federated
// clusters to cut WAN paths). Faults apply on the sending side, to traffic
// whose destination port belongs to an agent of the bridge; a connection
// is filtered in both directions by the side that dialed it. It is safe
// for concurrent use.
type Bridge struct {
	mu      sync.Mutex
	owners  map[int]string // loopback port -> agent
	faults  map[[2]string]Fault
	changed chan struct{} // closed and replaced at every change
}

// NewBridge returns a bridge that lets everything through.
func NewBridge() *Bridge {
	return &Bridge{
		owners:  map[int]string{},
		faults:  map[[2]string]Fault{},
		changed: make(chan struct{}),
	}
}

// Register makes addr's port (TCP and UDP, on loopback) agent name's:
// traffic sent to it is traffic to that agent.
func (b *Bridge) Register(name, addr string) {
	port, ok := portOf(addr)
	if !ok {
		panic(fmt.Sprintf("testcluster: bridge cannot register %q: not host:port", addr))
	}
	b.mu.Lock()
	b.owners[port] = name
	b.mu.Unlock()
}

// Set makes the traffic from agent from to agent to suffer f (the zero
// Fault heals that direction).
func (b *Bridge) Set(from, to string, f Fault) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.set(from, to, f)
	b.notify()
}

func (b *Bridge) set(from, to string, f Fault) {
	if f == (Fault{}) {
		delete(b.faults, [2]string{from, to})
	} else {
		b.faults[[2]string{from, to}] = f
	}
}

// notify wakes everything waiting for a change; b.mu is held.
func (b *Bridge) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// SetBoth makes the traffic between a and c, both ways, suffer f.
func (b *Bridge) SetBoth(a, c string, f Fault) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.set(a, c, f)
	b.set(c, a, f)
	b.notify()
}

// Cut blackholes the paths between a and c, both ways.
func (b *Bridge) Cut(a, c string) { b.SetBoth(a, c, Fault{Blackhole: true}) }

// Partition blackholes, both ways, the path between every two agents in
// different groups; paths within a group are left as they are.
func (b *Bridge) Partition(groups ...[]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, g := range groups {
		for _, other := range groups[i+1:] {
			for _, x := range g {
				for _, y := range other {
					b.set(x, y, Fault{Blackhole: true})
					b.set(y, x, Fault{Blackhole: true})
				}
			}
		}
	}
	b.notify()
}

// Isolate blackholes, both ways, the paths between name and every other
// agent registered.
func (b *Bridge) Isolate(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, other := range b.owners {
		if other != name {
			b.set(name, other, Fault{Blackhole: true})
			b.set(other, name, Fault{Blackhole: true})
		}
	}
	b.notify()
}

// Heal removes every fault: held bytes flow again, waiting dials proceed.
func (b *Bridge) Heal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.faults)
	b.notify()
}

// Fault is what traffic from from to to suffers now.
func (b *Bridge) Fault(from, to string) Fault {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.faults[[2]string{from, to}]
}

// owner is the agent that addr's port belongs to.
func (b *Bridge) owner(addr string) (string, bool) {
	port, ok := portOf(addr)
	if !ok {
		return "", false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	name, ok := b.owners[port]
	return name, ok
}

// state is the fault from from to to and the channel closed at the next
// change.
func (b *Bridge) state(from, to string) (Fault, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.faults[[2]string{from, to}], b.changed
}

// pass waits until traffic from from to to, on a Raft connection or not,
// may go: while the path is blackholed, then its delay (and a
// retransmission under loss). It gives up with os.ErrDeadlineExceeded at
// deadline (zero: none) and with net.ErrClosed when closed is.
func (b *Bridge) pass(from, to string, raft bool, deadline func() time.Time, closed <-chan struct{}) error {
	for {
		f, changed := b.state(from, to)
		f = f.on(raft)
		if !f.Blackhole {
			d := f.Delay
			if f.Loss > 0 && rand.Float64() < f.Loss {
				d += RetransmitDelay
			}
			return sleep(d, deadline(), closed)
		}
		// The deadline may move while we wait (a caller cancelling a
		// write sets it to now): look again at least every recheck.
		wait := recheck
		dl := deadline()
		if !dl.IsZero() {
			if wait = min(wait, time.Until(dl)); wait <= 0 {
				return os.ErrDeadlineExceeded
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-closed:
			t.Stop()
			return net.ErrClosed
		}
		t.Stop()
	}
}

// recheck is how often a wait on a cut path looks at its deadline again.
const recheck = 20 * time.Millisecond

// sleep waits d, or until deadline or closed.
func sleep(d time.Duration, deadline time.Time, closed <-chan struct{}) error {
	if d <= 0 {
		return nil
	}
	late := !deadline.IsZero() && time.Until(deadline) < d
	if late {
		d = time.Until(deadline)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		if late {
			return os.ErrDeadlineExceeded
		}
		return nil
	case <-closed:
		return net.ErrClosed
	}
}

// dropped says whether a datagram from from to addr is lost, and how long
// one that is not is delayed; known is false when addr is no agent's.
func (b *Bridge) dropped(from, addr string) (drop bool, delay time.Duration, known bool) {
	to, known := b.owner(addr)
	if !known {
		return false, 0, false
	}
	f := b.Fault(from, to).on(false)
	return f.Blackhole || f.Loss > 0 && rand.Float64() < f.Loss, f.Delay, true
}

func portOf(addr string) (int, bool) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, false
	}
	port, err := strconv.Atoi(p)
	return port, err == nil
}

// Endpoint is one agent's side of a bridge: the dialer, sockets and gossip
// transport that its configuration's test seams take.
type Endpoint struct {
	b    *Bridge
	name string
}

// Endpoint returns agent name's side of the bridge.
func (b *Bridge) Endpoint(name string) *Endpoint { return &Endpoint{b: b, name: name} }

// Dial opens a connection as net.Dialer does, through the bridge when addr
// is another agent's (an rpc.DialFunc).
func (e *Endpoint) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	to, known := e.b.owner(addr)
	if known {
		deadline := func() time.Time { dl, _ := ctx.Deadline(); return dl }
		if err := e.b.pass(e.name, to, false, deadline, ctx.Done()); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = context.DeadlineExceeded // ctx's, seen before its timer fired
			} else if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("bridge %s -> %s: %w", e.name, to, err)}
		}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil || !known {
		return c, err
	}
	return newConn(c, e.b, e.name, to), nil
}

// ListenPacket opens a UDP socket whose datagrams to other agents go
// through the bridge; its port becomes this agent's (for the replies of
// peers to a socket of its own).
func (e *Endpoint) ListenPacket(network, addr string) (net.PacketConn, error) {
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		return nil, err
	}
	e.b.Register(e.name, pc.LocalAddr().String())
	return &packetConn{PacketConn: pc, e: e}, nil
}

// WrapTransport wraps the agent's gossip transport so that its datagrams
// and connections go through the bridge (lan.Config.WrapTransport).
func (e *Endpoint) WrapTransport(t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	return &transport{NodeAwareTransport: t, e: e}
}

// packetConn drops and delays the datagrams it sends to other agents.
type packetConn struct {
	net.PacketConn
	e *Endpoint
}

func (c *packetConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	drop, delay, known := c.e.b.dropped(c.e.name, addr.String())
	switch {
	case !known:
	case drop:
		return len(p), nil
	case delay > 0:
		buf := append([]byte(nil), p...)
		time.AfterFunc(delay, func() { _, _ = c.PacketConn.WriteTo(buf, addr) })
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

// SetReadBuffer and SetWriteBuffer size the socket's kernel buffers, as
// quic-go asks.
func (c *packetConn) SetReadBuffer(n int) error {
	if u, ok := c.PacketConn.(*net.UDPConn); ok {
		return u.SetReadBuffer(n)
	}
	return nil
}

func (c *packetConn) SetWriteBuffer(n int) error {
	if u, ok := c.PacketConn.(*net.UDPConn); ok {
		return u.SetWriteBuffer(n)
	}
	return nil
}

// transport is a memberlist transport whose datagrams and dialed streams
// go through the bridge.
type transport struct {
	memberlist.NodeAwareTransport
	e *Endpoint
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	drop, delay, known := t.e.b.dropped(t.e.name, a.Addr)
	switch {
	case !known:
	case drop:
		return time.Now(), nil
	case delay > 0:
		buf := append([]byte(nil), b...)
		time.AfterFunc(delay, func() { _, _ = t.NodeAwareTransport.WriteToAddress(buf, a) })
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	to, known := t.e.b.owner(a.Addr)
	if !known {
		return t.NodeAwareTransport.DialAddressTimeout(a, timeout)
	}
	deadline := time.Now().Add(timeout)
	if err := t.e.b.pass(t.e.name, to, false, func() time.Time { return deadline }, nil); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("bridge %s -> %s: %w", t.e.name, to, err)}
	}
	c, err := t.NodeAwareTransport.DialAddressTimeout(a, time.Until(deadline))
	if err != nil {
		return nil, err
	}
	gossip := newConn(c, t.e.b, t.e.name, to)
	gossip.written = true // never Raft, whatever its first byte
	// memberlist writes its label header before it sets any deadline: a
	// real socket takes those few bytes into its buffer at once, but a
	// write here waits out a cut, so it gets one, or a probe stuck in it
	// holds up its pool's Shutdown for ever (CI saw it under -race).
	gossip.wdl = time.Now().Add(timeout)
	return gossip, nil
}

// conn is a connection dialed from one agent to another. Its writes go
// from -> to and its reads carry to -> from: each waits while its
// direction is blackholed and is delayed by its fault. Bytes read while
// the path back is cut are held, not lost, so the stream stays whole.
type conn struct {
	net.Conn
	b        *Bridge
	from, to string

	closed    chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	rdl, wdl time.Time
	raft     bool // it opened with rpc.ProtoRaft
	written  bool // its first byte is known

	pending []byte // read from the peer, not yet passed on
	readErr error  // what the read of pending returned with it
}

var _ net.Conn = (*conn)(nil)

func newConn(c net.Conn, b *Bridge, from, to string) *conn {
	return &conn{Conn: c, b: b, from: from, to: to, closed: make(chan struct{})}
}

func (c *conn) readDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rdl
}

func (c *conn) writeDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wdl
}

// isRaft reports whether the connection carries Raft, learning it from
// the first byte the dialer writes (p) if not known yet.
func (c *conn) isRaft(p []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.written && len(p) > 0 {
		c.raft, c.written = p[0] == rpc.ProtoRaft, true
	}
	return c.raft
}

func (c *conn) Write(p []byte) (int, error) {
	if err := c.b.pass(c.from, c.to, c.isRaft(p), c.writeDeadline, c.closed); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *conn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		n, err := c.Conn.Read(p)
		if n == 0 || c.b.Fault(c.to, c.from).on(c.isRaft(nil)) == (Fault{}) {
			return n, err
		}
		c.pending, c.readErr = append([]byte(nil), p[:n]...), err
	}
	if err := c.b.pass(c.to, c.from, c.isRaft(nil), c.readDeadline, c.closed); err != nil {
		return 0, err
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) > 0 {
		return n, nil
	}
	err := c.readErr
	c.pending, c.readErr = nil, nil
	return n, err
}

func (c *conn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func (c *conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl, c.wdl = t, t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}
