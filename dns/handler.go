package dns

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// handler adapts a Server to miekg's Handler without exporting miekg types.
type handler struct{ s *Server }

// ServeDNS answers one query and records its counters.
func (h handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	start := time.Now()
	rcode := h.s.handle(w, r, start.UnixNano())
	h.s.stats.record(rcode, time.Since(start))
}

// handle answers r on w and returns the response code, -1 when nothing was
// written. It never panics on any request miekg hands it.
func (s *Server) handle(w dns.ResponseWriter, r *dns.Msg, now int64) int {
	if r == nil || r.Response {
		return -1
	}
	udp := isUDP(w)
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		m := s.reply(r)
		m.Question = nil
		m.Rcode = dns.RcodeFormatError
		if r.Opcode != dns.OpcodeQuery {
			m.Rcode = dns.RcodeNotImplemented
		}
		return s.write(w, r, m, udp)
	}
	q := r.Question[0]
	qname := strings.ToLower(q.Name)
	pq, inZone := parseName(qname, s.domains)
	if !inZone {
		return s.forward(w, r, udp)
	}
	m := s.reply(r)
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused
		return s.write(w, r, m, udp)
	}
	di := 0
	if len(s.domains) > 1 && pq.domain == s.domains[1] {
		di = 1
	}
	switch pq.kind {
	case kindApex:
		s.answerApex(m, q, di)
	case kindService:
		s.answerService(m, r, q, pq, di, udp, now)
	case kindNode:
		s.answerNode(m, q, pq, di)
	case kindAddr:
		s.answerAddr(m, q, pq, di)
	case kindQuery:
		s.answerQuery(m, r, q, pq, di, udp)
	default:
		s.notFound(m, di)
	}
	return s.write(w, r, m, udp)
}

// reply starts the answer to r, sharing its question.
func (s *Server) reply(r *dns.Msg) *dns.Msg {
	m := &dns.Msg{}
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled
	m.Authoritative = true
	m.RecursionAvailable = len(s.recurse) > 0
	m.Question = r.Question
	return m
}

// write trims m to what the transport and the client's EDNS0 buffer take,
// echoing the OPT record, and sends it.
func (s *Server) write(w dns.ResponseWriter, r, m *dns.Msg, udp bool) int {
	size := dns.MaxMsgSize
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(max(opt.UDPSize(), dns.MinMsgSize), opt.Do())
		if udp {
			size = int(max(opt.UDPSize(), dns.MinMsgSize))
		}
	} else if udp {
		size = dns.MinMsgSize
	}
	m.Truncate(size)
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("dns write failed", "error", err)
		if !udp {
			// Part of the answer may have gone out: the stream's
			// framing is lost, and a client that stopped reading is
			// let go.
			_ = w.Close()
		}
	}
	return m.Rcode
}

func isUDP(w dns.ResponseWriter) bool {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	return !tcp
}

// notFound answers NXDOMAIN with the zone's SOA.
func (s *Server) notFound(m *dns.Msg, di int) {
	m.Rcode = dns.RcodeNameError
	m.Answer = nil
	m.Ns = s.soa[di : di+1 : di+1]
}

// noData answers NOERROR without records, with the zone's SOA.
func (s *Server) noData(m *dns.Msg, di int) {
	m.Ns = s.soa[di : di+1 : di+1]
}

// fail answers a Backend error: NXDOMAIN for an unknown datacenter,
// SERVFAIL for anything else.
func (s *Server) fail(m *dns.Msg, err error, di int) {
	if errors.Is(err, ErrNoSuchDatacenter) {
		s.notFound(m, di)
		return
	}
	s.log.Debug("dns lookup failed", "error", err)
	m.Rcode = dns.RcodeServerFailure
}

// datacenter resolves the dc of a name, false when it does not exist.
func (s *Server) datacenter(dc string) (string, bool) {
	if dc == "" || dc == s.cfg.Datacenter {
		return s.cfg.Datacenter, true
	}
	return dc, s.backend.KnownDatacenter(dc)
}

func (s *Server) answerApex(m *dns.Msg, q dns.Question, di int) {
	soa := s.soa[di]
	if q.Qtype == dns.TypeSOA || q.Qtype == dns.TypeANY {
		m.Answer = append(m.Answer, soa)
	}
	if q.Qtype == dns.TypeNS || q.Qtype == dns.TypeANY {
		ns := s.nsName(s.domains[di])
		m.Answer = append(m.Answer, &dns.NS{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeNS, Class: dns.ClassINET}, Ns: ns})
		if s.cfg.NodeName != "" {
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.QueryTimeout)
			n, err := s.backend.Node(ctx, s.cfg.Datacenter, s.cfg.NodeName)
			cancel()
			if err == nil && n != nil {
				if rr := addrRR(ns, n.Address, seconds(s.cfg.NodeTTL)); rr != nil {
					m.Extra = append(m.Extra, rr)
				}
			}
		}
	}
	if len(m.Answer) == 0 {
		s.noData(m, di)
	}
}

