package testcluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	mdns "github.com/miekg/dns"

	"github.com/meridian/meridian/configs"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/internal/wait"
)

// federationTimeout is the agents' federation.timeout in these tests (the
// default).
const federationTimeout = 2 * time.Second

// allNodes is every agent of the clusters.
func allNodes(cs ...*testcluster.Cluster) []*testcluster.Node {
	var out []*testcluster.Node
	for _, c := range cs {
		out = append(out, c.Servers...)
		out = append(out, c.Clients...)
	}
	return out
}

// TestPartitionDatacenterCutFromWAN cuts dc2 off from dc1 while dc1's
// client asks for dc2 over HTTP and DNS: every request answers 503 (HTTP)
// or SERVFAIL (DNS) within federation.timeout of its start, however the
// cut-off link is doing, and once the cut heals dc2 answers again without
// anyone rejoining anything.
func TestPartitionDatacenterCutFromWAN(t *testing.T) {
	for _, transport := range []string{configs.WANTransportQUIC, configs.WANTransportTCP} {
		t.Run(transport, func(t *testing.T) {
			b := testcluster.NewBridge()
			var cs []*testcluster.Cluster
			for _, dc := range []string{"dc1", "dc2"} {
				cs = append(cs, testcluster.New(t, testcluster.Options{
					Servers: 1, Clients: 1, Datacenter: dc, Bridge: b,
					Configure: func(cfg *configs.Config) {
						cfg.WANTransport = transport
						cfg.Federation.Timeout = federationTimeout
					},
				}))
			}
			testcluster.Federate(t, cs...)
			dc1, dc2 := cs[0], cs[1]
			reg := &api.AgentServiceRegistration{ID: "web1", Name: "web", Address: "10.0.2.1", Port: 80}
			if err := dc2.Clients[0].API().Agent().ServiceRegister(reg); err != nil {
				t.Fatalf("register web in dc2: %v", err)
			}
			client := dc1.Clients[0]
			clientHealth := client.API().Health()
			health := func() (time.Duration, error) {
				return timed(func(ctx context.Context) error {
					entries, _, err := clientHealth.Service("web", "", true, (&api.QueryOptions{Datacenter: "dc2"}).WithContext(ctx))
					if err == nil && len(entries) != 1 {
						err = fmt.Errorf("%d instances of web in dc2, want 1", len(entries))
					}
					return err
				})
			}
			testcluster.Eventually(t, 10*time.Second, func() error {
				_, err := health()
				return err
			})

			b.Partition(testcluster.IDs(allNodes(dc1)...), testcluster.IDs(allNodes(dc2)...))
			bound := federationTimeout + 500*time.Millisecond // the HTTP and RPC hops on a loaded machine
			for i := range 4 {
				took, err := health()
				t.Logf("request %d for dc2 after the cut: %v after %v", i, err, took)
				if err == nil || !strings.Contains(err.Error(), "503") {
					t.Errorf("request %d for cut-off dc2 = %v, want a 503", i, err)
				}
				wait.Figure(t, took <= bound, "request %d for cut-off dc2 answered after %v, want within federation.timeout (%v)", i, took, federationTimeout)
			}
			m := new(mdns.Msg)
			m.SetQuestion("web.service.dc2.consul.", mdns.TypeA)
			start := time.Now()
			r, _, err := (&mdns.Client{Timeout: 5 * time.Second}).Exchange(m, client.Agent().DNSAddr())
			took := time.Since(start)
			t.Logf("DNS for dc2 after the cut: rcode %v, %v after %v", rcodeOf(r), err, took)
			if err != nil || r.Rcode != mdns.RcodeServerFailure || took > bound {
				t.Errorf("DNS web.service.dc2.consul = rcode %v, %v after %v; want SERVFAIL within %v", rcodeOf(r), err, took, federationTimeout)
			}

			b.Heal()
			healed := time.Now()
			testcluster.Eventually(t, 20*time.Second, func() error {
				_, err := health()
				return err
			})
			t.Logf("dc2 answers again %v after the heal", time.Since(healed))
		})
	}
}

func rcodeOf(r *mdns.Msg) string {
	if r == nil {
		return "none"
	}
	return mdns.RcodeToString[r.Rcode]
}
