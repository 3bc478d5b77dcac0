package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/dns"
	"github.com/meridian/meridian/httpapi"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
	"github.com/meridian/meridian/wan"
)

// Version is the agent's version, reported by /v1/agent/self and
// `meridian version`.
const Version = "0.1.0"

// ConsulCompatVersion is what the node meta consul-version says: a Consul
// release number, as Consul's agents write their own there, because tools
// read it to decide what the agent can do and would take Meridian's own
// 0.1.0 for a Consul older than any API it answers. It names the Consul
// line whose HTTP API the compatibility tests hold Meridian to (through
// github.com/hashicorp/consul/api v1.34), not Meridian's version.
const ConsulCompatVersion = "1.22.0"

// Options are what a caller may add to the configuration: the logger, and
// hooks that adjust the derived component configs (tests use them for fast
// gossip and Raft timings).
type Options struct {
	Logger     *slog.Logger
	TuneLAN    func(*lan.Config)
	TuneWAN    func(*wan.Config)
	TuneServer func(*server.Config)
	// TuneHTTP adjusts the HTTP API's config (tests shorten its timeouts).
	TuneHTTP func(*httpapi.Config)
	// SyncInterval is the anti-entropy full sync interval; zero means
	// DefaultSyncInterval scaled with the cluster size. Tests shorten it.
	SyncInterval time.Duration
	// CoordinateInterval is how often the agent sends its LAN coordinate
	// to the servers; zero means DefaultCoordinateInterval, longer in a
	// large datacenter. Tests shorten it.
	CoordinateInterval time.Duration
	// ConfigArgs are the command-line arguments the configuration was
	// loaded from; Reload runs configs.Load on them again. Nil disables
	// Reload.
	ConfigArgs []string
	// ConfigEnv is the environment for Reload; nil means os.Environ().
	ConfigEnv []string
	// Dial, when set, opens a client agent's connections to its servers
	// instead of a net.Dialer (a server's are server.Config.Dial, set in
	// TuneServer). A test seam: internal/testcluster cuts a client from a
	// server with it.
	Dial rpc.DialFunc
	// StreamViewIdle is how long a client keeps a streaming view after
	// its last watcher has left; zero means DefaultStreamViewIdle. Tests
	// shorten it.
	StreamViewIdle time.Duration
	// LogLevel, when set, is the level Logger's handler filters at; Reload
	// sets it from log_level.
	LogLevel *slog.LevelVar
}

// Agent is one running agent.
type Agent struct {
	cfg  configs.Config
	opts Options

	metrics  *prometheus.Registry
	gatherer prometheus.Gatherer
	// metricsJSON makes /v1/agent/metrics' JSON.
	metricsJSON func() (any, error)
	logger      *slog.Logger
	logs        *logCore // the ring and monitors behind logger (logs.go)
	nodeID      string
	// advertise is the IP the node is registered with in the catalog.
	advertise string
	local     *localState
	// nodeSynced: the catalog's node carries this agent's tagged addresses
	// and meta (sync.go). nodeMeta is node_meta, which reload replaces.
	nodeSynced atomic.Bool
	nodeMeta   atomic.Pointer[map[string]string]
	events     *eventRing // recent user events (events.go)

	lan       *lan.Pool
	lanEvents chan lan.Event
	wan       *wan.Pool // nil on a client
	wanEvents chan lan.Event
	server    *server.Server // nil on a client
	pool      *rpc.Pool      // a client's connections to servers
	// health coalesces a client's identical blocking health reads into
	// one call to a server (rpc.go).
	health *rpc.Herd[[]*catalog.CheckServiceNode]
	// views are a client's streaming views of watched services' health,
	// nil without use_streaming_backend (stream.go).
	views     *healthViews
	servers   serverList
	dcList    dcList // a client's copy of the datacenters, for failover
	tokens    agentTokens
	clientACL clientACL // a client's resolved tokens (acl.go)

	http    *httpapi.Server
	httpLn  net.Listener // nil when ports.http is -1
	httpsLn net.Listener // nil unless ports.https is set

	rpcTLS   *rpc.TLSConfigurator // the server port's; nil without tls files
	httpsTLS *rpc.TLSConfigurator // nil unless ports.https is set
	dns      *dns.Server
	dnsAddr  net.Addr

	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	leaveOnce    sync.Once
	done         chan struct{}
	left         chan struct{} // closed when Leave has left the pools
}

