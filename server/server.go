package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/federation"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
)

// Config is what a server needs to run. The agent fills it from the
// configs package; DefaultConfig gives the timings.
type Config struct {
	// NodeName is this agent's node name, unique in the datacenter.
	NodeName string
	// NodeID is the node's UUID; it is also the Raft server ID.
	NodeID string
	// Datacenter is the name of this server's datacenter.
	Datacenter string
	// DataDir holds the Raft log and snapshots; "" keeps them in memory
	// (dev mode: nothing survives a restart).
	DataDir string
	// Bootstrap makes this server bootstrap a one-server cluster by itself.
	Bootstrap bool
	// BootstrapExpect waits for this many servers in the LAN pool, then
	// bootstraps them as one cluster, once. 0 disables it.
	BootstrapExpect int
	// Listener is the server port (8300), already bound; the server owns
	// it from New on.
	Listener net.Listener
	// Advertise is the host:port other servers and clients reach this
	// server at; "" uses the listener's address.
	Advertise string

	// HeartbeatTimeout is how long a follower goes without hearing from the
	// leader before it starts an election. With ElectionTimeout it bounds
	// how fast a dead leader is replaced: about HeartbeatTimeout plus one
	// or two randomised ElectionTimeouts.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits for votes.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without
	// reaching a quorum.
	LeaderLeaseTimeout time.Duration
	// MaxAppendEntries caps how many log entries raft sends, writes and
	// fsyncs as one batch; concurrent writes share one fsync up to it.
	MaxAppendEntries int
	// SnapshotThreshold is how many Raft entries since the last snapshot
	// make a server take the next one; it checks every SnapshotInterval
	// (randomised up to twice that). TrailingLogs is how many entries a
	// snapshot leaves in the log, so that a follower lagging by fewer
	// catches up without a whole snapshot. Consul's raft_snapshot_threshold,
	// raft_snapshot_interval and raft_trailing_logs.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// ReconcileInterval is how often the leader re-checks every LAN member
	// against the catalog, besides reacting to member events.
	ReconcileInterval time.Duration
	// AbsentServerGrace is how long a server of the Raft configuration may
	// be missing from the LAN pool (reaped, or pruned by force-leave)
	// before the leader removes it from Raft. It covers a leader whose
	// pool is still filling after a restart.
	AbsentServerGrace time.Duration
	// Autopilot is autopilot's configuration until one is stored through
	// Raft (operator autopilot set-config); AutopilotInterval is how often
	// the leader checks the servers' health (autopilot.go).
	Autopilot         rpc.AutopilotConfig
	AutopilotInterval time.Duration
	// DefaultQueryWait is a blocking query's wait when the caller gives
	// none; MaxQueryWait caps what a caller may ask for.
	DefaultQueryWait, MaxQueryWait time.Duration
	// ApplyTimeout bounds a write waiting to be committed.
	ApplyTimeout time.Duration
	// CoordinateUpdatePeriod is how often the leader writes the LAN
	// coordinates agents sent it since the last time (Consul's
	// coordinate_update_period): a newer update of a node replaces its
	// older one, so each period costs a few Raft entries, whatever the
	// agents' rate. Shorter shows coordinates sooner. 0 means
	// DefaultCoordinateUpdatePeriod.
	CoordinateUpdatePeriod time.Duration
	// CoordinateUpdateBatchSize caps the coordinates in one Raft entry and
	// CoordinateUpdateMaxBatches the entries per period; updates from more
	// nodes than their product within a period are dropped until the next
	// (the agents send theirs again). 0 means the Default values.
	CoordinateUpdateBatchSize, CoordinateUpdateMaxBatches int

	// WAN is the WAN gossip pool this server is a member of; nil runs the
	// server without federation (requests for other datacenters answer
	// rpc.ErrNoPathToDC).
	WAN WANPool
	// Federation configures the links to other datacenters' servers; only
	// used with WAN. Its Datacenter, RTT and Logger are filled in by New.
	Federation federation.Config
	// StaleView answers ?stale health reads of other datacenters from
	// views kept current over the WAN links (federation.Views) instead of
	// a WAN round trip per read.
	StaleView bool

	// ACL configures access control (acl.go).
	ACL ACLConfig
	// KVReplication lists the KV prefixes this datacenter's leader copies
	// from other datacenters, read-only here (kv_replication.go). It reads
	// the source with the ACL replication token.
	KVReplication []KVReplicationRule
	// KVReplicationAnswerBytes bounds the keys and values of one answer
	// read from a source: a larger prefix is copied over several rounds.
	// Each answer must fit the RPC layer's 64 MiB reply cap. 0 means
	// DefaultKVReplicationAnswerBytes.
	KVReplicationAnswerBytes int
	// TLS, when set, is the server port's TLS: connections that start with
	// rpc.ProtoTLS are accepted (plain ones refused with VerifyIncoming),
	// and this server dials RPC and Raft to the other servers with TLS when
	// VerifyOutgoing is set.
	TLS *rpc.TLSConfigurator

	// WrapRaftLog, when set, wraps the Raft log on disk before the server
	// uses it; tests stall a server's disk writes with it.
	WrapRaftLog func(raft.LogStore) raft.LogStore
	// Dial, when set, opens the server's connections to other servers of
	// its datacenter (Raft, forwarded RPC) instead of a net.Dialer. A test
	// seam: internal/testcluster partitions servers with it.
	Dial rpc.DialFunc

	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Metrics, when set, receives the server's Prometheus metrics, named
	// with MetricsPrefix (default consul).
	Metrics       prometheus.Registerer
	MetricsPrefix string
}

