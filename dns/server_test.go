package dns

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/internal/wait"
	"github.com/miekg/dns"
)

const (
	pass = catalog.HealthPassing
	warn = catalog.HealthWarning
	crit = catalog.HealthCritical
)

// catalogBackend is the data most name-form tests answer from.
func catalogBackend() *fakeBackend {
	b := newFakeBackend()
	b.setDC("dc2", fmt.Errorf("dc2: %w", ErrUnreachable))
	b.setDC("dc3", nil)
	b.setService("dc1", "web",
		inst("foo", "127.0.0.1", "", 80, []string{"V1", "primary"}, pass, pass),
		inst("bar", "127.0.0.2", "127.0.0.12", 81, []string{"v2"}, pass),
		inst("baz", "127.0.0.3", "", 82, []string{"v1"}, crit),       // never answered
		inst("qux", "127.0.0.4", "", 83, []string{"v1"}, warn, pass), // answered unless only_passing
		inst("six", "::1", "", 84, nil, pass),
	)
	b.setService("dc1", "dead", inst("foo", "127.0.0.1", "", 80, nil, crit))
	b.setService("dc3", "web", inst("far", "10.0.3.1", "", 80, nil, pass))
	b.setNode("dc1", &catalog.Node{Node: "foo", Address: "127.0.0.1", Meta: map[string]string{"rack": "r1", "os": "linux"}})
	b.setNode("dc1", &catalog.Node{Node: "v6", Address: "2001:db8::1"})
	return b
}

