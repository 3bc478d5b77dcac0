package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Server answers DNS queries for the Consul domain from a Backend. Create it
// with New, start it with Listen or Serve, stop it with Shutdown. It is safe
// for concurrent use.
type Server struct {
	cfg     Config
	backend Backend
	log     *slog.Logger
	domains []string // lowercase: Domain, then AltDomain if set
	soa     []dns.RR // per domain index
	recurse []string // normalised recursor addresses
	views   views
	stats   stats

	ctx    context.Context // cancelled by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup // view goroutines and servers

	mu      sync.Mutex
	stopped bool
	servers []*dns.Server
}

// New checks cfg and returns a Server reading from backend. It binds
// nothing.
func New(cfg Config, backend Backend) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dns config: %w", err)
	}
	if backend == nil {
		return nil, errors.New("dns: nil backend")
	}
	s := &Server{cfg: cfg, backend: backend, log: cfg.Logger}
	s.cfg.ServiceTTL = make(map[string]time.Duration, len(cfg.ServiceTTL))
	for k, v := range cfg.ServiceTTL {
		s.cfg.ServiceTTL[k] = v
	}
	s.cfg.Recursors = append([]string(nil), cfg.Recursors...)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.cfg.Datacenter = strings.ToLower(cfg.Datacenter)
	s.domains = []string{strings.ToLower(cfg.Domain)}
	if cfg.AltDomain != "" {
		s.domains = append(s.domains, strings.ToLower(cfg.AltDomain))
	}
	for _, d := range s.domains {
		s.soa = append(s.soa, &dns.SOA{
			Hdr:     dns.RR_Header{Name: d, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 0},
			Ns:      s.nsName(d),
			Mbox:    "hostmaster." + d,
			Serial:  uint32(time.Now().Unix()),
			Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 0,
		})
	}
	for _, r := range cfg.Recursors {
		a, _ := recursorAddr(r) // checked by Validate
		s.recurse = append(s.recurse, a)
	}
	s.views = views{srv: s, m: make(map[viewKey]*entry)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// nsName is the name of the zone's name server.
func (s *Server) nsName(domain string) string {
	if s.cfg.NodeName != "" {
		return s.cfg.NodeName + ".node." + s.cfg.Datacenter + "." + domain
	}
	return "ns." + domain
}

// Listen binds UDP and TCP on the same addr ("127.0.0.1:8600"; port 0
// picks a free port shared by both) and serves them in the background until
// Shutdown. It returns the bound address, the same port for both.
func (s *Server) Listen(addr string) (net.Addr, error) {
	var lastErr error
	for range 10 { // with port 0 the UDP port may be taken: try another
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("dns listen tcp %s: %w", addr, err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			ln.Close()
			lastErr = fmt.Errorf("dns listen udp %s: %w", ln.Addr(), err)
			if _, port, _ := net.SplitHostPort(addr); port != "0" {
				return nil, lastErr
			}
			continue
		}
		if err := s.Serve(pc, ln); err != nil {
			pc.Close()
			ln.Close()
			return nil, err
		}
		return ln.Addr(), nil
	}
	return nil, lastErr
}

// Serve serves DNS on udp and tcp (either may be nil) in the background
// and returns once both are accepting. Shutdown closes them.
func (s *Server) Serve(udp net.PacketConn, tcp net.Listener) error {
	h := handler{s}
	var started []chan struct{}
	var srvs []*dns.Server
	if udp != nil {
		srvs = append(srvs, &dns.Server{PacketConn: udp, Handler: h})
	}
	if tcp != nil {
		// A client may pipeline any number of queries on one connection
		// (RFC 7766); miekg's default closes it after 128, resetting it
		// under the queries already sent. The idle timeout ends a
		// connection that goes quiet, and the write deadline one whose
		// client stops reading.
		srvs = append(srvs, &dns.Server{
			Listener:      writeDeadlineListener{tcp, s.cfg.TCPWriteTimeout},
			Handler:       h,
			MaxTCPQueries: -1,
		})
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return errors.New("dns: server shut down")
	}
	for _, ds := range srvs {
		ch := make(chan struct{})
		started = append(started, ch)
		ds.NotifyStartedFunc = func() { close(ch) }
		s.servers = append(s.servers, ds)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := ds.ActivateAndServe(); err != nil && s.ctx.Err() == nil {
				s.log.Error("dns server stopped", "error", err)
			}
		}()
	}
	s.mu.Unlock()
	for _, ch := range started {
		<-ch
	}
	return nil
}

// writeDeadlineListener accepts connections whose every write must finish
// within timeout: miekg sets read deadlines on a TCP connection but none on
// its writes (Server.WriteTimeout is unused), so without one a client that
// sends queries and never reads its answers holds the goroutine serving it
// forever, and Shutdown with it.
type writeDeadlineListener struct {
	net.Listener
	timeout time.Duration
}

func (l writeDeadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return writeDeadlineConn{c, l.timeout}, nil
}

type writeDeadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c writeDeadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// goStart registers a background goroutine, false once shut down.
func (s *Server) goStart() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.wg.Add(1)
	return true
}

// pause waits d, false when ctx ends first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Flush drops every view: each service's next lookup fetches it afresh.
// The agent calls it when its default token changes, since a server
// filters a view's instances by the token it was fetched with.
func (s *Server) Flush() { s.views.flush() }

// Shutdown stops the listeners and every view goroutine and waits for them
// or for ctx. It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	srvs := s.servers
	s.servers = nil
	s.mu.Unlock()
	s.cancel()
	var errs []error
	for _, ds := range srvs {
		if err := ds.ShutdownContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("dns shutdown: %w", err))
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("dns shutdown: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}