// DefaultConfig returns production timings: Consul's at raft_multiplier 1,
// a 1s heartbeat and election timeout and a 500ms leader lease. They trade
// failover time against leadership that holds when the CPUs are busy:
//
//   - A dead leader is replaced after a follower's randomised heartbeat
//     timeout (1-2s) plus one election, about 2s on a LAN (3s at most
//     unless votes split).
//   - A leader steps down when it has not heard from a quorum for the
//     lease. On CPUs oversubscribed five times over, every hop of a
//     heartbeat waits its turn to run: a 250ms lease (and 500ms heartbeat
//     timeout) lost the leader within seconds, 500ms keeps it for minutes
//     (server's TestLeaderStableUnderLoad).
//
// performance.raft_multiplier (ScaleTimings) stretches all three for
// slower or busier machines, each step adding about 2s to a failover.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		MaxAppendEntries:   256,
		SnapshotThreshold:  16384,
		SnapshotInterval:   120 * time.Second,
		TrailingLogs:       10240,
		ReconcileInterval:  60 * time.Second,
		AbsentServerGrace:  10 * time.Second,
		Autopilot:          rpc.DefaultAutopilotConfig(),
		AutopilotInterval:  time.Second,
		DefaultQueryWait:   5 * time.Minute,
		MaxQueryWait:       10 * time.Minute,
		ApplyTimeout:       30 * time.Second,
		Federation:         federation.DefaultConfig(),
		StaleView:          true,

		// Coordinate batching: see the Default constants.
		CoordinateUpdatePeriod:     DefaultCoordinateUpdatePeriod,
		CoordinateUpdateBatchSize:  DefaultCoordinateUpdateBatchSize,
		CoordinateUpdateMaxBatches: DefaultCoordinateUpdateMaxBatches,
	}
}

// ScaleTimings multiplies the Raft timings by m, as Consul's
// performance.raft_multiplier does, for slow or overloaded machines.
func (c *Config) ScaleTimings(m int) {
	if m <= 1 {
		return
	}
	c.HeartbeatTimeout *= time.Duration(m)
	c.ElectionTimeout *= time.Duration(m)
	c.LeaderLeaseTimeout *= time.Duration(m)
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("server: node name is empty")
	case c.NodeID == "":
		return errors.New("server: node id is empty")
	case c.Datacenter == "":
		return errors.New("server: datacenter is empty")
	case c.Listener == nil:
		return errors.New("server: no listener for the server port")
	case c.Bootstrap && c.BootstrapExpect > 0:
		return errors.New("server: bootstrap and bootstrap_expect are exclusive")
	case c.BootstrapExpect < 0:
		return fmt.Errorf("server: bootstrap_expect must be >= 0, got %d", c.BootstrapExpect)
	case c.HeartbeatTimeout <= 0 || c.ElectionTimeout <= 0 || c.LeaderLeaseTimeout <= 0:
		return errors.New("server: raft timings must be positive")
	case c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return errors.New("server: leader lease timeout must not exceed the heartbeat timeout")
	case c.AutopilotInterval <= 0:
		return errors.New("server: autopilot interval must be positive")
	case c.SnapshotThreshold == 0 || c.SnapshotInterval <= 0:
		return errors.New("server: raft snapshot threshold and interval must be positive")
	}
	return validateKVReplication(c.Datacenter, c.KVReplication)
}

