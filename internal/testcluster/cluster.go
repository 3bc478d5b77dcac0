package testcluster

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/agent"
	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/wait"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/server"
	"github.com/meridian/meridian/wan"
)

// Options shape a cluster.
type Options struct {
	// Servers and Clients are how many of each to start.
	Servers, Clients int
	// Datacenter defaults to "dc1".
	Datacenter string
	// InMemory runs the server in dev mode, Raft in memory: faster, but a
	// restarted server starts empty, and dev mode bootstraps alone, so it
	// takes a single server.
	InMemory bool
	// Configure, when set, adjusts every agent's configuration before it
	// starts.
	Configure func(*configs.Config)
	// TuneServer, when set, adjusts every server's configuration after the
	// fast test timings (e.g. to inject distances between datacenters
	// through Federation.RTT).
	TuneServer func(*server.Config)
	// Verbose sends agent logs to the test log.
	Verbose bool
	// CoordinateInterval, when set, is how often every agent sends its LAN
	// coordinate to the servers (agent.Options.CoordinateInterval).
	CoordinateInterval time.Duration
	// StreamViewIdle, when set, is how long a client keeps a streaming
	// view after its last watcher (agent.Options.StreamViewIdle).
	StreamViewIdle time.Duration
	// Bridge, when set, carries all traffic between the agents (Raft,
	// RPC, gossip, WAN links) so that the test can cut, delay or drop it
	// per pair (Bridge.Partition, Isolate, Set). Federated clusters share
	// one to cut WAN paths too.
	Bridge *Bridge
}

// Cluster is a running datacenter of agents.
type Cluster struct {
	t       testing.TB
	opts    Options
	mu      sync.Mutex
	Servers []*Node
	Clients []*Node
}

// Node is one agent of a cluster, which a test may kill and restart.
type Node struct {
	t       testing.TB
	Name    string
	cfg     configs.Config
	opts    *Options
	mu      sync.Mutex
	agent   *agent.Agent
	running bool
}

// New starts a cluster and waits until it has a leader, every agent sees
// every other as alive, and the leader has registered every node.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Datacenter == "" {
		opts.Datacenter = "dc1"
	}
	if opts.InMemory && opts.Servers > 1 {
		t.Fatalf("testcluster: InMemory (dev mode) takes one server, got %d", opts.Servers)
	}
	c := &Cluster{t: t, opts: opts}
	var joinAddr string
	for i := range opts.Servers {
		n := c.newNode(fmt.Sprintf("server%d", i+1), true, joinAddr)
		n.start()
		if joinAddr == "" {
			joinAddr = n.LANAddr()
		}
		c.Servers = append(c.Servers, n)
	}
	for i := range opts.Clients {
		n := c.newNode(fmt.Sprintf("client%d", i+1), false, joinAddr)
		n.start()
		c.Clients = append(c.Clients, n)
	}
	if opts.Servers > 0 {
		c.WaitLeader(10 * time.Second)
	}
	c.WaitMembers(opts.Servers+opts.Clients, 10*time.Second)
	if opts.Servers > 0 {
		c.WaitRegistered(10 * time.Second)
	}
	return c
}

// newNode configures an agent; ports are picked free now so that a restart
// comes back on the same addresses, as a real server does.
func (c *Cluster) newNode(name string, isServer bool, join string) *Node {
	t := c.t
	cfg := AgentConfig(t, name)
	cfg.Datacenter = c.opts.Datacenter
	cfg.Server = isServer
	if isServer {
		if c.opts.Servers == 1 {
			cfg.Bootstrap = true
		} else {
			cfg.BootstrapExpect = c.opts.Servers
		}
	}
	if c.opts.InMemory {
		cfg.Dev = true
	}
	if join != "" {
		cfg.RetryJoin = []string{join}
	}
	if c.opts.Configure != nil {
		c.opts.Configure(cfg)
	}
	n := &Node{t: t, Name: name, cfg: *cfg, opts: &c.opts}
	if b := c.opts.Bridge; b != nil {
		for _, addr := range []string{n.LANAddr(), n.WANAddr(), n.ServerAddr()} {
			b.Register(n.ID(), addr)
		}
	}
	t.Cleanup(n.Kill)
	return n
}

