package testcluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	mdns "github.com/miekg/dns"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/internal/wait"
	"github.com/meridian/meridian/rpc"
)

// routesView is what /v1/operator/federation/routes answers.
type routesView struct {
	Datacenter, Server string
	Links              []struct {
		Datacenter, Server, Error string
		Up                        bool
	}
	Routes []routeView
}

// routeView is one route of routesView.
type routeView struct {
	Datacenter, NextHop string
	Path                []string
	Hops                int
}

func routesOf(n *testcluster.Node) (routesView, error) {
	var v routesView
	_, err := n.API().Raw().Query("/v1/operator/federation/routes", &v, nil)
	return v, err
}

// routesVia checks that n routes to dest through via.
func routesVia(n *testcluster.Node, dest, via string) error {
	v, err := routesOf(n)
	if err != nil {
		return err
	}
	for _, r := range v.Routes {
		if r.Datacenter == dest {
			if r.NextHop != via {
				return fmt.Errorf("%s routes to %s through %s (%v), want through %s", n.ID(), dest, r.NextHop, r.Path, via)
			}
			return nil
		}
	}
	return fmt.Errorf("%s has no route to %s: %+v", n.ID(), dest, v.Routes)
}

// TestRelayThroughHub federates three datacenters and cuts dc2 from dc3
// on the network (gossip and links both): dc2 reaches dc3 through dc1 for
// ?dc= reads, a KV write, DNS, a blocking query and prepared-query
// failover; when dc1's servers die one at a time, the other relays within
// 5s; when dc1 is cut off entirely, dc2's requests for dc3 answer 503
// within federation.timeout, and once dc1 is back they work again within
// 10s with nobody doing anything.
func TestRelayThroughHub(t *testing.T) {
	b := testcluster.NewBridge()
	configure := func(cfg *configs.Config) {
		cfg.Federation.Timeout = federationTimeout
		cfg.Failover = map[string]configs.FailoverPolicy{"web": {Datacenters: []string{"dc3"}}}
	}
	dc1 := testcluster.New(t, testcluster.Options{Servers: 2, Datacenter: "dc1", Bridge: b, Configure: configure})
	dc2 := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Datacenter: "dc2", Bridge: b, Configure: configure})
	dc3 := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Datacenter: "dc3", Bridge: b, Configure: configure})
	testcluster.Federate(t, dc1, dc2, dc3)

	reg := &api.AgentServiceRegistration{ID: "web1", Name: "web", Address: "10.0.3.1", Port: 80}
	if err := dc3.Clients[0].API().Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register web in dc3: %v", err)
	}
	b.Partition(testcluster.IDs(allNodes(dc2)...), testcluster.IDs(allNodes(dc3)...))
	testcluster.Eventually(t, 20*time.Second, func() error {
		if err := routesVia(dc2.Servers[0], "dc3", "dc1"); err != nil {
			return err
		}
		return routesVia(dc3.Servers[0], "dc2", "dc1")
	})

	client := dc2.Clients[0].API()
	in3 := &api.QueryOptions{Datacenter: "dc3"}
	webInDC3 := func(ctx context.Context) error {
		entries, _, err := client.Health().Service("web", "", true, in3.WithContext(ctx))
		if err == nil && len(entries) != 1 {
			err = fmt.Errorf("%d instances of web in dc3, want 1", len(entries))
		}
		return err
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, err := timed(webInDC3)
		return err
	})

	t.Run("kv write and blocking read", func(t *testing.T) {
		kv := client.KV()
		if _, err := kv.Put(&api.KVPair{Key: "relay/k", Value: []byte("v1"), Flags: 7}, &api.WriteOptions{Datacenter: "dc3"}); err != nil {
			t.Fatalf("KV put to dc3 from dc2: %v", err)
		}
		p, _, err := dc3.Clients[0].API().KV().Get("relay/k", nil)
		if err != nil || p == nil || string(p.Value) != "v1" || p.Flags != 7 {
			t.Fatalf("dc3 reads relay/k = %+v, %v; want v1 with flags 7", p, err)
		}
		p, meta, err := kv.Get("relay/k", in3)
		if err != nil || p == nil || string(p.Value) != "v1" {
			t.Fatalf("dc2 reads relay/k of dc3 = %+v, %v", p, err)
		}
		got := make(chan error, 1)
		start := time.Now()
		go func() {
			p, _, err := kv.Get("relay/k", &api.QueryOptions{Datacenter: "dc3", WaitIndex: meta.LastIndex, WaitTime: 30 * time.Second})
			if err == nil && (p == nil || string(p.Value) != "v2") {
				err = fmt.Errorf("blocking read answered %+v, want v2", p)
			}
			got <- err
		}()
		time.Sleep(300 * time.Millisecond) // let the read park before the write it waits for; it passes either way
		if _, err := dc3.Clients[0].API().KV().Put(&api.KVPair{Key: "relay/k", Value: []byte("v2")}, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-got:
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("blocking read through dc1 woke %v after it started", time.Since(start))
		case <-time.After(20 * time.Second):
			t.Fatal("blocking read of dc3 through dc1 did not wake on the write")
		}
	})

	t.Run("dns", func(t *testing.T) {
		m := new(mdns.Msg)
		m.SetQuestion("web.service.dc3.consul.", mdns.TypeA)
		r, _, err := (&mdns.Client{Timeout: 5 * time.Second}).Exchange(m, dc2.Clients[0].Agent().DNSAddr())
		if err != nil || r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), "10.0.3.1") {
			t.Fatalf("DNS web.service.dc3.consul from dc2 = %v, %v; want 10.0.3.1", r, err)
		}
	})

	t.Run("prepared query failover", func(t *testing.T) {
		id, _, err := client.PreparedQuery().Create(&api.PreparedQueryDefinition{
			Name:    "web-anywhere",
			Service: api.ServiceQuery{Service: "web", Failover: api.QueryFailoverOptions{Datacenters: []string{"dc3"}}},
		}, nil)
		if err != nil {
			t.Fatalf("create query: %v", err)
		}
		res, _, err := client.PreparedQuery().Execute(id, nil)
		if err != nil || len(res.Nodes) != 1 || res.Datacenter != "dc3" || res.Failovers != 1 {
			t.Fatalf("execute web-anywhere in dc2 = %+v, %v; want web from dc3 after one failover", res, err)
		}
		res, _, err = client.PreparedQuery().Execute(id, nil)
		if err != nil || len(res.Nodes) != 1 {
			t.Fatalf("second execute = %+v, %v", res, err)
		}
	})

	t.Run("failover policy", func(t *testing.T) {
		resp, err := http.Get("http://" + dc2.Clients[0].HTTPAddr() + "/v1/health/service/web?passing")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var entries []api.ServiceEntry
		if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("X-Meridian-Failover-Datacenter"); len(entries) != 1 || got != "dc3" {
			t.Fatalf("health web?passing in dc2 = %d entries served by %q, want one from dc3", len(entries), got)
		}
		m := new(mdns.Msg)
		m.SetQuestion("web.service.consul.", mdns.TypeA)
		r, _, err := (&mdns.Client{Timeout: 5 * time.Second}).Exchange(m, dc2.Clients[0].Agent().DNSAddr())
		if err != nil || len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), "10.0.3.1") {
			t.Fatalf("DNS web.service.consul in dc2 = %v, %v; want dc3's 10.0.3.1 by the failover policy", r, err)
		}
	})

	t.Run("datacenters", func(t *testing.T) {
		dcs, err := client.Catalog().Datacenters()
		if err != nil || len(dcs) != 3 || dcs[0] != "dc2" || !slices.Contains(dcs, "dc3") {
			t.Fatalf("datacenters from dc2 = %v, %v; want dc2 first and dc3 listed", dcs, err)
		}
	})

	t.Run("a dead relay is routed around", func(t *testing.T) {
		for i, relay := range dc1.Servers {
			relay.Kill()
			killed := time.Now()
			testcluster.Eventually(t, 20*time.Second, func() error {
				_, err := timed(webInDC3)
				return err
			})
			t.Logf("with %s dead, dc2 reaches dc3 again after %v", relay.ID(), time.Since(killed))
			took := time.Since(killed)
			wait.Figure(t, took <= 5*time.Second, "with %s dead, dc3 answered after %v, want within 5s", relay.ID(), took)
			relay.Restart()
			if i == 0 {
				// Wait until both dc1 servers are in the exchange again,
				// so that killing the other tests the one just back.
				testcluster.Eventually(t, 20*time.Second, func() error {
					v, err := routesOf(dc2.Servers[0])
					if err != nil {
						return err
					}
					up := 0
					for _, l := range v.Links {
						if l.Datacenter == "dc1" && l.Up {
							up++
						}
					}
					if up != 2 {
						return fmt.Errorf("dc2 has %d links up to dc1 servers, want 2: %+v", up, v.Links)
					}
					return nil
				})
			}
		}
	})

	t.Run("dc1 cut off, then back", func(t *testing.T) {
		testcluster.Eventually(t, 20*time.Second, func() error {
			_, err := timed(webInDC3)
			return err
		})
		for _, n := range allNodes(dc1) {
			b.Isolate(n.ID())
		}
		bound := federationTimeout + 500*time.Millisecond
		for i := range 4 {
			took, err := timed(webInDC3)
			t.Logf("request %d for dc3 with dc1 cut off: %v after %v", i, err, took)
			if err == nil || !strings.Contains(err.Error(), "503") {
				t.Errorf("request %d for dc3 with dc1 cut off = %v, want a 503", i, err)
			}
			wait.Figure(t, took <= bound, "request %d for dc3 answered after %v, want within federation.timeout (%v)", i, took, federationTimeout)
		}
		// Heal dc1's paths only: dc2 and dc3 stay cut from each other.
		others := testcluster.IDs(append(allNodes(dc2), allNodes(dc3)...)...)
		healed := time.Now()
		for _, n := range allNodes(dc1) {
			for _, o := range append(others, testcluster.IDs(allNodes(dc1)...)...) {
				b.SetBoth(n.ID(), o, testcluster.Fault{})
			}
		}
		testcluster.Eventually(t, 10*time.Second, func() error {
			_, err := timed(webInDC3)
			return err
		})
		t.Logf("dc2 reaches dc3 through dc1 again %v after the heal", time.Since(healed))
		if err := routesVia(dc2.Servers[0], "dc3", "dc1"); err != nil {
			t.Error(err)
		}
	})
}

