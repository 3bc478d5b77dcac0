package dns

import (
	"context"
	"strings"

	"github.com/meridian/meridian/catalog"
	"github.com/miekg/dns"
)

// QueryBackend is the part of a Backend that runs prepared queries. A
// Backend that does not implement it answers NXDOMAIN to every
// NAME.query[.DC] name.
type QueryBackend interface {
	// ExecuteQuery runs the prepared query that name (an ID, a name, or a
	// name a template matches) resolves to in dc, with the query's
	// failover, like /v1/query/NAME/execute. It answers nil and no error
	// when no query matches. Errors wrap ErrNoSuchDatacenter or
	// ErrUnreachable when those apply.
	ExecuteQuery(ctx context.Context, dc, name string) (*catalog.QueryExecuteResponse, error)
}

// answerQuery answers NAME.query[.DC]: the instances the prepared query
// returns, in the order it returns them (shuffled, or sorted by distance),
// as A/AAAA/CNAME or SRV records like NAME.service. The TTL is the query's
// DNS.TTL when set, else the service's TTL. An unknown query, or one that
// finds no instance in any datacenter it tries, is NXDOMAIN. The query
// may fail over to other datacenters, so it may take up to twice
// QueryTimeout.
func (s *Server) answerQuery(m, r *dns.Msg, q dns.Question, pq query, di int, udp bool) {
	qb, ok := s.backend.(QueryBackend)
	if !ok {
		s.notFound(m, di)
		return
	}
	dc, ok := s.datacenter(pq.dc)
	if !ok {
		s.notFound(m, di)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*s.cfg.QueryTimeout)
	resp, err := qb.ExecuteQuery(ctx, dc, pq.name)
	cancel()
	if err != nil {
		s.fail(m, err, di)
		return
	}
	if resp == nil || len(resp.Nodes) == 0 {
		s.notFound(m, di)
		return
	}
	// The query judged health already, ignoring the checks it was told
	// to: keep only the checks that bear on the SRV weight, so that build
	// drops nothing the query kept (except warnings under only_passing).
	nodes := make([]*catalog.CheckServiceNode, 0, len(resp.Nodes))
	for _, n := range resp.Nodes {
		if n == nil {
			continue
		}
		c := *n
		c.Checks = nil
		for _, ch := range n.Checks {
			if ch != nil && ch.Status == catalog.HealthWarning {
				c.Checks = append(c.Checks, ch)
			}
		}
		nodes = append(nodes, &c)
	}
	servedBy := resp.Datacenter
	if servedBy == "" {
		servedBy = dc
	}
	snap := s.build(strings.ToLower(servedBy), strings.ToLower(resp.Service), 0, nodes)
	if ttl, ok := resp.DNS.TTLDuration(); ok {
		setTTL(snap.instances, seconds(ttl))
	}
	if len(snap.instances) == 0 {
		s.notFound(m, di)
		return
	}
	s.answerInstances(m, r, q, snap.instances, di, udp)
}

// setTTL sets the TTL of every record of freshly built instances.
func setTTL(ins []*instance, ttl uint32) {
	for _, in := range ins {
		if in.addr != nil {
			in.addr.Header().Ttl = ttl
		}
		for i := range in.srv {
			in.srv[i].Hdr.Ttl = ttl
			if in.extra[i] != nil {
				in.extra[i].Header().Ttl = ttl
			}
		}
	}
}