// AgentConfig is the configuration of a client agent named name on
// 127.0.0.1 with free ports and a data dir of its own, for tests that start
// agents by hand (StartAgent).
func AgentConfig(t testing.TB, name string) *configs.Config {
	cfg := configs.Default()
	cfg.NodeName = name
	cfg.BindAddr = "127.0.0.1"
	cfg.ClientAddr = "127.0.0.1"
	cfg.Ports.HTTP = freePort(t, "tcp")
	cfg.Ports.SerfLAN = freePort(t, "both")
	cfg.Ports.Server = freePort(t, "both") // TCP for RPC and Raft, UDP for QUIC WAN links
	cfg.Ports.SerfWAN = freePort(t, "both")
	cfg.RetryIntervalWAN = 100 * time.Millisecond
	cfg.Ports.DNS = 0 // a free port, read back with Agent().DNSAddr()
	cfg.RetryInterval = 100 * time.Millisecond
	cfg.DataDir = filepath.Join(t.TempDir(), name)
	// Every client of every test reaches the agents from 127.0.0.1, and
	// each API() is a client with its own connection pool: the per-client
	// cap (limits.http_max_conns_per_client) is for real deployments, and
	// its own tests set it.
	cfg.Limits.HTTPMaxConnsPerClient = 0
	return cfg
}

// StartAgent starts an agent with cfg and the fast test timings, stopping
// it at the end of the test.
func StartAgent(t testing.TB, cfg *configs.Config) (*agent.Agent, error) {
	a, err := agent.New(cfg, agent.Options{
		TuneLAN:    func(c *lan.Config) { c.Timings = lan.FastTimings() },
		TuneWAN:    func(c *wan.Config) { c.Timings = wan.FastTimings() },
		TuneServer: FastServer,
	})
	if err != nil {
		return nil, err
	}
	if err := a.Start(context.Background()); err != nil {
		return nil, err
	}
	t.Cleanup(a.Shutdown)
	return a, nil
}