// answerService answers [TAG.]NAME.service[.DC] from the view. Over UDP
// without EDNS0, UDPAnswerLimit caps the answers.
func (s *Server) answerService(m, r *dns.Msg, q dns.Question, pq query, di int, udp bool, now int64) {
	dc, ok := s.datacenter(pq.dc)
	if !ok || (s.cfg.ServiceAllowed != nil && !s.cfg.ServiceAllowed(pq.name)) {
		s.notFound(m, di)
		return
	}
	snap, err := s.views.lookup(dc, pq.name, now)
	if err != nil {
		s.fail(m, err, di)
		return
	}
	var buf [16]*instance
	sel := s.selectTag(buf[:0], snap.instances, pq.tag)
	if len(sel) == 0 && pq.dc == "" && s.cfg.Failover != nil {
		sel = s.failover(m, q, pq, sel, di, now)
	}
	if len(sel) == 0 {
		s.notFound(m, di)
		return
	}
	for i := len(sel) - 1; i > 0; i-- {
		j := rand.IntN(i + 1)
		sel[i], sel[j] = sel[j], sel[i]
	}
	s.answerInstances(m, r, q, sel, di, udp)
}

// answerInstances writes sel, in order, as the answer to q: A/AAAA/CNAME
// records (at most ARecordLimit), or SRV records with their targets'
// addresses in the additional section. Over UDP without EDNS0,
// UDPAnswerLimit caps the answers and EnableTruncate sets TC when it did.
func (s *Server) answerInstances(m, r *dns.Msg, q dns.Question, sel []*instance, di int, udp bool) {
	udpLimit := 0
	if udp && r.IsEdns0() == nil {
		udpLimit = s.cfg.UDPAnswerLimit
	}
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeANY:
		limit := s.cfg.ARecordLimit
		if udpLimit > 0 && (limit == 0 || udpLimit < limit) {
			limit = udpLimit
		}
		m.Answer = addrAnswers(q, sel, limit)
		if udpLimit > 0 && len(m.Answer) == udpLimit && s.cfg.EnableTruncate && countAddr(q.Qtype, sel) > udpLimit {
			m.Truncated = true
		}
	case dns.TypeSRV:
		n := len(sel)
		if udpLimit > 0 && n > udpLimit {
			n = udpLimit
			m.Truncated = s.cfg.EnableTruncate
		}
		srvs := make([]dns.SRV, n)
		m.Answer = make([]dns.RR, n)
		for i, in := range sel[:n] {
			srvs[i] = in.srv[di]
			srvs[i].Hdr.Name = q.Name
			m.Answer[i] = &srvs[i]
			if x := in.extra[di]; x != nil && !hasOwner(m.Extra, x.Header().Name) {
				m.Extra = append(m.Extra, x)
			}
		}
	}
	if len(m.Answer) == 0 {
		s.noData(m, di)
	}
}

// selectTag appends to sel the instances carrying tag ("" for all) whose
// node Config.NodeAllowed accepts.
func (s *Server) selectTag(sel, instances []*instance, tag string) []*instance {
	allowed := s.cfg.NodeAllowed
	last, lastOK, asked := "", false, false
	for _, in := range instances {
		if tag != "" && !slices.Contains(in.tags, tag) {
			continue
		}
		if allowed != nil {
			if !asked || in.node != last {
				last, lastOK, asked = in.node, allowed(in.node), true
			}
			if !lastOK {
				continue
			}
		}
		sel = append(sel, in)
	}
	return sel
}

// failover looks for the service, when the local datacenter has no healthy
// instance, in the datacenters of the agent's failover policy, in order,
// through their views (kept fresh like local ones, so a failed-over lookup
// costs what a local one does). With FailoverTXT the answer names the
// datacenter that served it in a TXT record of the additional section.
func (s *Server) failover(m *dns.Msg, q dns.Question, pq query, sel []*instance, di int, now int64) []*instance {
	for _, dc := range s.cfg.Failover(pq.name) {
		if !s.backend.KnownDatacenter(dc) {
			continue
		}
		snap, err := s.views.lookup(dc, pq.name, now)
		if err != nil {
			continue
		}
		if sel = s.selectTag(sel, snap.instances, pq.tag); len(sel) > 0 {
			if s.cfg.FailoverTXT {
				m.Extra = append(m.Extra, &dns.TXT{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET},
					Txt: []string{"failover-datacenter=" + dc},
				})
			}
			return sel
		}
	}
	return sel
}

