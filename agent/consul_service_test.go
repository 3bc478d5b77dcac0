package agent_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestServersRegisterConsulService: as in Consul, every server has the
// consul service on its node (the server port, no tags), so
// /v1/catalog/services lists it on a fresh cluster and
// consul.service.consul resolves to the servers, and a client has none.
func TestServersRegisterConsulService(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, Clients: 1})
	c.WaitLeader(10 * time.Second)
	client := c.Clients[0].API()
	ports := map[string]int{}
	for _, s := range c.Servers {
		_, port, _ := strings.Cut(s.ServerAddr(), ":")
		ports[s.Name], _ = strconv.Atoi(port)
	}
	testcluster.Eventually(t, 15*time.Second, func() error {
		svcs, _, err := client.Catalog().Services(nil)
		if err != nil {
			return err
		}
		if tags, ok := svcs["consul"]; !ok || len(tags) != 0 {
			return fmt.Errorf("catalog services = %v, want consul with no tags", svcs)
		}
		entries, _, err := client.Health().Service("consul", "", true, nil)
		if err != nil {
			return err
		}
		if len(entries) != len(c.Servers) {
			return fmt.Errorf("%d passing consul instances, want %d (one per server)", len(entries), len(c.Servers))
		}
		for _, e := range entries {
			want, ok := ports[e.Node.Node]
			if !ok {
				return fmt.Errorf("consul instance on %s, which is not a server", e.Node.Node)
			}
			if e.Service.ID != "consul" || e.Service.Port != want {
				return fmt.Errorf("consul instance on %s: %+v, want ID consul on the server port %d", e.Node.Node, e.Service, want)
			}
		}
		return nil
	})
	m := new(dns.Msg)
	m.SetQuestion("consul.service.consul.", dns.TypeA)
	testcluster.Eventually(t, 10*time.Second, func() error {
		r, _, err := new(dns.Client).Exchange(m, c.Clients[0].Agent().DNSAddr())
		if err != nil {
			return err
		}
		if len(r.Answer) != len(ports) {
			return fmt.Errorf("consul.service.consul: %d answers, want %d: %v", len(r.Answer), len(ports), r.Answer)
		}
		return nil
	})
}