func (n *Node) start() {
	n.t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if n.opts.Verbose {
		logger = slog.New(slog.NewTextHandler(testWriter{n.t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", n.Name)
	}
	cfg := n.cfg
	var ep *Endpoint
	if n.opts.Bridge != nil {
		ep = n.opts.Bridge.Endpoint(n.ID())
	}
	opts := agent.Options{
		Logger: logger,
		TuneLAN: func(c *lan.Config) {
			c.Timings = lan.FastTimings()
			if ep != nil {
				c.WrapTransport = ep.WrapTransport
			}
		},
		TuneWAN: func(c *wan.Config) {
			c.Timings = wan.FastTimings()
			if ep != nil {
				c.WrapTransport = ep.WrapTransport
			}
		},
		TuneServer: func(c *server.Config) {
			FastServer(c)
			if ep != nil {
				c.Dial = ep.Dial
				c.Federation.Dial = ep.Dial
				c.Federation.QUIC.ListenPacket = ep.ListenPacket
			}
			if n.opts.TuneServer != nil {
				n.opts.TuneServer(c)
			}
		},
		CoordinateInterval: n.opts.CoordinateInterval,
		StreamViewIdle:     n.opts.StreamViewIdle,
	}
	if ep != nil {
		opts.Dial = ep.Dial
	}
	a, err := agent.New(&cfg, opts)
	if err != nil {
		n.t.Fatalf("configure %s: %v", n.Name, err)
	}
	err = a.Start(context.Background())
	if err != nil {
		n.t.Fatalf("start %s: %v", n.Name, err)
	}
	n.mu.Lock()
	n.agent, n.running = a, true
	n.mu.Unlock()
}

// FastServer sets Raft timings for tests on loopback, half the production
// ones, a short coordinate batch period so that coordinates show within
// 100ms, and autopilot checks every 200ms promoting a new server after 1s.
// Measured with three servers and CPUs oversubscribed five times
// (BurnCPU(5)) for 40s: 200/200/100ms (heartbeat, election, lease) held
// three elections, 500/500/250ms none. Autopilot's dead server cleanup is
// off until a test turns it on (operator autopilot set-config): tests that
// kill or cut off servers and bring them back expect them to stay voters
// meanwhile.
func FastServer(c *server.Config) {
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.ReconcileInterval = time.Second
	c.CoordinateUpdatePeriod = 100 * time.Millisecond
	c.AutopilotInterval = 200 * time.Millisecond
	c.Autopilot.ServerStabilizationTime = time.Second
	c.Autopilot.CleanupDeadServers = false
}

// ID names the node on a Bridge: "datacenter/name".
func (n *Node) ID() string { return n.cfg.Datacenter + "/" + n.Name }

// IDs are the nodes' IDs, for Bridge.Partition.
func IDs(nodes ...*Node) []string {
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID()
	}
	return ids
}

// Agent is the running agent (nil while killed).
func (n *Node) Agent() *agent.Agent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.agent
}

// Kill stops the agent without leaving, as a crash would. Safe to call on a
// stopped node.
func (n *Node) Kill() {
	n.mu.Lock()
	a, running := n.agent, n.running
	n.running = false
	n.mu.Unlock()
	if running {
		a.Shutdown()
	}
}

// Leave leaves the cluster gracefully and stops the agent.
func (n *Node) Leave() {
	n.t.Helper()
	n.mu.Lock()
	a, running := n.agent, n.running
	n.running = false
	n.mu.Unlock()
	if !running {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Leave(ctx); err != nil {
		n.t.Fatalf("leave %s: %v", n.Name, err)
	}
}

// Restart starts a stopped node again on the same addresses and data dir.
func (n *Node) Restart() {
	n.t.Helper()
	n.Kill()
	n.start()
}

// Running reports whether the node's agent runs.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running
}

// HTTPAddr is the agent's HTTP API address.
func (n *Node) HTTPAddr() string { return "127.0.0.1:" + strconv.Itoa(n.cfg.Ports.HTTP) }

// LANAddr is the agent's LAN gossip address.
func (n *Node) LANAddr() string { return "127.0.0.1:" + strconv.Itoa(n.cfg.Ports.SerfLAN) }

// WANAddr is a server's WAN gossip address.
func (n *Node) WANAddr() string { return "127.0.0.1:" + strconv.Itoa(n.cfg.Ports.SerfWAN) }

// ServerAddr is the server port's address.
func (n *Node) ServerAddr() string { return "127.0.0.1:" + strconv.Itoa(n.cfg.Ports.Server) }

// API is an official Consul API client pointed at this agent.
func (n *Node) API() *api.Client {
	n.t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = n.HTTPAddr()
	c, err := api.NewClient(cfg)
	if err != nil {
		n.t.Fatalf("consul api client: %v", err)
	}
	return c
}

// AddServer starts one more server that joins the running cluster (it does
// not bootstrap), as an operator replacing a dead one would.
func (c *Cluster) AddServer() *Node {
	c.t.Helper()
	c.mu.Lock()
	name := fmt.Sprintf("server%d", len(c.Servers)+1)
	join := c.Servers[0].LANAddr()
	for _, s := range c.Servers {
		if s.Running() {
			join = s.LANAddr()
			break
		}
	}
	c.mu.Unlock()
	n := c.newNode(name, true, join)
	n.cfg.BootstrapExpect, n.cfg.Bootstrap = 0, false
	n.start()
	c.mu.Lock()
	c.Servers = append(c.Servers, n)
	c.mu.Unlock()
	return n
}

// Followers returns the servers other than leader, in order.
func (c *Cluster) Followers(leader *Node) []*Node {
	var out []*Node
	for _, n := range c.Servers {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// WaitLeader returns the server that leads, waiting up to timeout for one.
func (c *Cluster) WaitLeader(timeout time.Duration) *Node {
	c.t.Helper()
	var leader *Node
	Eventually(c.t, timeout, func() error {
		leader = nil
		for _, n := range c.Servers {
			a := n.Agent()
			if !n.Running() || a == nil {
				continue
			}
			if a.Server().IsLeader() {
				if leader != nil {
					return fmt.Errorf("two leaders: %s and %s", leader.Name, n.Name)
				}
				leader = n
			}
		}
		if leader == nil {
			return fmt.Errorf("no leader among %d servers", len(c.Servers))
		}
		// Every running server must know it.
		for _, n := range c.Servers {
			if n.Running() && n.Agent().Server().Leader() != leader.ServerAddr() {
				return fmt.Errorf("%s does not know leader %s yet", n.Name, leader.Name)
			}
		}
		return nil
	})
	return leader
}

// WaitRegistered waits until the leader's catalog holds every running
// agent's node with its serfHealth check passing, as the leader registers
// members after it is elected: a session (bound to serfHealth by default)
// can be created for any of them from then on. It reads over the leader's
// plain HTTP port, so it does not wait where that is off or on a unix
// socket, or with ACLs on (the test's tokens are its own).
func (c *Cluster) WaitRegistered(timeout time.Duration) {
	c.t.Helper()
	leader := c.WaitLeader(timeout)
	if cfg := leader.cfg; cfg.ACL.Enabled || cfg.Ports.HTTP <= 0 || strings.HasPrefix(cfg.Addresses.HTTP, "unix://") {
		return
	}
	Eventually(c.t, timeout, func() error {
		for _, n := range append(append([]*Node{}, c.Servers...), c.Clients...) {
			if !n.Running() {
				continue
			}
			checks, _, err := leader.API().Health().Node(n.Name, nil)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(checks, func(h *api.HealthCheck) bool {
				return h.CheckID == "serfHealth" && h.Status == api.HealthPassing
			}) {
				return fmt.Errorf("%s is not in the catalog with serfHealth passing yet", n.Name)
			}
		}
		return nil
	})
}

// WaitMembers waits until every running agent sees want alive members.
func (c *Cluster) WaitMembers(want int, timeout time.Duration) {
	c.t.Helper()
	Eventually(c.t, timeout, func() error {
		for _, n := range append(append([]*Node{}, c.Servers...), c.Clients...) {
			if !n.Running() {
				continue
			}
			alive, err := n.alive(false)
			if err != nil {
				return err
			}
			if alive != want {
				return fmt.Errorf("%s sees %d alive members, want %d", n.Name, alive, want)
			}
		}
		return nil
	})
}

// alive counts the members n's agent sees alive in its LAN pool, or with
// wan in its WAN pool.
func (n *Node) alive(wan bool) (int, error) {
	members, err := n.Agent().Members(wan)
	if err != nil {
		return 0, err
	}
	alive := 0
	for _, m := range members {
		if m.Status == 1 {
			alive++
		}
	}
	return alive, nil
}

// Eventually retries fn until it returns nil or timeout passes, then fails
// the test with fn's last error: wait.Eventually, which the tests of
// packages below testcluster (rpc, lan, dns) use directly.
func Eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	wait.Eventually(t, timeout, fn)
}

// Ports for test agents come from below the kernel's ephemeral range
// (32768-60999 on Linux), which outgoing connections and ":0" listeners use:
// a port picked there and released until the agent binds it could be taken
// meanwhile by any connection of any test. Each test process starts at a
// random point of the range, so that packages testing in parallel rarely
// meet, and probes each port before handing it out.
const (
	testPortLow  = 20000
	testPortSpan = 12000
)

// nextPort is the process's cursor in the test port range.
var nextPort = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(rand.Int64N(testPortSpan))
	return &n
}()

// freePort returns a port free on 127.0.0.1 for TCP ("tcp") or for both TCP
// and UDP ("both", for gossip and the server port's QUIC side).
func freePort(t testing.TB, kind string) int {
	t.Helper()
	for range 200 {
		port := testPortLow + int(nextPort.Add(1)%testPortSpan)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		if kind == "both" {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				ln.Close()
				continue
			}
			pc.Close()
		}
		ln.Close()
		return port
	}
	t.Fatalf("no free port in %d-%d", testPortLow, testPortLow+testPortSpan)
	return 0
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
