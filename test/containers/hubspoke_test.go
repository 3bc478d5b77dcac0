//go:build containers

package containers

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// hubSpokeConfig is the config file of every agent of
// TestHubAndSpokeContainers: nothing about the topology (the links are
// learned), only where web fails over to, so that dc2, which has no web,
// answers it from dc3 through dc1.
const hubSpokeConfig = `# Written by the container suite (test/containers): issue 17's hub and spokes.
failover:
  web: {datacenters: [dc3]}
dns_config:
  failover_txt: true
`

// flapWindowEnv sets how long TestHubAndSpokeContainers watches the WAN
// pools for flaps (a Go duration; the issue asks for 2m).
const flapWindowEnv = "MERIDIAN_CONTAINERS_FLAP_WINDOW"

// defaultFlapWindow is the flap watch when flapWindowEnv is unset: short
// enough for CI, long enough for several rounds of WAN probes (one a
// second per server) and of the route exchange.
const defaultFlapWindow = 20 * time.Second

// flapPollEvery is how often the watch reads every server's WAN members.
// A member that fails stays failed for at least memberlist's suspicion
// time and serf's reconnect interval (seconds), so no failure slips
// between two reads.
const flapPollEvery = 500 * time.Millisecond

// federationTimeout is the agents' federation.timeout, the default.
const federationTimeout = 2 * time.Second

// The bounds the issue sets on the relay's failures.
const (
	// relayFailoverWithin is how long after the relaying hub server dies
	// the other relays.
	relayFailoverWithin = 5 * time.Second
	// unreachableWithin is how long a request for dc3 from dc2 may take to
	// answer 503 while the hub is cut off: federation.timeout, plus the
	// HTTP round trip to the client agent and its RPC to its server.
	unreachableWithin = federationTimeout + 500*time.Millisecond
	// dnsUnreachableWithin is how long after the hub is cut off DNS
	// lookups for dc3 from dc2 take to answer SERVFAIL. They are answered
	// from the client's view (dns allow_stale), which a blocking query
	// through the hub keeps: it serves its last copy until that query
	// fails, when QUIC declares the link to the hub dead (rpc's
	// MaxIdleTimeout, 4s) and the forward gives up (federation.timeout),
	// and the view has retried once (its backoff, at most 2s): 8s, and
	// slack for a loaded machine.
	dnsUnreachableWithin = 10 * time.Second
	// rejoinWithin is how long a hub server that was killed takes, once
	// started again, to be back in every server's WAN pool and routes:
	// its datacenter's leader elected, and every spoke's server linked
	// again (wan's DefaultTimings: after a partition the two sides
	// reconnect within 10s), whichever server it rejoined through.
	rejoinWithin = 10 * time.Second
	// hubHealWithin is how long after the hub is connected again dc2's
	// requests for dc3 take to be answered, with no one stepping in.
	hubHealWithin = 10 * time.Second
)

// flapWindow is the flap watch's length: flapWindowEnv or
// defaultFlapWindow.
func flapWindow(t testing.TB) time.Duration {
	t.Helper()
	v := os.Getenv(flapWindowEnv)
	if v == "" {
		return defaultFlapWindow
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive Go duration such as 2m", flapWindowEnv, v)
	}
	return d
}