// New prepares an agent from a validated configuration; Start runs it.
func New(cfg *configs.Config, opts Options) (*Agent, error) {
	if cfg == nil {
		return nil, errors.New("agent: no configuration")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reg, gatherer, metricsJSON := newMetrics(cfg.Telemetry)
	hub := newLogHub(opts.Logger.Handler())
	a := &Agent{
		cfg:         *cfg,
		opts:        opts,
		metrics:     reg,
		gatherer:    gatherer,
		metricsJSON: metricsJSON,
		logger:      slog.New(hub),
		logs:        hub.core,
		lanEvents:   make(chan lan.Event, 256),
		wanEvents:   make(chan lan.Event, 256),
		local:       newLocalState(),
		ctx:         ctx,
		cancel:      cancel,
		done:        make(chan struct{}),
		left:        make(chan struct{}),
	}
	reg.MustRegister(newDNSCollector(a, cfg.Telemetry.MetricsPrefix))
	if err := a.initACLTokens(); err != nil {
		return nil, err
	}
	a.events = newEventRing()
	return a, nil
}

// Start brings the agent up: node ID, server port and Raft (server mode),
// LAN gossip, the HTTP API, then the joins. ctx bounds the start itself
// (start_join and start_join_wan, which fail the start when no address
// answers); what runs afterwards lives until Leave or Shutdown. On error
// everything started is stopped again.
func (a *Agent) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.Shutdown()
		}
	}()
	for _, w := range a.cfg.Warnings() {
		a.logger.Warn(w)
	}
	if a.nodeID, err = a.loadNodeID(); err != nil {
		return err
	}
	advertise, err := a.advertiseIP()
	if err != nil {
		return err
	}
	a.advertise = advertise
	if err := a.setupTLS(); err != nil {
		return err
	}

	var serverLn net.Listener
	tags := map[string]string{
		server.TagRole:       server.RoleClient,
		server.TagDatacenter: a.cfg.Datacenter,
		server.TagID:         a.nodeID,
		server.TagBuild:      Version,
	}
	if a.cfg.Server {
		addr := net.JoinHostPort(a.cfg.BindAddr, strconv.Itoa(a.cfg.Ports.Server))
		if serverLn, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("server port: %w", err)
		}
		tags[server.TagRole] = server.RoleServer
		tags[server.TagPort] = strconv.Itoa(serverLn.Addr().(*net.TCPAddr).Port)
		if a.cfg.BootstrapExpect > 0 {
			tags[server.TagExpect] = strconv.Itoa(a.cfg.BootstrapExpect)
		}
	}

	lc := lan.DefaultConfig()
	lc.NodeName = a.cfg.NodeName
	lc.BindAddr = a.cfg.BindAddr
	lc.BindPort = a.cfg.Ports.SerfLAN
	lc.AdvertiseAddr = advertise
	lc.Tags = tags
	lc.EncryptKey = a.cfg.EncryptKey()
	lc.EncryptAcceptPlain, lc.EncryptSendPlain = !a.cfg.EncryptVerifyIncoming, !a.cfg.EncryptVerifyOutgoing
	lc.ReconnectTimeout = a.cfg.ReconnectTimeout
	lc.RejoinAfterLeave = a.cfg.RejoinAfterLeave
	if a.cfg.DataDir != "" && !a.cfg.Dev {
		lc.SnapshotPath = filepath.Join(a.cfg.DataDir, "serf", "local.snapshot")
		lc.KeyringFile = filepath.Join(a.cfg.DataDir, "serf", "local.keyring")
		if err := os.MkdirAll(filepath.Dir(lc.SnapshotPath), 0o700); err != nil {
			return fmt.Errorf("data_dir %s: %w", a.cfg.DataDir, err)
		}
	}
	lc.EventCh = a.lanEvents
	lc.Logger = a.logger.With("component", "lan")
	if a.opts.TuneLAN != nil {
		a.opts.TuneLAN(&lc)
	}
	if a.lan, err = lan.New(lc); err != nil {
		if serverLn != nil {
			serverLn.Close()
		}
		return fmt.Errorf("lan gossip: %w", err)
	}

	if a.cfg.Server {
		sc := server.DefaultConfig()
		sc.NodeName = a.cfg.NodeName
		sc.NodeID = a.nodeID
		sc.Datacenter = a.cfg.Datacenter
		if !a.cfg.Dev {
			sc.DataDir = a.cfg.DataDir
		}
		sc.Bootstrap = a.cfg.Bootstrap || a.cfg.Dev
		sc.BootstrapExpect = a.cfg.BootstrapExpect
		sc.Listener = serverLn
		sc.Advertise = net.JoinHostPort(advertise, tags[server.TagPort])
		sc.ScaleTimings(a.cfg.Performance.RaftMultiplier)
		sc.SnapshotThreshold = uint64(a.cfg.RaftSnapshotThreshold)
		sc.SnapshotInterval = a.cfg.RaftSnapshotInterval
		sc.TrailingLogs = uint64(a.cfg.RaftTrailingLogs)
		ap := a.cfg.Autopilot
		sc.Autopilot.CleanupDeadServers, sc.Autopilot.LastContactThreshold = ap.CleanupDeadServers, ap.LastContactThreshold
		sc.Autopilot.MaxTrailingLogs, sc.Autopilot.ServerStabilizationTime = uint64(ap.MaxTrailingLogs), ap.ServerStabilizationTime
		sc.DefaultQueryWait, sc.MaxQueryWait = a.cfg.DefaultQueryTime, a.cfg.MaxQueryTime
		sc.Logger = a.logger.With("component", "server")
		sc.Metrics, sc.MetricsPrefix = a.metrics, a.cfg.Telemetry.MetricsPrefix
		sc.ACL = a.serverACLConfig()
		for _, r := range a.cfg.Replication.KV {
			sc.KVReplication = append(sc.KVReplication, server.KVReplicationRule{Prefix: r.Prefix, From: r.From, Forward: r.Writes == configs.ReplicationWritesForward})
		}
		sc.TLS = a.rpcTLS
		if err := a.startWAN(tags, &sc); err != nil {
			return err
		}
		if a.opts.TuneServer != nil {
			a.opts.TuneServer(&sc)
		}
		if a.server, err = server.New(sc, a.lan); err != nil {
			return err
		}
		a.goFunc(a.handleWANEvents)
	} else {
		a.pool = rpc.NewPool(clientPoolConfig(a.logger.With("component", "rpc"), a.rpcTLS.Dialer(a.cfg.Datacenter, rpc.ProtoMux, a.opts.Dial)))
		a.health = rpc.NewHerd[[]*catalog.CheckServiceNode](a.cfg.DefaultQueryTime)
		if a.cfg.UseStreamingBackend {
			a.views = newHealthViews(a, a.opts.StreamViewIdle)
		}
	}
	a.servers.update(a.lan.Members(), a.cfg.Datacenter)
	a.goFunc(a.handleLANEvents)

	if err := a.startDNS(); err != nil {
		return err
	}
	if sock := a.cfg.HTTPUnixSocket(); sock != "" {
		if a.httpLn, err = net.Listen("unix", sock); err != nil {
			return fmt.Errorf("http api on unix socket %s: %w", sock, err)
		}
	} else if a.cfg.Ports.HTTP >= 0 {
		httpAddr := net.JoinHostPort(a.cfg.BindHTTP(), strconv.Itoa(a.cfg.Ports.HTTP))
		if a.httpLn, err = net.Listen("tcp", httpAddr); err != nil {
			return fmt.Errorf("http api: %w", err)
		}
	}
	hc := httpapi.DefaultConfig()
	hc.Logger = a.logger.With("component", "http")
	hc.Metrics, hc.Gatherer, hc.MetricsJSON = a.metrics, a.gatherer, a.metricsJSON
	hc.MetricsPrefix = a.cfg.Telemetry.MetricsPrefix
	hc.EnableDebug = a.cfg.EnableDebug
	hc.ACL = a.cfg.ACL.Enabled
	hc.UI = httpapi.UIConfig{Enabled: a.cfg.UIConfig.Enabled, ContentPath: a.cfg.UIConfig.ContentPath}
	hc.MaxConnsPerClient = a.cfg.Limits.HTTPMaxConnsPerClient
	hc.MaxQueryTime = a.cfg.MaxQueryTime
	if a.opts.TuneHTTP != nil {
		a.opts.TuneHTTP(&hc)
	}
	a.http = httpapi.New(hc, a)
	if a.httpLn != nil {
		a.goFunc(func() {
			if err := a.http.Serve(a.httpLn); err != nil {
				a.logger.Error("http api stopped", "error", err)
			}
		})
	}
	if err := a.listenHTTPS(); err != nil {
		return err
	}

	if len(a.cfg.StartJoin) > 0 {
		if _, err := a.lan.Join(ctx, a.cfg.StartJoin); err != nil {
			return fmt.Errorf("start_join: %w", err)
		}
	}
	if len(a.cfg.RetryJoin) > 0 {
		a.goFunc(func() {
			a.retry("LAN", a.lan.Join, a.cfg.RetryJoin, a.cfg.RetryInterval, a.cfg.RetryMax)
		})
	}
	if err := a.joinWAN(ctx); err != nil {
		return err
	}
	// The HTTP API and RPC are ready: the local services and checks start
	// and sync (retrying until the servers answer).
	a.startLocal()
	a.goFunc(a.coordinateLoop)
	a.logger.Info("agent started", "node", a.cfg.NodeName, "datacenter", a.cfg.Datacenter,
		"server", a.cfg.Server, "http", a.HTTPAddr(), "https", a.HTTPSAddr(), "dns", a.DNSAddr(), "lan", a.LANAddr())
	return nil
}

