package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian/meridian/rpc"
)

// Agent is what the HTTP API needs from the agent it serves.
type Agent interface {
	// RPC calls a server endpoint (package rpc names them) with the
	// rpc.Query/rpc.Write envelope args, filling reply.
	RPC(ctx context.Context, method string, args, reply any) error
	// Txn applies a /v1/txn transaction through the server's Txn.Apply
	// (whose command type is the server's: the agent converts), filling
	// reply as RPC would.
	Txn(ctx context.Context, args *rpc.Write[TxnRequest], reply *rpc.Answer[TxnResponse]) error
	// Self describes the agent for /v1/agent/self.
	Self() Self
	// NodeName is the agent's node name (what ?near=_agent and a session
	// without a node mean), cheaper than Self.
	NodeName() string
	// Datacenter is the agent's datacenter.
	Datacenter() string
	// Members lists the LAN pool (or the WAN pool when wan is set).
	Members(wan bool) ([]Member, error)
	// Join joins the agent to the pool at addr.
	Join(ctx context.Context, addr string, wan bool) error
	// Leave leaves the cluster gracefully and shuts the agent down.
	Leave(ctx context.Context) error
	// Left is closed once a Leave has told the pools (the shutdown
	// follows).
	Left() <-chan struct{}
	// ForceLeave marks a failed member of the LAN pool (or the WAN pool
	// when wan is set) as left (prune: forgets it at once).
	ForceLeave(node string, prune, wan bool) error
	// FailoverTargets lists the datacenters a ?passing health read of
	// service tries, in order, when the local one has no healthy instance
	// (the agent's failover policy); nil when it has none.
	FailoverTargets(service string) []string
	// LocalAgent serves the agent's local services and checks.
	LocalAgent
	// ACLAgent resolves tokens (acl.go).
	ACLAgent
}

// Config configures the HTTP API.
type Config struct {
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request headers, from the first byte of the request (a new
	// connection that sends nothing is closed after it too).
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout bounds how long a client may take to send a request
	// body, from the start of the request; past it the request answers 408
	// and the connection closes. Requests without a body (every blocking
	// query) are not bounded by it.
	BodyReadTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that has sent no new
	// request for this long. Longer than the 90s Go's HTTP clients (the
	// consul/api client among them) keep idle connections, so a client
	// never reuses a connection the agent is closing.
	IdleTimeout time.Duration
	// MaxConnsPerClient caps the open connections of one client IP
	// (Consul's limits.http_max_conns_per_client); a connection past it is
	// answered 429 and closed. 0 means no cap.
	MaxConnsPerClient int
	// MaxQueryTime caps the ?wait= of a blocking query (Consul's
	// max_query_time); a longer wait is cut to it.
	MaxQueryTime time.Duration
	// Metrics, when set, receives the HTTP request metrics, named with
	// MetricsPrefix (default consul). Gatherer is what /v1/agent/metrics?format=prometheus
	// reports and MetricsJSON what it answers without the format, Consul's
	// JSON summary (either nil answers 404).
	Metrics       prometheus.Registerer
	MetricsPrefix string
	Gatherer      prometheus.Gatherer
	MetricsJSON   func() (any, error)
	// EnableDebug serves Go's profiler at /debug/pprof/.
	EnableDebug bool
	// CacheEntries bounds how many encoded read answers are kept for reuse
	// while their index does not move.
	CacheEntries int
	// ACL checks every request against its token (acl.go); off, nothing is
	// resolved.
	ACL bool
	// UI is the web UI (ui.go).
	UI UIConfig
}

// DefaultConfig returns the HTTP API's defaults.
func DefaultConfig() Config {
	return Config{
		ReadHeaderTimeout: 10 * time.Second,
		BodyReadTimeout:   30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxConnsPerClient: 200,
		MaxQueryTime:      10 * time.Minute,
		CacheEntries:      1024,
	}
}

// Server is the HTTP API of one agent.
type Server struct {
	cfg     Config
	agent   Agent
	log     *slog.Logger
	mux     *http.ServeMux
	http    *http.Server
	cache   *bodyCache
	metrics *httpMetrics
	// patterns are the registered routes, each with its guard (acl_guard.go).
	patterns []string

	mu     sync.Mutex
	closed bool
}

// New builds the HTTP API for agent. Serve starts it.
func New(cfg Config, agent Agent) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	def := DefaultConfig()
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = def.ReadHeaderTimeout
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = def.BodyReadTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = def.IdleTimeout
	}
	if cfg.MaxQueryTime <= 0 {
		cfg.MaxQueryTime = def.MaxQueryTime
	}
	if cfg.MaxConnsPerClient < 0 {
		cfg.MaxConnsPerClient = 0
	}
	if cfg.CacheEntries <= 0 {
		cfg.CacheEntries = def.CacheEntries
	}
	s := &Server{cfg: cfg, agent: agent, log: cfg.Logger, mux: http.NewServeMux(), cache: newBodyCache(cfg.CacheEntries)}
	s.metrics = newHTTPMetrics(cfg.Metrics, cfg.MetricsPrefix)
	s.routes()
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	// HTTP/2 without TLS (h2c, with prior knowledge) beside HTTP/1.1: a
	// client with many blocking queries parks them all as streams of a
	// few connections, each costing the agent one goroutine rather than
	// the two (connection and handler) of an HTTP/1.1 connection, and one
	// write carries the answers of many streams when a change wakes them.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	s.http.Protocols = &protocols
	if cfg.MaxConnsPerClient > 0 {
		s.http.ConnState = newConnLimit(cfg.MaxConnsPerClient, s.log).connState
	}
	return s
}