// newHubAndSpokes starts dc1 (the hub: two servers), dc2 (a server and a
// client) and dc3 (a server), each on its own network, every server also
// on the WAN network. The spokes' servers cannot reach each other: dc2's
// server drops every packet from and to dc3's server (iptables in its
// network namespace, before dc3's server starts), so at the network level
// dc2 and dc3 each reach only dc1. Nothing is configured beyond each
// spoke server's -retry-join-wan to the hub's servers: the hub joins no
// one, and the links are learned. It waits until each datacenter is
// formed; the WAN and the routes are waitHubAndSpokes'.
func newHubAndSpokes(t testing.TB) *cluster {
	t.Helper()
	c := &cluster{h: newRunHarness(t)}
	c.wan = c.h.network(t, "wan", wanOctet)
	shape := []struct {
		name    string
		servers int
		clients int
	}{{"dc1", 2, 0}, {"dc2", 1, 1}, {"dc3", 1, 0}}
	for i, s := range shape {
		dc := &datacenter{name: s.name, net: c.h.network(t, s.name, i+1)}
		for k := range s.servers {
			dc.servers = append(dc.servers, &agent{node: fmt.Sprintf("s%d", k+1), dc: dc.name, server: true,
				ip: dc.net.ip(firstServerHost + k), wanIP: c.wan.ip(10*(i+1) + k + 1)})
		}
		for k := range s.clients {
			dc.clients = append(dc.clients, &agent{node: fmt.Sprintf("c%d", k+1), dc: dc.name, ip: dc.net.ip(firstClientHost + k)})
		}
		c.dcs = append(c.dcs, dc)
	}
	hub := c.dc("dc1")
	for _, dc := range c.dcs {
		for _, a := range dc.agents() {
			nets := []attachment{{dc.net, a.ip}}
			if a.server {
				nets = append(nets, attachment{c.wan, a.wanIP})
			}
			a.container = c.h.create(t, a.String(), nets, hubSpokeArgs(dc, a, hub)...)
			a.writeFile(t, agentConfigFile, hubSpokeConfig)
		}
	}
	dc2s, dc3s := c.dc("dc2").servers[0], c.dc("dc3").servers[0]
	for _, dc := range c.dcs[:2] {
		for _, a := range dc.agents() {
			a.start(t)
		}
	}
	dc2s.cutFrom(t, t, dc3s.wanIP, dc3s.ip)
	t.Logf("%s drops every packet from and to %s (%s, %s)", dc2s, dc3s, dc3s.wanIP, dc3s.ip)
	dc3s.start(t)
	started := time.Now()
	t.Logf("hub and spokes: %s", c.layout())
	for _, dc := range c.dcs {
		c.waitDatacenter(t, dc, formTimeout)
	}
	t.Logf("every datacenter formed %v after the last server started", time.Since(started).Round(time.Millisecond))
	return c
}

// hubSpokeArgs is the command line of agent a of dc: servers of a spoke
// retry-join the hub's servers over the WAN, and nothing else.
func hubSpokeArgs(dc *datacenter, a *agent, hub *datacenter) []string {
	args := []string{"agent", "-config-file", agentConfigFile}
	if a.server {
		args = append(args, "-server", "-bootstrap-expect", strconv.Itoa(len(dc.servers)), "-advertise-wan", a.wanIP)
	}
	args = append(args, "-datacenter", dc.name, "-node", a.node, "-bind", "0.0.0.0", "-advertise", a.ip,
		"-client", "0.0.0.0", "-data-dir", "/data", "-retry-interval", "1s")
	for _, s := range dc.servers {
		if s != a {
			args = append(args, "-retry-join", s.ip)
		}
	}
	if a.server && dc != hub {
		for _, s := range hub.servers {
			args = append(args, "-retry-join-wan", s.wanIP)
		}
		args = append(args, "-retry-interval-wan", "1s")
	}
	return args
}

// wanWant is the WAN pool each server of a hub-and-spoke cluster must see,
// sorted: a hub server sees every server, a spoke server its own
// datacenter's and the hub's.
func wanWant(c *cluster, s *agent) []string {
	var names []string
	for _, o := range c.servers() {
		if s.dc == "dc1" || o.dc == "dc1" || o.dc == s.dc {
			names = append(names, o.String())
		}
	}
	slices.Sort(names)
	return names
}