// TestRelayCarriesToken: with ACLs on (dc1 the primary) and dc2 cut from
// dc3, a KV write from dc2 to dc3 through dc1 carries the caller's token
// to dc3, which allows what the token may do and refuses the rest.
func TestRelayCarriesToken(t *testing.T) {
	const management = "2b7f8a4c-1d3e-4f5a-8b9c-0d1e2f3a4b5c"
	b := testcluster.NewBridge()
	var cs []*testcluster.Cluster
	for _, dc := range []string{"dc1", "dc2", "dc3"} {
		cs = append(cs, testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: dc, Bridge: b, Configure: func(cfg *configs.Config) {
			cfg.PrimaryDatacenter = "dc1"
			cfg.ACL.Enabled = true
			cfg.ACL.DefaultPolicy = configs.ACLDeny
			if cfg.Datacenter == "dc1" {
				cfg.ACL.Tokens.InitialManagement = management
			} else {
				cfg.ACL.Tokens.Replication = management
			}
		}}))
	}
	testcluster.Federate(t, cs...)
	dc1, dc2, dc3 := cs[0], cs[1], cs[2]
	b.Partition(testcluster.IDs(dc2.Servers...), testcluster.IDs(dc3.Servers...))
	withToken := func(n *testcluster.Node, token string) *api.Client {
		c, err := api.NewClient(&api.Config{Address: n.HTTPAddr(), Token: token})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	admin1 := withToken(dc1.Servers[0], management)
	var pol *api.ACLPolicy
	testcluster.Eventually(t, 20*time.Second, func() error {
		var err error
		pol, _, err = admin1.ACL().PolicyCreate(&api.ACLPolicy{Name: "app", Rules: `key_prefix "app/" { policy = "write" }
operator = "read"`}, nil)
		return err
	})
	tok, _, err := admin1.ACL().TokenCreate(&api.ACLToken{Description: "app", Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	app := withToken(dc2.Servers[0], tok.SecretID)
	testcluster.Eventually(t, 20*time.Second, func() error {
		v, err := routesOfClient(app)
		if err != nil {
			return err
		}
		for _, r := range v.Routes {
			if r.Datacenter == "dc3" && r.NextHop == "dc1" {
				return nil
			}
		}
		return fmt.Errorf("dc2 does not route to dc3 through dc1 yet: %+v", v.Routes)
	})
	testcluster.Eventually(t, 20*time.Second, func() error {
		_, err := app.KV().Put(&api.KVPair{Key: "app/x", Value: []byte("1")}, &api.WriteOptions{Datacenter: "dc3"})
		return err
	})
	got, _, err := withToken(dc3.Servers[0], management).KV().Get("app/x", nil)
	if err != nil || got == nil || string(got.Value) != "1" {
		t.Fatalf("dc3 reads app/x = %+v, %v; want the relayed write", got, err)
	}
	_, err = app.KV().Put(&api.KVPair{Key: "other/x", Value: []byte("1")}, &api.WriteOptions{Datacenter: "dc3"})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("write of other/x to dc3 with the app token = %v, want 403", err)
	}
	_, err = withToken(dc2.Servers[0], "").KV().Put(&api.KVPair{Key: "app/y", Value: []byte("1")}, &api.WriteOptions{Datacenter: "dc3"})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("write of app/y to dc3 with no token = %v, want 403", err)
	}
	if _, err := routesOfClient(withToken(dc2.Servers[0], "")); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("GET /v1/operator/federation/routes with no token = %v, want 403 (operator:read)", err)
	}
}