// ServeHTTP lets the API be mounted or tested without a listener.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve answers requests on ln until Shutdown; it returns nil then. It may
// be called for several listeners (HTTP and HTTPS); each client IP may hold
// at most MaxConnsPerClient connections of all of them together.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests and waits, bounded by ctx, for those in
// flight; blocking queries still parked when ctx ends are cut off. Safe to
// call twice.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if err := s.http.Shutdown(ctx); err != nil {
		return s.http.Close()
	}
	return nil
}

func (s *Server) routes() {
	s.handle("GET /v1/status/leader", s.statusLeader)
	s.handle("GET /v1/status/peers", s.statusPeers)
	s.handle("GET /v1/agent/self", s.agentSelf)
	s.handle("GET /v1/agent/members", s.agentMembers)
	s.handle("PUT /v1/agent/join/{addr}", s.agentJoin)
	s.handle("PUT /v1/agent/leave", s.agentLeave)
	s.handle("PUT /v1/agent/force-leave/{node}", s.agentForceLeave)
	s.handle("GET /v1/catalog/datacenters", s.catalogDatacenters)
	s.handle("GET /v1/coordinate/datacenters", s.coordinateDatacenters)
	s.handle("GET /v1/coordinate/nodes", s.coordinateNodes)
	s.handle("GET /v1/coordinate/node/{node}", s.coordinateNode)
	s.handle("PUT /v1/coordinate/update", s.coordinateUpdate)
	s.handle("GET /v1/catalog/nodes", s.catalogNodes)
	s.handle("GET /v1/catalog/node/{node}", s.catalogNode)
	s.handle("GET /v1/catalog/node-services/{node}", s.catalogNodeServiceList)
	s.handle("GET /v1/catalog/services", s.catalogServices)
	s.handle("GET /v1/catalog/service/{service}", s.catalogService)
	s.handle("GET /v1/internal/ui/services", s.uiServices)
	s.handle("PUT /v1/catalog/register", s.catalogRegister)
	s.handle("PUT /v1/catalog/deregister", s.catalogDeregister)
	s.handle("GET /v1/health/service/{service}", s.healthService)
	s.handle("GET /v1/health/checks/{service}", s.healthChecks)
	s.handle("GET /v1/health/node/{node}", s.healthNode)
	s.handle("GET /v1/health/state/{state}", s.healthState)
	s.handle("GET /v1/operator/raft/configuration", s.raftConfiguration)
	s.handle("GET /v1/agent/metrics", s.agentMetrics)
	if s.cfg.EnableDebug {
		s.mux.HandleFunc("/debug/pprof/", s.guardedRaw(pprof.Index))
		s.mux.HandleFunc("/debug/pprof/profile", s.guardedRaw(pprof.Profile))
		s.mux.HandleFunc("/debug/pprof/trace", s.guardedRaw(pprof.Trace))
	}
	s.kvRoutes()
	s.agentLocalRoutes()
	s.agentHealthRoutes()
	s.queryRoutes()
	s.aclRoutes()
	s.uiRoutes()
	s.operatorRoutes()
	s.autopilotRoutes()
	s.replicationRoutes()
	s.federationRoutes()
	s.snapshotRoutes()
	s.keyringRoutes()
	s.eventRoutes()
}

