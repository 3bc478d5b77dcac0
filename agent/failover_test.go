package agent_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	mdns "github.com/miekg/dns"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/server"
)

// distances are the injected round-trip times between datacenters: from
// dc1, dc3 is nearer than dc2.
var distances = map[[2]string]time.Duration{
	{"dc1", "dc2"}: 50 * time.Millisecond, {"dc1", "dc3"}: 10 * time.Millisecond,
	{"dc2", "dc3"}: 30 * time.Millisecond,
}

func injectDistances(c *server.Config) {
	local := c.Datacenter
	c.Federation.RTT = func(name string) (time.Duration, bool) {
		dc := name[strings.LastIndex(name, ".")+1:]
		if dc == local {
			return time.Millisecond, true
		}
		if d, ok := distances[[2]string{local, dc}]; ok {
			return d, true
		}
		d, ok := distances[[2]string{dc, local}]
		return d, ok
	}
}

// failoverCluster starts dc1, dc2 and dc3 (one server, one client each)
// with injected distances, a "web" and an "api" instance with a TTL check
// on each client (10.0.N.1 and 10.0.N.2 in dcN), all passing, and the given
// failover policies on every agent.
func failoverCluster(t *testing.T, policies map[string]configs.FailoverPolicy) []*testcluster.Cluster {
	t.Helper()
	var cs []*testcluster.Cluster
	for i := 1; i <= 3; i++ {
		dc := fmt.Sprintf("dc%d", i)
		c := testcluster.New(t, testcluster.Options{
			Servers: 1, Clients: 1, Datacenter: dc,
			Configure: func(cfg *configs.Config) {
				cfg.Failover = policies
				cfg.DNSConfig.FailoverTXT = true
			},
			TuneServer: injectDistances,
		})
		agent := c.Clients[0].API().Agent()
		for j, name := range []string{"web", "api"} {
			reg := &api.AgentServiceRegistration{
				ID: name, Name: name, Address: fmt.Sprintf("10.0.%d.%d", i, j+1), Port: 80,
				Check: &api.AgentServiceCheck{CheckID: name + "-ttl", TTL: "1h", Status: api.HealthPassing},
			}
			if err := agent.ServiceRegister(reg); err != nil {
				t.Fatalf("register %s in %s: %v", name, dc, err)
			}
		}
		cs = append(cs, c)
	}
	testcluster.Federate(t, cs...)
	return cs
}

// servedBy reads name with ?passing through n's HTTP API and DNS until both
// answer addr, HTTP naming failoverDC ("" for a local answer) in its
// header and DNS in its TXT record.
func servedBy(t *testing.T, n *testcluster.Node, name, addr, failoverDC string) {
	t.Helper()
	testcluster.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/health/service/" + name + "?passing")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var entries []api.ServiceEntry
		if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
			return err
		}
		if len(entries) != 1 || entries[0].Service.Address != addr {
			return fmt.Errorf("health %s?passing = %d entries, want one at %s", name, len(entries), addr)
		}
		if got := resp.Header.Get("X-Meridian-Failover-Datacenter"); got != failoverDC {
			return fmt.Errorf("health %s?passing served by %q, want %q", name, got, failoverDC)
		}
		r, err := dnsA(t, n, name+".service.consul.")
		if err != nil {
			return err
		}
		if len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != addr {
			return fmt.Errorf("%s.service.consul = %v, want %s", name, r.Answer, addr)
		}
		txt := ""
		for _, rr := range r.Extra {
			if t, ok := rr.(*mdns.TXT); ok {
				txt = strings.Join(t.Txt, " ")
			}
		}
		if want := "failover-datacenter=" + failoverDC; failoverDC != "" && txt != want || failoverDC == "" && txt != "" {
			return fmt.Errorf("%s.service.consul TXT = %q, want %q", name, txt, want)
		}
		return nil
	})
}

func setTTL(t *testing.T, n *testcluster.Node, check, status string) {
	t.Helper()
	if err := n.API().Agent().UpdateTTL(check, "", status); err != nil {
		t.Fatalf("UpdateTTL(%s, %s): %v", check, status, err)
	}
}

func TestFailoverPolicyNearestThenList(t *testing.T) {
	cs := failoverCluster(t, map[string]configs.FailoverPolicy{
		"web": {Nearest: 2},
		"*":   {Datacenters: []string{"dc2", "dc3"}},
	})
	dc1, dc2, dc3 := cs[0].Clients[0], cs[1].Clients[0], cs[2].Clients[0]

	servedBy(t, dc1, "web", "10.0.1.1", "") // local while healthy
	setTTL(t, dc1, "web-ttl", api.HealthCritical)
	servedBy(t, dc1, "web", "10.0.3.1", "dc3") // nearest first
	setTTL(t, dc3, "web-ttl", api.HealthCritical)
	servedBy(t, dc1, "web", "10.0.2.1", "dc2") // then the next nearest
	setTTL(t, dc1, "web-ttl", api.HealthPassing)
	servedBy(t, dc1, "web", "10.0.1.1", "") // back home as soon as it recovers

	// The "*" policy lists dc2 before dc3, though dc3 is nearer.
	setTTL(t, dc1, "api-ttl", api.HealthCritical)
	servedBy(t, dc1, "api", "10.0.2.2", "dc2")
	setTTL(t, dc2, "api-ttl", api.HealthCritical)
	servedBy(t, dc1, "api", "10.0.3.2", "dc3")
}

func TestFailoverNowhereHealthy(t *testing.T) {
	cs := failoverCluster(t, map[string]configs.FailoverPolicy{"web": {Nearest: 1}})
	for _, c := range cs[:2] {
		setTTL(t, c.Clients[0], "web-ttl", api.HealthCritical)
	}
	dc1 := cs[0].Clients[0]
	// Nearest 1 is dc3, which has web: served from there.
	servedBy(t, dc1, "web", "10.0.3.1", "dc3")
	setTTL(t, cs[2].Clients[0], "web-ttl", api.HealthCritical)
	// None healthy anywhere the policy looks: an empty answer and NXDOMAIN.
	testcluster.Eventually(t, 10*time.Second, func() error {
		entries, _, err := dc1.API().Health().Service("web", "", true, nil)
		if err != nil || len(entries) != 0 {
			return fmt.Errorf("health web?passing = %d entries, %v; want none", len(entries), err)
		}
		r, err := dnsA(t, dc1, "web.service.consul.")
		if err != nil || r.Rcode != mdns.RcodeNameError {
			return fmt.Errorf("web.service.consul = %v, %v; want NXDOMAIN", r, err)
		}
		return nil
	})
}
