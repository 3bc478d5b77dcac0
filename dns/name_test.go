package dns

import (
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestParseName(t *testing.T) {
	domains := []string{"consul.", "alt.example."}
	tests := []struct {
		qname string
		ok    bool
		want  query
	}{
		{"web.service.consul.", true, query{kind: kindService, name: "web", domain: "consul."}},
		{"v1.web.service.dc2.consul.", true, query{kind: kindService, name: "web", tag: "v1", dc: "dc2", domain: "consul."}},
		{"_web._v1.service.consul.", true, query{kind: kindService, name: "web", tag: "v1", domain: "consul."}},
		{"_web._tcp.service.consul.", true, query{kind: kindService, name: "web", domain: "consul."}},
		{"_web._udp.service.dc1.alt.example.", true, query{kind: kindService, name: "web", dc: "dc1", domain: "alt.example."}},
		{"_web.service.consul.", true, query{kind: kindService, name: "_web", domain: "consul."}},
		{"foo.node.consul.", true, query{kind: kindNode, name: "foo", domain: "consul."}},
		{"foo.node.dc1.consul.", true, query{kind: kindNode, name: "foo", dc: "dc1", domain: "consul."}},
		{"7f000001.addr.dc1.consul.", true, query{kind: kindAddr, name: "7f000001", dc: "dc1", domain: "consul."}},
		{"q.query.consul.", true, query{kind: kindQuery, name: "q", domain: "consul."}},
		{"consul.", true, query{kind: kindApex, domain: "consul."}},
		{"a.b.c.service.consul.", true, query{domain: "consul."}},
		{"a.b.node.consul.", true, query{domain: "consul."}},
		{"service.consul.", true, query{domain: "consul."}},
		{"node.dc1.consul.", true, query{domain: "consul."}},
		{"dc1.consul.", true, query{domain: "consul."}},
		{"x.y.consul.", true, query{domain: "consul."}},
		{`we\.b.service.consul.`, true, query{domain: "consul."}},
		{"xconsul.", false, query{}},
		{"example.com.", false, query{}},
		{".", false, query{}},
	}
	for _, tc := range tests {
		got, ok := parseName(tc.qname, domains)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseName(%q) = %+v, %v, want %+v, %v", tc.qname, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHexIP(t *testing.T) {
	for _, ip := range []string{"127.0.0.1", "10.1.2.3", "2001:db8::1", "::1"} {
		got := parseHexIP(hexIP(net.ParseIP(ip)))
		if !got.Equal(net.ParseIP(ip)) {
			t.Errorf("parseHexIP(hexIP(%s)) = %v", ip, got)
		}
	}
	for _, bad := range []string{"", "7f00001", "7f0000zz", strings.Repeat("0", 31)} {
		if got := parseHexIP(bad); got != nil {
			t.Errorf("parseHexIP(%q) = %v, want nil", bad, got)
		}
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"web.service.consul.", "_a._tcp.service.dc1.consul.", "x.node.consul.", "consul.", ".", `a\.b.service.consul.`, "..consul."} {
		f.Add(s)
	}
	domains := []string{"consul.", "alt."}
	f.Fuzz(func(t *testing.T, qname string) {
		qname = strings.ToLower(qname)
		q, ok := parseName(qname, domains)
		if !ok {
			return
		}
		if !strings.HasSuffix(qname, q.domain) {
			t.Fatalf("parseName(%q) domain %q is not a suffix", qname, q.domain)
		}
		for _, part := range []string{q.name, q.tag, q.dc} {
			if !strings.Contains(qname, part) || strings.Contains(part, ".") {
				t.Fatalf("parseName(%q) = %+v: part %q not one label of the name", qname, q, part)
			}
		}
		if (q.kind == kindService || q.kind == kindNode || q.kind == kindAddr || q.kind == kindQuery) && q.name == "" {
			t.Fatalf("parseName(%q) = %+v: empty name", qname, q)
		}
	})
}

// FuzzHandler feeds random packets to the handler: it must never panic,
// and any answer must pack.
func FuzzHandler(f *testing.F) {
	for _, qt := range []uint16{dns.TypeA, dns.TypeSRV, dns.TypeANY, dns.TypeTXT} {
		for _, name := range []string{"web.service.consul.", "v1.web.service.dc3.consul.", "foo.node.consul.", "7f000001.addr.dc1.consul.", "consul.", "example.com."} {
			m := new(dns.Msg)
			m.SetQuestion(name, qt)
			b, _ := m.Pack()
			f.Add(b, false)
			m.SetEdns0(1232, true)
			b, _ = m.Pack()
			f.Add(b, true)
		}
	}
	m := new(dns.Msg)
	m.Question = make([]dns.Question, 2)
	b, _ := m.Pack()
	f.Add(b, false)
	s, err := New(testConfig(), catalogBackend())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Shutdown(f.Context()) })
	f.Fuzz(func(t *testing.T, pkt []byte, tcp bool) {
		var r dns.Msg
		if r.Unpack(pkt) != nil {
			return
		}
		w := &fakeWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
		if tcp {
			w.remote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
		}
		if strings.Contains(strings.ToLower(r.String()), "example.com") {
			return // forwarding needs no recursor here; REFUSED is covered elsewhere
		}
		rcode := s.handle(w, &r, 0)
		if rcode >= 0 && w.msg == nil {
			t.Fatalf("handle returned rcode %d but wrote nothing", rcode)
		}
	})
}