// wanExactly checks that s lists exactly wanWant in its WAN pool, all
// alive: no spoke server ever admits the other spoke's.
func wanExactly(t testing.TB, c *cluster, s *agent) error {
	members, err := s.api(t, requestTimeout).Agent().Members(true)
	if err != nil {
		return errors.Join(fmt.Errorf("WAN members as %s sees them: %w", s, err), s.exited())
	}
	want := wanWant(c, s)
	var names []string
	for _, m := range members {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	if alive := aliveNames(members); !slices.Equal(names, want) || !slices.Equal(alive, want) {
		return fmt.Errorf("%s lists WAN members %v, alive %v; want exactly %v, alive", s, names, alive, want)
	}
	return nil
}

// hubRoutes is what /v1/operator/federation/routes answers, the part the
// test reads.
type hubRoutes struct {
	Links []struct {
		Datacenter, Server, Error string
		Up                        bool
	}
	Routes []struct {
		Datacenter, NextHop string
		Path                []string
	}
}

// routedVia checks that s routes to dest through via, with links up to
// every server of via it names in up.
func routedVia(t testing.TB, s *agent, dest, via string, up int) error {
	var v hubRoutes
	if _, err := s.api(t, requestTimeout).Raw().Query("/v1/operator/federation/routes", &v, nil); err != nil {
		return errors.Join(fmt.Errorf("routes of %s: %w", s, err), s.exited())
	}
	n := 0
	for _, l := range v.Links {
		if l.Datacenter == via && l.Up {
			n++
		}
	}
	if n != up {
		return fmt.Errorf("%s has %d links up to %s, want %d: %+v", s, n, via, up, v.Links)
	}
	for _, r := range v.Routes {
		if r.Datacenter == dest {
			if r.NextHop != via {
				return fmt.Errorf("%s routes to %s through %s (path %v), want through %s", s, dest, r.NextHop, r.Path, via)
			}
			return nil
		}
	}
	return fmt.Errorf("%s has no route to %s: %+v", s, dest, v.Routes)
}

// learnedLinks checks that s learned its links and that the datacenters
// it heard of but could not reach are unreached (a spoke's server: the
// other spoke; a hub server: none), from the serf_wan stats of
// /v1/agent/self.
func learnedLinks(t testing.TB, s *agent, unreached string) error {
	self, err := s.api(t, requestTimeout).Agent().Self()
	if err != nil {
		return errors.Join(fmt.Errorf("self of %s: %w", s, err), s.exited())
	}
	stats, _ := self["Stats"]["serf_wan"].(map[string]any)
	if stats["links_source"] != "learned" || stats["links_unreached"] != unreached {
		return fmt.Errorf("%s: WAN links %v (source %v), unreached %q; want learned, unreached %q",
			s, stats["links"], stats["links_source"], stats["links_unreached"], unreached)
	}
	return nil
}

// waitHubAndSpokes waits until every server lists exactly its WAN pool
// (wanWant) alive, learned its links and has the other spoke unreached
// (a spoke's server) or nothing unreached (a hub server), and each spoke's server routes to the other spoke
// through the hub over links to both hub servers.
func waitHubAndSpokes(t testing.TB, c *cluster) {
	t.Helper()
	dc2s, dc3s := c.dc("dc2").servers[0], c.dc("dc3").servers[0]
	hubServers := len(c.dc("dc1").servers)
	var waited error // the last reason to wait, for the log
	took := eventually(t, wanTimeout, "the hub and spokes federated", func() (err error) {
		defer func() {
			if err != nil {
				waited = err
			}
		}()
		for _, s := range c.servers() {
			if err := wanExactly(t, c, s); err != nil {
				return err
			}
		}
		for _, s := range c.servers() {
			unreached := map[string]string{"dc1": "", "dc2": "dc3", "dc3": "dc2"}[s.dc]
			if err := learnedLinks(t, s, unreached); err != nil {
				return err
			}
		}
		if err := routedVia(t, dc2s, "dc3", "dc1", hubServers); err != nil {
			return err
		}
		return routedVia(t, dc3s, "dc2", "dc1", hubServers)
	})
	if waited != nil {
		t.Logf("WAN pools and routes complete %v after the wait began; the last wait was for: %v", took.Round(time.Millisecond), waited)
	} else {
		t.Logf("WAN pools and routes complete at once")
	}
}

// flapWatch reads every server's WAN members every flapPollEvery for a
// window and records each time a server sees a member other than alive,
// one it should not list, or not one it should.
type flapWatch struct {
	done       chan struct{}
	start, end time.Time

	mu     sync.Mutex
	polls  int
	flaps  []string
	errors []string
}

// watchFlaps starts a flapWatch over window, at once.
func watchFlaps(t testing.TB, c *cluster, window time.Duration) *flapWatch {
	t.Helper()
	start := time.Now()
	w := &flapWatch{done: make(chan struct{}), start: start}
	var wg sync.WaitGroup
	for _, s := range c.servers() {
		// One reader per server, so that a slow one delays no other's.
		client, want := s.api(t, requestTimeout), wanWant(c, s)
		wg.Go(func() {
			last := make(map[string]string) // member -> its status last seen
			for time.Since(start) < window {
				members, err := client.Agent().Members(true)
				w.record(s, time.Since(start), members, err, want, last)
				time.Sleep(flapPollEvery) // the poll interval, not synchronisation
			}
		})
	}
	go func() {
		wg.Wait()
		w.end = time.Now()
		close(w.done)
	}()
	return w
}

// serfStatus names serf's MemberStatus codes of /v1/agent/members.
var serfStatus = []string{"none", "alive", "leaving", "left", "failed"}

// record notes one read of s's WAN members, at since the start: a flap
// for each member it should list that is not alive or not listed, and
// for each it lists that it should not, each once until it changes; last
// is s's previous statuses.
func (w *flapWatch) record(s *agent, at time.Duration, members []*api.AgentMember, err error, want []string, last map[string]string) {
	at = at.Round(time.Millisecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.errors = append(w.errors, fmt.Sprintf("+%v %s: %v", at, s, err))
		return
	}
	w.polls++
	status := make(map[string]string, len(members))
	for _, m := range members {
		st := strconv.Itoa(m.Status)
		if m.Status >= 0 && m.Status < len(serfStatus) {
			st = serfStatus[m.Status]
		}
		if !slices.Contains(want, m.Name) {
			st = "listed, though it should not be"
		}
		status[m.Name] = st
	}
	for _, name := range want {
		if _, ok := status[name]; !ok {
			status[name] = "not listed"
		}
	}
	for name, st := range status {
		if st != "alive" && last[name] != st {
			w.flaps = append(w.flaps, fmt.Sprintf("+%v %s sees %s %s", at, s, name, st))
		}
		last[name] = st
	}
}

// wait waits until the watch's window has passed and returns the flaps,
// the failed reads and how many reads succeeded.
func (w *flapWatch) wait() (flaps, errs []string, polls int) {
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flaps, w.errors, w.polls
}

// wanRefutations counts the lines of s's log between since and until in
// which its WAN pool refutes a suspicion of it ("Refuting a suspect
// message"): another server's probes of it failed, though it did not fail,
// which the member statuses do not show once refuted.
func wanRefutations(s *agent, since, until time.Time) (int, error) {
	out, err := exec.Command("docker", "logs", "--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano), s.name).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("docker logs %s: %w: %s", s.name, err, out)
	}
	n := 0
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "pool=wan") && strings.Contains(line, "Refuting a suspect message") {
			n++
		}
	}
	return n, nil
}