func TestNameForms(t *testing.T) {
	cfg := testConfig()
	cfg.AltDomain = "meridian."
	_, addr := startServer(t, cfg, catalogBackend())
	allA := []string{"A 127.0.0.1", "A 127.0.0.12", "A 127.0.0.4"}
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer []string
		extra  []string // with owner names
		soa    bool     // SOA expected in the authority section
	}{
		{"service A", "web.service.consul.", dns.TypeA, dns.RcodeSuccess, allA, nil, false},
		{"service A case-insensitive", "WEB.Service.CONSUL.", dns.TypeA, dns.RcodeSuccess, allA, nil, false},
		{"service A with dc", "web.service.dc1.consul.", dns.TypeA, dns.RcodeSuccess, allA, nil, false},
		{"service A other dc", "web.service.dc3.consul.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.0.3.1"}, nil, false},
		{"service AAAA", "web.service.consul.", dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA ::1"}, nil, false},
		{"service ANY", "web.service.consul.", dns.TypeANY, dns.RcodeSuccess, append(slices.Clone(allA), "AAAA ::1"), nil, false},
		{"tag", "v1.web.service.consul.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1", "A 127.0.0.4"}, nil, false},
		{"tag case-insensitive", "PRIMARY.web.service.consul.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1"}, nil, false},
		{"unknown tag", "v9.web.service.consul.", dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"SRV", "web.service.consul.", dns.TypeSRV, dns.RcodeSuccess,
			[]string{"SRV 1 1 80 foo.node.dc1.consul.", "SRV 1 1 81 7f00000c.addr.dc1.consul.", "SRV 1 1 83 qux.node.dc1.consul.", "SRV 1 1 84 six.node.dc1.consul."},
			[]string{"7f00000c.addr.dc1.consul. A 127.0.0.12", "foo.node.dc1.consul. A 127.0.0.1", "qux.node.dc1.consul. A 127.0.0.4", "six.node.dc1.consul. AAAA ::1"}, false},
		{"SRV alt domain", "v2.web.service.meridian.", dns.TypeSRV, dns.RcodeSuccess,
			[]string{"SRV 1 1 81 7f00000c.addr.dc1.meridian."}, []string{"7f00000c.addr.dc1.meridian. A 127.0.0.12"}, false},
		{"RFC 2782 tag", "_web._v2.service.consul.", dns.TypeSRV, dns.RcodeSuccess,
			[]string{"SRV 1 1 81 7f00000c.addr.dc1.consul."}, []string{"7f00000c.addr.dc1.consul. A 127.0.0.12"}, false},
		{"RFC 2782 _tcp", "_web._tcp.service.dc3.consul.", dns.TypeSRV, dns.RcodeSuccess,
			[]string{"SRV 1 1 80 far.node.dc3.consul."}, []string{"far.node.dc3.consul. A 10.0.3.1"}, false},
		{"service NODATA", "web.service.consul.", dns.TypeTXT, dns.RcodeSuccess, nil, nil, true},
		{"service AAAA NODATA", "v1.web.service.consul.", dns.TypeAAAA, dns.RcodeSuccess, nil, nil, true},
		{"unknown service", "nope.service.consul.", dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"only critical", "dead.service.consul.", dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"unknown dc", "web.service.nodc.consul.", dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"failing dc", "web.service.dc2.consul.", dns.TypeA, dns.RcodeServerFailure, nil, nil, false},
		{"node A", "foo.node.consul.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1"}, nil, false},
		{"node A with dc", "FOO.node.dc1.consul.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1"}, nil, false},
		{"node AAAA", "v6.node.consul.", dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA 2001:db8::1"}, nil, false},
		{"node TXT", "foo.node.consul.", dns.TypeTXT, dns.RcodeSuccess, []string{"TXT os=linux", "TXT rack=r1"}, nil, false},
		{"node ANY", "foo.node.consul.", dns.TypeANY, dns.RcodeSuccess, []string{"A 127.0.0.1", "TXT os=linux", "TXT rack=r1"}, nil, false},
		{"node NODATA", "foo.node.consul.", dns.TypeAAAA, dns.RcodeSuccess, nil, nil, true},
		{"unknown node", "nope.node.consul.", dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"node unknown dc", "foo.node.nodc.consul.", dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"node failing dc", "foo.node.dc2.consul.", dns.TypeA, dns.RcodeServerFailure, nil, nil, false},
		{"addr v4", "7f000001.addr.dc1.consul.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1"}, nil, false},
		{"addr v6", "20010db8000000000000000000000001.addr.dc1.consul.", dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA 2001:db8::1"}, nil, false},
		{"addr NODATA", "7f000001.addr.dc1.consul.", dns.TypeAAAA, dns.RcodeSuccess, nil, nil, true},
		{"addr bad hex", "zz000001.addr.dc1.consul.", dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"prepared query", "web.query.consul.", dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"apex SOA", "consul.", dns.TypeSOA, dns.RcodeSuccess, []string{"SOA consul."}, nil, false},
		{"apex NS", "Consul.", dns.TypeNS, dns.RcodeSuccess, []string{"NS ns.consul."}, nil, false},
		{"apex A", "consul.", dns.TypeA, dns.RcodeSuccess, nil, nil, true},
		{"alt apex SOA", "meridian.", dns.TypeSOA, dns.RcodeSuccess, []string{"SOA meridian."}, nil, false},
		{"unknown form", "x.y.z.service.consul.", dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"bare type", "service.consul.", dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"junk label", "junk.consul.", dns.TypeA, dns.RcodeNameError, nil, nil, true},
		{"other zone", "example.com.", dns.TypeA, dns.RcodeRefused, nil, nil, false},
		{"suffix without dot", "xconsul.", dns.TypeA, dns.RcodeRefused, nil, nil, false},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range tests {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				r := ask(t, addr, network, tc.qname, tc.qtype, 0)
				if r.Rcode != tc.rcode {
					t.Fatalf("Lookup(%q %s) rcode = %s, want %s", tc.qname, dns.TypeToString[tc.qtype], dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				if got, want := render(r.Answer), tc.answer; !slices.Equal(got, want) {
					t.Errorf("Lookup(%q) answer = %v, want %v", tc.qname, got, want)
				}
				if got := extraNamed(r.Extra); !slices.Equal(got, tc.extra) {
					t.Errorf("Lookup(%q) extra = %v, want %v", tc.qname, got, tc.extra)
				}
				hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA
				if hasSOA != tc.soa {
					t.Errorf("Lookup(%q) authority = %v, want SOA %v", tc.qname, r.Ns, tc.soa)
				}
				for _, rr := range r.Answer {
					if rr.Header().Name != tc.qname && rr.Header().Rrtype != dns.TypeSOA {
						t.Errorf("Lookup(%q) owner %q, want the question's name", tc.qname, rr.Header().Name)
					}
				}
				if r.Rcode != dns.RcodeRefused && !r.Authoritative {
					t.Errorf("Lookup(%q) not authoritative", tc.qname)
				}
			})
		}
	}
}

