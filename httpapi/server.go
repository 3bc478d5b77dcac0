package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Agent is what the HTTP API needs from the agent it serves.
type Agent interface {
	// RPC calls a server endpoint (package rpc names them) with the
	// rpc.Query/rpc.Write envelope args, filling reply.
	RPC(ctx context.Context, method string, args, reply any) error
	// Self describes the agent for /v1/agent/self.
	Self() Self
	// NodeName is the agent's node name (what ?near=_agent and a session
	// without a node mean), cheaper than Self.
	NodeName() string
	// Members lists the LAN pool (or the WAN pool when wan is set).
	Members(wan bool) ([]Member, error)
	// Join joins the agent to the pool at addr.
	Join(ctx context.Context, addr string, wan bool) error
	// Leave leaves the cluster gracefully and shuts the agent down.
	Leave(ctx context.Context) error
	// ForceLeave marks a failed member of the LAN pool (or the WAN pool
	// when wan is set) as left (prune: forgets it at once).
	ForceLeave(node string, prune, wan bool) error
	// FailoverTargets lists the datacenters a ?passing health read of
	// service tries, in order, when the local one has no healthy instance
	// (the agent's failover policy); nil when it has none.
	FailoverTargets(service string) []string
	// LocalAgent serves the agent's local services and checks.
	LocalAgent
}

// Config configures the HTTP API.
type Config struct {
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request headers.
	ReadHeaderTimeout time.Duration
	// Metrics, when set, receives the HTTP request metrics; Gatherer is what
	// /v1/agent/metrics reports (nil answers 404).
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	// EnableDebug serves Go's profiler at /debug/pprof/.
	EnableDebug bool
	// CacheEntries bounds how many encoded read answers are kept for reuse
	// while their index does not move.
	CacheEntries int
}

// DefaultConfig returns the HTTP API's defaults.
func DefaultConfig() Config {
	return Config{ReadHeaderTimeout: 10 * time.Second, CacheEntries: 1024}
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
	if cfg.CacheEntries <= 0 {
		cfg.CacheEntries = def.CacheEntries
	}
	s := &Server{cfg: cfg, agent: agent, log: cfg.Logger, mux: http.NewServeMux(), cache: newBodyCache(cfg.CacheEntries)}
	s.metrics = newHTTPMetrics(cfg.Metrics)
	s.routes()
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: cfg.ReadHeaderTimeout}
	return s
}

// ServeHTTP lets the API be mounted or tested without a listener.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve answers requests on ln until Shutdown; it returns nil then.
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
	s.handle("PUT /v1/catalog/register", s.catalogRegister)
	s.handle("PUT /v1/catalog/deregister", s.catalogDeregister)
	s.handle("GET /v1/health/service/{service}", s.healthService)
	s.handle("GET /v1/health/checks/{service}", s.healthChecks)
	s.handle("GET /v1/health/node/{node}", s.healthNode)
	s.handle("GET /v1/health/state/{state}", s.healthState)
	s.handle("GET /v1/operator/raft/configuration", s.raftConfiguration)
	s.handle("GET /v1/agent/metrics", s.agentMetrics)
	if s.cfg.EnableDebug {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.kvRoutes()
	s.agentLocalRoutes()
	s.queryRoutes()
	s.keyringRoutes()
}

// errAnswered is returned by a handler that wrote its answer itself.
var errAnswered = errors.New("answered")

// handlerFunc is an endpoint: it returns the value to encode as JSON (nil
// for an empty body) or an error that respond maps to a status code.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (any, error)

func (s *Server) handle(pattern string, h handlerFunc) {
	observe := s.metrics.observer(pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		v, err := h(w, r)
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
				w.WriteHeader(code)
				s.respondJSON(w, r, v.body)
			default:
				s.respondJSON(w, r, v)
			}
		}
		observe(start, code)
	})
	// Consul accepts POST wherever it accepts PUT; the Go client uses PUT.
	if len(pattern) > 4 && pattern[:4] == "PUT " {
		s.handle("POST "+pattern[4:], h)
	}
}
