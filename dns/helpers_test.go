package dns

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian/meridian/catalog"
	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeBackend is an in-memory Backend whose ServiceNodes blocks like a real
// blocking query: until the data changes, wait expires or ctx is done.
type fakeBackend struct {
	mu       sync.Mutex
	index    uint64
	services map[viewKey][]*catalog.CheckServiceNode
	nodes    map[viewKey]*catalog.Node
	dcs      map[string]error // known datacenters; a non-nil error fails them
	changed  chan struct{}    // closed and replaced on every change
	calls    atomic.Int64
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		index:    1,
		services: make(map[viewKey][]*catalog.CheckServiceNode),
		nodes:    make(map[viewKey]*catalog.Node),
		dcs:      map[string]error{"dc1": nil},
		changed:  make(chan struct{}),
	}
}

var _ Backend = (*fakeBackend)(nil)

func (f *fakeBackend) setService(dc, name string, nodes ...*catalog.CheckServiceNode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	f.services[viewKey{dc, name}] = nodes
	for _, n := range nodes {
		f.nodes[viewKey{dc, strings.ToLower(n.Node.Node)}] = n.Node
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeBackend) setNode(dc string, n *catalog.Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[viewKey{dc, strings.ToLower(n.Node)}] = n
}

func (f *fakeBackend) setDC(dc string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dcs[dc] = err
}

func (f *fakeBackend) dcErr(dc string) error {
	err, ok := f.dcs[dc]
	if !ok {
		return fmt.Errorf("dc %q: %w", dc, ErrNoSuchDatacenter)
	}
	return err
}

func (f *fakeBackend) ServiceNodes(ctx context.Context, dc, service string, minIndex uint64, wait time.Duration) (uint64, []*catalog.CheckServiceNode, error) {
	f.calls.Add(1)
	for {
		f.mu.Lock()
		err := f.dcErr(dc)
		idx, ch, nodes := f.index, f.changed, f.services[viewKey{dc, service}]
		f.mu.Unlock()
		if err != nil {
			return 0, nil, err
		}
		if minIndex == 0 || idx > minIndex {
			return idx, nodes, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ch:
			t.Stop()
		case <-t.C:
			return idx, nodes, nil
		case <-ctx.Done():
			t.Stop()
			return 0, nil, ctx.Err()
		}
	}
}

func (f *fakeBackend) Node(ctx context.Context, dc, name string) (*catalog.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.dcErr(dc); err != nil {
		return nil, err
	}
	return f.nodes[viewKey{dc, strings.ToLower(name)}], nil
}

func (f *fakeBackend) KnownDatacenter(dc string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.dcs[dc]
	return ok
}

// inst builds an instance on node (addr) with a service address, port,
// tags and check statuses (node-level first when nodeStatus is set).
func inst(node, addr, svcAddr string, port int, tags []string, statuses ...string) *catalog.CheckServiceNode {
	n := &catalog.CheckServiceNode{
		Node:    &catalog.Node{Node: node, Address: addr, Datacenter: "dc1"},
		Service: &catalog.Service{ID: "web-" + node, Service: "web", Address: svcAddr, Port: port, Tags: tags},
	}
	for i, st := range statuses {
		n.Checks = append(n.Checks, &catalog.HealthCheck{Node: node, CheckID: fmt.Sprint("c", i), Status: st})
	}
	return n
}

// testConfig is DefaultConfig with no UDP answer limit, so that tests see
// every record unless they ask otherwise.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.UDPAnswerLimit = 0
	return cfg
}

// startServer runs a Server on 127.0.0.1:0 until the test ends.
func startServer(t testing.TB, cfg Config, b Backend) (*Server, string) {
	t.Helper()
	s, err := New(cfg, b)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s, addr.String()
}

// ask sends one question; edns > 0 adds an OPT record with that size.
func ask(t testing.TB, addr, network, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	return r
}

// render prints records compactly and sorted: "A 127.0.0.1",
// "SRV 1 1 80 foo.node.dc1.consul.", "TXT k=v", "SOA consul.".
func render(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, "A "+rr.A.String())
		case *dns.AAAA:
			out = append(out, "AAAA "+rr.AAAA.String())
		case *dns.CNAME:
			out = append(out, "CNAME "+rr.Target)
		case *dns.SRV:
			out = append(out, fmt.Sprintf("SRV %d %d %d %s", rr.Priority, rr.Weight, rr.Port, rr.Target))
		case *dns.TXT:
			out = append(out, "TXT "+strings.Join(rr.Txt, " "))
		case *dns.SOA:
			out = append(out, "SOA "+rr.Hdr.Name)
		case *dns.NS:
			out = append(out, "NS "+rr.Ns)
		case *dns.OPT:
			continue
		default:
			out = append(out, rr.String())
		}
	}
	sort.Strings(out)
	return out
}

// extraNamed renders the additional records with their owner names.
func extraNamed(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if _, ok := rr.(*dns.OPT); ok {
			continue
		}
		out = append(out, rr.Header().Name+" "+render([]dns.RR{rr})[0])
	}
	sort.Strings(out)
	return out
}

// fakeWriter is a ResponseWriter that packs the answer into a reused
// buffer, for the benchmark and the handler fuzz target.
type fakeWriter struct {
	remote net.Addr
	buf    []byte
	msg    *dns.Msg
}

func (w *fakeWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8600}
}
func (w *fakeWriter) RemoteAddr() net.Addr { return w.remote }
func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	w.msg = m
	b, err := m.PackBuffer(w.buf)
	if err == nil {
		w.buf = b[:cap(b)]
	}
	return err
}
func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *fakeWriter) Close() error                { return nil }
func (w *fakeWriter) TsigStatus() error           { return nil }
func (w *fakeWriter) TsigTimersOnly(bool)         {}
func (w *fakeWriter) Hijack()                     {}
