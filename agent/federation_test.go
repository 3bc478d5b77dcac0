package agent_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	mdns "github.com/miekg/dns"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
)

// federated starts one cluster per datacenter named in dcs, with the given
// servers and one client each, every client running a "web" instance at
// 10.0.<dc number>.1, and joins their servers over WAN.
func federated(t *testing.T, transport string, servers int, dcs ...string) []*testcluster.Cluster {
	t.Helper()
	var cs []*testcluster.Cluster
	for i, dc := range dcs {
		c := testcluster.New(t, testcluster.Options{
			Servers: servers, Clients: 1, Datacenter: dc,
			Configure: func(cfg *configs.Config) { cfg.WANTransport = transport },
		})
		reg := &api.AgentServiceRegistration{ID: "web1", Name: "web", Address: fmt.Sprintf("10.0.%d.1", i+1), Port: 80}
		if err := c.Clients[0].API().Agent().ServiceRegister(reg); err != nil {
			t.Fatalf("register web in %s: %v", dc, err)
		}
		cs = append(cs, c)
	}
	testcluster.Federate(t, cs...)
	return cs
}

// webIn waits until a health read of web in dc through n answers addr.
func webIn(t *testing.T, n *testcluster.Node, dc, addr string) {
	t.Helper()
	testcluster.Eventually(t, 10*time.Second, func() error {
		entries, _, err := n.API().Health().Service("web", "", true, &api.QueryOptions{Datacenter: dc})
		if err != nil {
			return err
		}
		if len(entries) != 1 || entries[0].Service.Address != addr {
			return fmt.Errorf("web in %s = %d entries, want one at %s", dc, len(entries), addr)
		}
		return nil
	})
}

func dnsA(t *testing.T, n *testcluster.Node, name string) (*mdns.Msg, error) {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	c := &mdns.Client{Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, n.Agent().DNSAddr())
	return r, err
}

func TestFederationAcrossDatacenters(t *testing.T) {
	for _, transport := range []string{configs.WANTransportQUIC, configs.WANTransportTCP} {
		t.Run(transport, func(t *testing.T) {
			cs := federated(t, transport, 1, "dc1", "dc2")
			dc1, dc2 := cs[0], cs[1]
			client := dc1.Clients[0]

			dcs, err := client.API().Catalog().Datacenters()
			if err != nil || !slices.Equal(dcs, []string{"dc1", "dc2"}) {
				t.Fatalf("Catalog().Datacenters() from dc1 = %v, %v; want [dc1 dc2]", dcs, err)
			}
			members, err := dc1.Servers[0].API().Agent().Members(true)
			if err != nil {
				t.Fatalf("Members(wan) = %v", err)
			}
			var names []string
			for _, m := range members {
				names = append(names, m.Name)
			}
			slices.Sort(names)
			if !slices.Equal(names, []string{"server1.dc1", "server1.dc2"}) {
				t.Errorf("WAN members = %v, want server1.dc1 and server1.dc2", names)
			}

			// Reads of dc2 from dc1's client: health, catalog, and DNS.
			webIn(t, client, "dc2", "10.0.2.1")
			webIn(t, client, "dc1", "10.0.1.1")
			svcs, _, err := client.API().Catalog().Service("web", "", &api.QueryOptions{Datacenter: "dc2", AllowStale: true})
			if err != nil || len(svcs) != 1 || svcs[0].ServiceAddress != "10.0.2.1" {
				t.Errorf("Catalog().Service(web, dc2) = %+v, %v", svcs, err)
			}
			testcluster.Eventually(t, 10*time.Second, func() error {
				r, err := dnsA(t, client, "web.service.dc2.consul.")
				if err != nil {
					return err
				}
				if len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != "10.0.2.1" {
					return fmt.Errorf("web.service.dc2.consul = %v, want 10.0.2.1", r.Answer)
				}
				return nil
			})

			// A KV write for dc2 lands in dc2 only.
			kv := client.API().KV()
			if _, err := kv.Put(&api.KVPair{Key: "where", Value: []byte("dc2")}, &api.WriteOptions{Datacenter: "dc2"}); err != nil {
				t.Fatalf("KV put in dc2 from dc1: %v", err)
			}
			if p, _, err := dc2.Clients[0].API().KV().Get("where", nil); err != nil || p == nil || string(p.Value) != "dc2" {
				t.Errorf("KV get in dc2 = %+v, %v; want the value written from dc1", p, err)
			}
			if p, _, err := kv.Get("where", nil); err != nil || p != nil {
				t.Errorf("KV get in dc1 = %+v, %v; want nothing (no cross-DC replication)", p, err)
			}

			// A blocking query on dc2 wakes when dc2 changes.
			_, meta, err := client.API().Health().Service("web", "", false, &api.QueryOptions{Datacenter: "dc2"})
			if err != nil {
				t.Fatal(err)
			}
			woke := make(chan error, 1)
			go func() {
				entries, _, err := client.API().Health().Service("web", "", false, &api.QueryOptions{Datacenter: "dc2", WaitIndex: meta.LastIndex, WaitTime: 10 * time.Second})
				if err == nil && len(entries) != 2 {
					err = fmt.Errorf("woke with %d instances, want 2", len(entries))
				}
				woke <- err
			}()
			reg := &api.AgentServiceRegistration{ID: "web2", Name: "web", Address: "10.0.2.2", Port: 80}
			if err := dc2.Clients[0].API().Agent().ServiceRegister(reg); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-woke:
				if err != nil {
					t.Errorf("blocking query on dc2: %v", err)
				}
			case <-time.After(8 * time.Second):
				t.Errorf("blocking query on dc2 did not wake within 8s of the change")
			}

			// Coordinates: both datacenters listed.
			coords, err := client.API().Coordinate().Datacenters()
			if err != nil || len(coords) != 2 {
				t.Errorf("Coordinate().Datacenters() = %+v, %v; want two", coords, err)
			}
		})
	}
}