func (a *Agent) goFunc(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

// handleLANEvents drains the gossip pool's events: servers reconcile, every
// agent refreshes its list of servers.
func (a *Agent) handleLANEvents() {
	for {
		select {
		case <-a.ctx.Done():
			return
		case ev := <-a.lanEvents:
			if ev.Type == lan.User {
				a.handleUserEvent(ev)
				continue
			}
			members := a.lan.Members()
			a.servers.update(members, a.cfg.Datacenter)
			if a.pool != nil {
				a.forgetDeadServers(members)
			}
			if a.server != nil {
				a.server.NotifyLAN()
			}
		}
	}
}

// Leave leaves the cluster gracefully, then shuts the agent down. A leader
// first hands leadership to another server; a server then leaves the pools
// and waits for the leader to take it out of Raft (server.Leave and
// WaitRemoved).
func (a *Agent) Leave(ctx context.Context) error {
	var err error
	a.leaveOnce.Do(func() {
		if a.server != nil {
			if e := a.server.Leave(ctx); e != nil {
				a.logger.Warn("leave raft", "error", e)
			}
		}
		if a.wan != nil {
			if e := a.wan.Leave(ctx); e != nil {
				a.logger.Warn("leave wan pool", "error", e)
			}
		}
		if a.lan != nil {
			err = a.lan.Leave(ctx)
		}
		if a.server != nil {
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			a.server.WaitRemoved(wctx)
			cancel()
		}
		close(a.left)
		a.Shutdown()
	})
	return err
}

// Left is closed once Leave has left the pools (and, on a server, Raft),
// just before the agent shuts down.
func (a *Agent) Left() <-chan struct{} { return a.left }

// Shutdown stops the agent without leaving: to the cluster it looks like a
// crash, and a server keeps its Raft membership. Safe to call twice.
func (a *Agent) Shutdown() {
	a.shutdownOnce.Do(func() {
		a.stopLocal()
		a.cancel()
		if a.dns != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = a.dns.Shutdown(ctx)
			cancel()
		}
		if a.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = a.http.Shutdown(ctx)
			cancel()
		} else if a.httpLn != nil {
			a.httpLn.Close()
		}
		if a.http == nil && a.httpsLn != nil {
			a.httpsLn.Close()
		}
		if a.server != nil {
			a.server.Shutdown()
		}
		if a.wan != nil {
			_ = a.wan.Shutdown()
		}
		if a.lan != nil {
			_ = a.lan.Shutdown()
		}
		if a.views != nil {
			a.views.close()
		}
		if a.pool != nil {
			_ = a.pool.Close()
		}
		a.wg.Wait()
		close(a.done)
		a.logger.Info("agent stopped")
	})
}

