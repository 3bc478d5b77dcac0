//go:build containers

package containers

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// The agents' default ports; every agent has its own IP, so none is moved.
const (
	httpPort   = 8500
	dnsPort    = 8600
	serverPort = 8300
)

// Host numbers in a datacenter's /24: servers from .11, clients from .21.
// On the WAN /24, server k (from 1) of the i-th datacenter (from 0) is
// .(10*(i+1)+k): dc1's servers .11-.13, dc2's .21-.23.
const (
	firstServerHost = 11
	firstClientHost = 21
)

// requestTimeout bounds one HTTP request of a test to an agent, so that a
// request to a dead container fails instead of hanging a wait.
const requestTimeout = 5 * time.Second

// formTimeout bounds how long a datacenter takes to elect a leader and
// gossip every member alive at the production timings: joins retried every
// second, Raft's default election timeouts.
const formTimeout = 90 * time.Second

// clusterSpec is the shape of a cluster.
type clusterSpec struct {
	// datacenters are the datacenters' names, one network each.
	datacenters []string
	// servers and clients are per datacenter.
	servers, clients int
	// federate puts the servers on a WAN network and has each retry-join the
	// other datacenters' servers over it.
	federate bool
	// config, when set, is a YAML config file every agent loads
	// (-config-file agentConfigFile), under its command-line flags.
	config string
	// files, when set, are more files (absolute path -> content) written
	// in an agent's container before it starts, e.g. its certificates.
	files func(a *agent) map[string]string
}

// cluster is one or more datacenters of agents in containers.
type cluster struct {
	h   *harness
	wan *network // nil unless federated
	dcs []*datacenter
}

// datacenter is the agents of one datacenter and their network.
type datacenter struct {
	name    string
	net     *network
	servers []*agent
	clients []*agent
}

// agent is one Meridian agent in its own container.
type agent struct {
	*container
	node   string // node name, unique in its datacenter
	dc     string
	server bool
	ip     string // on its datacenter's network: LAN gossip, RPC, HTTP, DNS
	wanIP  string // on the WAN network; servers of a federated cluster only
}

func (a *agent) String() string { return a.node + "." + a.dc }

// httpAddr is the agent's HTTP API, which the test process reaches directly.
func (a *agent) httpAddr() string { return net.JoinHostPort(a.ip, strconv.Itoa(httpPort)) }

// dnsAddr is the agent's DNS server (UDP and TCP).
func (a *agent) dnsAddr() string { return net.JoinHostPort(a.ip, strconv.Itoa(dnsPort)) }

// api is an official Consul API client of the agent whose requests each give
// up after timeout. It keeps no idle connection, so every request dials
// afresh and a killed or cut-off container cannot leave a dead connection in
// a pool for the next request to stumble on.
func (a *agent) api(t testing.TB, timeout time.Duration) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = a.httpAddr()
	cfg.Scheme = "http"
	cfg.Token = ""
	cfg.HttpClient = httpClient(timeout)
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("consul api client for %s: %v", a, err)
	}
	return c
}

// httpClient is a plain HTTP client for the agents, for what the api client
// does not show (an answer's headers): each request gives up after timeout
// and dials afresh, as api's do.
func httpClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	tr.Proxy = nil // the containers are on this host's bridges; an HTTP_PROXY must not see them
	return &http.Client{Timeout: timeout, Transport: tr}
}

// newCluster creates the networks and containers of spec, starts every
// agent and waits until each datacenter has a leader and every agent sees
// its datacenter's agents alive. It does not wait for the WAN pool (waitWAN).
func newCluster(t testing.TB, spec clusterSpec) *cluster {
	t.Helper()
	c := &cluster{h: newRunHarness(t)}
	for i, name := range spec.datacenters {
		c.dcs = append(c.dcs, &datacenter{name: name, net: c.h.network(t, name, i+1)})
	}
	if spec.federate {
		c.wan = c.h.network(t, "wan", wanOctet)
	}
	for i, dc := range c.dcs {
		for k := range spec.servers {
			a := &agent{node: fmt.Sprintf("s%d", k+1), dc: dc.name, server: true, ip: dc.net.ip(firstServerHost + k)}
			if c.wan != nil {
				a.wanIP = c.wan.ip(10*(i+1) + k + 1)
			}
			dc.servers = append(dc.servers, a)
		}
		for k := range spec.clients {
			dc.clients = append(dc.clients, &agent{node: fmt.Sprintf("c%d", k+1), dc: dc.name, ip: dc.net.ip(firstClientHost + k)})
		}
	}
	for _, dc := range c.dcs {
		for _, a := range dc.agents() {
			nets := []attachment{{dc.net, a.ip}}
			if a.wanIP != "" {
				nets = append(nets, attachment{c.wan, a.wanIP})
			}
			a.container = c.h.create(t, a.String(), nets, c.args(dc, a, spec)...)
			if spec.config != "" {
				a.writeFile(t, agentConfigFile, spec.config)
			}
			if spec.files != nil {
				for path, content := range spec.files(a) {
					a.writeFile(t, path, content)
				}
			}
		}
	}
	for _, dc := range c.dcs {
		for _, a := range dc.agents() {
			a.start(t)
		}
	}
	t.Logf("cluster: %s", c.layout())
	for _, dc := range c.dcs {
		c.waitDatacenter(t, dc, formTimeout)
	}
	return c
}