func TestOnlyPassingAndTTL(t *testing.T) {
	cfg := testConfig()
	cfg.OnlyPassing = true
	cfg.NodeTTL = 30 * time.Second
	cfg.ServiceTTL = map[string]time.Duration{"*": 5 * time.Second, "WE*": 7 * time.Second, "w*": 6 * time.Second}
	_, addr := startServer(t, cfg, catalogBackend())
	r := ask(t, addr, "udp", "web.service.consul.", dns.TypeA, 0)
	if got, want := render(r.Answer), []string{"A 127.0.0.1", "A 127.0.0.12"}; !slices.Equal(got, want) {
		t.Fatalf("only_passing answer = %v, want %v", got, want)
	}
	for _, rr := range r.Answer {
		if rr.Header().Ttl != 7 {
			t.Errorf("service TTL = %d, want 7 (longest prefix)", rr.Header().Ttl)
		}
	}
	r = ask(t, addr, "udp", "foo.node.consul.", dns.TypeA, 0)
	if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 30 {
		t.Errorf("node answer = %v, want one record with TTL 30", r.Answer)
	}
}

func TestShuffled(t *testing.T) {
	b := newFakeBackend()
	var nodes []*catalog.CheckServiceNode
	for i := range 8 {
		nodes = append(nodes, inst(fmt.Sprint("n", i), fmt.Sprintf("10.0.0.%d", i+1), "", 80, nil, pass))
	}
	b.setService("dc1", "web", nodes...)
	_, addr := startServer(t, testConfig(), b)
	firsts := map[string]bool{}
	for range 50 {
		r := ask(t, addr, "udp", "web.service.consul.", dns.TypeA, 0)
		if len(r.Answer) != 8 {
			t.Fatalf("answer has %d records, want 8", len(r.Answer))
		}
		firsts[r.Answer[0].(*dns.A).A.String()] = true
	}
	if len(firsts) < 2 {
		t.Errorf("50 answers all began with the same record %v: not shuffled", firsts)
	}
}