// relayCalls is how many Federation.Relay calls server s has answered
// (consul_rpc_server_call's count, errored or not), from its Prometheus
// metrics.
func relayCalls(s *agent) (int, error) {
	url := "http://" + s.httpAddr() + "/v1/agent/metrics?format=prometheus"
	resp, err := httpClient(requestTimeout).Get(url)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s = %d", url, resp.StatusCode)
	}
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "consul_rpc_server_call_count{") || !strings.Contains(line, `method="Federation.Relay"`) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("GET %s: %q: %w", url, line, err)
		}
		n += int(v)
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	return n, nil
}

// relayOf sends requests for dc3 through via until one of the hub's
// alive servers has answered more Federation.Relay calls than before
// them, and returns it: the server relaying for via's datacenter.
func relayOf(t testing.TB, alive []*agent, via, dc3 *agent) *agent {
	t.Helper()
	var relay *agent
	eventually(t, crossTimeout, "a hub server relays for "+via.String(), func() error {
		before := make([]int, len(alive))
		for i, s := range alive {
			n, err := relayCalls(s)
			if err != nil {
				return err
			}
			before[i] = n
		}
		for range 3 {
			if err := webIn(t, via, "dc3", dc3); err != nil {
				return err
			}
		}
		best := 0
		relay = nil
		for i, s := range alive {
			n, err := relayCalls(s)
			if err != nil {
				return err
			}
			if d := n - before[i]; d > best {
				best, relay = d, s
			}
		}
		if relay == nil {
			return fmt.Errorf("dc3 answered %s, but no hub server of %v counted a relay", via, alive)
		}
		return nil
	})
	return relay
}

