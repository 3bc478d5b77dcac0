package dns

import (
	"net"
	"testing"

	"github.com/meridian/meridian/catalog"
	"github.com/miekg/dns"
)

// BenchmarkServeDNS measures the handler alone on the query: A for
// web.service.consul with four passing instances, EDNS0, from the view. The
// writer packs into a reused buffer, as cheap as miekg's own writer.
func BenchmarkServeDNS(b *testing.B) {
	be := newFakeBackend()
	var nodes []*catalog.CheckServiceNode
	for i := range 4 {
		nodes = append(nodes, inst(string(rune('a'+i)), "127.0.1."+string(rune('1'+i)), "", 80, nil, pass))
	}
	be.setService("dc1", "web", nodes...)
	s, err := New(DefaultConfig(), be)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Shutdown(b.Context()) })
	h := handler{s}
	req := new(dns.Msg)
	req.SetQuestion("web.service.consul.", dns.TypeA)
	req.SetEdns0(1232, false)
	w := &fakeWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, buf: make([]byte, 0, 4096)}
	h.ServeDNS(w, req)
	if len(w.msg.Answer) != 4 {
		b.Fatalf("answer = %v, want 4 records", w.msg.Answer)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.ServeDNS(w, req)
	}
}

// BenchmarkReference is the same writer with the reference server's
// handler (bench/ref), for comparison.
func BenchmarkReference(b *testing.B) {
	ips := []string{"127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		for _, ip := range ips {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.ParseIP(ip)})
		}
		if o := r.IsEdns0(); o != nil {
			m.SetEdns0(o.UDPSize(), false)
		}
		w.WriteMsg(m)
	})
	req := new(dns.Msg)
	req.SetQuestion("web.service.consul.", dns.TypeA)
	req.SetEdns0(1232, false)
	w := &fakeWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, buf: make([]byte, 0, 4096)}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeDNS(w, req)
	}
}