// args is the agent command line of a in dc.
func (c *cluster) args(dc *datacenter, a *agent, spec clusterSpec) []string {
	args := []string{"agent"}
	if spec.config != "" {
		args = append(args, "-config-file", agentConfigFile)
	}
	if a.server {
		args = append(args, "-server", "-bootstrap-expect", strconv.Itoa(spec.servers))
	}
	args = append(args,
		"-datacenter", dc.name,
		"-node", a.node,
		"-bind", "0.0.0.0",
		"-advertise", a.ip,
	)
	if a.wanIP != "" {
		args = append(args, "-advertise-wan", a.wanIP)
	}
	args = append(args, "-client", "0.0.0.0", "-data-dir", "/data")
	for _, s := range dc.servers {
		if s != a {
			args = append(args, "-retry-join", s.ip)
		}
	}
	args = append(args, "-retry-interval", "1s")
	if a.wanIP != "" {
		for _, other := range c.dcs {
			if other == dc {
				continue
			}
			for _, s := range other.servers {
				args = append(args, "-retry-join-wan", s.wanIP)
			}
		}
		args = append(args, "-retry-interval-wan", "1s")
	}
	return args
}

// layout describes the networks and addresses, for the test log.
func (c *cluster) layout() string {
	s := ""
	for _, dc := range c.dcs {
		s += fmt.Sprintf("\n  %s:", dc.net)
		for _, a := range dc.agents() {
			s += fmt.Sprintf(" %s=%s", a, a.ip)
		}
	}
	if c.wan != nil {
		s += fmt.Sprintf("\n  %s:", c.wan)
		for _, a := range c.servers() {
			s += fmt.Sprintf(" %s=%s", a, a.wanIP)
		}
	}
	return s
}

// dc is the datacenter named name.
func (c *cluster) dc(name string) *datacenter {
	for _, dc := range c.dcs {
		if dc.name == name {
			return dc
		}
	}
	panic("no datacenter " + name)
}

// servers are the servers of every datacenter.
func (c *cluster) servers() []*agent {
	var all []*agent
	for _, dc := range c.dcs {
		all = append(all, dc.servers...)
	}
	return all
}

// agents are the datacenter's servers, then its clients.
func (dc *datacenter) agents() []*agent {
	return slices.Concat(dc.servers, dc.clients)
}

// leader is the server every running server of dc names as leader; it fails
// t unless they agree on one within timeout.
func (dc *datacenter) leader(t testing.TB, timeout time.Duration, running []*agent) *agent {
	t.Helper()
	var leader *agent
	eventually(t, timeout, "a leader of "+dc.name+" all its servers know", func() error {
		leader = nil
		addr := ""
		for _, s := range running {
			got, err := s.api(t, requestTimeout).Status().Leader()
			if err != nil {
				return errors.Join(fmt.Errorf("leader as %s sees it: %w", s, err), s.exited())
			}
			if got == "" {
				return fmt.Errorf("%s knows no leader", s)
			}
			if addr != "" && got != addr {
				return fmt.Errorf("servers disagree on the leader: %s and %s", addr, got)
			}
			addr = got
		}
		for _, s := range dc.servers {
			if net.JoinHostPort(s.ip, strconv.Itoa(serverPort)) == addr {
				leader = s
				return nil
			}
		}
		return fmt.Errorf("leader %s is none of %s's servers", addr, dc.name)
	})
	return leader
}

// waitDatacenter waits until dc's servers agree on a leader and every agent
// of dc sees every other alive in the LAN pool.
func (c *cluster) waitDatacenter(t testing.TB, dc *datacenter, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	dc.leader(t, timeout, dc.servers)
	want := len(dc.agents())
	eventually(t, timeout-time.Since(start), "every agent of "+dc.name+" sees the others alive", func() error {
		for _, a := range dc.agents() {
			members, err := a.api(t, requestTimeout).Agent().Members(false)
			if err != nil {
				return errors.Join(fmt.Errorf("members as %s sees them: %w", a, err), a.exited())
			}
			if alive := aliveNames(members); len(alive) != want {
				return fmt.Errorf("%s sees %d alive members %v, want %d", a, len(alive), alive, want)
			}
		}
		return nil
	})
}

// waitWAN waits until every server sees every server of every datacenter
// alive in the WAN pool, named <node>.<dc>.
func (c *cluster) waitWAN(t testing.TB, timeout time.Duration) {
	t.Helper()
	want := c.wanNames()
	eventually(t, timeout, "every server sees the WAN pool whole", func() error {
		for _, s := range c.servers() {
			members, err := s.api(t, requestTimeout).Agent().Members(true)
			if err != nil {
				return errors.Join(fmt.Errorf("WAN members as %s sees them: %w", s, err), s.exited())
			}
			if alive := aliveNames(members); !slices.Equal(alive, want) {
				return fmt.Errorf("%s sees alive WAN members %v, want %v", s, alive, want)
			}
		}
		return nil
	})
}

// wanNames are the WAN pool's member names, sorted.
func (c *cluster) wanNames() []string {
	var names []string
	for _, s := range c.servers() {
		names = append(names, s.String())
	}
	slices.Sort(names)
	return names
}

// serfAlive is serf's MemberStatus for an alive member, as
// /v1/agent/members reports it.
const serfAlive = 1

// aliveNames are the sorted names of the alive members.
func aliveNames(members []*api.AgentMember) []string {
	var names []string
	for _, m := range members {
		if m.Status == serfAlive {
			names = append(names, m.Name)
		}
	}
	slices.Sort(names)
	return names
}