// addrAnswers copies the A/AAAA/CNAME records of sel that match qtype,
// named q.Name, at most limit (0 = all).
func addrAnswers(q dns.Question, sel []*instance, limit int) []dns.RR {
	n := len(sel)
	if limit > 0 && limit < n {
		n = limit
	}
	ans := make([]dns.RR, 0, n)
	var as []dns.A
	for _, in := range sel {
		if len(ans) == n {
			break
		}
		switch rr := in.addr.(type) {
		case *dns.A:
			if q.Qtype == dns.TypeAAAA {
				continue
			}
			if as == nil {
				as = make([]dns.A, 0, n) // never grows: pointers stay valid
			}
			as = append(as, *rr)
			a := &as[len(as)-1]
			a.Hdr.Name = q.Name
			ans = append(ans, a)
		case *dns.AAAA:
			if q.Qtype == dns.TypeA {
				continue
			}
			c := *rr
			c.Hdr.Name = q.Name
			ans = append(ans, &c)
		case *dns.CNAME:
			c := *rr
			c.Hdr.Name = q.Name
			ans = append(ans, &c)
		}
	}
	return ans
}

// countAddr counts the records of sel a qtype query would answer.
func countAddr(qtype uint16, sel []*instance) int {
	n := 0
	for _, in := range sel {
		switch in.addr.(type) {
		case *dns.A:
			if qtype != dns.TypeAAAA {
				n++
			}
		case *dns.AAAA:
			if qtype != dns.TypeA {
				n++
			}
		default:
			n++
		}
	}
	return n
}

func hasOwner(rrs []dns.RR, name string) bool {
	for _, rr := range rrs {
		if rr.Header().Name == name {
			return true
		}
	}
	return false
}

// answerNode answers NODE.node[.DC]: A/AAAA from the address, TXT from
// the node metadata ("key=value", sorted by key).
func (s *Server) answerNode(m *dns.Msg, q dns.Question, pq query, di int) {
	dc, ok := s.datacenter(pq.dc)
	if !ok {
		s.notFound(m, di)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.QueryTimeout)
	n, err := s.backend.Node(ctx, dc, pq.name)
	cancel()
	if err != nil {
		s.fail(m, err, di)
		return
	}
	if n == nil {
		s.notFound(m, di)
		return
	}
	ttl := seconds(s.cfg.NodeTTL)
	if rr := addrRR(q.Name, n.Address, ttl); rr != nil && typeMatches(q.Qtype, rr) {
		m.Answer = append(m.Answer, rr)
	}
	if q.Qtype == dns.TypeTXT || q.Qtype == dns.TypeANY {
		keys := make([]string, 0, len(n.Meta))
		for k := range n.Meta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl},
				Txt: []string{k + "=" + n.Meta[k]},
			})
		}
	}
	if len(m.Answer) == 0 {
		s.noData(m, di)
	}
}

// typeMatches reports whether an address record answers qtype; a CNAME
// answers every address query.
func typeMatches(qtype uint16, rr dns.RR) bool {
	t := rr.Header().Rrtype
	return qtype == dns.TypeANY || t == dns.TypeCNAME && (qtype == dns.TypeA || qtype == dns.TypeAAAA) || t == qtype
}

// answerAddr answers HEXIP.addr[.DC].
func (s *Server) answerAddr(m *dns.Msg, q dns.Question, pq query, di int) {
	ip := parseHexIP(pq.name)
	if ip == nil {
		s.notFound(m, di)
		return
	}
	if rr := addrRR(q.Name, ip.String(), seconds(s.cfg.NodeTTL)); rr != nil && typeMatches(q.Qtype, rr) {
		m.Answer = append(m.Answer, rr)
	}
	if len(m.Answer) == 0 {
		s.noData(m, di)
	}
}

// forward sends a name outside the domain to the recursors in order and
// relays the first answer; REFUSED without recursors, SERVFAIL when none
// answers.
func (s *Server) forward(w dns.ResponseWriter, r *dns.Msg, udp bool) int {
	if len(s.recurse) == 0 {
		m := s.reply(r)
		m.Authoritative = false
		m.Rcode = dns.RcodeRefused
		return s.write(w, r, m, udp)
	}
	s.stats.forwarded.Add(1)
	c := &dns.Client{Net: "udp", Timeout: s.cfg.RecursorTimeout}
	if !udp {
		c.Net = "tcp"
	}
	for _, addr := range s.recurse {
		resp, _, err := c.Exchange(r, addr)
		if err != nil || resp.Rcode == dns.RcodeServerFailure {
			s.log.Debug("dns recursor failed", "recursor", addr, "error", err)
			continue
		}
		resp.Id = r.Id
		resp.RecursionAvailable = true
		resp.Compress = true
		size := dns.MaxMsgSize
		if udp {
			size = dns.MinMsgSize
			if opt := r.IsEdns0(); opt != nil {
				size = int(max(opt.UDPSize(), dns.MinMsgSize))
			}
		}
		resp.Truncate(size)
		if err := w.WriteMsg(resp); err != nil {
			s.log.Debug("dns write failed", "error", err)
		}
		return resp.Rcode
	}
	m := s.reply(r)
	m.Authoritative = false
	m.Rcode = dns.RcodeServerFailure
	return s.write(w, r, m, udp)
}