// TestHubAndSpokeContainers is issue 17's test of federation without a
// full mesh, on real networks: dc2 and dc3 each reach only dc1 (their
// servers' packets to each other are dropped), and nothing is configured
// but the spokes' -retry-join-wan to the hub. From dc2's client, dc3
// answers through dc1: web.service.dc3.consul over DNS, a ?dc=dc3 health
// read, a KV write, a prepared query and the failover policy, both
// failing over to dc3. No WAN member flaps while it is watched
// (flapWindowEnv). The hub server that relays is killed: the other relays
// within 5s. The hub is cut off entirely: a request for dc3 answers 503
// within federation.timeout; once it is back, dc3 answers again within
// 10s, with nobody stepping in.
func TestHubAndSpokeContainers(t *testing.T) {
	window := flapWindow(t)
	c := newHubAndSpokes(t)
	hub := c.dc("dc1")
	client, dc3s := c.dc("dc2").clients[0], c.dc("dc3").servers[0]
	registerWeb(t, dc3s)
	var watch *flapWatch
	kvKey, kvWant := "containers/hubspoke/dc3-only", "written from dc2 into dc3 by run "+suite.run

	steps(t,
		step{"federated through the hub", func(t *testing.T) {
			waitHubAndSpokes(t, c)
			watch = watchFlaps(t, c, window)
			t.Logf("watching every server's WAN pool for flaps for %v (%s)", window, flapWindowEnv)
			eventually(t, crossTimeout, "/v1/catalog/datacenters via "+client.String(), func() error {
				dcs, err := client.api(t, requestTimeout).Catalog().Datacenters()
				if err != nil {
					return fmt.Errorf("datacenters via %s: %w", client, err)
				}
				if len(dcs) != 3 || dcs[0] != "dc2" || !slices.Contains(dcs, "dc1") || !slices.Contains(dcs, "dc3") {
					return fmt.Errorf("datacenters via %s = %v, want dc2 first, then dc1 and dc3", client, dcs)
				}
				return nil
			})
		}},
		step{"dc2 reaches dc3 through dc1", func(t *testing.T) {
			t.Run("health", func(t *testing.T) {
				eventually(t, crossTimeout, "/v1/health/service/web?dc=dc3 via "+client.String(), func() error {
					return webIn(t, client, "dc3", dc3s)
				})
			})
			t.Run("DNS", func(t *testing.T) {
				eventually(t, crossTimeout, "web.service.dc3.consul via "+client.String(), func() error {
					return resolves(client.dnsAddr(), "web.service.dc3.consul", dc3s.ip)
				})
			})
			t.Run("KV write", func(t *testing.T) {
				if _, err := client.api(t, requestTimeout).KV().Put(&api.KVPair{Key: kvKey, Value: []byte(kvWant), Flags: 17}, &api.WriteOptions{Datacenter: "dc3"}); err != nil {
					t.Fatalf("put %s dc=dc3 via %s: %v", kvKey, client, err)
				}
				for _, tc := range []struct {
					via  *agent
					dc   string
					want bool
				}{{dc3s, "", true}, {client, "dc3", true}, {client, "", false}, {client, "dc1", false}} {
					kv, _, err := tc.via.api(t, requestTimeout).KV().Get(kvKey, &api.QueryOptions{Datacenter: tc.dc, RequireConsistent: true})
					switch {
					case err != nil:
						t.Errorf("get %s dc=%q via %s: %v", kvKey, tc.dc, tc.via, err)
					case tc.want && (kv == nil || string(kv.Value) != kvWant || kv.Flags != 17):
						t.Errorf("get %s dc=%q via %s = %v, want %q with flags 17", kvKey, tc.dc, tc.via, kvValue(kv), kvWant)
					case !tc.want && kv != nil:
						t.Errorf("get %s dc=%q via %s = %v, want not found", kvKey, tc.dc, tc.via, kvValue(kv))
					}
				}
			})
			t.Run("prepared query failover", func(t *testing.T) {
				pq := client.api(t, requestTimeout).PreparedQuery()
				id, _, err := pq.Create(&api.PreparedQueryDefinition{
					Name:    "web-anywhere",
					Service: api.ServiceQuery{Service: "web", Failover: api.QueryFailoverOptions{Datacenters: []string{"dc3"}}},
				}, nil)
				if err != nil {
					t.Fatalf("create prepared query via %s: %v", client, err)
				}
				res, _, err := pq.Execute(id, nil)
				if err != nil || len(res.Nodes) != 1 || res.Datacenter != "dc3" || res.Failovers != 1 || res.Nodes[0].Service.Address != dc3s.ip {
					t.Fatalf("execute web-anywhere via %s = %+v, %v; want dc3's web after one failover", client, res, err)
				}
				if err := resolves(client.dnsAddr(), "web-anywhere.query.consul", dc3s.ip); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("failover policy", func(t *testing.T) {
				eventually(t, crossTimeout, client.String()+" answers web from dc3", func() error {
					return all(webFrom(client, dc3s))
				})
			})
		}},
		step{"no WAN member flaps", func(t *testing.T) {
			flaps, errs, polls := watch.wait()
			for _, e := range errs {
				t.Logf("flap watch: a read failed: %s", e)
			}
			t.Logf("flap watch over %v: %d reads of WAN members on %d servers, %d failed reads, %d flaps", window, polls, len(c.servers()), len(errs), len(flaps))
			if len(flaps) > 0 {
				t.Errorf("WAN members flapped over %v, want none:\n%s", window, strings.Join(flaps, "\n"))
			}
			for _, s := range c.servers() {
				n, err := wanRefutations(s, watch.start, watch.end)
				if err != nil {
					t.Error(err)
					continue
				}
				t.Logf("%s: refuted %d WAN suspicions of it over the watch", s, n)
			}
			if polls == 0 {
				t.Errorf("the flap watch read no server's WAN members over %v", window)
			}
			for _, s := range c.servers() {
				if err := wanExactly(t, c, s); err != nil {
					t.Error(err)
				}
			}
		}},
		step{"kill the hub server that relays", func(t *testing.T) {
			relay := relayOf(t, hub.servers, client, dc3s)
			other := hub.servers[0]
			if other == relay {
				other = hub.servers[1]
			}
			before, err := relayCalls(other)
			if err != nil {
				t.Fatal(err)
			}
			relay.kill(t)
			killed := time.Now()
			t.Logf("killed %s, which relays dc2's requests for dc3", relay)
			timeChecks(t, killed, relayFailoverWithin, 100*time.Millisecond, "for dc3 from dc2 answered", "the relay's kill", []check{
				{"HTTP health", func() error { return webIn(t, client, "dc3", dc3s) }},
				{"DNS", func() error { return resolves(client.dnsAddr(), "web.service.dc3.consul", dc3s.ip) }},
			})
			after, err := relayCalls(other)
			if err != nil {
				t.Fatal(err)
			}
			if after <= before {
				t.Errorf("%s counted %d relays before the kill and %d after, want more: who relayed?", other, before, after)
			}
			relay.start(t)
			restarted := time.Now()
			c.waitDatacenter(t, hub, formTimeout)
			waitHubAndSpokes(t, c)
			if took := time.Since(restarted); took > rejoinWithin {
				t.Errorf("%s back in every WAN pool and route %v after its start, want within %v", relay, took.Round(time.Millisecond), rejoinWithin)
			} else {
				t.Logf("%s back in every WAN pool and route %v after its start (limit %v)", relay, took.Round(time.Millisecond), rejoinWithin)
			}
		}},
		step{"cut the hub off", func(t *testing.T) {
			stable(t, crossTimeout, 3, "dc3 answers dc2 before the cut", func() error { return webIn(t, client, "dc3", dc3s) })
			for _, s := range hub.servers {
				s.disconnect(t, c.wan)
				s.disconnect(t, hub.net)
			}
			cut := time.Now()
			t.Logf("disconnected dc1's servers from %s and %s", c.wan, hub.net)
			for i := range failFastInARow {
				start := time.Now()
				_, _, err := client.api(t, probeTimeout).Health().Service("web", "", false, &api.QueryOptions{Datacenter: "dc3"})
				took := time.Since(start)
				var se api.StatusError
				switch {
				case err == nil:
					t.Errorf("request %d for dc3 with the hub cut off answered 200 after %v, want 503", i, took.Round(time.Millisecond))
				case !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable:
					t.Errorf("request %d for dc3 with the hub cut off = %v after %v, want a 503", i, err, took.Round(time.Millisecond))
				case took > unreachableWithin:
					t.Errorf("request %d for dc3 with the hub cut off answered 503 after %v, want within federation.timeout (%v)", i, took.Round(time.Millisecond), federationTimeout)
				default:
					t.Logf("request %d for dc3, %v after the cut: 503 after %v", i, start.Sub(cut).Round(time.Millisecond), took.Round(time.Millisecond))
				}
			}
			// DNS answers from the client's view of dc3, kept by a
			// blocking query through the hub: it answers its last copy
			// until that query fails, then SERVFAIL.
			var first time.Time
			stable(t, 3*dnsUnreachableWithin, failFastInARow, "web.service.dc3.consul SERVFAIL via "+client.String(), func() error {
				at := time.Now()
				l, err := lookupA(client.dnsAddr(), "web.service.dc3.consul", probeTimeout)
				switch {
				case err != nil:
					return err
				case l.rcode != dns.RcodeServerFailure || l.took > unreachableWithin:
					first = time.Time{}
					return fmt.Errorf("dns web.service.dc3.consul A @%s with the hub cut off = %v, want SERVFAIL within %v", client, l, unreachableWithin)
				}
				if first.IsZero() {
					first = at
				}
				return nil
			})
			if took := first.Sub(cut); took > dnsUnreachableWithin {
				t.Errorf("DNS for dc3 answered SERVFAIL from %v after the cut, want within %v", took.Round(time.Millisecond), dnsUnreachableWithin)
			} else {
				t.Logf("DNS for dc3 answered SERVFAIL (%d in a row, each within %v) from %v after the cut (limit %v)", failFastInARow, unreachableWithin, took.Round(time.Millisecond), dnsUnreachableWithin)
			}
			for _, s := range hub.servers {
				s.connect(t, hub.net)
				s.connect(t, c.wan)
			}
			healed := time.Now()
			t.Logf("reconnected dc1's servers")
			timeChecks(t, healed, hubHealWithin, 100*time.Millisecond, "for dc3 from dc2 answered again", "the reconnection", []check{
				{"HTTP health", func() error { return webIn(t, client, "dc3", dc3s) }},
				{"DNS", func() error { return resolves(client.dnsAddr(), "web.service.dc3.consul", dc3s.ip) }},
				{"KV", func() error {
					kv, _, err := client.api(t, requestTimeout).KV().Get(kvKey, &api.QueryOptions{Datacenter: "dc3"})
					if err != nil || kv == nil || string(kv.Value) != kvWant {
						return fmt.Errorf("get %s dc=dc3 via %s = %v, %v; want %q", kvKey, client, kvValue(kv), err, kvWant)
					}
					return nil
				}},
			})
		}},
	)
}