func TestFederationUnknownDatacenter(t *testing.T) {
	cs := federated(t, configs.WANTransportQUIC, 1, "dc1", "dc2")
	client := cs[0].Clients[0]
	_, _, err := client.API().Health().Service("web", "", true, &api.QueryOptions{Datacenter: "nope"})
	var se api.StatusError
	if !errors.As(err, &se) || se.Code != 500 || !strings.Contains(se.Body, "No path to datacenter") {
		t.Errorf("health of web in dc nope = %v, want 500 No path to datacenter", err)
	}
	r, err := dnsA(t, client, "web.service.nope.consul.")
	if err != nil || r.Rcode != mdns.RcodeNameError {
		t.Errorf("web.service.nope.consul = %v, %v; want NXDOMAIN", r, err)
	}
}

// TestFederationRemoteServerDies kills the dc2 server that dc1 uses: reads
// move to another dc2 server.
func TestFederationRemoteServerDies(t *testing.T) {
	dc1 := testcluster.New(t, testcluster.Options{Servers: 1, Clients: 1, Datacenter: "dc1"})
	dc2 := testcluster.New(t, testcluster.Options{Servers: 3, Datacenter: "dc2"})
	testcluster.Federate(t, dc1, dc2)
	kv := dc2.Servers[0].API().KV()
	// A write to a three-server DC just formed may meet a leader change
	// (CI under -race: "leadership lost while committing log"): it is
	// written again.
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, err := kv.Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil)
		return err
	})
	read := func() error {
		p, _, err := dc1.Clients[0].API().KV().Get("k", &api.QueryOptions{Datacenter: "dc2", AllowStale: true})
		if err == nil && (p == nil || string(p.Value) != "v") {
			err = fmt.Errorf("got %+v, want k=v", p)
		}
		return err
	}
	testcluster.Eventually(t, 10*time.Second, read)
	// The reads are stale, so any dc2 server may answer them: each must
	// have applied the write before the kills (a follower of a loaded
	// machine applies it later than the leader acknowledges it).
	for _, n := range dc2.Servers {
		testcluster.Eventually(t, 10*time.Second, func() error {
			p, _, err := n.API().KV().Get("k", &api.QueryOptions{AllowStale: true})
			if err == nil && (p == nil || string(p.Value) != "v") {
				err = fmt.Errorf("%s has k = %+v, want v", n.Name, p)
			}
			return err
		})
	}
	for i, n := range dc2.Servers[:2] {
		n.Kill()
		// Every read after the kill succeeds: a dead link is retried on
		// another server of dc2.
		for j := range 20 {
			if err := read(); err != nil {
				t.Fatalf("read %d after killing %d dc2 servers: %v", j, i+1, err)
			}
		}
	}
}