func manyInstances(n int) *fakeBackend {
	b := newFakeBackend()
	var nodes []*catalog.CheckServiceNode
	for i := range n {
		nodes = append(nodes, inst(fmt.Sprintf("node-with-a-long-name-%02d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), "", 8000+i, nil, pass))
	}
	b.setService("dc1", "web", nodes...)
	return b
}

func TestTruncation(t *testing.T) {
	const n = 45
	_, addr := startServer(t, testConfig(), manyInstances(n))
	tests := []struct {
		network string
		qtype   uint16
		edns    uint16
		wantTC  bool
	}{
		{"udp", dns.TypeA, 0, true},
		{"udp", dns.TypeA, 512, true},
		{"udp", dns.TypeA, 1232, false},
		{"udp", dns.TypeSRV, 0, true},
		{"udp", dns.TypeSRV, 1232, true},
		{"udp", dns.TypeSRV, 8192, false},
		{"tcp", dns.TypeA, 0, false},
		{"tcp", dns.TypeSRV, 0, false},
		{"tcp", dns.TypeSRV, 512, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s/edns%d", tc.network, dns.TypeToString[tc.qtype], tc.edns), func(t *testing.T) {
			r := ask(t, addr, tc.network, "web.service.consul.", tc.qtype, tc.edns)
			if r.Truncated != tc.wantTC {
				t.Fatalf("TC = %v, want %v (%d answers)", r.Truncated, tc.wantTC, len(r.Answer))
			}
			if !tc.wantTC && len(r.Answer) != n {
				t.Errorf("answers = %d, want all %d", len(r.Answer), n)
			}
			if tc.wantTC && (len(r.Answer) == 0 || len(r.Answer) >= n) {
				t.Errorf("truncated answer has %d records, want some but not all %d", len(r.Answer), n)
			}
			limit := 65535
			if tc.network == "udp" {
				limit = max(512, int(tc.edns))
			}
			r.Compress = true // as the server sent it
			if wire, err := r.Pack(); err != nil || len(wire) > limit {
				t.Errorf("answer packs to %d bytes (%v), buffer is %d", len(wire), err, limit)
			}
			opt := r.IsEdns0()
			if (opt != nil) != (tc.edns > 0) {
				t.Errorf("OPT in answer = %v, want echoed only when asked (%d)", opt, tc.edns)
			} else if opt != nil && opt.UDPSize() != tc.edns {
				t.Errorf("OPT size = %d, want %d", opt.UDPSize(), tc.edns)
			}
			if tc.qtype == dns.TypeSRV && !tc.wantTC && len(r.Extra) < n {
				t.Errorf("SRV additional section has %d records, want %d", len(r.Extra), n)
			}
		})
	}
}

func TestAnswerLimits(t *testing.T) {
	tests := []struct {
		name     string
		aLimit   int
		udpLimit int
		truncate bool
		network  string
		edns     uint16
		want     int
		wantTC   bool
	}{
		{"a_record_limit tcp", 2, 0, false, "tcp", 0, 2, false},
		{"a_record_limit udp edns", 2, 3, false, "udp", 1232, 2, false},
		{"udp_answer_limit", 0, 3, false, "udp", 0, 3, false},
		{"udp_answer_limit enable_truncate", 0, 3, true, "udp", 0, 3, true},
		{"udp_answer_limit ignored with edns", 0, 3, true, "udp", 1232, 6, false},
		{"udp_answer_limit ignored on tcp", 0, 3, true, "tcp", 0, 6, false},
		{"both limits", 2, 3, true, "udp", 0, 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ARecordLimit, cfg.UDPAnswerLimit, cfg.EnableTruncate = tc.aLimit, tc.udpLimit, tc.truncate
			_, addr := startServer(t, cfg, manyInstances(6))
			r := ask(t, addr, tc.network, "web.service.consul.", dns.TypeA, tc.edns)
			if len(r.Answer) != tc.want || r.Truncated != tc.wantTC {
				t.Errorf("answers = %d TC = %v, want %d TC = %v", len(r.Answer), r.Truncated, tc.want, tc.wantTC)
			}
		})
	}
}

func TestRecursors(t *testing.T) {
	good := startUpstream(t, dns.RcodeSuccess)
	bad := startUpstream(t, dns.RcodeServerFailure)
	cfg := testConfig()
	cfg.Recursors = []string{bad, good}
	cfg.RecursorTimeout = time.Second
	s, addr := startServer(t, cfg, catalogBackend())
	for _, network := range []string{"udp", "tcp"} {
		r := ask(t, addr, network, "Example.COM.", dns.TypeA, 0)
		if r.Rcode != dns.RcodeSuccess || !slices.Equal(render(r.Answer), []string{"A 192.0.2.1"}) {
			t.Errorf("%s forwarded answer = %s %v, want NOERROR [A 192.0.2.1]", network, dns.RcodeToString[r.Rcode], r.Answer)
		}
		if !r.RecursionAvailable {
			t.Errorf("%s: RA not set with recursors", network)
		}
		// The domain itself is never forwarded.
		if r := ask(t, addr, network, "web.service.consul.", dns.TypeA, 0); len(r.Answer) != 3 {
			t.Errorf("%s: web.service.consul answered %d records, want 3", network, len(r.Answer))
		}
	}
	if st := s.Stats(); st.Forwarded != 2 {
		t.Errorf("Stats().Forwarded = %d, want 2", st.Forwarded)
	}

	cfg.Recursors = []string{bad}
	_, addr = startServer(t, cfg, catalogBackend())
	if r := ask(t, addr, "udp", "example.com.", dns.TypeA, 0); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("every recursor failing: rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
}

// startUpstream runs a plain DNS server that answers every question with
// rcode and, on success, A 192.0.2.1.
func startUpstream(t *testing.T, rcode int) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		if rcode == dns.RcodeSuccess {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{192, 0, 2, 1}})
		}
		w.WriteMsg(m)
	})
	// A free UDP port's TCP twin may be taken by another process: try
	// other ports until both are ours.
	var (
		udp   net.PacketConn
		tcpLn net.Listener
		err   error
	)
	for range 20 {
		if udp, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if tcpLn, err = net.Listen("tcp", udp.LocalAddr().String()); err == nil {
			break
		}
		udp.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: udp, Handler: h}, {Listener: tcpLn, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() { defer close(done); srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { srv.Shutdown(); <-done })
	}
	return udp.LocalAddr().String()
}