// Server is one Raft server of a datacenter.
type Server struct {
	cfg    Config
	logger *slog.Logger

	state     *state
	fsm       *fsm
	raft      *raft.Raft
	transport *raft.NetworkTransport
	stores    io.Closer
	snaps     raft.SnapshotStore

	mux       *rpc.Mux
	rpcServer *rpc.Server
	pool      *rpc.Pool
	local     map[string]localHandler
	lan       *lan.Pool
	fed       *federation.Forwarder // nil without WAN
	views     *federation.Views     // nil without WAN or StaleView
	quic      *rpc.QUICListener     // WAN links accepted over QUIC

	// reconcileCh nudges the leader loop when LAN membership changes.
	metrics *metrics
	answers *answerCache
	subs    subscriptions // streaming subscriptions served (stream.go)
	// leaderHealth coalesces the blocking health reads a follower
	// forwards to its leader (healthServiceNodes).
	leaderHealth *rpc.Herd[[]*catalog.CheckServiceNode]
	contact      *leaderContact
	reconcileCh  chan struct{}
	leaderCh     chan bool
	// ready is the term whose barrier this server applied as leader
	// (ready.go); reads and writes wait for it.
	ready atomic.Pointer[readiness]

	// started is when New ran: a server that has not heard from a leader
	// since has state as old as that.
	started time.Time
	// absentSince is when the leader first saw each Raft server missing
	// from the LAN pool (membership.go); only the leader loop uses it.
	absentSince map[raft.ServerID]time.Time
	// autopilot is the leader's memory of server health (autopilot.go).
	autopilot autopilotState

	// coords queues agents' coordinates on the leader (coordinate.go).
	coords *coordinateBatch
	// acl caches compiled tokens (acl.go).
	acl *aclState
	// kvRepl is the leader's KV replication status (kv_replication.go).
	kvRepl kvReplication

	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	shutdownOnce sync.Once
}

// New starts a server: its state store, Raft on the shared port, the RPC
// endpoints, and the loops that bootstrap the cluster and do the leader's
// duties. pool is the LAN gossip pool the agent runs.
func New(cfg Config, pool *lan.Pool) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	advertise := cfg.Advertise
	if advertise == "" {
		advertise = cfg.Listener.Addr().String()
	}
	advAddr, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		return nil, fmt.Errorf("server: advertise address %q: %w", advertise, err)
	}
	cfg.Advertise = advAddr.String()

	st, err := newState()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:          cfg,
		logger:       cfg.Logger,
		state:        st,
		fsm:          &fsm{state: st, logger: cfg.Logger},
		lan:          pool,
		local:        map[string]localHandler{},
		answers:      newAnswerCache(1024),
		leaderHealth: rpc.NewHerd[[]*catalog.CheckServiceNode](cfg.DefaultQueryWait),
		contact:      newLeaderContact(),
		acl:          newACLState(cfg.ACL),
		reconcileCh:  make(chan struct{}, 1),
		leaderCh:     make(chan bool, 8),
		ctx:          ctx,
		cancel:       cancel,
		started:      time.Now(),
	}
	s.ready.Store(&readiness{changed: make(chan struct{})})
	s.metrics = newMetrics(cfg.Metrics, cfg.MetricsPrefix, s)
	s.mux = rpc.NewMux(cfg.Listener, rpc.MuxConfig{Logger: cfg.Logger, TLS: cfg.TLS})
	s.rpcServer = rpc.NewServer(rpc.ServerConfig{Logger: cfg.Logger})
	s.pool = rpc.NewPool(rpc.PoolConfig{Logger: cfg.Logger, Dial: cfg.TLS.Dialer(cfg.Datacenter, rpc.ProtoMux, cfg.Dial)})
	s.registerEndpoints()

	if err := s.setupRaft(advAddr); err != nil {
		s.mux.Close()
		s.pool.Close()
		cancel()
		return nil, err
	}
	s.goFunc(func() { _ = s.mux.Serve() })
	s.goFunc(func() { s.rpcServer.ServeListener(s.mux.Listener(rpc.ProtoMux)) })
	s.goFunc(s.monitorLeadership)
	s.goFunc(s.watchLeaderContact)
	if cfg.WAN != nil {
		if err := s.startFederation(); err != nil {
			s.Shutdown()
			return nil, err
		}
	}
	if err := s.maybeBootstrap(); err != nil {
		s.Shutdown()
		return nil, err
	}
	return s, nil
}