// TestFederationUnreachableDatacenter stops every server of dc2: its reads
// fail fast with 503 and SERVFAIL, while dc1 keeps answering.
func TestFederationUnreachableDatacenter(t *testing.T) {
	cs := federated(t, configs.WANTransportQUIC, 1, "dc1", "dc2")
	dc1, dc2 := cs[0], cs[1]
	client := dc1.Clients[0]
	webIn(t, client, "dc2", "10.0.2.1")
	if r, err := dnsA(t, client, "web.service.dc2.consul."); err != nil || len(r.Answer) != 1 {
		t.Fatalf("web.service.dc2.consul before = %v, %v", r, err)
	}
	for _, n := range append(dc2.Servers, dc2.Clients...) {
		n.Kill()
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		start := time.Now()
		_, _, err := client.API().Health().Service("web", "", true, &api.QueryOptions{Datacenter: "dc2"})
		took := time.Since(start)
		var se api.StatusError
		if !errors.As(err, &se) || se.Code != 503 {
			return fmt.Errorf("health of web in dc2 = %v, want 503", err)
		}
		if took > 3*time.Second {
			return fmt.Errorf("503 took %v, want under 3s", took)
		}
		r, err := dnsA(t, client, "web.service.dc2.consul.")
		if err != nil || r.Rcode != mdns.RcodeServerFailure {
			return fmt.Errorf("web.service.dc2.consul = %v, %v; want SERVFAIL", r, err)
		}
		return nil
	})
	webIn(t, client, "dc1", "10.0.1.1")
	if r, err := dnsA(t, client, "web.service.consul."); err != nil || len(r.Answer) != 1 {
		t.Errorf("web.service.consul with dc2 down = %v, %v; want dc1's instance", r, err)
	}
}

func TestFederationThreeDatacenters(t *testing.T) {
	cs := federated(t, configs.WANTransportQUIC, 1, "dc1", "dc2", "dc3")
	for i, c := range cs {
		// Asked until it answers: beside CPU burners under -race a client
		// may count its one server failed for a moment (503, no known
		// servers), which says nothing of the datacenters' order.
		testcluster.Eventually(t, 10*time.Second, func() error {
			dcs, err := c.Clients[0].API().Catalog().Datacenters()
			if err != nil || len(dcs) != 3 || dcs[0] != fmt.Sprintf("dc%d", i+1) {
				return fmt.Errorf("Datacenters() in dc%d = %v, %v; want all three, the local one first", i+1, dcs, err)
			}
			return nil
		})
		for j := range cs {
			webIn(t, c.Clients[0], fmt.Sprintf("dc%d", j+1), fmt.Sprintf("10.0.%d.1", j+1))
		}
	}
}

// TestFederationStaleView reads dc2 with ?stale from dc1, which the server
// answers from a view of dc2 kept by a blocking query: the view follows
// dc2's changes, and stops answering when dc2 is gone.
func TestFederationStaleView(t *testing.T) {
	cs := federated(t, configs.WANTransportQUIC, 1, "dc1", "dc2")
	dc2 := cs[1]
	client := cs[0].Clients[0]
	stale := func(want int) func() error {
		return func() error {
			entries, _, err := client.API().Health().Service("web", "", true, &api.QueryOptions{Datacenter: "dc2", AllowStale: true})
			if err == nil && len(entries) != want {
				err = fmt.Errorf("stale health of web in dc2 = %d instances, want %d", len(entries), want)
			}
			return err
		}
	}
	testcluster.Eventually(t, 10*time.Second, stale(1))
	reg := &api.AgentServiceRegistration{ID: "web2", Name: "web", Address: "10.0.2.2", Port: 80}
	if err := dc2.Clients[0].API().Agent().ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 5*time.Second, stale(2))
	for _, n := range append(dc2.Servers, dc2.Clients...) {
		n.Kill()
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		_, _, err := client.API().Health().Service("web", "", true, &api.QueryOptions{Datacenter: "dc2", AllowStale: true})
		var se api.StatusError
		if !errors.As(err, &se) || se.Code != 503 {
			return fmt.Errorf("stale health of web in dc2 after dc2 died = %v, want 503", err)
		}
		return nil
	})
}