// Done is closed once the agent has shut down (after Leave, Shutdown, or a
// leave requested over the HTTP API).
func (a *Agent) Done() <-chan struct{} { return a.done }

// HTTPAddr is the address the HTTP API listens on.
func (a *Agent) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// LANAddr is the address of the agent's LAN gossip, for others to join.
func (a *Agent) LANAddr() string {
	ip, port := a.lan.Addr()
	return net.JoinHostPort(ip.String(), strconv.Itoa(port))
}

// Server is the agent's Raft server, nil on a client.
func (a *Agent) Server() *server.Server { return a.server }

// NodeName is the agent's node name.
func (a *Agent) NodeName() string { return a.cfg.NodeName }

// Datacenter is the agent's datacenter.
func (a *Agent) Datacenter() string { return a.cfg.Datacenter }

// loadNodeID returns the configured node ID, the one kept in the data dir,
// or a new one (kept in the data dir when there is one).
func (a *Agent) loadNodeID() (string, error) {
	if a.cfg.NodeID != "" {
		return a.cfg.NodeID, nil
	}
	if a.cfg.DataDir == "" || a.cfg.Dev {
		return newUUID()
	}
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("data_dir %s: %w", a.cfg.DataDir, err)
	}
	path := filepath.Join(a.cfg.DataDir, "node-id")
	if b, err := os.ReadFile(path); err == nil && len(b) >= 36 {
		return string(b[:36]), nil
	}
	id, err := newUUID()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(id), 0o600); err != nil {
		return "", fmt.Errorf("data_dir %s is not writable: %w", a.cfg.DataDir, err)
	}
	return id, nil
}

// advertiseIP is the address other agents reach this one at: advertise_addr,
// else bind_addr, else (binding every address) the first private IPv4.
func (a *Agent) advertiseIP() (string, error) {
	if a.cfg.AdvertiseAddr != "" {
		return a.cfg.AdvertiseAddr, nil
	}
	if ip := net.ParseIP(a.cfg.BindAddr); ip != nil && !ip.IsUnspecified() {
		return a.cfg.BindAddr, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("find an address to advertise: %w", err)
	}
	for _, addr := range addrs {
		if ipn, ok := addr.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsPrivate() {
			return ipn.IP.String(), nil
		}
	}
	return "", errors.New("bind_addr is 0.0.0.0 and no private IPv4 address was found: set advertise_addr")
}