// errAnswered is returned by a handler that wrote its answer itself.
var errAnswered = errors.New("answered")

// handlerFunc is an endpoint: it returns the value to encode as JSON (nil
// for an empty body) or an error that respond maps to a status code.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (any, error)

func (s *Server) handle(pattern string, h handlerFunc) {
	observe := s.metrics.observer(pattern)
	s.patterns = append(s.patterns, pattern)
	guarded := s.guarded(pattern, h)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// Every answer may come gzip-compressed to a reader that asks
		// (cachedBody.write): a cache must key it by Accept-Encoding.
		// Consul says so on every answer too (its gzip handler does).
		w.Header()[keyVary] = headerVary
		s.boundBody(w, r)
		var v any
		err := crossSite(r)
		if err == nil {
			v, err = guarded(w, r)
		}
		code := http.StatusOK
		switch {
		case errors.Is(err, errAnswered):
		case err != nil:
			code = s.respondError(w, r, err)
		default:
			switch v := v.(type) {
			case rawValue:
				w.Header().Set("Content-Type", "application/octet-stream")
				_, _ = w.Write(v)
			case statusBody:
				code = v.code
				w.Header().Set("Content-Type", "application/json")
				s.respondJSON(w, r, code, v.body)
			default:
				s.respondJSON(w, r, http.StatusOK, v)
			}
		}
		observe(r.Method, start)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("request finished", "method", r.Method, "url", redactedURL(r), "from", r.RemoteAddr, "status", code, "latency", time.Since(start))
		}
	})
}

// crossSite refuses a POST that a web page of any site could have sent to
// the agent without a CORS preflight, that is one whose body is typed
// text/plain, multipart/form-data, form-encoded or not at all (415). A
// form-encoded or untyped POST passes only when no browser sent it (no
// Origin header, which browsers add to every cross-site POST): that is
// what curl -d and -X POST send, as in Consul's examples, and what older
// Consul clients send for a POST without a body. Only the endpoints that
// Consul (and its Go client) reach with POST take it at all; the others
// take PUT, which a browser always preflights, and the agent answers no
// preflight.
func crossSite(r *http.Request) error {
	if r.Method != http.MethodPost {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	fromBrowser := r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != ""
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return nil
	case (mt == "application/x-www-form-urlencoded" || ct == "") && !fromBrowser:
		return nil
	}
	return &unsupportedType{msg: fmt.Sprintf("POST needs Content-Type: application/json, got %q", ct)}
}

// boundBody gives a request body BodyReadTimeout to arrive, counted from
// the start of the request; once the body has been read to its end the
// deadline is lifted again, so that a handler that waits (a write being
// committed) is not cut off by it.
func (s *Server) boundBody(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout)) != nil {
		return // not a real connection (a test recorder)
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, timeout: s.cfg.BodyReadTimeout}
}

// deadlineBody lifts the read deadline boundBody set once the body is read.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	done    bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF) && !b.done:
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = &timedOut{msg: fmt.Sprintf("request body not received within %s: send it at once", b.timeout)}
	}
	return n, err
}