func TestHealthChanges(t *testing.T) {
	b := newFakeBackend()
	b.setService("dc1", "web", inst("a", "10.0.0.1", "", 80, nil, pass), inst("b", "10.0.0.2", "", 80, nil, pass))
	cfg := testConfig()
	cfg.OnlyPassing = true
	_, addr := startServer(t, cfg, b)
	want := func(ips ...string) func() error {
		return func() error {
			r := ask(t, addr, "udp", "web.service.consul.", dns.TypeA, 0)
			var exp []string
			for _, ip := range ips {
				exp = append(exp, "A "+ip)
			}
			if got := render(r.Answer); !slices.Equal(got, exp) {
				return fmt.Errorf("answer = %v (%s), want %v", got, dns.RcodeToString[r.Rcode], exp)
			}
			return nil
		}
	}
	wait.Eventually(t, 5*time.Second, want("10.0.0.1", "10.0.0.2"))
	steps := []struct {
		name  string
		nodes []*catalog.CheckServiceNode
		want  []string
	}{
		{"service check critical", []*catalog.CheckServiceNode{inst("a", "10.0.0.1", "", 80, nil, pass), inst("b", "10.0.0.2", "", 80, nil, crit)}, []string{"10.0.0.1"}},
		{"warning with only_passing", []*catalog.CheckServiceNode{inst("a", "10.0.0.1", "", 80, nil, warn), inst("b", "10.0.0.2", "", 80, nil, pass)}, []string{"10.0.0.2"}},
		{"node check critical", []*catalog.CheckServiceNode{inst("a", "10.0.0.1", "", 80, nil, crit, pass), inst("b", "10.0.0.2", "", 80, nil, pass, pass)}, []string{"10.0.0.2"}},
		{"all back", []*catalog.CheckServiceNode{inst("a", "10.0.0.1", "", 80, nil, pass), inst("b", "10.0.0.2", "", 80, nil, pass), inst("c", "10.0.0.3", "", 80, nil)}, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}},
		{"none healthy", []*catalog.CheckServiceNode{inst("a", "10.0.0.1", "", 80, nil, crit)}, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			b.setService("dc1", "web", st.nodes...)
			wait.Eventually(t, 5*time.Second, want(st.want...))
		})
	}
}

func TestViewCostsNoBackendCall(t *testing.T) {
	b := catalogBackend()
	s, addr := startServer(t, testConfig(), b)
	ask(t, addr, "udp", "web.service.consul.", dns.TypeA, 0)
	before := b.calls.Load()
	for range 100 {
		if r := ask(t, addr, "udp", "web.service.consul.", dns.TypeA, 0); len(r.Answer) != 3 {
			t.Fatalf("answer has %d records, want 3", len(r.Answer))
		}
	}
	// The background refresh may have returned once (its first blocking
	// query), never once per lookup.
	if calls := b.calls.Load() - before; calls > 1 {
		t.Errorf("100 lookups cost %d backend calls, want at most 1", calls)
	}
	// A query is counted after its answer is sent: the last may lag.
	wait.Eventually(t, 2*time.Second, func() error {
		if st := s.Stats(); st.Views != 1 || st.Queries < 101 || st.Rcodes["NOERROR"] < 101 {
			return fmt.Errorf("Stats() = %+v, want 1 view and >= 101 NOERROR queries", st)
		}
		return nil
	})
}

func TestViewIdleAndBound(t *testing.T) {
	b := catalogBackend()
	cfg := testConfig()
	cfg.ViewWait = 20 * time.Millisecond
	cfg.ViewIdle = 50 * time.Millisecond
	cfg.MaxViews = 1
	s, addr := startServer(t, cfg, b)
	ask(t, addr, "udp", "web.service.consul.", dns.TypeA, 0)
	// Past MaxViews a lookup is asked of the backend directly, still right.
	if r := ask(t, addr, "udp", "web.service.dc3.consul.", dns.TypeA, 0); len(r.Answer) != 1 {
		t.Errorf("lookup past max_views answered %v, want 1 record", r.Answer)
	}
	if n := s.Stats().Views; n != 1 {
		t.Errorf("Stats().Views = %d, want 1 (max_views)", n)
	}
	wait.Eventually(t, 5*time.Second, func() error {
		if n := s.Stats().Views; n != 0 {
			return fmt.Errorf("%d view entries, want 0 once idle", n)
		}
		return nil
	})
}