func routesOfClient(c *api.Client) (routesView, error) {
	var v routesView
	_, err := c.Raw().Query("/v1/operator/federation/routes", &v, nil)
	return v, err
}

// TestRouteExchangeRefusesImpostor: with mutual TLS and
// verify_server_hostname, a server that WAN gossip announces in dc3 but
// whose certificate is dc1's is refused by the route exchange (the link
// shows down, naming dc3 and the certificate), nothing is routed to dc3
// through it, and dc1 and dc2 keep serving each other.
func TestRouteExchangeRefusesImpostor(t *testing.T) {
	pki := testcluster.NewPKI(t)
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc1", Configure: pki.MTLS})
	dc2 := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc2", Configure: pki.MTLS})
	impostor := testcluster.New(t, testcluster.Options{Servers: 1, Datacenter: "dc3", Configure: func(cfg *configs.Config) {
		pki.MTLS(cfg)
		cfg.TLS.Defaults.CertFile, cfg.TLS.Defaults.KeyFile = pki.Cert(rpc.CertServer, "dc1")
		off := false
		cfg.TLS.InternalRPC.VerifyServerHostname = &off // else it would not start with dc1's certificate
	}})
	seed := dc1.Servers[0].WANAddr()
	for _, n := range []*testcluster.Node{dc2.Servers[0], impostor.Servers[0]} {
		if err := n.Agent().Join(context.Background(), seed, true); err != nil {
			t.Fatal(err)
		}
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		v, err := routesOf(dc1.Servers[0])
		if err != nil {
			return err
		}
		var refused bool
		for _, l := range v.Links {
			if l.Datacenter == "dc3" && !l.Up && strings.Contains(l.Error, "certificate") {
				refused = true
			}
			if l.Datacenter == "dc3" && l.Up {
				return fmt.Errorf("dc1's exchange with the dc3 impostor is up: %+v", l)
			}
		}
		for _, r := range v.Routes {
			if r.Datacenter == "dc3" {
				return fmt.Errorf("dc1 routes to dc3 through the impostor: %+v", r)
			}
		}
		if !refused {
			return fmt.Errorf("dc1 shows no refused link to dc3: %+v", v.Links)
		}
		return routesVia(dc1.Servers[0], "dc2", "dc2")
	})
	v, _ := routesOf(dc1.Servers[0])
	t.Logf("dc1's links: %+v", v.Links)
	if _, _, err := dc1.Servers[0].API().Catalog().Nodes(&api.QueryOptions{Datacenter: "dc2"}); err != nil {
		t.Errorf("dc1 reads dc2's catalog with the impostor around: %v", err)
	}
}