func (s *Server) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) setupRaft(adv *net.TCPAddr) error {
	hl := hclogger(s.logger.With("component", "raft"), "raft")
	ll, logs, stable, snaps, closer, err := raftStores(s.cfg.DataDir, s.cfg.WrapRaftLog, hl)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	layer := newRaftLayer(s.mux.Listener(rpc.ProtoRaft), adv, s.cfg.TLS.Dialer(s.cfg.Datacenter, rpc.ProtoRaft, s.cfg.Dial))
	s.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  layer,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hl,
	})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.cfg.NodeID)
	rc.Logger = hl
	rc.HeartbeatTimeout = s.cfg.HeartbeatTimeout
	rc.ElectionTimeout = s.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = s.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = 10 * time.Millisecond
	rc.MaxAppendEntries = s.cfg.MaxAppendEntries
	// Per-peer metrics carry the peer as a label, not also in the name.
	rc.NoLegacyTelemetry = true
	rc.SnapshotThreshold = s.cfg.SnapshotThreshold
	rc.SnapshotInterval = s.cfg.SnapshotInterval
	rc.TrailingLogs = s.cfg.TrailingLogs
	rc.NotifyCh = s.leaderCh
	s.fsm.log = ll
	r, err := raft.NewRaft(rc, s.fsm, logs, stable, snaps, raftTransport{NetworkTransport: s.transport, durable: ll.durableIndex})
	if err != nil {
		closer.Close()
		s.transport.Close()
		return fmt.Errorf("server: start raft: %w", err)
	}
	ll.setRaft(r)
	s.raft = r
	s.stores = closer
	s.snaps = snaps
	return nil
}

// Shutdown stops the server without leaving the cluster: Raft, the RPC
// endpoints and the loops stop, the data dir keeps everything. Safe to call
// more than once.
func (s *Server) Shutdown() {
	s.shutdownOnce.Do(func() {
		s.cancel()
		if s.raft != nil {
			if err := s.raft.Shutdown().Error(); err != nil {
				s.logger.Warn("raft shutdown", "error", err)
			}
		}
		s.mux.Close()
		if s.quic != nil {
			s.quic.Close()
		}
		s.rpcServer.Shutdown()
		s.pool.Close()
		if s.views != nil {
			s.views.Close()
		}
		if s.fed != nil {
			s.fed.Close()
		}
		if s.transport != nil {
			s.transport.Close()
		}
		s.wg.Wait()
		if s.stores != nil {
			s.stores.Close()
		}
	})
}

// NotifyLAN tells the server that LAN membership changed, so the leader
// reconciles promptly, and requests forwarded to a server gossip declared
// failed (a dead leader) fail now rather than after the session's
// keepalives. It never blocks on the network.
func (s *Server) NotifyLAN() {
	for _, m := range s.lan.Members() {
		if meta, ok := ParseMember(m); ok && m.Status != lan.StatusAlive && meta.Addr != s.cfg.Advertise {
			s.pool.Forget(meta.Addr)
		}
	}
	select {
	case s.reconcileCh <- struct{}{}:
	default:
	}
}

// IsLeader reports whether this server is the Raft leader.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's server address, or "" when none is known.
func (s *Server) Leader() string {
	addr, _ := s.raft.LeaderWithID()
	return string(addr)
}

// Addr is the server's advertised RPC address.
func (s *Server) Addr() string { return s.cfg.Advertise }

// Stats reports Raft's own statistics, for /v1/agent/self.
func (s *Server) Stats() map[string]string { return s.raft.Stats() }

// Snapshot takes a Raft snapshot now (operators and tests; raft also takes
// them by itself every SnapshotInterval once enough entries accumulated).
func (s *Server) Snapshot() error { return s.raft.Snapshot().Error() }