func TestAllowStaleOff(t *testing.T) {
	b := catalogBackend()
	cfg := testConfig()
	cfg.AllowStale = false
	s, addr := startServer(t, cfg, b)
	before := b.calls.Load()
	for range 3 {
		ask(t, addr, "tcp", "web.service.consul.", dns.TypeA, 0)
	}
	if calls := b.calls.Load() - before; calls != 3 || s.Stats().Views != 0 {
		t.Errorf("allow_stale off: %d backend calls and %d views, want 3 and 0", calls, s.Stats().Views)
	}
}

func TestBadRequests(t *testing.T) {
	s, addr := startServer(t, testConfig(), catalogBackend())
	tests := []struct {
		name  string
		build func() *dns.Msg
		rcode int
	}{
		{"no question", func() *dns.Msg { m := new(dns.Msg); m.Id = 7; return m }, dns.RcodeFormatError},
		{"two questions", func() *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion("web.service.consul.", dns.TypeA)
			m.Question = append(m.Question, m.Question[0])
			return m
		}, dns.RcodeFormatError},
		{"class CHAOS", func() *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion("web.service.consul.", dns.TypeA)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}, dns.RcodeRefused},
		{"unknown type", func() *dns.Msg { m := new(dns.Msg); m.SetQuestion("web.service.consul.", 65000); return m }, dns.RcodeSuccess},
		{"update opcode", func() *dns.Msg { m := new(dns.Msg); m.SetUpdate("consul."); return m }, dns.RcodeNotImplemented},
		{"escaped label", func() *dns.Msg { m := new(dns.Msg); m.SetQuestion(`we\.b.service.consul.`, dns.TypeA); return m }, dns.RcodeNameError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(tc.build(), addr)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if r.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
		})
	}
	// Garbage and a compression-pointer loop: no answer or an error, and
	// the server keeps serving.
	for _, pkt := range [][]byte{
		{1, 2, 3},
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1},
		append([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 70}, []byte(strings.Repeat("a", 70))...),
	} {
		if err := sendRaw(addr, pkt); err != nil {
			t.Errorf("raw packet %x: %v", pkt, err)
		}
	}
	if r := ask(t, addr, "udp", "web.service.consul.", dns.TypeA, 0); len(r.Answer) != 3 {
		t.Errorf("after bad packets: %d answers, want 3", len(r.Answer))
	}
	if _, err := New(Config{}, catalogBackend()); err == nil {
		t.Error("New(Config{}) succeeded, want a validation error")
	}
	if st := s.Stats(); st.Rcodes["NXDOMAIN"] < 1 || st.Rcodes["REFUSED"] < 1 {
		t.Errorf("Stats().Rcodes = %v, want NXDOMAIN and REFUSED counted", st.Rcodes)
	}
}

func TestShutdown(t *testing.T) {
	b := catalogBackend()
	s, err := New(testConfig(), b)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ask(t, addr.String(), "udp", "web.service.consul.", dns.TypeA, 0)
	ask(t, addr.String(), "tcp", "web.service.dc3.consul.", dns.TypeA, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := s.Serve(nil, nil); err == nil {
		t.Error("Serve after Shutdown succeeded")
	}
	if n := s.Stats().Views; n != 0 {
		t.Errorf("%d views after Shutdown, want 0", n)
	}
	// goleak in TestMain checks that the view goroutines ended.
}

// sendRaw sends pkt over UDP and reads any answer, which must be a
// well-formed message if it comes.
func sendRaw(addr string, pkt []byte) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		return err
	}
	if err := c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		return err
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil // no answer is an acceptable answer to garbage
	}
	var m dns.Msg
	if err := m.Unpack(buf[:n]); err != nil {
		return fmt.Errorf("answer does not parse: %w", err)
	}
	if m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
		return fmt.Errorf("garbage answered with records: %v", m.Answer)
	}
	return nil
}
