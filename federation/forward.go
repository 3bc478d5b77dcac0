package federation

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/meridian/meridian/rpc"
)

// Transports a server dials WAN links with.
const (
	// TransportQUIC dials one QUIC connection (UDP, TLS 1.3) per remote
	// server; every request rides its own stream.
	TransportQUIC = "quic"
	// TransportTCP dials one yamux session over TCP per remote server,
	// for sites where UDP is blocked.
	TransportTCP = "tcp"
)

// Config configures a Forwarder.
type Config struct {
	// Datacenter is this server's datacenter.
	Datacenter string
	// Transport is TransportQUIC (default) or TransportTCP.
	Transport string
	// TLS authenticates and encrypts QUIC links, both as the dialing and
	// the accepting side. Required with TransportQUIC.
	TLS *tls.Config
	// DialTLS, when set, is the TLS configuration of a link dialed to a
	// server of dc (which can then be checked to be a server of dc, not of
	// another datacenter); TLS is left to the accepting side. With
	// TransportTCP, links then run TLS on the server port too.
	DialTLS func(dc string) *tls.Config
	// Timeout bounds every forwarded request from its start, whatever its
	// link is doing (dialing, handshaking, or up but silent since the
	// path broke): a DC with no server answering within it answers
	// rpc.ErrDCUnreachable, and the link that did not answer is closed
	// and its server quarantined, so that the next requests do not wait
	// on it too. A blocking query gets its wait on top. Default 2s.
	Timeout time.Duration
	// QUIC tunes the QUIC links (keepalives, idle timeout); its TLS field
	// is replaced by TLS.
	QUIC rpc.QUICConfig
	// RTT estimates the distance to a WAN member; nil sorts by name.
	RTT RTTFunc
	// Node is this server's name, which its route advertisements carry
	// (for the neighbours' logs).
	Node string
	// Logger receives link failures; nil discards them.
	Logger *slog.Logger
	// Dial, when set, opens the TCP connections of TransportTCP links
	// instead of a net.Dialer (QUIC links take QUIC.ListenPacket). A test
	// seam for internal/testcluster's bridge; nil costs nothing.
	Dial rpc.DialFunc
}

// DefaultConfig returns QUIC links with a 2s timeout and rpc's default QUIC
// settings.
func DefaultConfig() Config {
	return Config{
		Transport: TransportQUIC,
		Timeout:   2 * time.Second,
		QUIC:      rpc.DefaultQUICConfig(),
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Datacenter == "":
		return errors.New("federation: datacenter is empty")
	case c.Transport != TransportQUIC && c.Transport != TransportTCP:
		return fmt.Errorf("federation: transport %q: want %q or %q", c.Transport, TransportQUIC, TransportTCP)
	case c.Transport == TransportQUIC && c.TLS == nil:
		return errors.New("federation: QUIC links need a TLS configuration")
	case c.Timeout <= 0:
		return fmt.Errorf("federation: timeout %v must be positive", c.Timeout)
	}
	return nil
}

// Forwarder sends requests for other datacenters to one of their servers
// over long-lived WAN links, retrying on another server of the same DC when
// one cannot be reached. It is safe for concurrent use.
type Forwarder struct {
	cfg    Config
	log    *slog.Logger
	router *Router
	table  *Table
	links  *rpc.Pool
	ex     exchange

	mu      sync.Mutex
	dcOf    map[string]string // server address -> its datacenter, for DialTLS
	probing map[string]bool   // relays being probed (suspect), by address
	closed  bool              // Close was called: no more probes
	probes  sync.WaitGroup
}

