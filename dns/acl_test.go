package dns

import (
	"slices"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// TestNodeAllowed: a service lookup answers only the instances whose node
// Config.NodeAllowed accepts (their SRV targets' addresses too), asks it
// once per run of instances on one node, and answers NXDOMAIN when none is
// left, as for a service that does not exist.
func TestNodeAllowed(t *testing.T) {
	b := newFakeBackend()
	b.setService("dc1", "web",
		inst("n1", "10.0.0.1", "", 80, nil, pass),
		inst("n1", "10.0.0.1", "10.0.1.1", 81, nil, pass),
		inst("n2", "10.0.0.2", "", 80, nil, pass))
	var allowed atomic.Value
	allowed.Store(map[string]bool{"n1": true})
	var asked atomic.Int64
	cfg := testConfig()
	cfg.NodeAllowed = func(node string) bool {
		asked.Add(1)
		return allowed.Load().(map[string]bool)[node]
	}
	_, addr := startServer(t, cfg, b)

	r := ask(t, addr, "udp", "web.service.consul.", dns.TypeA, 0)
	if got, want := render(r.Answer), []string{"A 10.0.0.1", "A 10.0.1.1"}; !slices.Equal(got, want) {
		t.Errorf("A answer with node n1 readable = %v, want %v", got, want)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("NodeAllowed asked %d times for 3 instances on 2 nodes, want 2", n)
	}
	r = ask(t, addr, "udp", "web.service.consul.", dns.TypeSRV, 0)
	for _, rr := range append(r.Answer, r.Extra...) {
		srv, isSRV := rr.(*dns.SRV)
		if rr.Header().Name == "n2.node.dc1.consul." || isSRV && srv.Target == "n2.node.dc1.consul." {
			t.Errorf("SRV answer shows node n2, which is not readable: %s", rr)
		}
	}
	if len(r.Answer) != 2 {
		t.Errorf("SRV answer = %v, want 2 records", render(r.Answer))
	}

	allowed.Store(map[string]bool{})
	r = ask(t, addr, "udp", "web.service.consul.", dns.TypeA, 0)
	if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
		t.Errorf("no node readable: rcode %s, %v; want NXDOMAIN and no record", dns.RcodeToString[r.Rcode], render(r.Answer))
	}
}

// TestFlushRefetches: after Flush a lookup fetches the service again
// rather than answering the view kept so far.
func TestFlushRefetches(t *testing.T) {
	b := catalogBackend()
	s, addr := startServer(t, testConfig(), b)
	ask(t, addr, "udp", "web.service.consul.", dns.TypeA, 0)
	if n := s.Stats().Views; n != 1 {
		t.Fatalf("Stats().Views = %d, want 1", n)
	}
	before := b.calls.Load()
	s.Flush()
	if n := s.Stats().Views; n != 0 {
		t.Errorf("Stats().Views after Flush = %d, want 0", n)
	}
	if r := ask(t, addr, "udp", "web.service.consul.", dns.TypeA, 0); len(r.Answer) != 3 {
		t.Errorf("lookup after Flush = %v, want 3 records", render(r.Answer))
	}
	if b.calls.Load() == before {
		t.Error("lookup after Flush made no backend call")
	}
}