// New returns a Forwarder; links are dialed lazily, on the first request
// for each remote server.
func New(cfg Config) (*Forwarder, error) {
	if cfg.Transport == "" {
		cfg.Transport = TransportQUIC
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pc := rpc.PoolConfig{
		Logger:      cfg.Logger,
		DialTimeout: cfg.Timeout,
		// A forwarded stream carries one request at a time; keeping
		// many idle saves the stream setup of the next ones.
		MaxIdleStreamsPerAddr: 256,
		Dial:                  rpc.MuxDial(cfg.Dial),
	}
	if cfg.Transport == TransportQUIC {
		qc := cfg.QUIC
		qc.TLS = cfg.TLS
		qc.Logger = cfg.Logger
		if qc.HandshakeTimeout == 0 || qc.HandshakeTimeout > cfg.Timeout {
			qc.HandshakeTimeout = cfg.Timeout
		}
		if err := qc.Validate(); err != nil {
			return nil, fmt.Errorf("federation: %w", err)
		}
		pc.DialSession = func(ctx context.Context, addr string) (rpc.Session, error) {
			return rpc.DialQUIC(ctx, addr, qc)
		}
	}
	f := &Forwarder{
		cfg:    cfg,
		log:    cfg.Logger,
		router: NewRouter(cfg.Datacenter, cfg.RTT, cfg.Timeout),
		dcOf:   map[string]string{},

		probing: map[string]bool{},
	}
	f.table = NewTable(cfg.Datacenter, cfg.Node, f.router.RTT, cfg.Logger)
	f.ex.pollers = map[string]*poller{}
	if cfg.DialTLS != nil {
		f.dialTLS(&pc)
	}
	f.links = rpc.NewPool(pc)
	return f, nil
}

// dialTLS makes pc dial each link with cfg.DialTLS of the server's
// datacenter, as WAN gossip announced it.
func (f *Forwarder) dialTLS(pc *rpc.PoolConfig) {
	tlsFor := func(addr string) *tls.Config {
		f.mu.Lock()
		dc := f.dcOf[addr]
		f.mu.Unlock()
		return f.cfg.DialTLS(dc)
	}
	if f.cfg.Transport == TransportQUIC {
		qc := f.cfg.QUIC
		qc.Logger = f.cfg.Logger
		if qc.HandshakeTimeout == 0 || qc.HandshakeTimeout > f.cfg.Timeout {
			qc.HandshakeTimeout = f.cfg.Timeout
		}
		pc.DialSession = func(ctx context.Context, addr string) (rpc.Session, error) {
			c := qc
			c.TLS = tlsFor(addr)
			return rpc.DialQUIC(ctx, addr, c)
		}
		return
	}
	pc.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		return rpc.DialTLS(ctx, f.cfg.Dial, addr, rpc.ProtoMux, tlsFor(addr))
	}
}

// maxBlockingWait is what a forwarded blocking query that asked for no
// wait may be held by the remote server at most: Consul's max_query_time
// cap, which the remote server's default wait is within.
const maxBlockingWait = 10 * time.Minute

// Router is the forwarder's view of the other datacenters' servers.
func (f *Forwarder) Router() *Router { return f.router }

// Update feeds WAN membership (every server, alive or not) to the router
// and the route exchange, and closes the links to servers that are not
// alive, so that requests in flight on them fail over at once instead of
// waiting for the link's own timeout (a yamux link over a path that went
// silent can hold a call past its deadline). The route exchange dials
// such a server again: if gossip was wrong, its link is back in use
// within a retry.
func (f *Forwarder) Update(servers []Server) {
	f.router.Update(servers)
	f.mu.Lock()
	clear(f.dcOf)
	for _, s := range servers {
		f.dcOf[s.Addr] = s.Datacenter
	}
	f.mu.Unlock()
	for _, s := range servers {
		if !s.Alive {
			f.links.Forget(s.Addr)
		}
	}
	f.reconcile(servers)
}

// maxTries is how many servers of a DC one request tries: three down in
// a row and the DC is cut off. A relayed request tries two servers of each
// next hop, and at most maxRelayTries servers in all.
const (
	maxTries      = 3
	maxHopTries   = 2
	maxRelayTries = 6
)

// blockingWait is how long the answering server may hold args, a blocking
// query, before it answers: its wait and the server's jitter; zero for
// anything else.
func blockingWait(args any) time.Duration {
	q, ok := args.(interface{ Blocking() (time.Duration, bool) })
	if !ok {
		return 0
	}
	wait, blocking := q.Blocking()
	if !blocking {
		return 0
	}
	if wait <= 0 {
		wait = maxBlockingWait
	}
	return wait + wait/16
}

// Close closes every link and waits for relay probes. Stop the route
// exchange (Run's ctx) first.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	err := f.links.Close()
	f.probes.Wait()
	return err
}
